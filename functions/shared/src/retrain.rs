//! The retrain function: `POST /retrain` (admin) and an EventBridge schedule that starts
//! a retraining by itself once `retrain_min` new reviews exist, both writing the same
//! content-hash dataset snapshot as local mode (`opti_api::learning::snapshot`, through
//! the blob port: an S3 prefix here) and starting a SageMaker training job with the
//! trainer container.
//!
//! - One job at a time: the store's retrain lock item (`RetrainJobStore::create_job`).
//! - Idempotent per snapshot: the job id *is* the SageMaker training job name, derived
//!   from the snapshot id (`opti-snap-…`), so a second dispatch of the same snapshot
//!   finds the job record (409 naming it) and never reaches SageMaker; a training job
//!   of that name that exists already is adopted rather than created again. A dispatch
//!   cut off between the job record and `CreateTrainingJob` leaves a running record
//!   without a training job, which the schedule fails after [`DISPATCH_GRACE`].
//! - The schedule (and the EventBridge rule on the training job's state change) also
//!   reconciles the running job with SageMaker ([`reconcile`]): a
//!   training job that failed or stopped, or one that never started, fails the job
//!   record (releasing the lock) with SageMaker's reason; a completed one is handed to
//!   [`crate::completion`].

use std::collections::HashMap;

use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, Channel, DataSource, OutputDataConfig, ResourceConfig, S3DataSource,
    S3DataType, StoppingCondition, Tag, TrainingInputMode, TrainingInstanceType,
};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use opti_api::learning::snapshot::{read_manifest, reviewed_inspections, write_snapshot};
use opti_api::learning::{job_event, job_view, new_reviews_since, reviewed_count, LearningOptions};
use opti_api::routes::retrain::{JobList, JobListParams};
use opti_api::{ApiError, ApiResult, AppState, Caller};
use opti_core::ports::{RetrainJobStore, StoreError};
use opti_core::retrain::{JobStatus, RetrainJob};
use opti_core::snapshot::SplitShares;
use opti_core::{AuditAction, ClassNames};
use opti_store::AwsStore;

/// ECR image URI of the trainer container (template parameter `TrainerImageUri`).
pub const TRAINER_IMAGE_ENV: &str = "OPTI_TRAINER_IMAGE";
/// ARN of the SageMaker execution role the training job runs as.
pub const TRAINING_ROLE_ENV: &str = "OPTI_TRAINING_ROLE_ARN";
/// SageMaker instance type of a training job (default `ml.g4dn.xlarge`).
pub const INSTANCE_TYPE_ENV: &str = "OPTI_TRAINING_INSTANCE_TYPE";
/// Longest a training job may run, in seconds (default 3 hours).
pub const MAX_SECONDS_ENV: &str = "OPTI_TRAINING_MAX_SECONDS";

/// Blob prefix the training jobs write their output under (`training/{job}/output/…`).
pub const OUTPUT_PREFIX: &str = "training/";
/// A job record that has no SageMaker training job this long after it was created was
/// cut off between the two writes: the schedule fails it.
pub const DISPATCH_GRACE: time::Duration = time::Duration::minutes(15);

/// How the training jobs are started (from the environment, see the `*_ENV` constants).
#[derive(Debug, Clone)]
pub struct TrainingSettings {
    pub image: String,
    pub role_arn: String,
    pub instance_type: String,
    pub max_seconds: i32,
    /// `OPTI_SEED_MODEL_KEY`: the seeded root model's weights are the same key with `.pt`.
    pub seed_model_key: Option<String>,
    pub options: LearningOptions,
}

impl TrainingSettings {
    /// From the environment; `Err` names what is missing or malformed.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let image = var(TRAINER_IMAGE_ENV).ok_or_else(|| {
            format!("{TRAINER_IMAGE_ENV} (the trainer container image) is not set")
        })?;
        let role_arn = var(TRAINING_ROLE_ENV).ok_or_else(|| {
            format!("{TRAINING_ROLE_ENV} (the SageMaker execution role) is not set")
        })?;
        let max_seconds = match var(MAX_SECONDS_ENV) {
            Some(v) => v
                .parse::<i32>()
                .ok()
                .filter(|s| (600..=432_000).contains(s))
                .ok_or_else(|| {
                    format!("{MAX_SECONDS_ENV} must be 600..=432000 seconds, got {v:?}")
                })?,
            None => 3 * 3600,
        };
        Ok(TrainingSettings {
            image,
            role_arn,
            instance_type: var(INSTANCE_TYPE_ENV).unwrap_or_else(|| "ml.g4dn.xlarge".into()),
            max_seconds,
            seed_model_key: var(crate::models::SEED_MODEL_ENV),
            options: LearningOptions::default(),
        })
    }
}

