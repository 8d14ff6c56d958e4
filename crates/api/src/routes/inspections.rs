//! The review queue: list, read, claim, release and review inspections. Every transition
//! goes through the core state machine and an update-if-version, and is audited.

use axum::extract::{Path, Query, State};
use axum::Json;
use opti_core::ports::{InspectionOrder, InspectionQuery};
use opti_core::review;
use opti_core::types::{AuditAction, Detection, Inspection, Review, Role, Status, Verdict};
use serde::{Deserialize, Serialize};
use time::Duration;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::upload::json_error;
use crate::AppState;

/// An inspection as the API returns it: the record plus a time-limited image URL.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InspectionView {
    #[serde(flatten)]
    pub inspection: Inspection,
    pub image_url: String,
    /// Whether the reviewer changed the model's verdict or classes (reviewed items).
    pub overridden: Option<bool>,
}

/// A page of inspections.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InspectionPage {
    pub items: Vec<InspectionView>,
    pub next_cursor: Option<String>,
}

/// Query of `GET /inspections`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// `pending_review` (default order: most uncertain first), `claimed`, `reviewed`, …
    pub status: Option<String>,
    pub camera_id: Option<String>,
    /// `true`: only audit samples; `false`: only non-samples.
    pub audit_sample: Option<bool>,
    /// `uncertain`, `newest` or `oldest`.
    pub order: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub(crate) fn view(state: &AppState, inspection: Inspection) -> InspectionView {
    let expires = state.now() + Duration::seconds(state.settings.url_ttl_seconds.clamp(1, 900));
    let image_url = state.urls.get_url(&inspection.image_key, expires);
    let overridden = inspection.overridden();
    InspectionView {
        inspection,
        image_url,
        overridden,
    }
}

/// The fields of an inspection that the audit trail records before and after a change.
#[derive(Serialize)]
struct AuditView<'a> {
    status: Status,
    version: u64,
    decision: Option<opti_core::types::Decision>,
    confidence: f32,
    threshold_used: f32,
    detections: &'a [Detection],
    claim: &'a Option<opti_core::types::Claim>,
    review: &'a Option<Review>,
    audit_sample: bool,
    model_version: &'a str,
    rejection_reason: &'a Option<String>,
}

/// The fields of an inspection that the audit trail records before and after a change.
pub fn audit_view(i: &Inspection) -> serde_json::Value {
    crate::json_value(&AuditView {
        status: i.status,
        version: i.version,
        decision: i.decision,
        confidence: i.confidence,
        threshold_used: i.threshold_used,
        detections: &i.detections,
        claim: &i.claim,
        review: &i.review,
        audit_sample: i.audit_sample,
        model_version: &i.model_version,
        rejection_reason: &i.rejection_reason,
    })
}

