//! One module per page of the app.

pub mod annotate;
pub mod audit;
pub mod dashboard;
pub mod login;
pub mod models;
pub mod queue;
pub mod settings;
