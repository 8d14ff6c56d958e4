//! The `--demo` camera: generates parts on the synthetic line (mostly good ones, as on a
//! real line) and feeds them through the same ingest path as `POST /upload/`.

use std::time::Duration;

use opti_api::ingest::{ingest_upload, upload_blob_key, NewObject};
use opti_api::AppState;
use opti_sim::{encode_image, generate, ImageFormat, SimParams, STREAM_CLEAN_FRACTION};

/// Camera id the demo uploads as.
pub const DEMO_CAMERA: &str = "demo-line-1";

/// Uploads one generated part every `interval` until the task is aborted.
pub async fn run(state: AppState, seed: u64, interval: Duration) {
    let params = SimParams {
        clean_fraction: STREAM_CLEAN_FRACTION,
        ..SimParams::default()
    };
    // Continue the stream where an earlier run stopped rather than repeat its parts.
    let mut index = match state.ports.inspections.count_by_status().await {
        Ok(c) => c.values().sum::<u64>(),
        Err(_) => 0,
    };
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        let p = params.clone();
        let i = index;
        let encoded = tokio::task::spawn_blocking(move || {
            let sample = generate(seed, i, &p);
            encode_image(&sample.image, ImageFormat::Jpeg { quality: 90 })
        })
        .await;
        let bytes = match encoded {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "demo camera could not encode a part");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "demo camera task failed");
                continue;
            }
        };
        let object = NewObject {
            blob_key: upload_blob_key(DEMO_CAMERA, &bytes, "jpg"),
            bytes: &bytes,
            camera_id: DEMO_CAMERA.to_string(),
            filename: Some(format!("part-{i:06}.jpg")),
            actor: format!("camera:{DEMO_CAMERA}"),
        };
        match ingest_upload(&state, object).await {
            Ok((r, _)) => {
                tracing::info!(id = %r.id, status = %r.status, confidence = r.confidence, "demo part inspected")
            }
            Err(e) => tracing::warn!(error = %e, "demo upload failed"),
        }
        index += 1;
    }
}
