//! What reviewers and quality engineers read: health, drift, and the dashboard's stats.

use std::collections::{BTreeMap, HashSet};

use axum::extract::{Query, State};
use axum::Json;
use opti_core::drift::{DriftRecord, DriftReport};
use opti_core::ports::{DriftQuery, InspectionOrder, InspectionQuery, MAX_PAGE};
use opti_core::types::{Decision, Inspection, Role, Status};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Liveness and the model in use; open to everyone.
#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "`{\"status\":\"ok\",\"model_version\":…}`")))]
pub async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "model_version": state.inspector.model_version(),
    }))
}

/// Up to `n` inspections matching `query` (all pages), skipping rejected files.
async fn collect(
    state: &AppState,
    mut query: InspectionQuery,
    n: usize,
) -> ApiResult<Vec<Inspection>> {
    let mut out = Vec::with_capacity(n.min(10_000));
    query.limit = MAX_PAGE;
    loop {
        let page = state.ports.inspections.list_inspections(&query).await?;
        out.extend(
            page.items
                .into_iter()
                .filter(|i| i.status != Status::Rejected),
        );
        if out.len() >= n {
            out.truncate(n);
            break;
        }
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    Ok(out)
}

/// Query of `GET /drift/`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DriftParams {
    /// Only this camera/line.
    pub camera_id: Option<String>,
}

