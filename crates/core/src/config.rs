//! Operator settings: thresholds, audit sampling, retraining and drift windows.
//! Validated in one place so that every door (HTTP, CLI, Lambda) refuses the same things.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Settings that change how parts are routed and when the system reacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Config {
    /// Decision confidence below this sends the part to review. In (0, 1].
    pub threshold: f32,
    /// Per-class overrides of `threshold`, by class name. Each in (0, 1].
    pub class_thresholds: BTreeMap<String, f32>,
    /// Class score at or above which a box counts as a found defect (the part is then
    /// `defective`); below it the part is `clean`. In (0, 1).
    pub decision_cut: f32,
    /// Share of auto-validated parts also sent to review as an audit sample. In [0, 1].
    pub audit_rate: f32,
    /// New reviewed items needed before a retraining starts by itself. At least 1.
    pub retrain_min: u32,
    /// How long a reviewer's claim holds, in seconds. 10 s to 24 h.
    pub lease_seconds: u32,
    pub drift: DriftConfig,
    /// Largest drop of mAP50-95 or recall (on the holdout or any slice) that the
    /// promotion gate tolerates in a candidate. In [0, 0.5].
    pub gate_tolerance: f32,
    /// Share of reviewed items frozen into the holdout that judges models. In [0.05, 0.5].
    pub holdout_share: f32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            threshold: 0.6,
            class_thresholds: BTreeMap::new(),
            decision_cut: 0.5,
            audit_rate: 0.05,
            retrain_min: 10,
            lease_seconds: 300,
            drift: DriftConfig::default(),
            gate_tolerance: 0.02,
            holdout_share: 0.2,
        }
    }
}

/// How drift is measured: which inspections form the baseline and the recent window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DriftConfig {
    /// Number of inspections in the baseline window (the oldest ones, or the ones
    /// right before the recent window when `trailing`).
    pub baseline_window: u32,
    /// Number of most recent inspections compared against the baseline.
    pub recent_window: u32,
    /// Drop of average decision confidence (baseline − recent) that counts as drift. In (0, 1].
    pub tolerance: f32,
    /// Fewer samples than this in either window reports "not enough data".
    pub min_samples: u32,
    /// Baseline is the window right before the recent one (true) or the first
    /// inspections ever recorded (false, a fixed reference period).
    pub trailing: bool,
    /// PSI (population stability index, on 10 baseline-quantile bins) above which a
    /// distribution counts as shifted. The industry's rule of thumb: < 0.1 stable,
    /// 0.1–0.25 moderate, > 0.25 major. In (0, 10].
    pub psi_threshold: f32,
    /// Wasserstein distance of decision confidence (in confidence units: how far the
    /// confidences moved on average) that counts as drift. In (0, 1].
    pub confidence_wasserstein: f32,
    /// Wasserstein distance of an image statistic (brightness, contrast, sharpness), in
    /// standard deviations of the baseline, that counts as drift. In (0, 100].
    pub image_shift_sd: f32,
    /// Rise of the reviewers' override rate or of the audit-sample miss rate (recent −
    /// baseline, a share) that counts as drift. In (0, 1].
    pub rate_increase: f32,
    /// Cramér's V between the baseline's and the recent window's predicted class mix that
    /// counts as drift. In (0, 1].
    pub class_mix_v: f32,
    /// Fewer reviewed items than this in either window makes the override-rate and the
    /// audit-miss-rate signals say "not enough data". At least 1.
    pub min_reviews: u32,
    /// How many null standard deviations a statistic must clear beyond what equal
    /// distributions reach by chance at the windows' sizes: the effective threshold is
    /// `max(configured distance, noise floor at noise_z)`. In [0, 20].
    pub noise_z: f32,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            baseline_window: 200,
            recent_window: 50,
            tolerance: 0.1,
            min_samples: 20,
            trailing: false,
            psi_threshold: 0.25,
            confidence_wasserstein: 0.05,
            image_shift_sd: 0.5,
            rate_increase: 0.1,
            class_mix_v: 0.2,
            min_reviews: 20,
            noise_z: 4.0,
        }
    }
}

/// Largest drift window: every drift evaluation reads this many records at most.
pub const MAX_DRIFT_WINDOW: u32 = 10_000;

impl Config {
    /// The threshold that applies to a decision driven by class `class`
    /// (`None`: no class involved, e.g. an empty image).
    pub fn threshold_for(&self, class: Option<&str>) -> f32 {
        class
            .and_then(|c| self.class_thresholds.get(c).copied())
            .unwrap_or(self.threshold)
    }

