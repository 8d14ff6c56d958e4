//! What the Models page shows of a retraining job: the phase steps, the per-epoch
//! losses, and the gate's decision as rows of candidate-versus-active scores. Reads core's
//! `RetrainJob` and `GateDecision` as the API sends them.

use opti_core::gate::GateDecision;
use opti_core::retrain::{JobStatus, RetrainJob};
use opti_core::types::MetricSet;
use serde_json::Value;

/// A job's phases in the order it goes through them.
pub const PHASES: [&str; 5] = ["snapshot", "train", "evaluate", "gate", "done"];

/// The metrics shown for a score set, in column order.
pub const METRIC_NAMES: [&str; 4] = ["P", "R", "mAP50", "mAP50-95"];

/// The jobs of `GET /retrain` (`{"items": [...]}` or a bare array) that read as core's
/// `RetrainJob`, newest first as the API lists them.
pub fn jobs(v: &Value) -> Vec<RetrainJob> {
    let list = v
        .get("items")
        .and_then(Value::as_array)
        .or_else(|| v.as_array());
    list.map(|items| {
        items
            .iter()
            .filter_map(|j| serde_json::from_value(j.clone()).ok())
            .collect()
    })
    .unwrap_or_default()
}

/// Where `phase` stands among [`PHASES`]: `(done, current)` per step.
pub fn phase_steps(job: &RetrainJob) -> Vec<(&'static str, PhaseState)> {
    let at = PHASES.iter().position(|p| *p == job.phase);
    PHASES
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let state = match (at, job.status) {
                (_, JobStatus::Succeeded) => PhaseState::Done,
                (Some(a), _) if i < a => PhaseState::Done,
                (Some(a), JobStatus::Running) if i == a => PhaseState::Current,
                (Some(a), JobStatus::Failed) if i == a => PhaseState::Failed,
                _ => PhaseState::Ahead,
            };
            (*p, state)
        })
        .collect()
}

/// One phase step's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseState {
    Done,
    Current,
    Failed,
    Ahead,
}

impl PhaseState {
    /// The CSS class of the step.
    pub fn class(self) -> &'static str {
        match self {
            PhaseState::Done => "done",
            PhaseState::Current => "current",
            PhaseState::Failed => "failed",
            PhaseState::Ahead => "ahead",
        }
    }
}

/// `epoch 1/3 · phase train`: what the job is doing now, in words.
pub fn progress_line(job: &RetrainJob) -> String {
    let epoch = job.progress.last().map_or(0, |p| p.epoch);
    format!("epoch {epoch}/{} · phase {}", job.epochs, job.phase)
}

/// The metrics of a score set as shown, in [`METRIC_NAMES`] order (3 decimals).
pub fn metric_cells(m: &MetricSet) -> [String; 4] {
    [m.precision, m.recall, m.map50, m.map50_95].map(|v| format!("{v:.3}"))
}

/// The gate's score table: `overall` first, then every slice either side scored, each
/// with the candidate's and the active model's metrics where that side has the slice.
pub fn score_rows(gate: &GateDecision) -> Vec<(String, Option<MetricSet>, Option<MetricSet>)> {
    let mut rows = vec![(
        "overall".to_string(),
        Some(gate.candidate.overall),
        Some(gate.active.overall),
    )];
    let mut names: Vec<&String> = gate
        .candidate
        .slices
        .keys()
        .chain(gate.active.slices.keys())
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        rows.push((
            name.clone(),
            gate.candidate.slices.get(name).copied(),
            gate.active.slices.get(name).copied(),
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(status: &str, phase: &str) -> Value {
        json!({
            "id": "job-1", "status": status, "phase": phase, "trigger": "manual",
            "requested_by": "token:admin", "created_at": "2026-03-01T10:00:00Z",
            "updated_at": "2026-03-01T10:01:00Z", "finished_at": null, "reviewed_count": 12,
            "parent_version": "v2", "snapshot_id": "abc", "snapshot": null, "epochs": 2,
            "progress": [{"epoch": 1, "epochs": 2, "losses": {"box_loss": 1.5}, "elapsed_s": 9.0}],
            "candidate_version": null, "gate": null, "promoted": false, "error": null,
            "log_tail": [], "version": 3
        })
    }

    fn scores(recall: f64, slices: &[(&str, f64)]) -> Value {
        let m = |r: f64| json!({"precision": 0.9, "recall": r, "map50": 0.8, "map50_95": 0.61234});
        let s: serde_json::Map<String, Value> =
            slices.iter().map(|(k, r)| (k.to_string(), m(*r))).collect();
        json!({"overall": m(recall), "slices": s, "images": 4, "labels": 6})
    }

    #[test]
    fn a_running_job_reads_with_its_phase_and_epoch() {
        let list = jobs(&json!({"items": [job("running", "train"), {"id": "broken"}]}));
        assert_eq!(list.len(), 1, "a job that is not a RetrainJob is left out");
        let j = &list[0];
        assert_eq!(progress_line(j), "epoch 1/2 · phase train");
        let steps: Vec<_> = phase_steps(j).into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            steps,
            vec![
                PhaseState::Done,
                PhaseState::Current,
                PhaseState::Ahead,
                PhaseState::Ahead,
                PhaseState::Ahead
            ]
        );
        let failed = jobs(&json!([job("failed", "evaluate")]));
        assert_eq!(phase_steps(&failed[0])[2].1, PhaseState::Failed);
        let done = jobs(&json!([job("succeeded", "done")]));
        assert!(phase_steps(&done[0])
            .iter()
            .all(|(_, s)| *s == PhaseState::Done));
    }

    #[test]
    fn the_gate_table_lists_overall_then_every_slice_of_either_side() {
        let gate: GateDecision = serde_json::from_value(json!({
            "promote": false, "reasons": ["recall on the holdout drops"], "tolerance": 0.02,
            "candidate": scores(0.5, &[("line:shipped", 0.9), ("camera:a", 0.4)]),
            "active": scores(0.7, &[("line:shipped", 0.95)]),
        }))
        .expect("a gate decision");
        let rows = score_rows(&gate);
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(names, vec!["overall", "camera:a", "line:shipped"]);
        assert!(
            rows[1].2.is_none(),
            "the active model has no camera:a slice"
        );
        let overall = rows[0].1.expect("candidate overall");
        assert_eq!(metric_cells(&overall), ["0.900", "0.500", "0.800", "0.612"]);
    }
}