/// Drift now: every signal (decision confidence, image statistics, override and audit
/// miss rates, class mix) for the whole line and each recently active camera, or for one
/// camera with `camera_id` (see docs/drift.md).
#[utoipa::path(get, path = "/drift/", tag = "insights", params(DriftParams),
    responses((status = 200, body = DriftReport, description = "`{drift_detected, drift_score, recent_avg, baseline_avg, …, signals}`"),
        (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn drift(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<DriftParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<DriftReport>> {
    caller.require(&[Role::Reviewer], "read drift analytics")?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let camera = p.camera_id.filter(|c| !c.is_empty());
    let eval = crate::drift::evaluate_now(&state, camera.as_deref()).await?;
    Ok(Json(eval.report))
}

/// Query of `GET /drift/history`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DriftHistoryParams {
    /// Page size, 1..=500 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of stored drift evaluations, newest first.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DriftHistoryPage {
    pub items: Vec<DriftRecord>,
    pub next_cursor: Option<String>,
}

/// The stored drift evaluations (the scheduled ones), newest first: each is a report
/// plus `id`, `evaluated_at`, `window_key` and the alarm `episodes` after it.
#[utoipa::path(get, path = "/drift/history", tag = "insights", params(DriftHistoryParams),
    responses((status = 200, body = DriftHistoryPage), (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn drift_history(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<DriftHistoryParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<DriftHistoryPage>> {
    caller.require(&[Role::Reviewer], "read drift history")?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = p.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit must be in 1..={MAX_PAGE}"
        )));
    }
    let page = state
        .ports
        .drift
        .list_drift_records(&DriftQuery {
            limit,
            cursor: p.cursor.filter(|c| !c.is_empty()),
        })
        .await?;
    Ok(Json(DriftHistoryPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Runs the scheduled drift evaluation now (admin): stores a record unless the data is
/// unchanged since the latest one; `raised` lists the alarm episodes it opened.
#[utoipa::path(post, path = "/drift/evaluate", tag = "insights",
    responses((status = 200, description = "`{\"recorded\": bool, \"id\", \"raised\": [...], \"open\": [...]}`"),
        (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn drift_evaluate(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&[], "run a drift evaluation")?;
    use crate::drift::EvaluationOutcome as O;
    Ok(Json(
        match crate::drift::evaluate_and_record(&state).await? {
            O::Recorded(r) => json!({
                "recorded": true,
                "id": r.id,
                "raised": r.episodes.raised,
                "open": r.episodes.open,
                "cleared": r.episodes.cleared,
            }),
            O::Unchanged { latest } => {
                json!({"recorded": false, "id": latest.id, "reason": "no new data since the latest evaluation"})
            }
            O::AlreadyRecorded { id } => {
                json!({"recorded": false, "id": id, "reason": "this window was already evaluated"})
            }
        },
    ))
}

/// Counts and rates for the dashboard.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Stats {
    /// Inspections in each status (all time).
    pub counts: BTreeMap<String, u64>,
    pub total: u64,
    /// Items waiting for a reviewer (pending + claimed).
    pub queue_size: u64,
    /// Share of judged inspections (window) that needed no human: auto-validated and not
    /// drawn as an audit sample.
    pub automation_rate: Option<f64>,
    /// Share of reviewed items (window) where the expert changed the verdict or classes.
    pub override_rate: Option<f64>,
    /// Share of reviewed audit samples where the expert disagreed with the automation.
    pub audit_miss_rate: Option<f64>,
    /// Share of judged inspections (window) the model called defective.
    pub defect_rate: Option<f64>,
    /// Share of judged inspections (window) with at least one box of each class.
    pub defect_rate_by_class: BTreeMap<String, f64>,
    /// Inspections per hour over the last 24 hours, oldest first (reviews counted for
    /// inspections created in those 24 hours).
    pub throughput: Vec<HourCount>,
    /// How many of the newest inspections the rates are computed over.
    pub window: usize,
    pub model_version: String,
}

/// Inspections started in one hour.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HourCount {
    #[serde(with = "time::serde::rfc3339")]
    pub hour: OffsetDateTime,
    pub inspections: u64,
    pub reviewed: u64,
}

/// How many of the newest inspections the dashboard's rates look at.
const STATS_WINDOW: usize = 2000;

/// Most inspections of the last 24 hours read for the throughput chart.
const THROUGHPUT_CAP: usize = 20_000;

fn share(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Counts and rates for the dashboard.
#[utoipa::path(get, path = "/stats", tag = "insights",
    responses((status = 200, body = Stats), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn stats(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Stats>> {
    caller.require(&[Role::Reviewer], "read stats")?;
    crate::routes::inspections::release_expired_claims(&state).await?;
    let config = state.ports.config.get_config().await?.value;
    let counts = state.ports.inspections.count_by_status().await?;
    let get = |s: Status| counts.get(&s).copied().unwrap_or(0);
    let recent = collect(
        &state,
        InspectionQuery {
            order: InspectionOrder::Newest,
            ..InspectionQuery::default()
        },
        STATS_WINDOW,
    )
    .await?;
    let automated = recent
        .iter()
        .filter(|i| i.status == Status::AutoValidated && !i.audit_sample)
        .count();
    let reviewed: Vec<&Inspection> = recent.iter().filter(|i| i.review.is_some()).collect();
    let overridden = reviewed
        .iter()
        .filter(|i| i.overridden() == Some(true))
        .count();
    let audits: Vec<&&Inspection> = reviewed.iter().filter(|i| i.audit_sample).collect();
    let audit_missed = audits
        .iter()
        .filter(|i| i.overridden() == Some(true))
        .count();
    let defective = recent
        .iter()
        .filter(|i| i.decision == Some(Decision::Defective))
        .count();
    let mut by_class: BTreeMap<String, usize> = state
        .inspector
        .class_names()
        .iter()
        .map(|c| (c.to_string(), 0))
        .collect();
    for i in &recent {
        // Only boxes that count as found defects (not sub-cut evidence).
        let classes: HashSet<&str> = i
            .detections
            .iter()
            .filter(|d| d.confidence >= config.decision_cut)
            .map(|d| d.class.as_str())
            .collect();
        for c in classes {
            *by_class.entry(c.to_string()).or_default() += 1;
        }
    }
    let now = state.now();
    let day = collect(
        &state,
        InspectionQuery {
            order: InspectionOrder::Newest,
            created_from: Some(now - Duration::hours(24)),
            ..InspectionQuery::default()
        },
        THROUGHPUT_CAP,
    )
    .await?;
    let this_hour = now
        .replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(now);
    let throughput = (0..24)
        .rev()
        .map(|h| {
            let start = this_hour - Duration::hours(h);
            let end = start + Duration::hours(1);
            let in_hour = |t: OffsetDateTime| t >= start && t < end;
            HourCount {
                hour: start,
                inspections: day.iter().filter(|i| in_hour(i.created_at)).count() as u64,
                reviewed: day
                    .iter()
                    .filter(|i| i.review.as_ref().is_some_and(|r| in_hour(r.reviewed_at)))
                    .count() as u64,
            }
        })
        .collect();
    Ok(Json(Stats {
        counts: Status::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), get(*s)))
            .collect(),
        total: counts.values().sum(),
        queue_size: get(Status::PendingReview) + get(Status::Claimed),
        automation_rate: share(automated, recent.len()),
        override_rate: share(overridden, reviewed.len()),
        audit_miss_rate: share(audit_missed, audits.len()),
        defect_rate: share(defective, recent.len()),
        defect_rate_by_class: by_class
            .into_iter()
            .filter_map(|(c, n)| share(n, recent.len()).map(|r| (c, r)))
            .collect(),
        throughput,
        window: recent.len(),
        model_version: state.inspector.model_version(),
    }))
}
