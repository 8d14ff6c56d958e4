//! The OpenAPI document, generated from the handlers' annotations, and the `/docs` page
//! (Swagger UI from the crate's vendored assets: it works offline).

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::routes::{admin, insights, inspections, me, retrain, upload};
use crate::AppState;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Local mode: a token from `opti users add` (or printed at first start). AWS: a Cognito JWT.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The API description served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Opti-Quality API",
        description = "Human-in-the-loop visual inspection: upload images, work the review queue, watch drift, manage models."
    ),
    paths(
        insights::healthz,
        me::me,
        upload::upload,
        upload::presign,
        inspections::list,
        inspections::get_one,
        inspections::claim,
        inspections::release,
        inspections::review,
        insights::drift,
        insights::drift_history,
        insights::drift_evaluate,
        insights::stats,
        admin::get_config,
        admin::put_config,
        admin::audit,
        admin::list_models,
        admin::promote,
        admin::rollback,
        retrain::start,
        retrain::get_job,
        retrain::list,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "upload", description = "Cameras send images"),
        (name = "review", description = "The expert review queue"),
        (name = "insights", description = "Drift and dashboard numbers"),
        (name = "admin", description = "Configuration, audit trail, model registry, retraining"),
        (name = "meta", description = "Health")
    )
)]
pub struct ApiDoc;

/// `/openapi.json` and `/docs`.
pub fn routes() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}
