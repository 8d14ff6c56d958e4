//! Replay data for retraining without forgetting: the shipped model's training line
//! (`opti simulate --count 2400 --seed 1 --val-fraction 0.15`, see models/default/model.json)
//! regenerated image by image from the simulator, on demand and cached under the data
//! dir. Its training images are mixed into every fine-tune; part of its val split is the
//! gate's `line:shipped` slice, so a candidate that forgets the original line is refused.

use std::path::PathBuf;
use std::sync::Mutex;

use opti_api::learning::{GateImage, ReferenceSource, ReplaySource};
use opti_core::yolo::format_label_file;
use opti_core::ClassNames;
use opti_sim::{encode_image, generate, DatasetSpec, ImageFormat, SimParams};

/// The shipped line as a lazily generated dataset.
pub struct ShippedLine {
    dir: PathBuf,
    spec: DatasetSpec,
    /// Val images the gate scores both models on.
    reference_images: u64,
    lock: Mutex<()>,
}

impl ShippedLine {
    /// The line of the shipped default model, cached in `dir`.
    pub fn new(dir: PathBuf, reference_images: u64) -> Self {
        Self {
            dir,
            spec: DatasetSpec {
                seed: 1,
                count: 2400,
                val_fraction: 0.15,
                params: SimParams::default(),
                image_format: ImageFormat::default(),
            },
            reference_images,
            lock: Mutex::new(()),
        }
    }

    /// Generates image `index` (image + label file) unless cached; returns the image path.
    fn ensure(&self, index: u64) -> Result<PathBuf, String> {
        let split = self.spec.split_of(index);
        let stem = self.spec.stem(index);
        let image = self
            .dir
            .join("images")
            .join(split)
            .join(format!("{stem}.{}", self.spec.image_format.extension()));
        let label = self
            .dir
            .join("labels")
            .join(split)
            .join(format!("{stem}.txt"));
        if image.is_file() && label.is_file() {
            return Ok(image);
        }
        let sample = generate(self.spec.seed, index, &self.spec.params);
        let bytes = encode_image(&sample.image, self.spec.image_format)
            .map_err(|e| format!("encoding replay image {index}: {e}"))?;
        for path in [&image, &label] {
            if let Some(d) = path.parent() {
                std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            }
        }
        // Label first, image last: an image on disk always has its label.
        std::fs::write(&label, format_label_file(&sample.labels))
            .map_err(|e| format!("{}: {e}", label.display()))?;
        std::fs::write(&image, bytes).map_err(|e| format!("{}: {e}", image.display()))?;
        Ok(image)
    }
}

impl ReplaySource for ShippedLine {
    fn train_images(&self, n: usize) -> Result<Vec<PathBuf>, String> {
        let _one_writer = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let n = (n as u64).min(self.spec.n_train());
        // The stream is independent per index, so the first n are a random sample.
        (0..n).map(|i| self.ensure(i)).collect()
    }
}

impl ReferenceSource for ShippedLine {
    fn images(&self) -> Result<Vec<GateImage>, String> {
        let _one_writer = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let names = ClassNames::default_line();
        let first = self.spec.n_train();
        let last = (first + self.reference_images).min(self.spec.count);
        let mut images = Vec::new();
        for index in first..last {
            let path = self.ensure(index)?;
            let label_path = path
                .parent()
                .and_then(|p| p.parent())
                .and_then(|p| p.parent())
                .map(|root| {
                    root.join("labels")
                        .join("val")
                        .join(format!("{}.txt", self.spec.stem(index)))
                })
                .ok_or("replay layout")?;
            let text = std::fs::read_to_string(&label_path)
                .map_err(|e| format!("{}: {e}", label_path.display()))?;
            let truth = opti_core::yolo::parse_label_file(&text)
                .map_err(|e| format!("{}: {e}", label_path.display()))?
                .iter()
                .filter_map(|l| l.to_detection(&names))
                .collect();
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            images.push(GateImage {
                bytes,
                truth,
                slices: vec!["line:shipped".into()],
                overall: false,
            });
        }
        Ok(images)
    }
}