/// What the retrain function holds per container.
#[derive(Clone)]
pub struct Retrainer {
    pub state: AppState,
    pub store: AwsStore,
    pub sagemaker: aws_sdk_sagemaker::Client,
    /// `Err`: why retraining is not configured (dispatch answers 503 with it).
    pub settings: Result<TrainingSettings, String>,
}

impl Retrainer {
    /// From the store's SDK configuration and the environment.
    pub fn new(state: AppState, store: AwsStore, sdk: &aws_config::SdkConfig) -> Self {
        Retrainer {
            state,
            store,
            sagemaker: aws_sdk_sagemaker::Client::new(sdk),
            settings: TrainingSettings::from_env(),
        }
    }

    fn settings(&self) -> ApiResult<&TrainingSettings> {
        self.settings
            .as_ref()
            .map_err(|why| ApiError::Unavailable(format!("retraining is not configured: {why}")))
    }

    fn s3_uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.store.bucket())
    }
}

/// The SageMaker training job name (and job id) of a snapshot: `opti-snap-0123…`.
pub fn training_job_name(snapshot_id: &str) -> String {
    format!("opti-{snapshot_id}")
}

fn conflict(message: impl Into<String>, current: Option<&RetrainJob>) -> ApiError {
    ApiError::Conflict {
        message: message.into(),
        current: current.map(opti_api::json_value),
    }
}

fn upstream(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("{what}: {e}"))
}

/// The weights a job fine-tunes: the parent's `models/{v}/model.pt`, or for the seeded
/// root model (no parent) the seed key with `.pt`. `None` when neither is stored.
async fn parent_weights_key(
    r: &Retrainer,
    parent: &str,
    settings: &TrainingSettings,
) -> ApiResult<Option<String>> {
    let own = opti_api::learning::weights_key(parent);
    if r.state.ports.blobs.blob_size(&own).await?.is_some() {
        return Ok(Some(own));
    }
    let record = r.state.ports.models.get_model(parent).await?;
    if record.parent.is_none() {
        if let Some(seed) = settings
            .seed_model_key
            .as_deref()
            .and_then(|k| k.strip_suffix(".onnx"))
            .map(|stem| format!("{stem}.pt"))
        {
            if r.state.ports.blobs.blob_size(&seed).await?.is_some() {
                return Ok(Some(seed));
            }
        }
    }
    Ok(None)
}

