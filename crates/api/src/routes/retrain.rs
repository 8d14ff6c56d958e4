//! Retraining routes: dispatch a job, follow one, list them (admin).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use opti_core::retrain::RetrainJob;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Start a retraining job: snapshot the reviewed items, fine-tune the active model,
/// score candidate and active model on the holdout, and let the gate decide. Returns
/// at once (202) with the job; follow it with `GET /retrain/{job}`.
#[utoipa::path(post, path = "/retrain", tag = "admin",
    responses((status = 202, body = RetrainJob), (status = 401), (status = 403),
        (status = 409, description = "A job is already running (the body's `current` is that job), or nothing is reviewed yet"),
        (status = 503, description = "Retraining is not configured on this service")),
    security(("bearer" = [])))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<RetrainJob>)> {
    caller.require(&[], "start retraining")?;
    let job = crate::learning::dispatch(&state, &caller.actor(), "manual").await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// A job: phase, progress per epoch (losses, val metrics), snapshot, candidate, gate
/// decision with both score sets, and on failure the error and the log tail.
#[utoipa::path(get, path = "/retrain/{job}", tag = "admin",
    params(("job" = String, Path, description = "job id")),
    responses((status = 200, body = RetrainJob), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(job): Path<String>,
) -> ApiResult<Json<RetrainJob>> {
    caller.require(&[], "follow retraining")?;
    let learning = state
        .learning
        .clone()
        .ok_or_else(|| ApiError::NotFound(format!("retrain job {job} not found")))?;
    Ok(Json(learning.jobs.get_job(&job).await?))
}

/// Query of `GET /retrain`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct JobListParams {
    /// At most this many jobs (1..=100, default 20).
    pub limit: Option<u32>,
}

impl JobListParams {
    /// The query's limit, checked (`GET /retrain` locally and in the retrain function).
    pub fn checked_limit(
        params: Result<Query<Self>, axum::extract::rejection::QueryRejection>,
    ) -> ApiResult<u32> {
        let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let limit = p.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::BadRequest("limit must be in 1..=100".into()));
        }
        Ok(limit)
    }
}

/// Jobs, newest first.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobList {
    pub items: Vec<RetrainJob>,
    /// Whether this service can retrain at all.
    pub enabled: bool,
}

/// Recent retraining jobs, newest first.
#[utoipa::path(get, path = "/retrain", tag = "admin", params(JobListParams),
    responses((status = 200, body = JobList), (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<JobListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<JobList>> {
    caller.require(&[], "list retraining jobs")?;
    let limit = JobListParams::checked_limit(params)?;
    let Some(learning) = state.learning.clone() else {
        return Ok(Json(JobList {
            items: Vec::new(),
            enabled: false,
        }));
    };
    Ok(Json(JobList {
        items: learning.jobs.list_jobs(limit).await?,
        enabled: true,
    }))
}
