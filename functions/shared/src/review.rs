//! The review function: the whole HTTP API Router of `opti-api` (queue, claim, review,
//! config, audit, stats, presign, models) behind API Gateway, with callers from Cognito.

use axum::Router;
use opti_api::AppState;

/// The Router with the Cognito caller layer, ready for `lambda_http::run`.
pub fn app(state: AppState) -> Router {
    opti_api::router(state).layer(axum::middleware::from_fn(crate::cognito::cognito_caller))
}
