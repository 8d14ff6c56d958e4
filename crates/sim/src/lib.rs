//! Synthetic production line: deterministic product images with defects and exact ground truth.
//!
//! A sample is a pure function of `(seed, index, params)` ([`generate`]), so a dataset or
//! a camera stream can be regenerated bit for bit, in any order and in parallel. Drift
//! knobs ([`Drift`]) change the camera or the product without changing which part is
//! shown, so the same indices measure a model before and after drift.

pub mod dataset;
pub mod params;
pub mod render;
pub mod scene;

pub use dataset::{
    encode_image, write_dataset, DatasetSpec, GroundTruthRecord, ImageFormat, Manifest, SimError,
};
pub use params::{Drift, ParamsError, ProductKind, SimParams, STREAM_CLEAN_FRACTION};
pub use scene::{class, generate, DefectRecord, Sample};

/// Version of the generator; bumped whenever the same `(seed, index, params)` would
/// render a different image, so manifests tell which generator made a dataset.
pub const GENERATOR_VERSION: &str = "opti-sim/1";
