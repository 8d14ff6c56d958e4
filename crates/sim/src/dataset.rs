//! Writing generated samples as an Ultralytics YOLO dataset: `images/{train,val}/`,
//! `labels/{train,val}/`, `data.yaml`, `manifest.json` (every generation parameter) and
//! `ground_truth.jsonl` (one line per image, for benchmarks that play the expert).

use std::fs;
use std::io::{BufWriter, Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use image::codecs::jpeg::JpegEncoder;
use image::{ImageFormat as CodecFormat, RgbImage};
use opti_core::yolo::{format_label_file, YoloLabel};
use opti_core::ClassNames;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::params::{ParamsError, SimParams};
use crate::scene::{class, generate, DefectRecord, Sample};
use crate::GENERATOR_VERSION;

/// Why a dataset could not be written.
#[derive(Debug, Error)]
pub enum SimError {
    /// The generation parameters are invalid.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// A file or folder could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An image could not be encoded.
    #[error("cannot encode image: {0}")]
    Encode(#[from] image::ImageError),
    /// The dataset specification makes no sense.
    #[error("{0}")]
    Spec(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SimError + '_ {
    move |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How images are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum ImageFormat {
    /// Baseline JPEG at the given quality (1–100).
    Jpeg { quality: u8 },
    /// Lossless PNG.
    Png,
}

impl Default for ImageFormat {
    /// JPEG quality 92: small files, artefacts well below the sensor noise.
    fn default() -> Self {
        ImageFormat::Jpeg { quality: 92 }
    }
}

impl ImageFormat {
    /// File extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg { .. } => "jpg",
            ImageFormat::Png => "png",
        }
    }

    /// MIME type of the encoded bytes.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg { .. } => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }
}

/// Encodes an image in `format`.
pub fn encode_image(image: &RgbImage, format: ImageFormat) -> Result<Vec<u8>, SimError> {
    let mut out = Vec::with_capacity(image.len() / 4);
    match format {
        ImageFormat::Jpeg { quality } => {
            let encoder = JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
            image.write_with_encoder(encoder)?;
        }
        ImageFormat::Png => image.write_to(&mut Cursor::new(&mut out), CodecFormat::Png)?,
    }
    Ok(out)
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    /// Stream seed.
    pub seed: u64,
    /// Number of images (train + val).
    pub count: u64,
    /// Share of images in the validation split; the last indices go there (`1` makes
    /// an evaluation-only set, e.g. a drifted split).
    pub val_fraction: f32,
    /// Scene and drift parameters.
    pub params: SimParams,
    /// Image encoding.
    pub image_format: ImageFormat,
}

impl DatasetSpec {
    /// Number of training images; indices `0..n_train` are train, the rest val.
    pub fn n_train(&self) -> u64 {
        let n_val = (self.count as f64 * self.val_fraction as f64).round() as u64;
        self.count - n_val.min(self.count)
    }

    /// The split of image `index`.
    pub fn split_of(&self, index: u64) -> &'static str {
        if index < self.n_train() {
            "train"
        } else {
            "val"
        }
    }

    /// File stem of image `index`.
    pub fn stem(&self, index: u64) -> String {
        format!("sim_{}_{:06}", self.seed, index)
    }
}

/// Per-split counts recorded in the manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    /// Images in the split.
    pub images: u64,
    /// Images without any box.
    pub clean_images: u64,
    /// Boxes per class id.
    pub boxes_per_class: Vec<u64>,
}

/// Everything needed to know how a dataset was made (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`GENERATOR_VERSION`] of the generator that wrote it.
    pub generator_version: String,
    /// The specification the images were generated from.
    pub spec: DatasetSpec,
    /// Class names by id.
    pub names: Vec<String>,
    /// Counts for the train split.
    pub train: SplitSummary,
    /// Counts for the val split.
    pub val: SplitSummary,
    /// The command line that made it, when known.
    pub command: Option<String>,
}

/// One line of `ground_truth.jsonl`: an image and its true boxes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruthRecord {
    /// Sample index in the stream.
    pub index: u64,
    /// File name of the image (no folder).
    pub filename: String,
    /// `train`, `val`, or `stream`.
    pub split: String,
    /// Product kind shown.
    pub product: String,
    /// True boxes; `bbox` normalised `[x1, y1, x2, y2]`, confidence 1.
    pub detections: Vec<opti_core::Detection>,
    /// The defect kinds, in the order of `detections`.
    pub kinds: Vec<String>,
}