/// Dispatches a retraining: snapshot the reviewed items into `snapshots/{id}/`, take the
/// retrain lock with a job named after the snapshot, start the SageMaker training job.
/// Answers 409 when nothing can be trained, a job runs, or this snapshot was already
/// dispatched; 503 when retraining is not configured or SageMaker refuses.
pub async fn dispatch(r: &Retrainer, actor: &str, trigger: &str) -> ApiResult<RetrainJob> {
    let settings = r.settings()?.clone();
    let state = &r.state;
    let reviewed = reviewed_count(state).await?;
    if reviewed == 0 {
        return Err(conflict(
            "nothing to train on yet: review some inspections first",
            None,
        ));
    }
    // Cheap check first; the lock below is what really keeps one job at a time.
    let jobs = r.store.list_jobs(opti_core::ports::MAX_PAGE).await?;
    if let Some(running) = jobs.iter().find(|j| j.status == JobStatus::Running) {
        return Err(conflict(
            "a retraining job is already running; one runs at a time",
            Some(running),
        ));
    }
    let parent = state.ports.models.active_model().await?.ok_or_else(|| {
        conflict(
            "no active model to fine-tune: the upload function seeds one on its first image",
            None,
        )
    })?;
    let parent_record = state.ports.models.get_model(&parent).await?;
    let Some(weights) = parent_weights_key(r, &parent, &settings).await? else {
        return Err(conflict(
            format!(
                "the active model {parent} has no training weights to fine-tune: store them at {} \
                 (or, for the seeded model, next to the seed ONNX as .pt)",
                opti_api::learning::weights_key(&parent)
            ),
            None,
        ));
    };

    // 1. The snapshot, keeping the latest snapshot's holdout frozen.
    let previous = match jobs.iter().find_map(|j| j.snapshot_id.clone()) {
        Some(id) => Some(
            read_manifest(state.ports.blobs.as_ref(), &id)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        ),
        None => None,
    };
    let config = state.ports.config.get_config().await?.value;
    let items = reviewed_inspections(state.ports.inspections.as_ref()).await?;
    let classes = ClassNames(parent_record.classes.clone());
    let shares = SplitShares {
        holdout: f64::from(config.holdout_share),
        val: settings.options.val_share,
    };
    let snap = write_snapshot(
        state.ports.blobs.as_ref(),
        &items,
        &classes,
        previous.as_ref(),
        shares,
        state.now(),
    )
    .await
    .map_err(|e| match e {
        opti_api::learning::snapshot::SnapshotError::Store(s) => ApiError::from(s),
        other => ApiError::BadRequest(other.to_string()),
    })?;
    if snap.counts.train == 0 || snap.counts.holdout == 0 {
        return Err(conflict(
            format!(
                "nothing to train: snapshot {} has {} training and {} holdout items; review more inspections first",
                snap.id, snap.counts.train, snap.counts.holdout
            ),
            None,
        ));
    }

    // 2. The job record, named after the snapshot, under the lock.
    let name = training_job_name(&snap.id);
    if let Ok(existing) = r.store.get_job(&name).await {
        return Err(conflict(
            format!(
                "snapshot {} was already dispatched as job {name}; review more inspections for a new snapshot",
                snap.id
            ),
            Some(&existing),
        ));
    }
    let job = RetrainJob {
        snapshot_id: Some(snap.id.clone()),
        snapshot: Some(snap.counts.clone()),
        ..RetrainJob::started(
            name.clone(),
            "train",
            trigger,
            actor,
            state.now(),
            reviewed,
            Some(parent.clone()),
            settings.options.epochs,
        )
    };
    let event = job_event(
        state,
        actor,
        AuditAction::RetrainStarted,
        &job,
        None,
        Some(job_view(&job)),
    );
    match r.store.create_job(&job, &event).await {
        Ok(()) => {}
        Err(StoreError::Conflict { current, .. }) => {
            let current: Option<RetrainJob> = serde_json::from_value(*current).ok();
            let message = if current.as_ref().is_some_and(|c| c.id == name) {
                format!("snapshot {} was already dispatched as job {name}", snap.id)
            } else {
                "a retraining job is already running; one runs at a time".to_string()
            };
            return Err(conflict(message, current.as_ref()));
        }
        Err(e) => return Err(e.into()),
    }

    // 3. The SageMaker training job (adopted if it already exists).
    if let Err(e) = start_training_job(r, &settings, &job, &snap.prefix(), &weights).await {
        let message = format!("starting the SageMaker training job failed: {e}");
        fail_job(r, &job, &message, "system:retrain").await;
        return Err(e);
    }
    tracing::info!(job = %name, snapshot = %snap.id, "training job started");
    Ok(job)
}

