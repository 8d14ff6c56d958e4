//! Drift evaluation over the stored inspections: loads the baseline and recent windows of
//! each scope (`overall` and every camera seen recently), runs the signals of
//! [`opti_core::drift`], and — for the scheduled evaluation — stores one
//! [`DriftRecord`] per evaluated window and advances the alarm episodes. Shared by
//! `GET /drift/`, `POST /drift/evaluate`, the timer of `opti serve` and the drift Lambda.

use std::collections::{BTreeSet, HashSet};

use opti_core::drift::{
    advance_episodes, camera_scope, evaluate, DriftRecord, DriftReport, DriftSample, ScopeWindows,
    OVERALL,
};
use opti_core::ports::{DriftQuery, InspectionOrder, InspectionQuery, MAX_PAGE};
use opti_core::types::{AuditAction, Inspection, Status};
use opti_core::DriftConfig;
use sha2::{Digest, Sha256};

use crate::error::ApiResult;
use crate::AppState;

/// Most cameras evaluated as their own scope in one report (the most recently active).
pub const MAX_CAMERA_SCOPES: usize = 16;

/// Actor of the audit events the evaluation writes.
pub const DRIFT_ACTOR: &str = "system:drift";

/// Up to `n` inspections matching `query` (all pages), skipping rejected files.
pub(crate) async fn collect(
    state: &AppState,
    mut query: InspectionQuery,
    n: usize,
) -> ApiResult<Vec<Inspection>> {
    let mut out = Vec::with_capacity(n.min(10_000));
    if n == 0 {
        return Ok(out);
    }
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

/// The baseline and recent windows of one camera (or of the whole line for `None`),
/// oldest first within each: recent is the newest `recent_window` inspections; the
/// baseline the `baseline_window` ones right before (trailing) or the first ever (fixed),
/// never overlapping the recent window.
pub async fn load_windows(
    state: &AppState,
    camera: Option<&str>,
    cfg: &DriftConfig,
) -> ApiResult<(Vec<Inspection>, Vec<Inspection>)> {
    let base_query = InspectionQuery {
        camera_id: camera.map(str::to_owned),
        ..InspectionQuery::default()
    };
    let recent_n = cfg.recent_window as usize;
    let base_n = cfg.baseline_window as usize;
    let mut newest = collect(
        state,
        InspectionQuery {
            order: InspectionOrder::Newest,
            ..base_query.clone()
        },
        recent_n + if cfg.trailing { base_n } else { 0 },
    )
    .await?;
    let older = newest.split_off(recent_n.min(newest.len()));
    let mut recent = newest;
    recent.reverse();
    let recent_ids: HashSet<&str> = recent.iter().map(|i| i.id.as_str()).collect();
    let baseline: Vec<Inspection> = if cfg.trailing {
        let mut b = older;
        b.reverse();
        b
    } else {
        collect(
            state,
            InspectionQuery {
                order: InspectionOrder::Oldest,
                ..base_query
            },
            base_n,
        )
        .await?
        .into_iter()
        .filter(|i| !recent_ids.contains(i.id.as_str()))
        .collect()
    };
    Ok((baseline, recent))
}

/// The report of the current windows, and the key that identifies the data it read.
pub struct Evaluation {
    pub report: DriftReport,
    /// Same data (inspections, their review state, the config) → same key.
    pub window_key: String,
}

/// Evaluates drift now: for `camera` only (scope `camera:<id>`), or for the whole line
/// plus every camera seen in its recent window (at most [`MAX_CAMERA_SCOPES`]).
pub async fn evaluate_now(state: &AppState, camera: Option<&str>) -> ApiResult<Evaluation> {
    let config = state.ports.config.get_config().await?;
    let cfg = &config.value.drift;
    let cut = config.value.decision_cut;
    let mut scopes: Vec<(String, Vec<Inspection>, Vec<Inspection>)> = Vec::new();
    match camera {
        Some(c) => {
            let (b, r) = load_windows(state, Some(c), cfg).await?;
            scopes.push((camera_scope(c), b, r));
        }
        None => {
            let (b, r) = load_windows(state, None, cfg).await?;
            // The most recently active cameras first.
            let mut cameras: Vec<String> = Vec::new();
            let mut seen = BTreeSet::new();
            for i in r.iter().rev() {
                if seen.insert(i.camera_id.clone()) {
                    cameras.push(i.camera_id.clone());
                }
            }
            cameras.truncate(MAX_CAMERA_SCOPES);
            cameras.sort();
            scopes.push((OVERALL.to_string(), b, r));
            for c in cameras {
                let (b, r) = load_windows(state, Some(&c), cfg).await?;
                scopes.push((camera_scope(&c), b, r));
            }
        }
    }
    let samples: Vec<(Vec<DriftSample>, Vec<DriftSample>)> = scopes
        .iter()
        .map(|(_, b, r)| {
            let to = |v: &[Inspection]| {
                v.iter()
                    .map(|i| DriftSample::from_inspection(i, cut))
                    .collect::<Vec<_>>()
            };
            (to(b), to(r))
        })
        .collect();
    let windows: Vec<ScopeWindows<'_>> = scopes
        .iter()
        .zip(&samples)
        .map(|((scope, _, _), (b, r))| ScopeWindows {
            scope,
            baseline: b,
            recent: r,
        })
        .collect();
    let report = evaluate(&windows, cfg);
    let mut key = Sha256::new();
    key.update(serde_json::to_vec(&config.value).unwrap_or_default());
    for (scope, b, r) in &scopes {
        key.update(scope.as_bytes());
        for w in [b, r] {
            key.update(w.len().to_le_bytes());
            for i in w.first().into_iter().chain(w.last()) {
                key.update(i.id.as_bytes());
            }
            // Reviews and claims bump versions: a new review is new data.
            let versions: u64 = w.iter().map(|i| i.version).sum();
            key.update(versions.to_le_bytes());
        }
    }
    Ok(Evaluation {
        report,
        window_key: hex::encode(key.finalize()),
    })
}

/// What one scheduled evaluation did.
#[derive(Debug, Clone)]
pub enum EvaluationOutcome {
    /// The windows hold the same data as the latest stored record (given): nothing stored.
    Unchanged { latest: Box<DriftRecord> },
    /// A new record was stored (its `episodes.raised` are the alarms to send).
    Recorded(Box<DriftRecord>),
    /// Another evaluator stored this window first: nothing stored, nothing to send.
    AlreadyRecorded { id: String },
}

/// The scheduled evaluation: evaluates all scopes, and unless the data is unchanged since
/// the latest stored record, stores a new record with the alarm episodes advanced from
/// the latest one. An episode opened here is audited (`drift_alert`); sending it on
/// (webhook, SNS) is the caller's job, once, for [`EvaluationOutcome::Recorded`] only.
pub async fn evaluate_and_record(state: &AppState) -> ApiResult<EvaluationOutcome> {
    let Evaluation { report, window_key } = evaluate_now(state, None).await?;
    let latest = state
        .ports
        .drift
        .list_drift_records(&DriftQuery {
            limit: 1,
            cursor: None,
        })
        .await?
        .items
        .into_iter()
        .next();
    if let Some(l) = latest.as_ref().filter(|l| l.window_key == window_key) {
        return Ok(EvaluationOutcome::Unchanged {
            latest: Box::new(l.clone()),
        });
    }
    let open: Vec<String> = latest.map(|l| l.episodes.open).unwrap_or_default();
    let episodes = advance_episodes(&open, &report);
    let id = format!("drift_{}", &window_key[..24]);
    let record = DriftRecord {
        id: id.clone(),
        evaluated_at: state.now(),
        window_key,
        episodes,
        report,
    };
    if !state.ports.drift.put_drift_record(&record).await? {
        return Ok(EvaluationOutcome::AlreadyRecorded { id });
    }
    if !record.episodes.raised.is_empty() {
        let after = serde_json::json!({
            "raised": record.episodes.raised,
            "open": record.episodes.open,
            "signals": alarm_summary(&record),
        });
        state
            .audit(
                DRIFT_ACTOR,
                AuditAction::DriftAlert,
                &format!("drift/{id}"),
                None,
                Some(after),
            )
            .await?;
    }
    Ok(EvaluationOutcome::Recorded(Box::new(record)))
}

/// The raised signals with their values and thresholds, for alerts and the audit trail.
pub fn alarm_summary(record: &DriftRecord) -> Vec<serde_json::Value> {
    record
        .report
        .signals
        .iter()
        .filter(|s| {
            record
                .episodes
                .raised
                .contains(&opti_core::drift::signal_key(s))
        })
        .map(|s| {
            serde_json::json!({
                "scope": s.scope,
                "name": s.name,
                "value": s.value,
                "threshold": s.threshold,
                "baseline": s.baseline,
                "recent": s.recent,
            })
        })
        .collect()
}

/// The JSON alert of a record that opened alarm episodes: what the webhook of `opti
/// serve` receives and what the drift Lambda publishes to SNS.
pub fn alert_payload(record: &DriftRecord) -> serde_json::Value {
    serde_json::json!({
        "event": "drift_alert",
        "id": record.id,
        "evaluated_at": record.evaluated_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "raised": record.episodes.raised,
        "open": record.episodes.open,
        "signals": alarm_summary(record),
        "status": record.report.status,
    })
}
