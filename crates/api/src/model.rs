//! The active model behind the [`Inspector`] port: a tract [`Detector`] that can be
//! swapped while the service runs (promotion, rollback) without a restart. Each result
//! carries the version of the model that produced it.

use std::sync::{Arc, RwLock};

use opti_core::ClassNames;
use opti_vision::{Detector, DetectorOptions, VisionError};
use sha2::{Digest, Sha256};

use crate::ingest::{InspectFailure, Inspected, Inspector, PreparedModel};

/// What a freshly loaded model says about itself.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    pub version: String,
    pub classes: ClassNames,
    pub imgsz: u32,
}

struct Active {
    version: String,
    detector: Detector,
}

/// Holds the active detector; readers never wait for a load (the swap is a pointer).
#[derive(Default)]
pub struct ModelSlot {
    active: RwLock<Option<Arc<Active>>>,
    options: DetectorOptions,
}

/// A version name for model bytes: `{prefix}-{first 12 hex of SHA-256}`.
pub fn version_for(onnx: &[u8], prefix: &str) -> String {
    format!("{prefix}-{}", &hex::encode(Sha256::digest(onnx))[..12])
}

impl ModelSlot {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads ONNX bytes (an Ultralytics export) and makes them the active model.
    pub fn load(&self, version: &str, onnx: &[u8]) -> Result<LoadedModel, anyhow::Error> {
        let active = self.load_detached(version, onnx)?;
        let model = describe(&active);
        self.swap(active);
        Ok(model)
    }

    fn load_detached(&self, version: &str, onnx: &[u8]) -> Result<Arc<Active>, anyhow::Error> {
        use std::io::Write;
        // tract reads models from files: a private temp file (exclusive create, owner
        // only) keeps the blob store's bytes the single source of truth.
        let mut file = tempfile::Builder::new()
            .prefix("opti-model-")
            .suffix(".onnx")
            .tempfile()?;
        file.write_all(onnx)?;
        file.flush()?;
        let detector = Detector::load(file.path(), self.options)?;
        Ok(Arc::new(Active {
            version: version.to_string(),
            detector,
        }))
    }

    fn swap(&self, next: Arc<Active>) {
        match self.active.write() {
            Ok(mut guard) => *guard = Some(next),
            Err(poisoned) => *poisoned.into_inner() = Some(next),
        }
    }

    fn current(&self) -> Option<Arc<Active>> {
        match self.active.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn describe(active: &Active) -> LoadedModel {
    let info = active.detector.info();
    LoadedModel {
        version: active.version.clone(),
        classes: info.names.clone(),
        imgsz: info.input_width.max(info.input_height),
    }
}

impl Inspector for ModelSlot {
    fn inspect(&self, bytes: &[u8]) -> Result<Inspected, InspectFailure> {
        let active = self
            .current()
            .ok_or_else(|| InspectFailure::Model("no model is loaded".into()))?;
        match active.detector.inspect_bytes(bytes) {
            Ok(analysis) => Ok(Inspected {
                output: analysis.output,
                stats: analysis.stats,
                model_version: active.version.clone(),
            }),
            Err(VisionError::Decode(e)) => Err(InspectFailure::BadImage(e.to_string())),
            Err(e) => Err(InspectFailure::Model(e.to_string())),
        }
    }

    fn class_names(&self) -> ClassNames {
        self.current()
            .map(|a| a.detector.info().names.clone())
            .unwrap_or_else(|| ClassNames(Vec::new()))
    }

    fn model_version(&self) -> String {
        self.current()
            .map(|a| a.version.clone())
            .unwrap_or_default()
    }

    fn prepare(&self, version: &str, onnx: &[u8]) -> Result<PreparedModel, InspectFailure> {
        self.load_detached(version, onnx)
            .map(|a| PreparedModel(Box::new(a)))
            .map_err(|e| InspectFailure::Model(format!("{e:#}")))
    }

    fn install(&self, prepared: PreparedModel) {
        if let Ok(active) = prepared.0.downcast::<Arc<Active>>() {
            self.swap(*active);
        }
    }
}

/// Makes sure a model is active and loaded into `slot`: the registry's active model if
/// there is one, else the shipped model from `shipped()` (ONNX bytes and its model card),
/// registered and activated. Returns the active version.
pub async fn ensure_active_model(
    ports: &crate::Ports,
    slot: &ModelSlot,
    shipped: impl FnOnce() -> anyhow::Result<(Vec<u8>, serde_json::Value)>,
) -> anyhow::Result<String> {
    use anyhow::Context;
    use opti_core::types::{ModelRecord, ModelStatus};

    if let Some(active) = ports.models.active_model().await? {
        let record = ports.models.get_model(&active).await?;
        let bytes = ports.blobs.get_blob(&record.artifact_key).await?;
        slot.load(&record.version, &bytes)
            .with_context(|| format!("loading active model {active}"))?;
        return Ok(active);
    }
    let (bytes, card) = shipped()?;
    let version = version_for(&bytes, "default");
    let loaded = slot.load(&version, &bytes)?;
    let trainer_metrics = card
        .get("metrics")
        .and_then(|m| m.get("val").or(Some(m)))
        .and_then(|m| serde_json::from_value(m.clone()).ok());
    let artifact_key = format!("models/{version}/model.onnx");
    ports
        .blobs
        .put_blob(&artifact_key, &bytes, "application/octet-stream")
        .await?;
    let record = ModelRecord {
        version: version.clone(),
        parent: None,
        snapshot_id: None,
        status: ModelStatus::Active,
        artifact_key,
        classes: loaded.classes.0.clone(),
        imgsz: loaded.imgsz,
        trainer_metrics,
        measured_metrics: None,
        trainer: card,
        created_at: time::OffsetDateTime::now_utc(),
        record_version: 1,
    };
    match ports.models.register_model(&record).await {
        Ok(()) | Err(opti_core::error::StoreError::AlreadyExists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    ports.models.set_active_model(&version, None).await?;
    Ok(version)
}
