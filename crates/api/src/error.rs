//! One place where domain and storage errors become HTTP status codes. Every error body
//! is `{"error": "..."}`; a version conflict also carries the current record.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use opti_core::error::{DomainError, StoreError};
use serde_json::json;

/// What a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("role {role} may not {what}")]
    Forbidden {
        role: &'static str,
        what: &'static str,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// Stale version: the body carries the record as it is now.
    #[error("{message}")]
    Conflict {
        message: String,
        current: Option<serde_json::Value>,
    },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed request whose content cannot be processed (a corrupt image).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut body = json!({ "error": self.to_string() });
        if let ApiError::Conflict {
            current: Some(current),
            ..
        } = &self
        {
            body["current"] = current.clone();
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            StoreError::Conflict { current, .. } => ApiError::Conflict {
                message: "stale version: the record changed since you read it".into(),
                current: Some(*current),
            },
            StoreError::AlreadyExists { .. } => ApiError::Conflict {
                message: e.to_string(),
                current: None,
            },
            StoreError::BadCursor => ApiError::BadRequest("invalid cursor".into()),
            StoreError::Corrupt(_) | StoreError::Backend(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(m) => ApiError::BadRequest(m),
            DomainError::IllegalTransition { .. } | DomainError::ClaimedByOther { .. } => {
                ApiError::Conflict {
                    message: e.to_string(),
                    current: None,
                }
            }
            DomainError::StaleVersion { .. } => ApiError::Conflict {
                message: e.to_string(),
                current: None,
            },
        }
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
