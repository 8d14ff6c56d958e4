//! The promotion gate: may a freshly trained candidate replace the active model?
//!
//! Both models are scored on the same frozen holdout (reviewed items no training ever
//! saw), overall and per slice (a camera, the shipped line's replay set). The candidate
//! is promoted only if, on the overall holdout and on every slice both were scored on,
//! neither mAP50-95 nor recall drops by more than the tolerance, and on the overall
//! holdout at least one of the two strictly improves. Recall is gated because a missed
//! defect is the costly error on a line; mAP50-95 because it sees box quality and
//! precision that recall alone would let slide. Pure and deterministic: the caller
//! measures, this decides.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::MetricSet;

/// One model's scores on the gate's holdout.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GateScores {
    /// On the whole reviewed holdout.
    pub overall: MetricSet,
    /// By slice name (`camera:cam-1`, `line:shipped`).
    #[serde(default)]
    pub slices: BTreeMap<String, MetricSet>,
    /// Images in the reviewed holdout.
    pub images: usize,
    /// Ground-truth boxes in the reviewed holdout.
    pub labels: usize,
}

/// What the gate decided, why, and on which numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GateDecision {
    pub promote: bool,
    /// One line per rule that decided (a regression, the improvement, or its absence).
    pub reasons: Vec<String>,
    /// Largest allowed drop of mAP50-95 and of recall.
    pub tolerance: f64,
    pub candidate: GateScores,
    pub active: GateScores,
}

/// Decides on `candidate` against `active`, allowing drops up to `tolerance`.
pub fn decide(candidate: &GateScores, active: &GateScores, tolerance: f64) -> GateDecision {
    let mut regressions = Vec::new();
    let mut check = |slice: &str, c: &MetricSet, a: &MetricSet| {
        for (name, cv, av) in [
            ("mAP50-95", c.map50_95, a.map50_95),
            ("recall", c.recall, a.recall),
        ] {
            if av - cv > tolerance + 1e-12 {
                regressions.push(format!(
                    "{name} on {slice} drops from {av:.4} to {cv:.4} (more than {tolerance})"
                ));
            }
        }
    };
    check("the holdout", &candidate.overall, &active.overall);
    for (slice, c) in &candidate.slices {
        if let Some(a) = active.slices.get(slice) {
            check(slice, c, a);
        }
    }
    let mut reasons = regressions;
    let mut promote = reasons.is_empty();
    if candidate.labels == 0 && candidate.images == 0 {
        promote = false;
        reasons.push("the holdout is empty: nothing to judge the candidate on".into());
    } else {
        let c = &candidate.overall;
        let a = &active.overall;
        let better: Vec<String> = [
            ("mAP50-95", c.map50_95, a.map50_95),
            ("recall", c.recall, a.recall),
        ]
        .into_iter()
        .filter(|(_, cv, av)| cv > av)
        .map(|(name, cv, av)| format!("{name} improves from {av:.4} to {cv:.4}"))
        .collect();
        if better.is_empty() {
            promote = false;
            reasons.push(format!(
                "neither mAP50-95 ({:.4} vs {:.4}) nor recall ({:.4} vs {:.4}) improves",
                c.map50_95, a.map50_95, c.recall, a.recall
            ));
        } else if promote {
            reasons.extend(better);
        }
    }
    GateDecision {
        promote,
        reasons,
        tolerance,
        candidate: candidate.clone(),
        active: active.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(map50_95: f64, recall: f64) -> MetricSet {
        MetricSet {
            precision: 0.8,
            recall,
            map50: map50_95 + 0.2,
            map50_95,
        }
    }

    fn scores(overall: MetricSet, slices: &[(&str, MetricSet)]) -> GateScores {
        GateScores {
            overall,
            slices: slices.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            images: 10,
            labels: 12,
        }
    }

    #[test]
    fn gate_decisions_on_constructed_score_pairs() {
        let tol = 0.02;
        // (case, candidate, active, promote?)
        let table: &[(&str, GateScores, GateScores, bool)] = &[
            (
                "both better",
                scores(m(0.60, 0.80), &[]),
                scores(m(0.50, 0.70), &[]),
                true,
            ),
            (
                "map better, recall equal",
                scores(m(0.55, 0.70), &[]),
                scores(m(0.50, 0.70), &[]),
                true,
            ),
            (
                "recall better, map drops within tolerance",
                scores(m(0.49, 0.75), &[]),
                scores(m(0.50, 0.70), &[]),
                true,
            ),
            (
                "recall better, map drops beyond tolerance",
                scores(m(0.45, 0.90), &[]),
                scores(m(0.50, 0.70), &[]),
                false,
            ),
            (
                "map better, recall drops beyond tolerance",
                scores(m(0.70, 0.60), &[]),
                scores(m(0.50, 0.70), &[]),
                false,
            ),
            (
                "identical scores: no improvement",
                scores(m(0.50, 0.70), &[]),
                scores(m(0.50, 0.70), &[]),
                false,
            ),
            (
                "both slightly worse within tolerance: no improvement",
                scores(m(0.49, 0.69), &[]),
                scores(m(0.50, 0.70), &[]),
                false,
            ),
            (
                "better overall but a slice regresses",
                scores(m(0.60, 0.80), &[("line:shipped", m(0.40, 0.60))]),
                scores(m(0.50, 0.70), &[("line:shipped", m(0.60, 0.80))]),
                false,
            ),
            (
                "better overall, slice within tolerance",
                scores(m(0.60, 0.80), &[("camera:a", m(0.59, 0.79))]),
                scores(m(0.50, 0.70), &[("camera:a", m(0.60, 0.80))]),
                true,
            ),
            (
                "slice only the candidate was scored on is ignored",
                scores(m(0.60, 0.80), &[("camera:new", m(0.0, 0.0))]),
                scores(m(0.50, 0.70), &[]),
                true,
            ),
        ];
        for (case, cand, active, want) in table {
            let d = decide(cand, active, tol);
            assert_eq!(d.promote, *want, "{case}: {:?}", d.reasons);
            assert!(
                !d.reasons.is_empty(),
                "{case}: a decision states its reasons"
            );
            assert_eq!(&d.candidate, cand);
            assert_eq!(&d.active, active);
        }
    }

    #[test]
    fn empty_holdout_never_promotes() {
        let empty = GateScores::default();
        let d = decide(&empty, &empty, 0.02);
        assert!(!d.promote);
        assert!(d.reasons.iter().any(|r| r.contains("empty")));
    }

    #[test]
    fn regression_reason_names_metric_and_slice() {
        let d = decide(
            &scores(m(0.60, 0.80), &[("camera:b", m(0.2, 0.8))]),
            &scores(m(0.50, 0.70), &[("camera:b", m(0.5, 0.8))]),
            0.01,
        );
        assert!(!d.promote);
        assert!(d
            .reasons
            .iter()
            .any(|r| r.contains("mAP50-95") && r.contains("camera:b")));
    }
}
