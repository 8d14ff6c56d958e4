//! Shapes of API answers that wrap core's types (core's serde types are reused as they
//! are; these add only what the HTTP layer adds: the image URL, list envelopes, stats).

use std::collections::BTreeMap;

use opti_core::drift::DriftReport;
use opti_core::types::{Inspection, ModelRecord, Role};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// `GET /me`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub role: Role,
    /// The active model's classes, by class id.
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default)]
    pub model_version: String,
}

/// An inspection as the API returns it: the record plus a time-limited image URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionView {
    #[serde(flatten)]
    pub inspection: Inspection,
    pub image_url: String,
    #[serde(default)]
    pub overridden: Option<bool>,
}

/// `GET /models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    pub items: Vec<ModelRecord>,
    pub active: Option<String>,
}

/// Inspections started (and reviewed) in one hour of the throughput chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourCount {
    #[serde(with = "time::serde::rfc3339")]
    pub hour: OffsetDateTime,
    pub inspections: u64,
    pub reviewed: u64,
}

/// `GET /stats`: counts and rates for the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub counts: BTreeMap<String, u64>,
    pub total: u64,
    pub queue_size: u64,
    pub automation_rate: Option<f64>,
    pub override_rate: Option<f64>,
    #[serde(default)]
    pub audit_miss_rate: Option<f64>,
    pub defect_rate: Option<f64>,
    pub defect_rate_by_class: BTreeMap<String, f64>,
    pub throughput: Vec<HourCount>,
    pub window: usize,
    pub model_version: String,
}

/// One evaluation of `GET /drift/history`: the report and when it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftPoint {
    #[serde(with = "time::serde::rfc3339")]
    pub evaluated_at: OffsetDateTime,
    #[serde(flatten)]
    pub report: DriftReport,
}

/// The body of a 409: the message and the record as it is now.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConflictBody {
    pub error: String,
    #[serde(default)]
    pub current: Option<Value>,
}

impl ConflictBody {
    /// The inspection as another reviewer left it, when the 409 carries one.
    pub fn current_inspection(&self) -> Option<Inspection> {
        self.current
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
    }
}

/// A retraining job as `GET /retrain/{job}` reports it, read leniently (only the fields
/// the page shows) so the page keeps working while that endpoint evolves.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    pub id: String,
    pub status: String,
    pub phase: String,
    /// Finished epochs and epochs asked, when known.
    pub epochs_done: usize,
    pub epochs: u64,
    pub candidate: Option<String>,
    pub promoted: bool,
    pub error: Option<String>,
    pub created_at: Option<String>,
}

impl JobSummary {
    /// Reads a job's JSON; `None` without an id.
    pub fn from_json(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            id: s("id").or_else(|| s("job_id"))?,
            status: s("status").unwrap_or_else(|| "unknown".into()),
            phase: s("phase").unwrap_or_default(),
            epochs_done: v
                .get("progress")
                .and_then(Value::as_array)
                .map_or(0, Vec::len),
            epochs: v.get("epochs").and_then(Value::as_u64).unwrap_or(0),
            candidate: s("candidate_version"),
            promoted: v.get("promoted").and_then(Value::as_bool).unwrap_or(false),
            error: s("error"),
            created_at: s("created_at"),
        })
    }

    /// Share of epochs done, in [0, 1], when the job reports its epochs.
    pub fn fraction(&self) -> Option<f64> {
        match (self.status.as_str(), self.epochs) {
            ("succeeded", _) => Some(1.0),
            (_, 0) => None,
            (_, n) => Some((self.epochs_done as f64 / n as f64).min(1.0)),
        }
    }

    /// Still running: the page keeps polling it.
    pub fn is_running(&self) -> bool {
        matches!(self.status.as_str(), "running" | "queued" | "pending")
    }
}

/// Jobs from `GET /retrain`: a `{"items": [...]}` page or a bare array.
pub fn jobs_from_json(v: &Value) -> Vec<JobSummary> {
    let list = v
        .get("items")
        .and_then(Value::as_array)
        .or_else(|| v.as_array());
    list.map(|items| items.iter().filter_map(JobSummary::from_json).collect())
        .unwrap_or_default()
}

/// Whether an inspection has a box of `class` (the queue's class filter).
pub fn has_class(i: &Inspection, class: &str) -> bool {
    class.is_empty() || i.detections.iter().any(|d| d.class == class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inspection_json() -> Value {
        json!({
            "id": "insp_1", "ingest_key": "k", "image_key": "uploads/a.jpg", "camera_id": "line-a",
            "filename": "a.jpg", "created_at": "2026-03-01T10:00:00Z", "updated_at": "2026-03-01T10:00:00Z",
            "model_version": "v1", "detections": [{"class": "stain", "confidence": 0.4, "bbox": [0.1, 0.1, 0.2, 0.2]}],
            "decision": "clean", "confidence": 0.55, "threshold_used": 0.6, "status": "reviewed",
            "audit_sample": false, "version": 4,
            "review": {"reviewer": "bob", "verdict": "defective", "detections": [], "notes": "chip", "reviewed_at": "2026-03-01T10:05:00Z"},
            "image_url": "/blobs/uploads/a.jpg?sig=x", "overridden": true
        })
    }

    #[test]
    fn an_api_inspection_reads_into_core_types_plus_its_url() {
        let v: InspectionView = serde_json::from_value(inspection_json()).expect("parses");
        assert_eq!(v.inspection.camera_id, "line-a");
        assert_eq!(v.image_url, "/blobs/uploads/a.jpg?sig=x");
        assert!(has_class(&v.inspection, "stain"));
        assert!(!has_class(&v.inspection, "fracture"));
        assert!(has_class(&v.inspection, ""));
    }

    #[test]
    fn a_conflict_carries_the_other_reviewers_result() {
        let body: ConflictBody = serde_json::from_value(json!({
            "error": "stale version 3: the record is at version 4",
            "current": inspection_json(),
        }))
        .expect("parses");
        let current = body.current_inspection().expect("an inspection");
        let review = current.review.expect("reviewed");
        assert_eq!(review.reviewer, "bob");
        assert_eq!(review.notes, "chip");
    }

    #[test]
    fn retrain_jobs_are_read_leniently_with_progress() {
        let page = json!({"items": [
            {"id": "job-1", "status": "running", "phase": "train", "epochs": 10, "progress": [{}, {}, {}]},
            {"id": "job-0", "status": "succeeded", "candidate_version": "v2", "promoted": true},
            {"status": "no id, skipped"}
        ]});
        let jobs = jobs_from_json(&page);
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].fraction(), Some(0.3));
        assert!(jobs[0].is_running());
        assert_eq!(jobs[1].fraction(), Some(1.0));
        assert_eq!(jobs[1].candidate.as_deref(), Some("v2"));
        assert!(jobs_from_json(&json!([{"id": "x"}]))[0]
            .fraction()
            .is_none());
    }
}
