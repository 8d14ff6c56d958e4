//! The Opti-Quality web UI: a Yew single-page app for reviewers (queue, annotator) and
//! quality engineers (dashboard, audit trail, settings, models).
//!
//! The logic modules (annotator reducer, box geometry, keyboard map, chart scales, audit
//! diff, settings form, API shapes) are plain Rust and tested natively; the Yew app
//! (`app`, `api`, `pages`, `components`, `hooks`) is built only for wasm32.

pub mod annotator;
pub mod chart;
pub mod diff;
pub mod format;
pub mod geometry;
pub mod keys;
pub mod retrain_view;
pub mod settings_form;
pub mod wire;

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod components;
#[cfg(target_arch = "wasm32")]
pub mod hooks;
#[cfg(target_arch = "wasm32")]
pub mod pages;