    /// Checks every range; the error names the first bad field.
    pub fn validate(&self) -> Result<(), DomainError> {
        let unit_open = |name: &str, v: f32| {
            if v.is_finite() && v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(DomainError::Invalid(format!(
                    "{name} must be in (0, 1], got {v}"
                )))
            }
        };
        unit_open("threshold", self.threshold)?;
        for (class, t) in &self.class_thresholds {
            if class.trim().is_empty() {
                return Err(DomainError::Invalid(
                    "class_thresholds has an empty class name".into(),
                ));
            }
            unit_open(&format!("class_thresholds.{class}"), *t)?;
        }
        if !(self.decision_cut.is_finite() && self.decision_cut > 0.0 && self.decision_cut < 1.0) {
            return Err(DomainError::Invalid(format!(
                "decision_cut must be in (0, 1), got {}",
                self.decision_cut
            )));
        }
        if !(self.audit_rate.is_finite() && (0.0..=1.0).contains(&self.audit_rate)) {
            return Err(DomainError::Invalid(format!(
                "audit_rate must be in [0, 1], got {}",
                self.audit_rate
            )));
        }
        if self.retrain_min < 1 {
            return Err(DomainError::Invalid(
                "retrain_min must be at least 1".into(),
            ));
        }
        if !(10..=86_400).contains(&self.lease_seconds) {
            return Err(DomainError::Invalid(format!(
                "lease_seconds must be in [10, 86400], got {}",
                self.lease_seconds
            )));
        }
        if !(self.gate_tolerance.is_finite() && (0.0..=0.5).contains(&self.gate_tolerance)) {
            return Err(DomainError::Invalid(format!(
                "gate_tolerance must be in [0, 0.5], got {}",
                self.gate_tolerance
            )));
        }
        if !(self.holdout_share.is_finite() && (0.05..=0.5).contains(&self.holdout_share)) {
            return Err(DomainError::Invalid(format!(
                "holdout_share must be in [0.05, 0.5], got {}",
                self.holdout_share
            )));
        }
        let d = &self.drift;
        unit_open("drift.tolerance", d.tolerance)?;
        if d.recent_window < 1 || d.baseline_window < 1 {
            return Err(DomainError::Invalid(
                "drift windows must hold at least 1 inspection".into(),
            ));
        }
        if d.recent_window > MAX_DRIFT_WINDOW || d.baseline_window > MAX_DRIFT_WINDOW {
            return Err(DomainError::Invalid(format!(
                "drift windows may hold at most {MAX_DRIFT_WINDOW} inspections"
            )));
        }
        if d.min_samples < 1 {
            return Err(DomainError::Invalid(
                "drift.min_samples must be at least 1".into(),
            ));
        }
        if d.min_reviews < 1 {
            return Err(DomainError::Invalid(
                "drift.min_reviews must be at least 1".into(),
            ));
        }
        let in_range = |name: &str, v: f32, max: f32| {
            if v.is_finite() && v > 0.0 && v <= max {
                Ok(())
            } else {
                Err(DomainError::Invalid(format!(
                    "drift.{name} must be in (0, {max}], got {v}"
                )))
            }
        };
        in_range("psi_threshold", d.psi_threshold, 10.0)?;
        in_range("confidence_wasserstein", d.confidence_wasserstein, 1.0)?;
        in_range("image_shift_sd", d.image_shift_sd, 100.0)?;
        in_range("rate_increase", d.rate_increase, 1.0)?;
        in_range("class_mix_v", d.class_mix_v, 1.0)?;
        if !(d.noise_z.is_finite() && (0.0..=20.0).contains(&d.noise_z)) {
            return Err(DomainError::Invalid(format!(
                "drift.noise_z must be in [0, 20], got {}",
                d.noise_z
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_with_the_seed_threshold() {
        let c = Config::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.threshold, 0.6);
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_field() {
        let mut c = Config {
            threshold: 0.0,
            ..Config::default()
        };
        assert!(matches!(c.validate(), Err(DomainError::Invalid(m)) if m.contains("threshold")));
        c.threshold = 0.7;
        c.audit_rate = 1.5;
        assert!(matches!(c.validate(), Err(DomainError::Invalid(m)) if m.contains("audit_rate")));
        c.audit_rate = f32::NAN;
        assert!(c.validate().is_err());
        c.audit_rate = 0.0;
        c.class_thresholds.insert("stain".into(), 1.2);
        assert!(matches!(c.validate(), Err(DomainError::Invalid(m)) if m.contains("stain")));
    }

    #[test]
    fn class_override_applies_only_to_its_class() {
        let mut c = Config::default();
        c.class_thresholds.insert("fracture".into(), 0.9);
        assert_eq!(c.threshold_for(Some("fracture")), 0.9);
        assert_eq!(c.threshold_for(Some("stain")), 0.6);
        assert_eq!(c.threshold_for(None), 0.6);
    }

    #[test]
    fn partial_json_fills_defaults() {
        let c: Config = serde_json::from_str(r#"{"threshold": 0.7}"#).expect("parse");
        assert_eq!(c.threshold, 0.7);
        assert_eq!(c.retrain_min, 10);
    }
}