/// Returns items whose lease ran out to the queue (audited as `system:lease-expiry`), so
/// a reviewer who walked away does not hide them. Runs before the queue is read.
pub async fn release_expired_claims(state: &AppState) -> ApiResult<usize> {
    let now = state.now();
    let mut released = 0;
    let mut query = InspectionQuery {
        status: Some(Status::Claimed),
        order: InspectionOrder::Oldest,
        limit: opti_core::ports::MAX_PAGE,
        ..InspectionQuery::default()
    };
    loop {
        let page = state.ports.inspections.list_inspections(&query).await?;
        for item in &page.items {
            let Some(claim) = item
                .claim
                .as_ref()
                .filter(|c| review::lease_expired(c, now))
            else {
                continue;
            };
            let next = review::release(item, &claim.reviewer, now, item.version);
            // Someone else acting on it right now is fine: they win, we move on.
            match transition(
                state,
                item,
                next,
                "system:lease-expiry",
                AuditAction::ClaimReleased,
            )
            .await
            {
                Ok(_) => released += 1,
                Err(ApiError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    Ok(released)
}

/// List inspections; pending ones come most uncertain first.
#[utoipa::path(get, path = "/inspections", tag = "review", params(ListParams),
    responses((status = 200, body = InspectionPage), (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<InspectionPage>> {
    caller.require(&[Role::Reviewer], "read inspections")?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let status = match p.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(
            Status::parse(s)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown status {s:?}")))?,
        ),
    };
    let order = match p.order.as_deref() {
        None | Some("") => {
            if matches!(status, Some(Status::PendingReview) | Some(Status::Claimed)) {
                InspectionOrder::MostUncertain
            } else {
                InspectionOrder::Newest
            }
        }
        Some("uncertain") => InspectionOrder::MostUncertain,
        Some("newest") => InspectionOrder::Newest,
        Some("oldest") => InspectionOrder::Oldest,
        Some(o) => return Err(ApiError::BadRequest(format!("unknown order {o:?}"))),
    };
    let limit = p.limit.unwrap_or(50);
    if limit == 0 || limit > opti_core::ports::MAX_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit must be in 1..={}",
            opti_core::ports::MAX_PAGE
        )));
    }
    if matches!(
        status,
        None | Some(Status::PendingReview) | Some(Status::Claimed)
    ) {
        release_expired_claims(&state).await?;
    }
    let page = state
        .ports
        .inspections
        .list_inspections(&InspectionQuery {
            status,
            camera_id: p.camera_id.filter(|c| !c.is_empty()),
            audit_sample: p.audit_sample,
            order,
            limit,
            cursor: p.cursor.filter(|c| !c.is_empty()),
            ..InspectionQuery::default()
        })
        .await?;
    Ok(Json(InspectionPage {
        items: page.items.into_iter().map(|i| view(&state, i)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One inspection with its image URL.
#[utoipa::path(get, path = "/inspections/{id}", tag = "review",
    params(("id" = String, Path, description = "inspection id")),
    responses((status = 200, body = InspectionView), (status = 404), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<InspectionView>> {
    caller.require(&[Role::Reviewer], "read inspections")?;
    let record = state.ports.inspections.get_inspection(&id).await?;
    Ok(Json(view(&state, record)))
}

/// Body of claim and release: the version the caller read (optional for claim).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct VersionBody {
    pub version: Option<u64>,
}

/// Applies a state-machine transition and stores it with update-if-version; a conflict
/// of either kind returns 409 with the record as it is now.
async fn transition(
    state: &AppState,
    current: &Inspection,
    next: Result<Inspection, opti_core::DomainError>,
    actor: &str,
    action: AuditAction,
) -> ApiResult<Inspection> {
    let next = next.map_err(|e| match e {
        opti_core::DomainError::Invalid(m) => ApiError::BadRequest(m),
        other => ApiError::Conflict {
            message: other.to_string(),
            current: serde_json::to_value(current).ok(),
        },
    })?;
    // The record and its audit event are stored in one transaction: both or neither.
    let mut will_store = next.clone();
    will_store.version = current.version + 1;
    let event = state.audit_event(
        actor,
        action,
        &format!("inspection/{}", next.id),
        Some(audit_view(current)),
        Some(audit_view(&will_store)),
    );
    let stored = state
        .ports
        .inspections
        .update_inspection_audited(&next, current.version, &event)
        .await?;
    Ok(stored)
}

/// Claim and release take an optional JSON body `{"version": n}`.
fn optional_body(body: &[u8]) -> ApiResult<VersionBody> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(VersionBody::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Lease an inspection for review (renews your own lease; takes over an expired one).
#[utoipa::path(post, path = "/inspections/{id}/claim", tag = "review",
    params(("id" = String, Path, description = "inspection id")), request_body(content = Option<VersionBody>),
    responses((status = 200, body = InspectionView), (status = 404), (status = 409, description = "Claimed by another reviewer, or stale version")),
    security(("bearer" = [])))]
pub async fn claim(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<InspectionView>> {
    caller.require(&[Role::Reviewer], "claim inspections")?;
    let body = optional_body(&body)?;
    let current = state.ports.inspections.get_inspection(&id).await?;
    let config = state.ports.config.get_config().await?.value;
    let lease = Duration::seconds(i64::from(config.lease_seconds));
    let expected = body.version.unwrap_or(current.version);
    let next = review::claim(&current, &caller.name, state.now(), lease, expected);
    let stored = transition(
        &state,
        &current,
        next,
        &caller.actor(),
        AuditAction::Claimed,
    )
    .await?;
    Ok(Json(view(&state, stored)))
}

/// Give a lease back; the inspection returns to the queue.
#[utoipa::path(post, path = "/inspections/{id}/release", tag = "review",
    params(("id" = String, Path, description = "inspection id")), request_body(content = Option<VersionBody>),
    responses((status = 200, body = InspectionView), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<InspectionView>> {
    caller.require(&[Role::Reviewer], "release inspections")?;
    let body = optional_body(&body)?;
    let current = state.ports.inspections.get_inspection(&id).await?;
    let expected = body.version.unwrap_or(current.version);
    let next = review::release(&current, &caller.name, state.now(), expected);
    let stored = transition(
        &state,
        &current,
        next,
        &caller.actor(),
        AuditAction::ClaimReleased,
    )
    .await?;
    Ok(Json(view(&state, stored)))
}

/// A reviewer's verdict with corrected boxes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub verdict: Verdict,
    #[serde(default)]
    pub detections: Vec<Detection>,
    #[serde(default)]
    pub notes: String,
    /// The version you read; a stale one gets 409 and the current record.
    pub version: u64,
}

/// Submit the final verdict and corrected boxes.
#[utoipa::path(post, path = "/inspections/{id}/review", tag = "review",
    params(("id" = String, Path, description = "inspection id")), request_body = ReviewRequest,
    responses((status = 200, body = InspectionView), (status = 400, description = "Invalid boxes or classes"),
        (status = 404), (status = 409, description = "Stale version or claimed by another; body has `current`")),
    security(("bearer" = [])))]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<ReviewRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<InspectionView>> {
    caller.require(&[Role::Reviewer], "review inspections")?;
    let Json(req) = body.map_err(json_error)?;
    if req.notes.len() > 4000 {
        return Err(ApiError::BadRequest(
            "notes must be at most 4000 bytes".into(),
        ));
    }
    let current = state.ports.inspections.get_inspection(&id).await?;
    let now = state.now();
    let submitted = Review {
        reviewer: caller.name.clone(),
        verdict: req.verdict,
        detections: req.detections,
        notes: req.notes,
        reviewed_at: now,
    };
    let classes = state.inspector.class_names();
    let next = review::submit_review(&current, submitted, req.version, now, &classes);
    let stored = transition(
        &state,
        &current,
        next,
        &caller.actor(),
        AuditAction::Reviewed,
    )
    .await?;
    // Enough new reviews start a retraining by themselves (in the background).
    if state.learning.is_some() {
        let s = state.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::learning::maybe_auto_retrain(&s).await {
                tracing::warn!(error = %e, "automatic retraining check failed");
            }
        });
    }
    Ok(Json(view(&state, stored)))
}
