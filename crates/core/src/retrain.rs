//! Retraining jobs: the record the service keeps while a fine-tune runs (phase, progress
//! per epoch, outcome), which `GET /retrain/{job}` shows and the UI follows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::gate::GateDecision;
use crate::types::MetricSet;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Building the snapshot, training, evaluating or gating. At most one job runs.
    Running,
    /// Finished: a candidate was registered and the gate decided.
    Succeeded,
    /// Stopped by an error (or a restart); the active model was left as it was.
    Failed,
}

impl JobStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }
}

/// One epoch as the trainer reported it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EpochProgress {
    pub epoch: u32,
    pub epochs: u32,
    /// Training losses (`box_loss`, `cls_loss`, `dfl_loss`).
    #[serde(default)]
    pub losses: BTreeMap<String, f64>,
    /// The trainer's val-split metrics after this epoch, if it reported them.
    #[serde(default)]
    pub metrics: Option<MetricSet>,
    /// Seconds since the trainer started.
    #[serde(default)]
    pub elapsed_s: f64,
}

/// Sizes of a dataset snapshot and of the replay mixed into training.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotCounts {
    pub train: usize,
    pub val: usize,
    pub holdout: usize,
    /// Reviewed items left out (a `defective` verdict without any box cannot be labelled).
    pub skipped: usize,
    /// Replayed images of earlier training data added to the training set.
    #[serde(default)]
    pub replay: usize,
}

/// A retraining job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetrainJob {
    pub id: String,
    pub status: JobStatus,
    /// `snapshot`, `train`, `evaluate`, `gate`, `done`.
    pub phase: String,
    /// `manual` (an admin's POST /retrain) or `auto` (enough new reviews).
    pub trigger: String,
    /// Audit actor who started it.
    pub requested_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub finished_at: Option<OffsetDateTime>,
    /// Reviewed inspections in the store when the job started (the auto trigger counts
    /// new reviews from here).
    pub reviewed_count: u64,
    /// The model fine-tuned from (active when the job started).
    pub parent_version: Option<String>,
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub snapshot: Option<SnapshotCounts>,
    /// Epochs asked of the trainer.
    pub epochs: u32,
    /// One entry per finished epoch.
    #[serde(default)]
    pub progress: Vec<EpochProgress>,
    /// The registered candidate, once trained.
    pub candidate_version: Option<String>,
    /// The gate's decision with both score sets.
    #[serde(default)]
    pub gate: Option<GateDecision>,
    /// Whether the candidate became the active model.
    #[serde(default)]
    pub promoted: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// The last lines of the trainer's log (on failure, and for the curious).
    #[serde(default)]
    pub log_tail: Vec<String>,
    /// Optimistic-locking version of this record.
    pub version: u64,
}

impl RetrainJob {
    /// A job that starts now: running in `phase`, nothing produced yet, record version 1.
    #[allow(clippy::too_many_arguments)]
    pub fn started(
        id: String,
        phase: &str,
        trigger: &str,
        requested_by: &str,
        now: OffsetDateTime,
        reviewed_count: u64,
        parent_version: Option<String>,
        epochs: u32,
    ) -> Self {
        RetrainJob {
            id,
            status: JobStatus::Running,
            phase: phase.into(),
            trigger: trigger.into(),
            requested_by: requested_by.into(),
            created_at: now,
            updated_at: now,
            finished_at: None,
            reviewed_count,
            parent_version,
            snapshot_id: None,
            snapshot: None,
            epochs,
            progress: Vec::new(),
            candidate_version: None,
            gate: None,
            promoted: false,
            error: None,
            log_tail: Vec::new(),
            version: 1,
        }
    }

    /// This job as failed at `now` with `error` (to store with the current `version`).
    pub fn failed(&self, error: String, now: OffsetDateTime) -> Self {
        RetrainJob {
            status: JobStatus::Failed,
            error: Some(error),
            finished_at: Some(now),
            updated_at: now,
            ..self.clone()
        }
    }
}
