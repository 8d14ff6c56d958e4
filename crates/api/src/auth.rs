//! Who is calling, and may they? Local mode uses bearer tokens whose SHA-256 is stored
//! with the user; AWS mode puts a [`Caller`] (from Cognito JWT groups) into the request
//! extensions before the Router runs, and the same role checks apply.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use opti_core::ports::UserStore;
use opti_core::types::{Role, User};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::AppState;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// The actor string recorded in audit events (`reviewer:alice`).
    pub fn actor(&self) -> String {
        format!("{}:{}", self.role.as_str(), self.name)
    }

    /// Admins may do everything; others only what `roles` lists.
    pub fn require(&self, roles: &[Role], what: &'static str) -> Result<(), ApiError> {
        if self.role == Role::Admin || roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                role: self.role.as_str(),
                what,
            })
        }
    }
}

/// Turns a bearer token into a caller.
#[async_trait]
pub trait Authenticator: Send + Sync {
    async fn authenticate(&self, token: &str) -> Result<Option<Caller>, ApiError>;
}

/// Local mode: tokens are looked up by their SHA-256 in the user store.
pub struct TokenAuthenticator {
    users: Arc<dyn UserStore>,
}

impl TokenAuthenticator {
    pub fn new(users: Arc<dyn UserStore>) -> Self {
        Self { users }
    }
}

#[async_trait]
impl Authenticator for TokenAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Option<Caller>, ApiError> {
        let user = self.users.user_by_token_hash(&token_sha256(token)).await?;
        Ok(user.map(|u| Caller {
            name: u.name,
            role: u.role,
        }))
    }
}

/// Hex SHA-256 of a bearer token: the only form in which tokens are stored.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random bearer token (`oq_` + 64 hex digits).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    format!("oq_{}", hex::encode(bytes))
}

/// Creates a user with a fresh token; returns the user and the token (shown once).
pub async fn add_user(
    users: &dyn UserStore,
    name: &str,
    role: Role,
    now: OffsetDateTime,
) -> Result<(User, String), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if !valid {
        return Err(ApiError::BadRequest(format!(
            "user name {name:?} must be 1-64 characters of letters, digits, - _ . @"
        )));
    }
    let token = new_token();
    let user = User {
        name: name.to_string(),
        role,
        token_sha256: token_sha256(&token),
        created_at: now,
    };
    users.add_user(&user).await?;
    Ok((user, token))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        state
            .auth
            .authenticate(token)
            .await?
            .ok_or(ApiError::Unauthorized)
    }
}
