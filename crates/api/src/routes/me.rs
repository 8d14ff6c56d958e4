//! Who am I: the caller's name and role, so that a client (the web UI) can show the
//! navigation that role may use, and the active model's classes in the model's order.

use axum::extract::State;
use axum::Json;
use opti_core::types::Role;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::AppState;

/// The authenticated caller.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub name: String,
    pub role: Role,
    /// Class names of the active model, by class id (the annotator's `1`–`4` keys).
    pub classes: Vec<String>,
    pub model_version: String,
}

/// The caller's name and role (any valid token), and the active model's classes.
#[utoipa::path(get, path = "/me", tag = "meta",
    responses((status = 200, body = Me), (status = 401)),
    security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Me>> {
    Ok(Json(Me {
        name: caller.name,
        role: caller.role,
        classes: state.inspector.class_names().0,
        model_version: state.inspector.model_version(),
    }))
}
