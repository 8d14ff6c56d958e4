//! Opti-Quality domain core: the types every part shares, the decision logic (routing
//! policy, review state machine), drift statistics, the YOLO label format, detection
//! metrics, and the storage ports that adapters implement.
//!
//! This crate does no I/O: callers pass in the current time, the bytes, the records.
//! The web app compiles it to wasm and reuses its serde types.

pub mod class;
pub mod config;
pub mod drift;
pub mod drift_stats;
pub mod error;
pub mod gate;
pub mod metrics;
pub mod ports;
pub mod retrain;
pub mod review;
pub mod routing;
pub mod snapshot;
pub mod types;
pub mod yolo;

pub use class::ClassNames;
pub use config::{Config, DriftConfig};
pub use error::DomainError;
pub use routing::{RoutingDecision, RoutingPolicy};
pub use types::*;
