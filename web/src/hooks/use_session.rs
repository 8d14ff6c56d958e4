//! The signed-in user: token, name and role, kept in local storage so a reload keeps
//! the reviewer signed in; provided to every page through a context.

use gloo_storage::{LocalStorage, Storage};
use opti_core::types::Role;
use serde::{Deserialize, Serialize};
use yew::prelude::*;

use crate::api::Api;

/// Local-storage key of the session.
pub const SESSION_KEY: &str = "opti.session";

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub name: String,
    pub role: Role,
    /// Class names of the active model, by class id.
    #[serde(default)]
    pub classes: Vec<String>,
}

impl Session {
    /// The stored session, if any.
    pub fn load() -> Option<Session> {
        LocalStorage::get(SESSION_KEY).ok()
    }

    /// Keeps (`Some`) or forgets (`None`) the session.
    pub fn store(session: Option<&Session>) {
        match session {
            Some(s) => {
                let _ = LocalStorage::set(SESSION_KEY, s);
            }
            None => LocalStorage::delete(SESSION_KEY),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// The session state shared through the app's context.
pub type SessionHandle = UseStateHandle<Option<Session>>;

/// The current session handle.
#[hook]
pub fn use_session() -> SessionHandle {
    use_context::<SessionHandle>().expect("the App provides the session context")
}

/// An API client with the current token.
#[hook]
pub fn use_api() -> Api {
    let session = use_session();
    Api::new(session.as_ref().map(|s| s.token.clone()))
}
