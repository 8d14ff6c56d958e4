//! A SageMaker training job that completed: its `model.tar.gz` (what the trainer
//! container's `opti_trainer.sagemaker` left in `/opt/ml/model`: `model.onnx`,
//! `model.pt`, `result.json`) is unpacked and handed to the same steps as a local
//! training ([`opti_api::learning::finish_trained`]): the candidate is registered with
//! its lineage, both models are scored in Rust on the snapshot's holdout, the gate
//! decides and promotes — or the job is failed with the reason, the active model as it was.

use std::io::Read;
use std::sync::Arc;

use async_trait::async_trait;
use opti_api::learning::snapshot::read_manifest;
use opti_api::learning::trainer::{
    metric_set, ProgressSink, TrainFailure, TrainRequest, TrainedModel, Trainer,
};
use opti_api::learning::{finish_trained, Learning};
use opti_core::ports::RetrainJobStore;
use opti_core::retrain::{JobStatus, RetrainJob};

use crate::retrain::{fail_job, Retrainer};

/// Largest `model.tar.gz` read (a YOLO11n ONNX + `.pt` is about 16 MB).
pub const MAX_ARTIFACT_BYTES: u64 = 512 << 20;

/// The trainer seat of [`Learning`] in AWS mode: training runs as a SageMaker job, never
/// in the function, so this is never asked to train.
pub struct SageMakerTrainer;

#[async_trait]
impl Trainer for SageMakerTrainer {
    async fn train(
        &self,
        _request: TrainRequest,
        _progress: ProgressSink,
    ) -> Result<TrainedModel, TrainFailure> {
        Err(TrainFailure {
            message: "in AWS mode training runs as a SageMaker training job".into(),
            log_tail: Vec::new(),
        })
    }
}

/// What a training job's `model.tar.gz` holds.
#[derive(Debug, Default)]
pub struct Artifacts {
    pub onnx: Vec<u8>,
    pub weights: Vec<u8>,
    pub result: serde_json::Value,
}

/// Unpacks `model.tar.gz`: `model.onnx` and `model.pt` are required, `result.json` kept
/// when present (names may carry a leading `./`).
pub fn unpack(tar_gz: &[u8]) -> Result<Artifacts, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tar_gz));
    let mut out = Artifacts::default();
    let entries = archive
        .entries()
        .map_err(|e| format!("model.tar.gz: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("model.tar.gz: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("model.tar.gz: {e}"))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut bytes = Vec::new();
        match name.as_str() {
            "model.onnx" | "model.pt" | "result.json" => {
                entry
                    .by_ref()
                    .take(MAX_ARTIFACT_BYTES)
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("model.tar.gz: {name}: {e}"))?;
            }
            _ => continue,
        }
        match name.as_str() {
            "model.onnx" => out.onnx = bytes,
            "model.pt" => out.weights = bytes,
            _ => {
                out.result = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("model.tar.gz: result.json: {e}"))?
            }
        }
    }
    if out.onnx.is_empty() || out.weights.is_empty() {
        return Err(
            "model.tar.gz lacks model.onnx or model.pt (is the image the Opti-Quality trainer?)"
                .into(),
        );
    }
    Ok(out)
}

/// Handles a completed training job; returns what was done, for the logs.
pub async fn completed(r: &Retrainer, job: &RetrainJob, artifacts: &str) -> String {
    match register_and_gate(r, job, artifacts).await {
        Ok(done) => match (&done.status, &done.gate) {
            (JobStatus::Succeeded, Some(g)) => format!(
                "candidate {} registered; the gate {}",
                done.candidate_version.as_deref().unwrap_or("?"),
                if g.promote {
                    "promoted it"
                } else {
                    "kept the active model"
                }
            ),
            _ => format!(
                "failed: {}",
                done.error.as_deref().unwrap_or("no reason recorded")
            ),
        },
        Err(message) => {
            fail_job(r, job, &message, "system:retrain").await;
            message
        }
    }
}

async fn register_and_gate(
    r: &Retrainer,
    job: &RetrainJob,
    artifacts: &str,
) -> Result<RetrainJob, String> {
    let prefix = format!("s3://{}/", r.store.bucket());
    let key = artifacts.strip_prefix(&prefix).ok_or_else(|| {
        format!("the training job's artifacts {artifacts:?} are not under {prefix}; the active model was not changed")
    })?;
    let blobs = r.state.ports.blobs.clone();
    let tar_gz = blobs
        .get_blob(key)
        .await
        .map_err(|e| format!("reading the training output {artifacts}: {e}"))?;
    let unpacked = tokio::task::spawn_blocking(move || unpack(&tar_gz))
        .await
        .map_err(|e| format!("unpacking task failed: {e}"))?
        .map_err(|e| format!("{e}; the active model was not changed"))?;
    let snap_id = job.snapshot_id.clone().ok_or("the job has no snapshot")?;
    let snap = read_manifest(blobs.as_ref(), &snap_id)
        .await
        .map_err(|e| e.to_string())?;
    let settings = r
        .settings
        .as_ref()
        .map_err(|why| format!("retraining is not configured: {why}"))?;
    let recipe = serde_json::json!({
        "job": job.id,
        "runner": "sagemaker",
        "snapshot_id": snap_id,
        "image": settings.image,
        "instance_type": settings.instance_type,
        "artifacts": artifacts,
        "versions": unpacked.result.get("versions"),
        "args": unpacked.result.get("args"),
        "train_seconds": unpacked.result.get("train_seconds"),
        "metrics": unpacked.result.get("metrics"),
    });
    let trained = TrainedModel {
        metrics: unpacked.result.get("metrics").and_then(metric_set),
        onnx: unpacked.onnx,
        weights: unpacked.weights,
        recipe,
        replay: 0,
        log_tail: Vec::new(),
    };
    let learning = Arc::new(Learning {
        jobs: Arc::new(r.store.clone()),
        trainer: Arc::new(SageMakerTrainer),
        reference: None,
        options: settings.options.clone(),
    });
    let current = r.store.get_job(&job.id).await.map_err(|e| e.to_string())?;
    Ok(finish_trained(r.state.clone(), learning, current, &snap, trained).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, *bytes).expect("tar");
        }
        tar.into_inner().expect("tar").finish().expect("gzip")
    }

    #[test]
    fn unpack_takes_the_model_files_and_refuses_an_archive_without_them() {
        let ok = tar_gz(&[
            ("./model.onnx", b"onnx"),
            ("model.pt", b"pt"),
            ("result.json", br#"{"metrics": {"recall": 0.5}}"#),
            ("code/other.txt", b"ignored"),
        ]);
        let a = unpack(&ok).expect("unpacked");
        assert_eq!(
            (a.onnx.as_slice(), a.weights.as_slice()),
            (&b"onnx"[..], &b"pt"[..])
        );
        assert_eq!(a.result["metrics"]["recall"], serde_json::json!(0.5));
        let no_pt = tar_gz(&[("model.onnx", b"onnx")]);
        assert!(unpack(&no_pt)
            .unwrap_err()
            .contains("lacks model.onnx or model.pt"));
        assert!(unpack(b"not a gzip").is_err());
        let bad_json = tar_gz(&[
            ("model.onnx", b"o"),
            ("model.pt", b"p"),
            ("result.json", b"{"),
        ]);
        assert!(unpack(&bad_json).unwrap_err().contains("result.json"));
    }
}
