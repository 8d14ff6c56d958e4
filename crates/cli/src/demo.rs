//! The `--demo` camera: generates parts on the synthetic line (mostly good ones, as on a
//! real line) and feeds them through the same ingest path as `POST /upload/`.
//!
//! The line does not stay perfect: in every cycle of [`CYCLE`] parts the camera first
//! runs as trained ([`STEADY`] parts), then wears and a new supplier's material arrives
//! (the drift ramps in over [`RAMP`] parts and holds), then it is serviced. The shipped
//! model is nearly certain on the trained line, so without this a demo's review queue and
//! drift page would stay empty; with it, uncertain parts reach the queue and `GET /drift/`
//! raises (and later clears) an alarm, as on a real line.

use std::time::Duration;

use opti_api::ingest::{ingest_upload, upload_blob_key, NewObject};
use opti_api::AppState;
use opti_sim::{encode_image, generate, Drift, ImageFormat, SimParams, STREAM_CLEAN_FRACTION};

/// Camera id the demo uploads as.
pub const DEMO_CAMERA: &str = "demo-line-1";

/// Parts per demo cycle (trained line, then drift, then back).
pub const CYCLE: u64 = 400;
/// Parts at the start of each cycle on the trained line (the drift baseline).
pub const STEADY: u64 = 200;
/// Parts over which the drift ramps from none to full.
pub const RAMP: u64 = 50;

/// How far the camera has drifted (0 = as trained, 1 = fully) for part `index`.
pub fn drift_level(index: u64) -> f32 {
    let at = index % CYCLE;
    if at < STEADY {
        0.0
    } else {
        ((at - STEADY + 1) as f32 / RAMP as f32).min(1.0)
    }
}

/// The simulator's drift knobs at `level`: a worn camera (brighter exposure, blur,
/// noise) and a new supplier's material with fainter defects — the drifted split of
/// docs/MODEL_CARD.md at `level` 1.
pub fn demo_drift(level: f32) -> Drift {
    Drift {
        illumination_shift: 0.25 * level,
        blur_sigma: 1.0 * level,
        noise_sigma: 0.02 * level,
        material_shift: 0.3 * level,
        defect_shift: 0.3 * level,
        ..Drift::default()
    }
}

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
        let mut p = params.clone();
        p.drift = demo_drift(drift_level(index));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_line_runs_as_trained_then_drifts_then_recovers() {
        assert_eq!(drift_level(0), 0.0);
        assert_eq!(drift_level(STEADY - 1), 0.0);
        let first = drift_level(STEADY);
        assert!(first > 0.0 && first < 0.1, "{first}");
        assert_eq!(drift_level(STEADY + RAMP - 1), 1.0);
        assert_eq!(drift_level(CYCLE - 1), 1.0);
        assert_eq!(
            drift_level(CYCLE),
            0.0,
            "serviced: the next cycle starts clean"
        );
        assert_eq!(demo_drift(0.0), Drift::default());
        let full = demo_drift(1.0);
        assert!(full.blur_sigma > 0.0 && full.material_shift > 0.0 && full.defect_shift > 0.0);
        let params = SimParams {
            drift: full,
            ..SimParams::default()
        };
        assert!(params.validate().is_ok(), "{:?}", params.validate());
    }
}
