//! The route table: every path of the HTTP contract, with the role each needs checked in
//! its handler through the [`crate::Caller`] extractor.

pub mod admin;
pub mod insights;
pub mod inspections;
pub mod me;
pub mod retrain;
pub mod upload;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::json;

use crate::error::ApiError;
use crate::AppState;

/// Builds the Router with all routes; unknown paths get a JSON 404.
pub fn router(state: AppState) -> Router {
    router_without_fallback(state).fallback(not_found)
}

/// All routes, no fallback: `opti serve` adds the web UI's static files as the fallback.
pub fn router_without_fallback(state: AppState) -> Router {
    // Multipart framing adds a little to the file itself.
    let upload_limit = state.settings.max_upload_bytes + 64 * 1024;
    let mut router = Router::new()
        .route("/healthz", get(insights::healthz))
        .route("/me", get(me::me))
        .route(
            "/upload/",
            post(upload::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/upload",
            post(upload::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/uploads/presign", post(upload::presign))
        .route("/inspections", get(inspections::list))
        .route("/inspections/{id}", get(inspections::get_one))
        .route("/inspections/{id}/claim", post(inspections::claim))
        .route("/inspections/{id}/release", post(inspections::release))
        .route("/inspections/{id}/review", post(inspections::review))
        .route("/drift/", get(insights::drift))
        .route("/drift", get(insights::drift))
        .route("/drift/history", get(insights::drift_history))
        .route("/drift/evaluate", post(insights::drift_evaluate))
        .route("/stats", get(insights::stats))
        .route("/config", get(admin::get_config).put(admin::put_config))
        .route("/audit", get(admin::audit))
        .route("/models", get(admin::list_models))
        .route("/models/{version}/promote", post(admin::promote))
        .route("/models/{version}/rollback", post(admin::rollback))
        .route("/retrain", post(retrain::start).get(retrain::list))
        .route("/retrain/{job}", get(retrain::get_job))
        .merge(crate::openapi::routes());
    if state.local_urls.is_some() {
        router = router
            .route(
                "/uploads/put/{*key}",
                put(upload::put_presigned).layer(DefaultBodyLimit::disable()),
            )
            .route("/blobs/{*key}", get(upload::get_blob));
    }
    router
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .with_state(state)
}

/// Largest JSON body (reviews, config); uploads have their own limit.
pub const JSON_BODY_LIMIT: usize = 256 * 1024;

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The JSON 404 for paths that are not part of the API.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// `{"ok": true}`-style acknowledgement.
pub fn ok() -> Json<serde_json::Value> {
    Json(json!({"ok": true}))
}
