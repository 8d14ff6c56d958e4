//! Hooks: the session (token, name, role) and fetching API data into component state.

mod use_remote;
mod use_session;

pub use use_remote::{use_remote, Remote};
pub use use_session::{use_api, use_session, Session, SessionHandle, SESSION_KEY};
