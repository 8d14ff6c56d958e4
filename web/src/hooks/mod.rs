//! Hooks: the session (token, name, role) fetching API data into component state, and a
//! ticker for polling.

mod use_remote;
mod use_session;
mod use_ticker;

pub use use_remote::{use_remote, Remote};
pub use use_session::{use_api, use_session, Session, SessionHandle, SESSION_KEY};
pub use use_ticker::use_ticker;
