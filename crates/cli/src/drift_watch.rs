//! The drift timer of `opti serve`: every interval it runs the scheduled drift evaluation
//! (one stored report per window with new data) and, when an alarm episode opens, writes
//! a log line and POSTs a JSON alert to the configured webhook — once per episode, not
//! every run.

use std::time::Duration;

use anyhow::{bail, Result};
use opti_api::drift::{alarm_summary, evaluate_and_record, EvaluationOutcome};
use opti_api::AppState;
use opti_core::drift::DriftRecord;

/// Refuses a webhook URL that is not http(s), at start-up rather than at the first alarm.
pub fn check_webhook(url: &str) -> Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        bail!("--drift-webhook must be an http:// or https:// URL, got {url:?}");
    }
    Ok(())
}

/// The JSON body POSTed to the webhook for a record that opened alarm episodes.
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

/// Runs the evaluation every `interval` (the first one after one interval) until aborted.
pub async fn run(state: AppState, interval: Duration, webhook: Option<String>) {
    let start = tokio::time::Instant::now() + interval;
    let mut ticker = tokio::time::interval_at(start, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        tick(&state, webhook.as_deref()).await;
    }
}

/// One evaluation, its log lines and its alert.
pub async fn tick(state: &AppState, webhook: Option<&str>) {
    match evaluate_and_record(state).await {
        Ok(EvaluationOutcome::Recorded(record)) => {
            tracing::info!(
                id = %record.id,
                status = ?record.report.status,
                open = record.episodes.open.len(),
                "drift evaluated"
            );
            for key in &record.episodes.cleared {
                tracing::info!(signal = %key, "drift alarm cleared");
            }
            if !record.episodes.raised.is_empty() {
                tracing::warn!(
                    id = %record.id,
                    raised = %record.episodes.raised.join(", "),
                    "DRIFT ALARM"
                );
                if let Some(url) = webhook {
                    post_alert(url.to_string(), alert_payload(&record)).await;
                }
            }
        }
        Ok(EvaluationOutcome::Unchanged { .. }) => {
            tracing::debug!("drift: no new data since the latest evaluation")
        }
        Ok(EvaluationOutcome::AlreadyRecorded { id }) => {
            tracing::debug!(%id, "drift: window already evaluated")
        }
        Err(e) => tracing::warn!(error = %e, "drift evaluation failed"),
    }
}

/// POSTs the alert (10 s timeout, one retry); failures are logged, never fatal.
async fn post_alert(url: String, payload: serde_json::Value) {
    let result = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let body = payload.to_string();
        let mut last = String::new();
        for _ in 0..2 {
            match agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.as_bytes())
            {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => last = format!("HTTP {}", resp.status().as_u16()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    })
    .await;
    match result {
        Ok(Ok(())) => tracing::info!("drift alert sent to the webhook"),
        Ok(Err(e)) => tracing::warn!(error = %e, "drift webhook failed"),
        Err(e) => tracing::warn!(error = %e, "drift webhook task failed"),
    }
}
