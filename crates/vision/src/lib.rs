//! Hardened image decoding, letterbox, the tract ONNX YOLO detector, NMS and image statistics.
//!
//! The pipeline for one uploaded file: [`decode`] (PNG/JPEG by magic bytes, size limits
//! checked before allocation, decoder panics contained) → [`stats`] (brightness,
//! contrast, sharpness for drift) → [`Detector`] (letterbox as Ultralytics does, tract
//! inference, class-aware NMS, boxes normalised to the original image) →
//! [`opti_core::ModelOutput`], which `opti_core`'s routing policy turns into a decision.

pub mod cache;
pub mod conv;
pub mod decode;
pub mod detector;
pub mod letterbox;
pub mod metadata;
mod nnef_read;
pub mod postprocess;
pub mod rewrite;
pub mod stats;
pub mod team;
#[cfg(test)]
mod test_support;

pub use cache::{cache_path_for, LoadedFrom, ModelCache};
pub use decode::{decode_bytes, decode_file, DecodeError, DecodeLimits, DecodedImage, ImageKind};
pub use detector::{
    Analysis, Detector, DetectorOptions, InferenceError, ModelError, ModelInfo, Preprocessed,
    RawOutput, StageTimings, VisionError,
};
pub use letterbox::LetterboxGeometry;
pub use postprocess::{NmsOptions, OutputLayout};
pub use rewrite::RewriteReport;
pub use stats::image_stats;

/// Re-exported so callers (CLI, API, tests) need no direct `image` dependency for pixels.
pub use image;
pub use image::RgbImage;
