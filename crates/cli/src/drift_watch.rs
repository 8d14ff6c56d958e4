//! The drift timer of `opti serve`: every interval it runs the scheduled drift evaluation
//! (one stored report per window with new data) and, when an alarm episode opens, writes
//! a log line and POSTs a JSON alert to the configured webhook — once per episode, not
//! every run.

use std::time::Duration;

use anyhow::{bail, Result};
use opti_api::drift::{evaluate_and_record, EvaluationOutcome};
use opti_api::AppState;

/// Refuses a webhook URL that is not http(s), at start-up rather than at the first alarm.
pub fn check_webhook(url: &str) -> Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        bail!("--drift-webhook must be an http:// or https:// URL, got {url:?}");
    }
    Ok(())
}

pub use opti_api::drift::alert_payload;

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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::sync::Arc;

    use opti_api::auth::TokenAuthenticator;
    use opti_api::model::ModelSlot;
    use opti_api::{HmacBlobUrls, Ports, Settings};
    use opti_core::ports::{ConfigStore, InspectionStore};
    use opti_core::types::{Decision, Inspection, Status};
    use opti_core::{inspection_id, Config};
    use opti_store::LocalStore;

    use super::*;

    /// A one-shot-per-request webhook receiver: every JSON body it gets goes to the channel.
    fn webhook() -> (String, mpsc::Receiver<serde_json::Value>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let mut stream = stream;
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
                let _ = tx.send(serde_json::from_slice(&body).unwrap_or_default());
            }
        });
        (url, rx)
    }

    fn part(camera: &str, n: i64, confidence: f32) -> Inspection {
        let at = time::OffsetDateTime::UNIX_EPOCH
            + time::Duration::days(20_000)
            + time::Duration::minutes(n);
        let key = format!("raw/{camera}/{n}.jpg");
        Inspection {
            id: inspection_id(&key),
            ingest_key: key.clone(),
            image_key: key,
            camera_id: camera.into(),
            filename: None,
            captured_at: None,
            created_at: at,
            updated_at: at,
            model_version: "test".into(),
            detections: vec![],
            decision: Some(Decision::Clean),
            confidence,
            threshold_used: 0.6,
            status: Status::AutoValidated,
            audit_sample: false,
            claim: None,
            review: None,
            rejection_reason: None,
            image_stats: None,
            version: 1,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_alarm_is_posted_once_per_episode_not_every_run() {
        // Given a line whose decision confidence fell, and a webhook listening…
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(LocalStore::open(dir.path()).expect("store"));
        let mut config = Config::default();
        config.drift.baseline_window = 5;
        config.drift.recent_window = 5;
        config.drift.min_samples = 5;
        store.put_config(&config, 0).await.expect("config");
        for n in 0..5 {
            store
                .create_inspection(&part("line-1", n, 0.9))
                .await
                .expect("insert");
        }
        for n in 5..10 {
            store
                .create_inspection(&part("line-1", n, 0.4))
                .await
                .expect("insert");
        }
        let urls = Arc::new(HmacBlobUrls::new(vec![7; 32], "http://localhost:1"));
        let state = AppState::new(
            Ports {
                inspections: store.clone(),
                audit: store.clone(),
                config: store.clone(),
                models: store.clone(),
                users: store.clone(),
                blobs: store.clone(),
                drift: store.clone(),
            },
            Arc::new(TokenAuthenticator::new(store.clone())),
            Arc::new(ModelSlot::new()),
            urls.clone(),
            Some(urls),
            Settings::default(),
            Arc::new(time::OffsetDateTime::now_utc),
        );
        let (url, hook) = webhook();
        // …when the timer ticks, the alert is posted with the signal that crossed…
        tick(&state, Some(&url)).await;
        let alert = hook
            .recv_timeout(Duration::from_secs(10))
            .expect("an alert was posted");
        assert_eq!(alert["event"], "drift_alert");
        let raised = alert["raised"].as_array().cloned().unwrap_or_default();
        assert!(
            raised.iter().any(|r| r == "overall/confidence.mean_drop"),
            "{alert}"
        );
        assert!(
            raised
                .iter()
                .any(|r| r == "camera:line-1/confidence.mean_drop"),
            "{alert}"
        );
        assert!(alert["signals"][0]["threshold"].is_number(), "{alert}");
        // …and neither an unchanged window nor new data in the same episode posts again.
        tick(&state, Some(&url)).await;
        store
            .create_inspection(&part("line-1", 10, 0.35))
            .await
            .expect("insert");
        tick(&state, Some(&url)).await;
        assert!(
            hook.recv_timeout(Duration::from_millis(500)).is_err(),
            "the same episode was alerted twice"
        );
    }

    #[test]
    fn a_webhook_that_is_not_http_is_refused_at_start() {
        assert!(check_webhook("ftp://example.com/x").is_err());
        assert!(check_webhook("example.com").is_err());
        assert!(check_webhook("https://hooks.example.com/drift").is_ok());
    }
}
