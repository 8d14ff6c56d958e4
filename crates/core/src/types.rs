//! The records the system keeps: inspections with their detections and review, audit
//! events, model registry entries, users. These serde shapes are the HTTP contract of
//! shared/DESIGN.md and are reused unchanged by the web app.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::Config;

/// One box the model (or a reviewer) found: class name, confidence, and the box as
/// normalised `[x1, y1, x2, y2]` in `[0, 1]` of the original image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Detection {
    pub class: String,
    pub confidence: f32,
    pub bbox: [f32; 4],
}

impl Detection {
    /// Width times height of the normalised box (0 for a degenerate box).
    pub fn area(&self) -> f32 {
        let [x1, y1, x2, y2] = self.bbox;
        (x2 - x1).max(0.0) * (y2 - y1).max(0.0)
    }

    /// Intersection over union of two normalised boxes.
    pub fn iou(&self, other: &Detection) -> f32 {
        iou(&self.bbox, &other.bbox)
    }
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes (0 when both are empty).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// What a detector saw in one image: the boxes that passed its confidence floor (after
/// NMS), and the strongest class score anywhere in the image before any floor. The
/// latter is what lets a clean image get a real decision confidence (see `routing`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelOutput {
    pub detections: Vec<Detection>,
    /// Highest class score over all candidate boxes, in [0, 1]; 0 for an empty output.
    pub max_score: f32,
    /// Class of that highest score, if any candidate existed.
    pub max_class: Option<String>,
}

/// Where an inspection is in its life. See `review` for the legal transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The model was confident enough; no human needed (unless sampled for audit).
    AutoValidated,
    /// Waiting in the review queue (uncertain, or an audit sample).
    PendingReview,
    /// A reviewer holds a lease on it.
    Claimed,
    /// A reviewer gave the final verdict.
    Reviewed,
    /// The file could not be inspected (corrupt, unsupported); the reason is kept.
    Rejected,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::AutoValidated,
        Status::PendingReview,
        Status::Claimed,
        Status::Reviewed,
        Status::Rejected,
    ];

    /// The wire name (`pending_review`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::AutoValidated => "auto_validated",
            Status::PendingReview => "pending_review",
            Status::Claimed => "claimed",
            Status::Reviewed => "reviewed",
            Status::Rejected => "rejected",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the model decided about the part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// At least one defect is present.
    Defective,
    /// No defect found.
    Clean,
}

/// A reviewer's final word on the part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Defective,
    Ok,
}

impl Verdict {
    /// The model decision this verdict agrees with.
    pub fn as_decision(self) -> Decision {
        match self {
            Verdict::Defective => Decision::Defective,
            Verdict::Ok => Decision::Clean,
        }
    }
}

/// A reviewer's lease on an inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Claim {
    pub reviewer: String,
    #[serde(with = "time::serde::rfc3339")]
    pub claimed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// The expert's correction of one inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Review {
    pub reviewer: String,
    pub verdict: Verdict,
    /// The boxes as the reviewer left them (confidence 1.0 for boxes a human drew).
    pub detections: Vec<Detection>,
    #[serde(default)]
    pub notes: String,
    #[serde(with = "time::serde::rfc3339")]
    pub reviewed_at: OffsetDateTime,
}

/// Statistics of the decoded input image, for drift analytics (a worn or refocused
/// camera shows here before accuracy drops).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageStats {
    pub width: u32,
    pub height: u32,
    /// Mean luma in [0, 1].
    pub brightness: f32,
    /// Standard deviation of luma in [0, 1].
    pub contrast: f32,
    /// Variance of the Laplacian of luma (luma in [0, 1]); higher is sharper.
    pub sharpness: f32,
}

