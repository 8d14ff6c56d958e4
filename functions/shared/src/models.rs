//! The active model of a function container: loaded once from the registry (the ONNX
//! artifact in S3), and reloaded only when the registry's active pointer has moved
//! since (one DynamoDB read per invocation to check).
//!
//! Cold starts load faster from a load-optimised copy of the model (`opti_vision::cache`,
//! tract NNEF of the decluttered graph, keyed by the ONNX's SHA-256 and tract's version):
//! the first container to load a version from its ONNX puts that copy next to the
//! artifact in S3 (`{artifact}.nnef-cache`), and later cold starts fetch it into `/tmp`
//! before loading. A missing, stale or damaged copy only means an ONNX load.

use std::sync::Arc;

use opti_api::model::{ensure_active_model, ModelSlot};
use opti_api::Ports;
use tokio::sync::Mutex;

/// Environment variable naming an S3 key with ONNX bytes to register and activate when
/// the registry has no active model yet (first deployment). Its model card is read from
/// the same key with `.json` instead of `.onnx`, if present.
pub const SEED_MODEL_ENV: &str = "OPTI_SEED_MODEL_KEY";

/// A model slot for a function container, keeping load-optimised copies in the
/// container's temporary folder (Lambda's `/tmp`, which lives as long as the container).
pub fn container_slot() -> ModelSlot {
    ModelSlot::with_cache_dir(std::env::temp_dir().join("opti-model-cache"))
}

/// The S3 key of the load-optimised copy of the model whose ONNX is at `artifact_key`.
pub fn cache_blob_key(artifact_key: &str) -> String {
    format!("{artifact_key}.nnef-cache")
}

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

    /// Puts the load-optimised copy of `version` from S3 where the slot looks for it, if
    /// S3 has one and the slot keeps copies. Any failure just leaves the ONNX load.
    async fn fetch_cache(&self, ports: &Ports, version: &str, key: &str) {
        if self.slot.cache_file(version).is_none() {
            return;
        }
        let bytes = match ports.blobs.get_blob(key).await {
            Ok(bytes) => bytes,
            Err(opti_core::ports::StoreError::NotFound { .. }) => {
                tracing::info!(version, key, "no load-optimised model copy in S3 yet");
                return;
            }
            Err(e) => {
                tracing::warn!(
                    version,
                    key,
                    "cannot read the load-optimised model copy: {e}"
                );
                return;
            }
        };
        let (slot, v) = (self.slot.clone(), version.to_owned());
        let installed = tokio::task::spawn_blocking(move || slot.install_cache(&v, &bytes))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = installed {
            tracing::warn!(version, "cannot keep the fetched model copy: {e}");
        }
    }

    /// Puts the load-optimised copy the slot just wrote for `version` into S3 for the
    /// next cold starts (best effort: a failure is logged).
    async fn share_cache(&self, ports: &Ports, version: &str, key: &str) {
        let (slot, v) = (self.slot.clone(), version.to_owned());
        let Ok(Some(bytes)) = tokio::task::spawn_blocking(move || slot.cached_copy(&v)).await
        else {
            return;
        };
        match ports
            .blobs
            .put_blob(key, &bytes, "application/octet-stream")
            .await
        {
            Ok(()) => tracing::info!(version, key, "shared the load-optimised model copy"),
            Err(e) => tracing::warn!(
                version,
                key,
                "cannot share the load-optimised model copy: {e}"
            ),
        }
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
                let cache_key = cache_blob_key(&record.artifact_key);
                self.fetch_cache(ports, &version, &cache_key).await;
                let slot = self.slot.clone();
                let v = version.clone();
                let started = std::time::Instant::now();
                let model = tokio::task::spawn_blocking(move || slot.load(&v, &bytes))
                    .await
                    .map_err(|e| ModelError::Load(e.into()))?
                    .map_err(ModelError::Load)?;
                tracing::info!(
                    version,
                    from_cache = model.from_cache,
                    ms = started.elapsed().as_millis() as u64,
                    "loaded the active model"
                );
                if model.cache_written {
                    self.share_cache(ports, &version, &cache_key).await;
                }
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
                let wrote = self.slot.current_model().is_some_and(|m| m.cache_written);
                if let (true, Ok(record)) = (wrote, ports.models.get_model(&version).await) {
                    let cache_key = cache_blob_key(&record.artifact_key);
                    self.share_cache(ports, &version, &cache_key).await;
                }
                *loaded = Some(version.clone());
                Ok(version)
            }
        }
    }
}