/// `CreateTrainingJob` unless a training job of that name exists already.
async fn start_training_job(
    r: &Retrainer,
    settings: &TrainingSettings,
    job: &RetrainJob,
    snapshot_prefix: &str,
    weights_key: &str,
) -> ApiResult<()> {
    if describe(r, &job.id).await?.is_some() {
        tracing::info!(job = %job.id, "the training job exists already: adopted");
        return Ok(());
    }
    let channel = |name: &str, uri: String| {
        let source = S3DataSource::builder()
            .s3_data_type(S3DataType::S3Prefix)
            .s3_uri(uri)
            .build();
        Channel::builder()
            .channel_name(name)
            .data_source(DataSource::builder().s3_data_source(source).build())
            .build()
    };
    let hyper: HashMap<String, String> = [
        ("epochs", job.epochs.to_string()),
        ("imgsz", settings.options.imgsz.to_string()),
        ("batch", settings.options.batch.to_string()),
        ("snapshot_id", job.snapshot_id.clone().unwrap_or_default()),
        (
            "parent_version",
            job.parent_version.clone().unwrap_or_default(),
        ),
        // The same fine-tune recipe as a local training (space-separated KEY=VALUE).
        (
            "ultralytics",
            opti_api::learning::FINE_TUNE_RECIPE.join(" "),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let result = r
        .sagemaker
        .create_training_job()
        .training_job_name(&job.id)
        .role_arn(&settings.role_arn)
        .algorithm_specification(
            AlgorithmSpecification::builder()
                .training_image(&settings.image)
                .training_input_mode(TrainingInputMode::File)
                .build(),
        )
        .input_data_config(channel("snapshot", r.s3_uri(snapshot_prefix)))
        .input_data_config(channel("weights", r.s3_uri(weights_key)))
        .output_data_config(
            OutputDataConfig::builder()
                .s3_output_path(r.s3_uri(OUTPUT_PREFIX))
                .build(),
        )
        .resource_config(
            ResourceConfig::builder()
                .instance_type(TrainingInstanceType::from(settings.instance_type.as_str()))
                .instance_count(1)
                .volume_size_in_gb(30)
                .build(),
        )
        .stopping_condition(
            StoppingCondition::builder()
                .max_runtime_in_seconds(settings.max_seconds)
                .build(),
        )
        .set_hyper_parameters(Some(hyper))
        .tags(tag("opti:job", &job.id))
        .tags(tag("opti:trigger", &job.trigger))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // Created meanwhile by a retried dispatch of the same snapshot: the same job.
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use()) => Ok(()),
        Err(e) => Err(upstream(
            "SageMaker CreateTrainingJob",
            aws_sdk_sagemaker::error::DisplayErrorContext(e),
        )),
    }
}

/// A training job as SageMaker describes it; `None` when there is none of that name.
pub async fn describe(
    r: &Retrainer,
    name: &str,
) -> ApiResult<Option<aws_sdk_sagemaker::operation::describe_training_job::DescribeTrainingJobOutput>>
{
    match r
        .sagemaker
        .describe_training_job()
        .training_job_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out)),
        Err(e) => {
            // SageMaker answers a missing job with a ValidationException (or
            // ResourceNotFound) whose message says it could not be found.
            let missing = e.as_service_error().is_some_and(|s| {
                s.is_resource_not_found()
                    || aws_sdk_sagemaker::error::ProvideErrorMetadata::message(s)
                        .is_some_and(|m| m.contains("not find") || m.contains("not found"))
            });
            if missing {
                Ok(None)
            } else {
                Err(upstream(
                    "SageMaker DescribeTrainingJob",
                    aws_sdk_sagemaker::error::DisplayErrorContext(e),
                ))
            }
        }
    }
}

/// Marks `job` failed with `message` (releasing the lock); logged, never fatal.
pub async fn fail_job(r: &Retrainer, job: &RetrainJob, message: &str, actor: &str) {
    let current = match r.store.get_job(&job.id).await {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(job = %job.id, error = %e, "could not read the job to fail it");
            return;
        }
    };
    if current.status != JobStatus::Running {
        return;
    }
    let next = current.failed(message.to_string(), r.state.now());
    let event = job_event(
        &r.state,
        actor,
        AuditAction::RetrainFailed,
        &next,
        Some(job_view(&current)),
        Some(job_view(&next)),
    );
    if let Err(e) = r
        .store
        .update_job(&next, current.version, Some(&event))
        .await
    {
        tracing::error!(job = %job.id, error = %e, "could not record the failed job");
    }
}

/// What one scheduled run did.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduledRun {
    /// A job runs; its training job is in this SageMaker state.
    Running { job: String, sagemaker: String },
    /// The running job's training job ended without a model; the job was failed.
    Failed { job: String, reason: String },
    /// The running job's training job completed; what the completion step did.
    Completed { job: String, outcome: String },
    /// Fewer than `retrain_min` new reviews since the last job.
    NotEnoughReviews { new: u64, min: u32 },
    /// A job was started.
    Dispatched { job: String },
    /// The new reviews make the same snapshot as an earlier job (nothing new to learn),
    /// or nothing is trainable yet: nothing started.
    NothingToTrain { reason: String },
}