/// One image, what the model made of it, where it is in review, and the review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Inspection {
    /// Stable id, derived from the ingest key (see [`inspection_id`]).
    pub id: String,
    /// Caller-given idempotency key: content hash + camera for uploads, bucket+key+etag
    /// for S3 events. A second create with the same key returns the first record.
    pub ingest_key: String,
    /// Blob key of the stored image.
    pub image_key: String,
    pub camera_id: String,
    /// The uploaded file's name, sanitised (traceability to the part).
    pub filename: Option<String>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub captured_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub model_version: String,
    pub detections: Vec<Detection>,
    /// The model's decision; `None` for a rejected file.
    pub decision: Option<Decision>,
    /// Decision confidence in [0, 1] for whatever was decided (see `routing`).
    pub confidence: f32,
    pub threshold_used: f32,
    pub status: Status,
    /// Sent to review as a random audit of the automation, not for uncertainty.
    pub audit_sample: bool,
    #[serde(default)]
    pub claim: Option<Claim>,
    #[serde(default)]
    pub review: Option<Review>,
    /// Why the file could not be inspected (status `rejected`).
    #[serde(default)]
    pub rejection_reason: Option<String>,
    #[serde(default)]
    pub image_stats: Option<ImageStats>,
    /// Optimistic-locking version; every stored change increments it.
    pub version: u64,
}

impl Inspection {
    /// True when the reviewer changed the model's decision or its set of classes.
    pub fn overridden(&self) -> Option<bool> {
        let review = self.review.as_ref()?;
        let verdict_changed = self.decision != Some(review.verdict.as_decision());
        let classes = |d: &[Detection]| {
            let mut v: Vec<&str> = d.iter().map(|d| d.class.as_str()).collect();
            v.sort_unstable();
            v.dedup();
            v.into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        Some(verdict_changed || classes(&self.detections) != classes(&review.detections))
    }
}

/// The inspection id for an ingest key: `insp_` and 24 hex digits of its SHA-256.
/// Deterministic, so a retried upload or a duplicated S3 event lands on the same record.
pub fn inspection_id(ingest_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(ingest_key.as_bytes());
    format!("insp_{}", &hex::encode(digest)[..24])
}

/// Who did something: a user, a camera, or the system itself.
pub type Actor = String;

/// Everything that changes state leaves one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    InspectionCreated,
    InspectionRejected,
    AuditSampled,
    Claimed,
    ClaimReleased,
    Reviewed,
    ConfigChanged,
    UserAdded,
    ModelRegistered,
    ModelPromoted,
    ModelRolledBack,
    GateDecided,
    RetrainStarted,
    RetrainFinished,
    RetrainFailed,
    DriftAlert,
}

impl AuditAction {
    /// The wire name (`inspection_created`, …).
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// One entry of the audit trail: who, when, what, before → after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    pub id: String,
    pub actor: Actor,
    pub action: AuditAction,
    /// What it happened to, as `kind/id` (`inspection/insp_…`, `config`, `model/v3`).
    pub entity: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Precision, recall and mAP of a detector on a labelled set.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricSet {
    pub precision: f64,
    pub recall: f64,
    pub map50: f64,
    pub map50_95: f64,
}

/// Lifecycle of a model version in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    /// Trained, not (yet) judging parts.
    Candidate,
    /// The one judging new parts.
    Active,
    /// Was active once; can be rolled back to.
    Retired,
    /// Refused by the gate.
    Rejected,
}

/// One model version in the registry, with its lineage and scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelRecord {
    pub version: String,
    pub parent: Option<String>,
    /// Dataset snapshot it was trained on (content hash), if any.
    pub snapshot_id: Option<String>,
    pub status: ModelStatus,
    /// Blob key of the ONNX file.
    pub artifact_key: String,
    pub classes: Vec<String>,
    pub imgsz: u32,
    /// Metrics the trainer reported on its validation split.
    pub trainer_metrics: Option<MetricSet>,
    /// Metrics we measured ourselves (tract + core mAP) on the holdout.
    pub measured_metrics: Option<MetricSet>,
    /// Trainer, Ultralytics and torch versions, recipe; free-form.
    #[serde(default)]
    pub trainer: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Optimistic-locking version of this registry entry.
    pub record_version: u64,
}

/// Who may do what. Cameras upload; reviewers work the queue; admins do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Camera,
    Reviewer,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "camera" => Some(Role::Camera),
            "reviewer" => Some(Role::Reviewer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Camera => "camera",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }
}

/// A local-mode user; only the SHA-256 of the bearer token is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub name: String,
    pub role: Role,
    pub token_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A record with the version the store holds it at (for optimistic locking).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// The configuration as stored: the value and its version.
pub type StoredConfig = Versioned<Config>;

/// One page of a list, and where to continue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Counts by status, for stats and the dashboard.
pub type StatusCounts = BTreeMap<Status, u64>;
