//! Scoring a model for the gate, in Rust: the tract [`Detector`] on every holdout image,
//! then the Ultralytics-exact metrics of `opti_core::metrics`, overall and per slice.

use std::collections::BTreeMap;
use std::io::Write;

use opti_core::gate::GateScores;
use opti_core::metrics::DetectionEvaluator;
use opti_core::{ClassNames, Detection};
use opti_vision::{Detector, DetectorOptions};

/// One labelled image the gate scores models on.
#[derive(Debug, Clone)]
pub struct GateImage {
    pub bytes: Vec<u8>,
    pub truth: Vec<Detection>,
    /// Slices it belongs to (`camera:cam-1`, `line:shipped`).
    pub slices: Vec<String>,
    /// Part of the reviewed holdout (the overall score), or only of its slices.
    pub overall: bool,
}

/// Detector options of an evaluation: everything above confidence 0.001, as Ultralytics'
/// validator keeps, so that mAP sees the whole precision–recall curve.
pub fn eval_options() -> DetectorOptions {
    let mut options = DetectorOptions::default();
    options.nms.conf = 0.001;
    options.nms.max_det = 300;
    options
}

/// Scores the ONNX model `onnx` on `images`. Blocking (runs the model on every image).
/// An image the model cannot read counts as a miss of all its boxes.
pub fn score(onnx: &[u8], images: &[GateImage]) -> Result<GateScores, String> {
    let mut file = tempfile::Builder::new()
        .prefix("opti-gate-")
        .suffix(".onnx")
        .tempfile()
        .map_err(|e| format!("temp file: {e}"))?;
    file.write_all(onnx)
        .and_then(|_| file.flush())
        .map_err(|e| format!("temp file: {e}"))?;
    let detector =
        Detector::load(file.path(), eval_options()).map_err(|e| format!("model load: {e}"))?;
    let classes: ClassNames = detector.info().names.clone();
    let mut overall = DetectionEvaluator::with_classes(&classes);
    let mut slices: BTreeMap<String, DetectionEvaluator> = BTreeMap::new();
    let mut images_n = 0;
    let mut labels_n = 0;
    for image in images {
        let predictions = detector
            .inspect_bytes(&image.bytes)
            .map(|a| a.output.detections)
            .unwrap_or_default();
        if image.overall {
            overall.add_image(&predictions, &image.truth);
            images_n += 1;
            labels_n += image.truth.len();
        }
        for slice in &image.slices {
            slices
                .entry(slice.clone())
                .or_insert_with(|| DetectionEvaluator::with_classes(&classes))
                .add_image(&predictions, &image.truth);
        }
    }
    Ok(GateScores {
        overall: overall.finish().overall,
        slices: slices
            .into_iter()
            .map(|(k, e)| (k, e.finish().overall))
            .collect(),
        images: images_n,
        labels: labels_n,
    })
}
