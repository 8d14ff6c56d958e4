//! The active-learning loop: reviewed inspections → dataset snapshot → fine-tune (the
//! [`Trainer`]) → candidate registered with its lineage → both models scored in Rust on
//! the frozen holdout → the gate decides → promoted (hot swap) or rejected. Every step
//! is recorded on the job (`GET /retrain/{job}`) and audited; a failure anywhere leaves
//! the active model as it was.
//!
//! One job runs at a time (the job store refuses a second). A job starts from
//! `POST /retrain` or by itself once `retrain_min` new reviews have arrived since the
//! last job started ([`maybe_auto_retrain`]). A service restart marks a job that was
//! running as failed ([`recover_interrupted_jobs`]).

pub mod evaluate;
pub mod snapshot;
pub mod trainer;

use std::sync::Arc;

use opti_core::gate::{decide, GateDecision};
use opti_core::ports::{RetrainJobStore, StoreError};
use opti_core::retrain::{JobStatus, RetrainJob};
use opti_core::snapshot::{Split, SplitShares};
use opti_core::types::{AuditAction, AuditEvent, ModelRecord, ModelStatus, Status};
use time::OffsetDateTime;

use crate::error::{ApiError, ApiResult};
use crate::AppState;
pub use evaluate::GateImage;
pub use trainer::{
    ReplaySource, SubprocessTrainer, TrainFailure, TrainRequest, Trainer, FINE_TUNE_RECIPE,
};

/// Knobs of a retraining.
#[derive(Debug, Clone)]
pub struct LearningOptions {
    pub epochs: u32,
    pub imgsz: u32,
    pub batch: u32,
    /// Share of trainable items in the trainer's val split.
    pub val_share: f64,
}

impl Default for LearningOptions {
    fn default() -> Self {
        Self {
            epochs: 10,
            imgsz: 320,
            batch: 16,
            val_share: 0.2,
        }
    }
}

/// Labelled images of earlier lines that the gate also scores both models on, each
/// under its slice (`line:shipped`), so a candidate that forgets is refused.
pub trait ReferenceSource: Send + Sync {
    /// Blocking (may generate them).
    fn images(&self) -> Result<Vec<GateImage>, String>;
}

/// Everything retraining needs, wired by the door (`opti serve`).
pub struct Learning {
    pub jobs: Arc<dyn RetrainJobStore>,
    pub trainer: Arc<dyn Trainer>,
    pub reference: Option<Arc<dyn ReferenceSource>>,
    pub options: LearningOptions,
}

/// The actor of what the loop does by itself.
pub const SYSTEM_ACTOR: &str = "system:learning-loop";

fn learning(state: &AppState) -> ApiResult<Arc<Learning>> {
    state
        .learning
        .clone()
        .ok_or_else(|| ApiError::Unavailable("retraining is not configured on this service".into()))
}

fn job_id(now: OffsetDateTime) -> String {
    let mut rand = [0u8; 3];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut rand);
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap_or_default();
    format!("job-{stamp}-{}", hex::encode(rand))
}