/// The schedule: reconcile the running job with SageMaker, else start a job once
/// `retrain_min` new reviews exist since the last one started.
pub async fn scheduled(r: &Retrainer) -> ApiResult<ScheduledRun> {
    let jobs = r.store.list_jobs(1).await?;
    if let Some(job) = jobs.first().filter(|j| j.status == JobStatus::Running) {
        return reconcile(r, job).await;
    }
    let (new, min) = new_reviews_since(&r.state, jobs.first()).await?;
    if new < u64::from(min) {
        return Ok(ScheduledRun::NotEnoughReviews { new, min });
    }
    match dispatch(r, "system:auto-retrain", "auto").await {
        Ok(job) => Ok(ScheduledRun::Dispatched { job: job.id }),
        Err(ApiError::Conflict { message, .. }) => {
            Ok(ScheduledRun::NothingToTrain { reason: message })
        }
        Err(e) => Err(e),
    }
}

/// Brings a running job in line with its SageMaker training job.
pub async fn reconcile(r: &Retrainer, job: &RetrainJob) -> ApiResult<ScheduledRun> {
    let Some(described) = describe(r, &job.id).await? else {
        if r.state.now() - job.created_at > DISPATCH_GRACE {
            let reason = "no SageMaker training job was ever started for this job (the dispatch was cut off); the active model was not changed".to_string();
            fail_job(r, job, &reason, "system:retrain").await;
            return Ok(ScheduledRun::Failed {
                job: job.id.clone(),
                reason,
            });
        }
        return Ok(ScheduledRun::Running {
            job: job.id.clone(),
            sagemaker: "NotYetVisible".into(),
        });
    };
    let status = described
        .training_job_status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    match status.as_str() {
        "Failed" | "Stopped" => {
            let reason = format!(
                "the SageMaker training job {}: {}; the active model was not changed",
                status.to_lowercase(),
                described.failure_reason().unwrap_or("no reason given")
            );
            fail_job(r, job, &reason, "system:retrain").await;
            Ok(ScheduledRun::Failed {
                job: job.id.clone(),
                reason,
            })
        }
        "Completed" => {
            let artifacts = described
                .model_artifacts()
                .and_then(|a| a.s3_model_artifacts())
                .unwrap_or_default()
                .to_string();
            let outcome = crate::completion::completed(r, job, &artifacts).await;
            Ok(ScheduledRun::Completed {
                job: job.id.clone(),
                outcome,
            })
        }
        other => Ok(ScheduledRun::Running {
            job: job.id.clone(),
            sagemaker: other.to_string(),
        }),
    }
}

/// `POST /retrain`: 202 with the job (phase `train`, its id the training job's name).
async fn start(
    Extension(r): Extension<Retrainer>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<RetrainJob>)> {
    caller.require(&[], "start retraining")?;
    let job = dispatch(&r, &caller.actor(), "manual").await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// `GET /retrain/{job}`.
async fn get_job(
    Extension(r): Extension<Retrainer>,
    caller: Caller,
    Path(job): Path<String>,
) -> ApiResult<Json<RetrainJob>> {
    caller.require(&[], "follow retraining")?;
    Ok(Json(r.store.get_job(&job).await?))
}

/// `GET /retrain`.
async fn list(
    Extension(r): Extension<Retrainer>,
    caller: Caller,
    params: Result<Query<JobListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<JobList>> {
    caller.require(&[], "list retraining jobs")?;
    let limit = JobListParams::checked_limit(params)?;
    Ok(Json(JobList {
        items: r.store.list_jobs(limit).await?,
        enabled: r.settings.is_ok(),
    }))
}

/// The retrain function's routes (`/retrain`, `/retrain/{job}`) with the Cognito caller
/// layer, ready for `lambda_http::run`. Same paths and bodies as the service's own.
pub fn app(r: Retrainer) -> Router {
    Router::new()
        .route("/retrain", post(start).get(list))
        .route("/retrain/{job}", get(get_job))
        .fallback(|| async { ApiError::NotFound("no such route on the retrain function".into()) })
        .with_state(r.state.clone())
        .layer(axum::Extension(r))
        .layer(axum::middleware::from_fn(crate::cognito::cognito_caller))
}
