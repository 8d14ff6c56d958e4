//! The active model of a function container: loaded once from the registry (the ONNX
//! artifact in S3), and reloaded only when the registry's active pointer has moved
//! since (one DynamoDB read per invocation to check).

use std::sync::Arc;

use opti_api::model::{ensure_active_model, ModelSlot};
use opti_api::Ports;
use tokio::sync::Mutex;

/// Environment variable naming an S3 key with ONNX bytes to register and activate when
/// the registry has no active model yet (first deployment). Its model card is read from
/// the same key with `.json` instead of `.onnx`, if present.
pub const SEED_MODEL_ENV: &str = "OPTI_SEED_MODEL_KEY";

/// Why no model could be made ready.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The registry points nowhere and no seed model is configured.
    #[error("the model registry has no active model (set {SEED_MODEL_ENV} to seed one)")]
    NoActiveModel,
    /// Reading the registry or the artifact, or loading it, failed.
    #[error("loading the active model: {0:#}")]
    Load(anyhow::Error),
}

/// The model slot of one container and the version it holds.
pub struct ActiveModel {
    slot: Arc<ModelSlot>,
    loaded: Mutex<Option<String>>,
    seed_key: Option<String>,
}

impl ActiveModel {
    /// An empty slot; `seed_key` as [`SEED_MODEL_ENV`].
    pub fn new(slot: Arc<ModelSlot>, seed_key: Option<String>) -> Self {
        ActiveModel {
            slot,
            loaded: Mutex::new(None),
            seed_key: seed_key.filter(|k| !k.is_empty()),
        }
    }

    /// The slot the service's inspector reads.
    pub fn slot(&self) -> Arc<ModelSlot> {
        self.slot.clone()
    }

    /// The version loaded, if any.
    pub async fn loaded_version(&self) -> Option<String> {
        self.loaded.lock().await.clone()
    }

    /// Makes the slot hold the registry's active model: a no-op while the pointer is
    /// where it was at the last load, a reload when it moved. Returns the version.
    pub async fn ensure_current(&self, ports: &Ports) -> Result<String, ModelError> {
        let mut loaded = self.loaded.lock().await;
        let active = ports
            .models
            .active_model()
            .await
            .map_err(|e| ModelError::Load(e.into()))?;
        match active {
            Some(version) if loaded.as_deref() == Some(version.as_str()) => Ok(version),
            Some(version) => {
                let record = ports
                    .models
                    .get_model(&version)
                    .await
                    .map_err(|e| ModelError::Load(e.into()))?;
                let bytes = ports
                    .blobs
                    .get_blob(&record.artifact_key)
                    .await
                    .map_err(|e| ModelError::Load(e.into()))?;
                let slot = self.slot.clone();
                let v = version.clone();
                tokio::task::spawn_blocking(move || slot.load(&v, &bytes))
                    .await
                    .map_err(|e| ModelError::Load(e.into()))?
                    .map_err(ModelError::Load)?;
                tracing::info!(version, "loaded the active model");
                *loaded = Some(version.clone());
                Ok(version)
            }
            None => {
                let key = self.seed_key.clone().ok_or(ModelError::NoActiveModel)?;
                let onnx = ports
                    .blobs
                    .get_blob(&key)
                    .await
                    .map_err(|e| ModelError::Load(e.into()))?;
                let card_key = key.strip_suffix(".onnx").map(|stem| format!("{stem}.json"));
                let card = match card_key {
                    Some(k) => match ports.blobs.get_blob(&k).await {
                        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
                        Err(_) => serde_json::Value::Null,
                    },
                    None => serde_json::Value::Null,
                };
                let version = ensure_active_model(ports, &self.slot, move || Ok((onnx, card)))
                    .await
                    .map_err(ModelError::Load)?;
                tracing::info!(version, seed = key, "seeded the registry with a model");
                *loaded = Some(version.clone());
                Ok(version)
            }
        }
    }
}
