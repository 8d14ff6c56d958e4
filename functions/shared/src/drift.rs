//! The drift function: `GET /drift/` is the service's own route (served by the same
//! Router as the review function), and an EventBridge schedule stores one drift report
//! per window as `reports/drift/{window}.json`, computed by that same route so the two
//! never disagree. A second run in the same window (EventBridge delivers at least once)
//! finds the report and stores nothing.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use opti_api::{AppState, Caller};
use opti_core::{AuditAction, AuditEvent, Role};
use time::OffsetDateTime;
use tower::ServiceExt;

/// Length of a drift window: reports are stored per hour.
pub const WINDOW_SECONDS: i64 = 3600;

/// What a scheduled run did.
#[derive(Debug, Clone, PartialEq)]
pub enum DriftRun {
    /// This run stored the window's report.
    Stored { key: String, drift_detected: bool },
    /// The window's report was already stored.
    AlreadyStored { key: String },
}

/// Why a scheduled run failed (it is retried by EventBridge).
#[derive(Debug, thiserror::Error)]
#[error("drift report: {0}")]
pub struct DriftError(String);

/// Start of the window holding `at`.
pub fn window_start(at: OffsetDateTime) -> OffsetDateTime {
    let t = at.unix_timestamp();
    let start = t - t.rem_euclid(WINDOW_SECONDS);
    OffsetDateTime::from_unix_timestamp(start).unwrap_or(at)
}

/// Blob key of the report of the window starting at `start`: `reports/drift/20261125T2300Z.json`.
pub fn report_key(start: OffsetDateTime) -> String {
    format!(
        "reports/drift/{:04}{:02}{:02}T{:02}{:02}Z.json",
        start.year(),
        u8::from(start.month()),
        start.day(),
        start.hour(),
        start.minute()
    )
}

/// The drift report as `GET /drift/` computes it now.
pub async fn current_report(state: &AppState) -> Result<serde_json::Value, DriftError> {
    let mut req = Request::get("/drift/")
        .body(Body::empty())
        .map_err(|e| DriftError(e.to_string()))?;
    req.extensions_mut().insert(Caller {
        name: "drift-schedule".into(),
        role: Role::Admin,
    });
    let resp = opti_api::router(state.clone())
        .oneshot(req)
        .await
        .map_err(|e| DriftError(e.to_string()))?;
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .map_err(|e| DriftError(e.to_string()))?;
    if status != StatusCode::OK {
        return Err(DriftError(format!(
            "GET /drift/ answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| DriftError(e.to_string()))
}

/// The scheduled run for the window holding `at`: stores the report once per window,
/// and on drift appends one `drift_alert` audit event (its id is the window, so a
/// repeated run cannot duplicate it).
pub async fn scheduled(state: &AppState, at: OffsetDateTime) -> Result<DriftRun, DriftError> {
    let start = window_start(at);
    let key = report_key(start);
    let store = |e: opti_core::ports::StoreError| DriftError(e.to_string());
    if state
        .ports
        .blobs
        .blob_size(&key)
        .await
        .map_err(store)?
        .is_some()
    {
        return Ok(DriftRun::AlreadyStored { key });
    }
    let report = current_report(state).await?;
    let drift_detected = report
        .get("drift_detected")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let stored = serde_json::json!({
        "window_start": start.unix_timestamp(),
        "window_seconds": WINDOW_SECONDS,
        "computed_at": OffsetDateTime::now_utc().unix_timestamp(),
        "report": report,
    });
    let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| DriftError(e.to_string()))?;
    state
        .ports
        .blobs
        .put_blob(&key, &bytes, "application/json")
        .await
        .map_err(store)?;
    if drift_detected {
        let event = AuditEvent {
            id: format!("evt_drift_{}", start.unix_timestamp()),
            actor: "system:drift-schedule".into(),
            action: AuditAction::DriftAlert,
            entity: format!("drift/{}", start.unix_timestamp()),
            before: None,
            after: Some(stored),
            at: OffsetDateTime::now_utc(),
        };
        state
            .ports
            .audit
            .append_audit(&event)
            .await
            .map_err(store)?;
    }
    Ok(DriftRun::Stored {
        key,
        drift_detected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_hours_with_readable_keys() {
        let at = time::macros::datetime!(2026-11-25 23:41:07 UTC);
        let start = window_start(at);
        assert_eq!(start, time::macros::datetime!(2026-11-25 23:00 UTC));
        assert_eq!(report_key(start), "reports/drift/20261125T2300Z.json");
        assert!(opti_store::blob_key::validate_key(&report_key(start)).is_ok());
        assert_eq!(window_start(start), start);
    }
}
