//! Records the checks store: realistic, tagged with the run, built from a few knobs.

use opti_core::{
    inspection_id, AuditAction, AuditEvent, Decision, Detection, Inspection, ModelRecord,
    ModelStatus, Role, Status, User,
};
use time::{Duration, OffsetDateTime};

/// Now, truncated to whole milliseconds (every backend keeps those exactly).
pub(super) fn base_time() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(u32::from(now.millisecond()) * 1_000_000)
        .unwrap_or(now)
}

/// `base` plus `seconds`.
pub(super) fn at(base: OffsetDateTime, seconds: i64) -> OffsetDateTime {
    base + Duration::seconds(seconds)
}

/// An inspection of camera `camera`, number `n` in its run, with the given decision
/// confidence, creation time and status.
pub(super) fn inspection(
    camera: &str,
    n: u32,
    confidence: f32,
    created_at: OffsetDateTime,
    status: Status,
) -> Inspection {
    let ingest_key = format!("conformance/{camera}/{n}");
    Inspection {
        id: inspection_id(&ingest_key),
        ingest_key,
        image_key: format!("raw/{camera}/{n}.jpg"),
        camera_id: camera.to_owned(),
        filename: Some(format!("part-{n}.jpg")),
        captured_at: None,
        created_at,
        updated_at: created_at,
        model_version: "conformance-v1".into(),
        detections: vec![Detection {
            class: "stain".into(),
            confidence,
            bbox: [0.1, 0.2, 0.3, 0.4],
        }],
        decision: Some(Decision::Defective),
        confidence,
        threshold_used: 0.6,
        status,
        audit_sample: false,
        claim: None,
        review: None,
        rejection_reason: None,
        image_stats: None,
        version: 1,
    }
}

/// A registry entry for `version`, created at `created_at`, at record version 1.
pub(super) fn model(version: &str, created_at: OffsetDateTime) -> ModelRecord {
    ModelRecord {
        version: version.to_owned(),
        parent: None,
        snapshot_id: None,
        status: ModelStatus::Candidate,
        artifact_key: format!("models/{version}/model.onnx"),
        classes: vec![
            "defect".into(),
            "fracture".into(),
            "stain".into(),
            "misalignment".into(),
        ],
        imgsz: 640,
        trainer_metrics: None,
        measured_metrics: None,
        trainer: serde_json::json!({"recipe": "conformance"}),
        created_at,
        record_version: 1,
    }
}

/// A user named `name` whose token hash is derived from `token_seed` (64 hex digits).
pub(super) fn user(name: &str, token_seed: &str, role: Role, now: OffsetDateTime) -> User {
    let hex: String = token_seed
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .cycle()
        .take(64)
        .collect();
    User {
        name: name.to_owned(),
        role,
        token_sha256: hex,
        created_at: now,
    }
}

/// An audit event.
pub(super) fn event(
    id: &str,
    actor: &str,
    action: AuditAction,
    entity: &str,
    at: OffsetDateTime,
) -> AuditEvent {
    AuditEvent {
        id: id.to_owned(),
        actor: actor.to_owned(),
        action,
        entity: entity.to_owned(),
        before: Some(serde_json::json!({"status": "pending_review"})),
        after: Some(serde_json::json!({"status": "claimed"})),
        at,
    }
}