/// An audit event of `job` (entity `retrain/{id}`).
pub fn job_event(
    state: &AppState,
    actor: &str,
    action: AuditAction,
    job: &RetrainJob,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> AuditEvent {
    state.audit_event(actor, action, &format!("retrain/{}", job.id), before, after)
}

/// The fields of a job the audit trail shows.
pub fn job_view(job: &RetrainJob) -> serde_json::Value {
    serde_json::json!({
        "status": job.status,
        "phase": job.phase,
        "trigger": job.trigger,
        "snapshot_id": job.snapshot_id,
        "parent_version": job.parent_version,
        "candidate_version": job.candidate_version,
        "promoted": job.promoted,
        "error": job.error,
    })
}

/// Reviewed inspections in the store now.
/// Reviewed inspections in the store.
pub async fn reviewed_count(state: &AppState) -> ApiResult<u64> {
    let counts = state.ports.inspections.count_by_status().await?;
    Ok(counts.get(&Status::Reviewed).copied().unwrap_or(0))
}

/// Reviews that arrived since `last` job started (all of them without one), and the
/// configured `retrain_min`: the automatic trigger fires when the first reaches the
/// second.
pub async fn new_reviews_since(
    state: &AppState,
    last: Option<&RetrainJob>,
) -> ApiResult<(u64, u32)> {
    let config = state.ports.config.get_config().await?.value;
    let since = last.map_or(0, |j| j.reviewed_count);
    let new = reviewed_count(state).await?.saturating_sub(since);
    Ok((new, config.retrain_min))
}

/// Starts a job (in the background) and returns it as started. `Conflict` with the
/// running job if one runs.
pub async fn dispatch(state: &AppState, actor: &str, trigger: &str) -> ApiResult<RetrainJob> {
    let learning = learning(state)?;
    let reviewed = reviewed_count(state).await?;
    if reviewed == 0 {
        return Err(ApiError::Conflict {
            message: "nothing to train on yet: review some inspections first".into(),
            current: None,
        });
    }
    let now = state.now();
    let job = RetrainJob::started(
        job_id(now),
        "snapshot",
        trigger,
        actor,
        now,
        reviewed,
        state.ports.models.active_model().await?,
        learning.options.epochs,
    );
    let event = job_event(
        state,
        actor,
        AuditAction::RetrainStarted,
        &job,
        None,
        Some(job_view(&job)),
    );
    match learning.jobs.create_job(&job, &event).await {
        Ok(()) => {}
        Err(StoreError::Conflict { current, .. }) => {
            return Err(ApiError::Conflict {
                message: "a retraining job is already running; one runs at a time".into(),
                current: Some(*current),
            })
        }
        Err(e) => return Err(e.into()),
    }
    tokio::spawn(run_job(state.clone(), learning, job.clone()));
    Ok(job)
}

/// Starts a job by itself when `retrain_min` reviews have arrived since the last job
/// started (or since the beginning) and none runs. Returns the job it started.
pub async fn maybe_auto_retrain(state: &AppState) -> ApiResult<Option<RetrainJob>> {
    let Some(learning) = state.learning.clone() else {
        return Ok(None);
    };
    let last = learning.jobs.list_jobs(1).await?;
    if last.first().is_some_and(|j| j.status == JobStatus::Running) {
        return Ok(None);
    }
    let (new, min) = new_reviews_since(state, last.first()).await?;
    if new < u64::from(min) {
        return Ok(None);
    }
    match dispatch(state, "system:auto-retrain", "auto").await {
        Ok(job) => Ok(Some(job)),
        // Someone else started one meanwhile: fine.
        Err(ApiError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Marks every job still `running` as failed: at start-up no job can be running, so
/// such a job was cut off by a stop or crash. Returns how many were marked.
pub async fn recover_interrupted_jobs(state: &AppState) -> ApiResult<usize> {
    let Some(learning) = state.learning.clone() else {
        return Ok(0);
    };
    let mut marked = 0;
    for job in learning.jobs.list_jobs(opti_core::ports::MAX_PAGE).await? {
        if job.status != JobStatus::Running {
            continue;
        }
        let next = job.failed(
            format!(
                "interrupted: the service stopped during the `{}` phase; the active model was not changed",
                job.phase
            ),
            state.now(),
        );
        let event = job_event(
            state,
            "system:restart",
            AuditAction::RetrainFailed,
            &next,
            Some(job_view(&job)),
            Some(job_view(&next)),
        );
        learning
            .jobs
            .update_job(&next, job.version, Some(&event))
            .await?;
        marked += 1;
    }
    Ok(marked)
}

/// The job record as the runner keeps it, saved after each step.
struct Tracker {
    state: AppState,
    learning: Arc<Learning>,
    job: RetrainJob,
}

impl Tracker {
    async fn save(
        &mut self,
        change: impl FnOnce(&mut RetrainJob),
        event: Option<(AuditAction, serde_json::Value)>,
    ) -> Result<(), String> {
        let before = self.job.clone();
        let mut next = self.job.clone();
        change(&mut next);
        next.updated_at = self.state.now();
        let event = event.map(|(action, after)| {
            job_event(
                &self.state,
                SYSTEM_ACTOR,
                action,
                &next,
                Some(job_view(&before)),
                Some(after),
            )
        });
        self.job = self
            .learning
            .jobs
            .update_job(&next, before.version, event.as_ref())
            .await
            .map_err(|e| format!("saving the job: {e}"))?;
        Ok(())
    }
}

/// A failure of a job step: the message and the log tail to keep.
struct StepFailure {
    message: String,
    log_tail: Vec<String>,
}

impl<E: std::fmt::Display> From<E> for StepFailure {
    fn from(e: E) -> Self {
        StepFailure {
            message: e.to_string(),
            log_tail: Vec::new(),
        }
    }
}

/// Runs a dispatched job to its end and records the outcome.
pub async fn run_job(state: AppState, learning: Arc<Learning>, job: RetrainJob) {
    let mut tracker = Tracker {
        state,
        learning,
        job,
    };
    let result = execute(&mut tracker).await;
    record_failure(&mut tracker, result).await;
}

/// The steps after a training that ran elsewhere (a SageMaker training job): register
/// the candidate with its lineage, score it and the active model on the snapshot's
/// holdout, let the gate decide, promote. A failure is recorded on the job (which then
/// leaves the active model as it was). Returns the job as recorded.
pub async fn finish_trained(
    state: AppState,
    learning: Arc<Learning>,
    job: RetrainJob,
    snap: &snapshot::SnapshotManifest,
    trained: trainer::TrainedModel,
) -> RetrainJob {
    let mut tracker = Tracker {
        state,
        learning,
        job,
    };
    let result = after_training(&mut tracker, snap, trained).await;
    record_failure(&mut tracker, result).await;
    tracker.job
}

/// Records a failed step on the job (status, error, log tail, audit).
async fn record_failure(tracker: &mut Tracker, result: Result<(), StepFailure>) {
    if let Err(failure) = result {
        tracing::warn!(job = %tracker.job.id, error = %failure.message, "retraining failed");
        let message = failure.message.clone();
        let tail = failure.log_tail;
        let now = tracker.state.now();
        let result = tracker
            .save(
                |j| {
                    j.status = JobStatus::Failed;
                    j.error = Some(message);
                    if !tail.is_empty() {
                        j.log_tail = tail;
                    }
                    j.finished_at = Some(now);
                },
                Some((
                    AuditAction::RetrainFailed,
                    serde_json::json!({"status": "failed", "error": failure.message}),
                )),
            )
            .await;
        if let Err(e) = result {
            tracing::error!(job = %tracker.job.id, error = %e, "could not record the failed job");
        }
    }
}

async fn execute(t: &mut Tracker) -> Result<(), StepFailure> {
    let state = t.state.clone();
    let learning = t.learning.clone();
    let ports = &state.ports;
    let config = ports.config.get_config().await?.value;
    let classes = state.inspector.class_names();

    // 1. Snapshot, keeping the previous snapshot's holdout frozen.
    let previous_id = learning
        .jobs
        .list_jobs(opti_core::ports::MAX_PAGE)
        .await?
        .into_iter()
        .filter(|j| j.id != t.job.id)
        .find_map(|j| j.snapshot_id);
    let previous = match &previous_id {
        Some(id) => Some(snapshot::read_manifest(ports.blobs.as_ref(), id).await?),
        None => None,
    };
    let reviewed = snapshot::reviewed_inspections(ports.inspections.as_ref()).await?;
    let shares = SplitShares {
        holdout: f64::from(config.holdout_share),
        val: learning.options.val_share,
    };
    let snap = snapshot::write_snapshot(
        ports.blobs.as_ref(),
        &reviewed,
        &classes,
        previous.as_ref(),
        shares,
        state.now(),
    )
    .await?;
    let counts = snap.counts.clone();
    let snap_id = snap.id.clone();
    t.save(
        |j| {
            j.phase = "train".into();
            j.snapshot_id = Some(snap_id);
            j.snapshot = Some(counts);
        },
        None,
    )
    .await?;
    if snap.counts.train == 0 {
        return Err("the snapshot has no training items: review more inspections first".into());
    }
    if snap.counts.holdout == 0 {
        return Err(
            "the snapshot has no holdout items to judge a candidate on: review more inspections first"
                .into(),
        );
    }

    // 2. Train from the parent's weights.
    let parent = t
        .job
        .parent_version
        .clone()
        .ok_or("no active model to fine-tune")?;
    // The parent must be registered (its record is read again after training).
    ports.models.get_model(&parent).await?;
    let parent_weights_key = weights_key(&parent);
    let parent_weights = ports.blobs.get_blob(&parent_weights_key).await.map_err(|e| {
        format!(
            "the active model {parent} has no training weights ({parent_weights_key}: {e}); fine-tuning needs them"
        )
    })?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let request = TrainRequest {
        job_id: t.job.id.clone(),
        snapshot: snap.clone(),
        blobs: ports.blobs.clone(),
        parent_weights,
        epochs: learning.options.epochs,
        imgsz: learning.options.imgsz,
        batch: learning.options.batch,
    };
    let trainer = learning.trainer.clone();
    let train = tokio::spawn(async move { trainer.train(request, tx).await });
    // Epoch reports are saved as they come; the channel closes when training ends.
    while let Some(p) = rx.recv().await {
        t.save(|j| j.progress.push(p), None).await?;
    }
    let trained = train
        .await
        .map_err(|e| format!("training task failed: {e}"))?
        .map_err(|f: TrainFailure| StepFailure {
            message: f.message,
            log_tail: f.log_tail,
        })?;
    let replay = trained.replay;
    let tail = trained.log_tail.clone();
    t.save(
        |j| {
            j.phase = "evaluate".into();
            if let Some(s) = j.snapshot.as_mut() {
                s.replay = replay;
            }
            j.log_tail = tail;
        },
        None,
    )
    .await?;

    after_training(t, &snap, trained).await
}

/// Steps 3–6: register the candidate, score both models on the holdout, gate, promote.
async fn after_training(
    t: &mut Tracker,
    snap: &snapshot::SnapshotManifest,
    trained: trainer::TrainedModel,
) -> Result<(), StepFailure> {
    let state = t.state.clone();
    let learning = t.learning.clone();
    let ports = &state.ports;
    let config = ports.config.get_config().await?.value;
    let parent = t
        .job
        .parent_version
        .clone()
        .ok_or("no active model to fine-tune")?;
    let parent_record = ports.models.get_model(&parent).await?;

    // 3. Register the candidate with its lineage.
    let version = crate::model::version_for(&trained.onnx, "ft");
    let artifact_key = format!("models/{version}/model.onnx");
    ports
        .blobs
        .put_blob(&artifact_key, &trained.onnx, "application/octet-stream")
        .await?;
    ports
        .blobs
        .put_blob(
            &weights_key(&version),
            &trained.weights,
            "application/octet-stream",
        )
        .await?;
    let candidate = ModelRecord {
        version: version.clone(),
        parent: Some(parent.clone()),
        snapshot_id: Some(snap.id.clone()),
        status: ModelStatus::Candidate,
        artifact_key,
        classes: snap.classes.clone(),
        imgsz: learning.options.imgsz,
        trainer_metrics: trained.metrics,
        measured_metrics: None,
        trainer: trained.recipe.clone(),
        created_at: state.now(),
        record_version: 1,
    };
    ports.models.register_model(&candidate).await?;
    state
        .audit(
            SYSTEM_ACTOR,
            AuditAction::ModelRegistered,
            &format!("model/{version}"),
            None,
            Some(serde_json::json!({
                "version": version, "parent": parent, "snapshot_id": snap.id,
                "job": t.job.id, "trainer_metrics": trained.metrics,
            })),
        )
        .await
        .map_err(|e| e.to_string())?;
    let cand_version = version.clone();
    t.save(|j| j.candidate_version = Some(cand_version), None)
        .await?;

    // 4. Score the candidate and the active model on the same holdout.
    let mut images = Vec::new();
    for entry in snap.split(Split::Holdout) {
        let bytes = ports
            .blobs
            .get_blob(&format!("{}{}", snap.prefix(), entry.image))
            .await?;
        images.push(GateImage {
            bytes,
            truth: entry.truth.clone(),
            slices: vec![format!("camera:{}", entry.camera_id)],
            overall: true,
        });
    }
    if let Some(reference) = learning.reference.clone() {
        let extra = tokio::task::spawn_blocking(move || reference.images())
            .await
            .map_err(|e| format!("reference task failed: {e}"))?
            .map_err(|e| format!("reference images: {e}"))?;
        images.extend(extra);
    }
    let active_version = ports
        .models
        .active_model()
        .await?
        .unwrap_or_else(|| parent.clone());
    let active_record = if active_version == parent {
        parent_record
    } else {
        ports.models.get_model(&active_version).await?
    };
    let active_onnx = ports.blobs.get_blob(&active_record.artifact_key).await?;
    let candidate_onnx = trained.onnx.clone();
    let images = Arc::new(images);
    let (active_scores, candidate_scores) = tokio::task::spawn_blocking(move || {
        let a = evaluate::score(&active_onnx, &images)?;
        let c = evaluate::score(&candidate_onnx, &images)?;
        Ok::<_, String>((a, c))
    })
    .await
    .map_err(|e| format!("evaluation task failed: {e}"))?
    .map_err(|e| format!("evaluating on the holdout: {e}"))?;

    // 5. The gate.
    let decision: GateDecision = decide(
        &candidate_scores,
        &active_scores,
        // f32 → f64 keeps the binary error (0.019999…); the operator typed 0.02.
        (f64::from(config.gate_tolerance) * 1e6).round() / 1e6,
    );
    let mut record = ports.models.get_model(&version).await?;
    let expected = record.record_version;
    record.measured_metrics = Some(candidate_scores.overall);
    if !decision.promote {
        record.status = ModelStatus::Rejected;
    }
    record.record_version += 1;
    ports.models.update_model(&record, expected).await?;
    let decided = decision.clone();
    let active_for_event = active_version.clone();
    t.save(
        |j| {
            j.phase = "gate".into();
            j.gate = Some(decided);
        },
        Some((
            AuditAction::GateDecided,
            serde_json::json!({
                "candidate": version, "active": active_for_event,
                "promote": decision.promote, "reasons": decision.reasons,
                "tolerance": decision.tolerance,
                "candidate_scores": decision.candidate, "active_scores": decision.active,
            }),
        )),
    )
    .await?;

    // 6. Promote (hot swap) if the gate says so.
    let promoted = if decision.promote {
        crate::routes::admin::activate(&state, &version, SYSTEM_ACTOR, AuditAction::ModelPromoted)
            .await
            .map_err(|e| format!("promoting {version}: {e}"))?;
        true
    } else {
        false
    };
    let now = state.now();
    t.save(
        |j| {
            j.status = JobStatus::Succeeded;
            j.phase = "done".into();
            j.promoted = promoted;
            j.finished_at = Some(now);
        },
        Some((
            AuditAction::RetrainFinished,
            serde_json::json!({"status": "succeeded", "candidate": version, "promoted": promoted}),
        )),
    )
    .await?;
    Ok(())
}

/// Blob key of a model version's training weights (`.pt`), used to fine-tune from it.
pub fn weights_key(version: &str) -> String {
    format!("models/{version}/model.pt")
}