impl GroundTruthRecord {
    /// The record of a generated sample saved under `filename`.
    pub fn from_sample(sample: &Sample, filename: String, split: &str) -> Self {
        let names = ClassNames::default_line();
        let detections = sample
            .labels
            .iter()
            .filter_map(|l: &YoloLabel| l.to_detection(&names))
            .collect();
        Self {
            index: sample.index,
            filename,
            split: split.to_owned(),
            product: sample.product.as_str().to_owned(),
            detections,
            kinds: sample
                .defects
                .iter()
                .map(|d: &DefectRecord| d.kind.clone())
                .collect(),
        }
    }
}

/// Generates the dataset described by `spec` into `out` (created if missing), on all
/// cores, calling `progress` once per finished image. Returns the manifest it wrote.
pub fn write_dataset(
    out: &Path,
    spec: &DatasetSpec,
    command: Option<String>,
    progress: &(dyn Fn() + Sync),
) -> Result<Manifest, SimError> {
    spec.params.validate()?;
    if spec.count == 0 {
        return Err(SimError::Spec("count must be at least 1".into()));
    }
    if !(0.0..=1.0).contains(&spec.val_fraction) {
        return Err(SimError::Spec(format!(
            "val_fraction = {} is outside [0, 1]",
            spec.val_fraction
        )));
    }
    for split in ["train", "val"] {
        for kind in ["images", "labels"] {
            let dir = out.join(kind).join(split);
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
    }
    let out_abs = fs::canonicalize(out).map_err(io_err(out))?;

    let next = AtomicU64::new(0);
    let records: Mutex<Vec<GroundTruthRecord>> =
        Mutex::new(Vec::with_capacity(spec.count as usize));
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let worker = || -> Result<(), SimError> {
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= spec.count {
                return Ok(());
            }
            let sample = generate(spec.seed, index, &spec.params);
            let split = spec.split_of(index);
            let stem = spec.stem(index);
            let filename = format!("{stem}.{}", spec.image_format.extension());
            let image_path = out.join("images").join(split).join(&filename);
            let bytes = encode_image(&sample.image, spec.image_format)?;
            fs::write(&image_path, bytes).map_err(io_err(&image_path))?;
            let label_path = out.join("labels").join(split).join(format!("{stem}.txt"));
            fs::write(&label_path, format_label_file(&sample.labels))
                .map_err(io_err(&label_path))?;
            let record = GroundTruthRecord::from_sample(&sample, filename, split);
            records
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(record);
            progress();
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(SimError::Spec("a generator thread panicked".into())))
            })
            .collect::<Result<Vec<()>, SimError>>()
    })?;

    let mut records = records.into_inner().unwrap_or_else(|e| e.into_inner());
    records.sort_by_key(|r| r.index);
    let names = ClassNames::default_line();
    let mut manifest = Manifest {
        generator_version: GENERATOR_VERSION.to_owned(),
        spec: spec.clone(),
        names: names.0.clone(),
        train: SplitSummary {
            boxes_per_class: vec![0; class::COUNT],
            ..Default::default()
        },
        val: SplitSummary {
            boxes_per_class: vec![0; class::COUNT],
            ..Default::default()
        },
        command,
    };
    let gt_path = out.join("ground_truth.jsonl");
    let file = fs::File::create(&gt_path).map_err(io_err(&gt_path))?;
    let mut gt = BufWriter::new(file);
    for r in &records {
        let summary = if r.split == "train" {
            &mut manifest.train
        } else {
            &mut manifest.val
        };
        summary.images += 1;
        if r.detections.is_empty() {
            summary.clean_images += 1;
        }
        for d in &r.detections {
            if let Some(id) = names.id(&d.class) {
                summary.boxes_per_class[id] += 1;
            }
        }
        let line = serde_json::to_string(r).map_err(|e| SimError::Spec(e.to_string()))?;
        writeln!(gt, "{line}").map_err(io_err(&gt_path))?;
    }
    gt.flush().map_err(io_err(&gt_path))?;

    let yaml_path = out.join("data.yaml");
    fs::write(&yaml_path, data_yaml(&out_abs, &names)).map_err(io_err(&yaml_path))?;
    let manifest_path = out.join("manifest.json");
    let json =
        serde_json::to_string_pretty(&manifest).map_err(|e| SimError::Spec(e.to_string()))?;
    fs::write(&manifest_path, json + "\n").map_err(io_err(&manifest_path))?;
    Ok(manifest)
}

/// The Ultralytics dataset file for a dataset rooted at `root`.
pub fn data_yaml(root: &Path, names: &ClassNames) -> String {
    let mut s = String::new();
    s.push_str("# Generated by opti simulate; see manifest.json for every parameter.\n");
    s.push_str(&format!("path: {}\n", yaml_string(&root.to_string_lossy())));
    s.push_str("train: images/train\nval: images/val\n");
    s.push_str(&format!("nc: {}\nnames:\n", names.len()));
    for (i, n) in names.iter().enumerate() {
        s.push_str(&format!("  {i}: {}\n", yaml_string(n)));
    }
    s
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}
