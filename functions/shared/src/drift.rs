//! The drift function: `GET /drift/` is the service's own route (served by the same
//! Router as the review function), and an EventBridge schedule runs the same scheduled
//! evaluation as the timer of `opti serve` ([`opti_api::drift::evaluate_and_record`]):
//! one [`DriftRecord`] per evaluated window in the DynamoDB drift history (a window
//! whose data has not changed is not stored again; a second evaluator of the same window
//! stores nothing), alarm episodes advanced from the latest record, and an SNS alert
//! when an episode opens — once per episode, not every run.
//!
//! The alert is sent at least once: after a publish, a marker blob
//! (`reports/drift/alerts/{record}.json`) says it went out; a run that finds the latest
//! record raised alarms without a marker (the publish of the run that stored it failed,
//! and EventBridge retried) publishes it then.

use opti_api::drift::{alert_payload, evaluate_and_record, EvaluationOutcome};
use opti_api::AppState;
use opti_core::drift::DriftRecord;

/// Environment variable with the SNS topic ARN drift alerts are published to (set by the
/// template). Unset or empty: alerts are only logged.
pub const TOPIC_ENV: &str = "OPTI_DRIFT_TOPIC_ARN";

/// Where alerts go: an SNS topic, or the log only.
#[derive(Clone, Debug)]
pub struct Alerts {
    pub sns: aws_sdk_sns::Client,
    pub topic_arn: Option<String>,
}

impl Alerts {
    /// The topic from [`TOPIC_ENV`], the client from `sdk`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Self {
        Alerts {
            sns: aws_sdk_sns::Client::new(sdk),
            topic_arn: std::env::var(TOPIC_ENV)
                .ok()
                .filter(|t| !t.trim().is_empty()),
        }
    }
}

/// What a scheduled run did.
#[derive(Debug, Clone, PartialEq)]
pub enum DriftRun {
    /// This run stored a record; `alerted` when it opened episodes and the alert went out.
    Recorded {
        id: String,
        raised: Vec<String>,
        alerted: bool,
    },
    /// The windows hold the same data as the latest record: nothing stored (`alerted`
    /// when that record's alert had not gone out yet and was sent now).
    Unchanged { latest_id: String, alerted: bool },
    /// Another evaluator stored this window first: nothing stored, nothing sent.
    AlreadyRecorded { id: String },
}

/// Why a scheduled run failed (EventBridge retries it).
#[derive(Debug, thiserror::Error)]
#[error("drift: {0}")]
pub struct DriftError(String);

/// Key of the marker saying the alert of `record_id` was sent.
pub fn alert_marker_key(record_id: &str) -> String {
    format!("reports/drift/alerts/{record_id}.json")
}

/// The SNS subject of a record's alert (at most 100 characters, as SNS requires).
pub fn alert_subject(record: &DriftRecord) -> String {
    let mut s = format!(
        "Opti-Quality drift alarm: {} signal(s) crossed their threshold",
        record.episodes.raised.len()
    );
    s.truncate(100);
    s
}

/// Sends the alert of `record` unless its marker says it went out; true if sent now.
async fn alert_once(
    state: &AppState,
    alerts: &Alerts,
    record: &DriftRecord,
) -> Result<bool, DriftError> {
    if record.episodes.raised.is_empty() {
        return Ok(false);
    }
    let marker = alert_marker_key(&record.id);
    let store = |e: opti_core::ports::StoreError| DriftError(e.to_string());
    if state
        .ports
        .blobs
        .blob_size(&marker)
        .await
        .map_err(store)?
        .is_some()
    {
        return Ok(false);
    }
    let payload = alert_payload(record);
    tracing::warn!(
        id = %record.id,
        raised = %record.episodes.raised.join(", "),
        "DRIFT ALARM"
    );
    if let Some(topic) = &alerts.topic_arn {
        alerts
            .sns
            .publish()
            .topic_arn(topic)
            .subject(alert_subject(record))
            .message(payload.to_string())
            .send()
            .await
            .map_err(|e| {
                DriftError(format!(
                    "publishing the alert to {topic}: {}",
                    aws_sdk_sns::error::DisplayErrorContext(e)
                ))
            })?;
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "sent_to": alerts.topic_arn,
        "alert": payload,
    }))
    .map_err(|e| DriftError(e.to_string()))?;
    state
        .ports
        .blobs
        .put_blob(&marker, &body, "application/json")
        .await
        .map_err(store)?;
    Ok(alerts.topic_arn.is_some())
}

/// The scheduled run: [`evaluate_and_record`], then the alert of a newly opened episode.
pub async fn scheduled(state: &AppState, alerts: &Alerts) -> Result<DriftRun, DriftError> {
    let outcome = evaluate_and_record(state)
        .await
        .map_err(|e| DriftError(e.to_string()))?;
    match outcome {
        EvaluationOutcome::Recorded(record) => {
            tracing::info!(id = %record.id, status = ?record.report.status, open = record.episodes.open.len(), "drift evaluated");
            let alerted = alert_once(state, alerts, &record).await?;
            Ok(DriftRun::Recorded {
                id: record.id.clone(),
                raised: record.episodes.raised.clone(),
                alerted,
            })
        }
        EvaluationOutcome::Unchanged { latest } => {
            // A publish lost by an earlier run of this window is made good now.
            let alerted = alert_once(state, alerts, &latest).await?;
            Ok(DriftRun::Unchanged {
                latest_id: latest.id.clone(),
                alerted,
            })
        }
        EvaluationOutcome::AlreadyRecorded { id } => Ok(DriftRun::AlreadyRecorded { id }),
    }
}
