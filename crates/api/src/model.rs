//! The active model behind the [`Inspector`] port: a tract [`Detector`] that can be
//! swapped while the service runs (promotion, rollback) without a restart. Each result
//! carries the version of the model that produced it.

use std::path::{Path, PathBuf};
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
    /// Whether the graph came from the load-optimised cache (not the ONNX).
    pub from_cache: bool,
    /// Whether this load wrote a fresh load-optimised copy ([`ModelSlot::cache_file`]).
    pub cache_written: bool,
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
    /// Folder of load-optimised model copies (`opti_vision::cache`), one per version.
    cache_dir: Option<PathBuf>,
}

/// Load-optimised copies kept in a cache folder; older ones are removed.
const KEEP_CACHES: usize = 4;

/// A version name for model bytes: `{prefix}-{first 12 hex of SHA-256}`.
pub fn version_for(onnx: &[u8], prefix: &str) -> String {
    format!("{prefix}-{}", &hex::encode(Sha256::digest(onnx))[..12])
}

impl ModelSlot {
    pub fn new() -> Self {
        Self::default()
    }

    /// A slot that keeps a load-optimised copy of each model it loads in `dir` (created
    /// if absent), so that the next start loads it in about half the time. The newest
    /// few copies are kept. A cache problem never fails a load (see `opti_vision::cache`).
    pub fn with_cache_dir(dir: PathBuf) -> Self {
        Self {
            cache_dir: Some(dir),
            ..Self::default()
        }
    }

    /// The same slot running each inference on up to `threads` threads (one team per
    /// loaded model, shared by concurrent inferences; see `DetectorOptions::threads`).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.options.threads = threads;
        self
    }

    /// The file this slot keeps (or would keep) the load-optimised copy of `version` in,
    /// when it has a cache folder.
    pub fn cache_file(&self, version: &str) -> Option<PathBuf> {
        self.cache_dir
            .as_ref()
            .map(|dir| dir.join(format!("{}.nnef-cache", sanitise(version))))
    }

    /// Puts a load-optimised copy of `version` obtained elsewhere (e.g. from object
    /// storage) where the next [`ModelSlot::load`] of that version looks, atomically.
    /// Nothing is checked here: a copy that does not match is a miss at load time.
    pub fn install_cache(&self, version: &str, bytes: &[u8]) -> std::io::Result<()> {
        let (Some(dir), Some(file)) = (&self.cache_dir, self.cache_file(version)) else {
            return Ok(());
        };
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, bytes)?;
        tmp.persist(file).map_err(|e| e.error)?;
        Ok(())
    }

    /// The load-optimised copy of `version` this slot keeps, if any.
    pub fn cached_copy(&self, version: &str) -> Option<Vec<u8>> {
        std::fs::read(self.cache_file(version)?).ok()
    }

    /// Loads ONNX bytes (an Ultralytics export) and makes them the active model.
    pub fn load(&self, version: &str, onnx: &[u8]) -> Result<LoadedModel, anyhow::Error> {
        let active = self.load_detached(version, onnx)?;
        let model = describe(&active);
        self.swap(active);
        Ok(model)
    }

    fn load_detached(&self, version: &str, onnx: &[u8]) -> Result<Arc<Active>, anyhow::Error> {
        let label = PathBuf::from(format!("{version}.onnx"));
        let cache = self.cache_dir.as_ref().and_then(|dir| {
            std::fs::create_dir_all(dir).ok()?;
            // The version names the bytes (a hash prefix); the cache header holds the
            // full SHA-256 and is checked on read.
            self.cache_file(version)
        });
        let detector = Detector::from_onnx_bytes(onnx, &label, self.options, cache.as_deref())?;
        if let (Some(dir), Some(note)) = (&self.cache_dir, &detector.info().cache_note) {
            tracing::info!(version, "model cache in {}: {note}", dir.display());
        }
        if let Some(dir) = &self.cache_dir {
            prune_caches(dir, KEEP_CACHES);
        }
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

    /// The active model, if one is loaded.
    pub fn current_model(&self) -> Option<LoadedModel> {
        self.current().map(|a| describe(&a))
    }

    fn current(&self) -> Option<Arc<Active>> {
        match self.active.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// A version as a file name: anything but `[A-Za-z0-9._-]` becomes `_`.
fn sanitise(version: &str) -> String {
    version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Removes all but the `keep` most recently written `*.nnef-cache` files of `dir`.
fn prune_caches(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut caches: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "nnef-cache"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    caches.sort_by_key(|c| std::cmp::Reverse(c.0));
    for (_, old) in caches.into_iter().skip(keep) {
        let _ = std::fs::remove_file(old);
    }
}

fn describe(active: &Active) -> LoadedModel {
    let info = active.detector.info();
    LoadedModel {
        version: active.version.clone(),
        classes: info.names.clone(),
        imgsz: info.input_width.max(info.input_height),
        from_cache: info.loaded_from == opti_vision::LoadedFrom::Cache,
        cache_written: info.cache_written,
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

#[cfg(test)]
mod tests {
    use super::*;
    use opti_vision::LoadedFrom;

    fn shipped() -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default/model.onnx");
        std::fs::read(path).expect("shipped model")
    }

    #[test]
    fn a_slot_with_a_cache_dir_loads_the_second_time_from_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache_dir = dir.path().join("model-cache");
        let onnx = shipped();
        let version = version_for(&onnx, "default");
        let first = ModelSlot::with_cache_dir(cache_dir.clone());
        let a = first.load_detached(&version, &onnx).expect("load");
        assert_eq!(a.detector.info().loaded_from, LoadedFrom::Onnx);
        assert!(cache_dir.join(format!("{version}.nnef-cache")).is_file());
        // A new slot (a restarted service) reads the cache.
        let second = ModelSlot::with_cache_dir(cache_dir);
        let b = second.load_detached(&version, &onnx).expect("load");
        assert_eq!(
            b.detector.info().loaded_from,
            LoadedFrom::Cache,
            "{:?}",
            b.detector.info().cache_note
        );
        assert_eq!(describe(&a).classes, describe(&b).classes);
    }

    #[test]
    fn only_the_newest_caches_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..6 {
            std::fs::write(dir.path().join(format!("v{i}.nnef-cache")), b"x").expect("write");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::fs::write(dir.path().join("other.txt"), b"x").expect("write");
        prune_caches(dir.path(), 4);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "other.txt",
                "v2.nnef-cache",
                "v3.nnef-cache",
                "v4.nnef-cache",
                "v5.nnef-cache"
            ]
        );
    }

    #[test]
    fn versions_become_safe_file_names() {
        assert_eq!(sanitise("default-0123abcd"), "default-0123abcd");
        assert_eq!(sanitise("../x y"), ".._x_y");
    }
}
