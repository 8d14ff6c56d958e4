//! Drift analytics: is the line still what the model knows? The first signal is the seed
//! contract — a drop of average decision confidence from a baseline window to the recent
//! one. Further signals (PSI, Wasserstein, KS on confidences and image statistics,
//! override rate, class mix) join [`DriftReport::signals`] without changing its shape.
//!
//! A window with fewer than `min_samples` values makes the report say `enough_data:
//! false` (and `drift_detected: false`) — it never silently reports "no drift". Non-finite
//! values are skipped and values outside `[0, 1]` clamped; the counts are of the values used.

use serde::{Deserialize, Serialize};

use crate::config::DriftConfig;

/// The answer of `GET /drift/`: the seed's four fields first, then the details.
///
/// Serialises as `{"drift_detected", "drift_score", "recent_avg", "baseline_avg",
/// "baseline_n", "recent_n", "enough_data", "tolerance", "signals"}` in that order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriftReport {
    /// `enough_data && drift_score > tolerance`.
    pub drift_detected: bool,
    /// `baseline_avg − recent_avg` of decision confidence (positive: confidence fell);
    /// 0 when a window is empty.
    pub drift_score: f64,
    /// Mean decision confidence of the recent window (0 when empty).
    pub recent_avg: f64,
    /// Mean decision confidence of the baseline window (0 when empty).
    pub baseline_avg: f64,
    pub baseline_n: usize,
    pub recent_n: usize,
    /// Both windows hold at least `min_samples` values.
    pub enough_data: bool,
    /// The drop of average confidence that counts as drift (`DriftConfig::tolerance`).
    pub tolerance: f64,
    /// Every test that was run, the mean-confidence drop first.
    pub signals: Vec<DriftSignal>,
}

/// One drift test on one feature, comparing the baseline window with the recent one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriftSignal {
    /// Stable identifier, `<feature>.<statistic>` (`confidence.mean_drop`).
    pub name: String,
    /// What was measured: `confidence`, `brightness`, `sharpness`, `override_rate`,
    /// `class_mix`, …
    pub feature: String,
    pub statistic: DriftStatistic,
    /// The statistic's value (its unit depends on the statistic).
    pub value: f64,
    /// `value` above this counts as drift.
    pub threshold: f64,
    /// `enough_data && value > threshold`.
    pub detected: bool,
    pub baseline_n: usize,
    pub recent_n: usize,
    pub enough_data: bool,
    /// Summary of the feature in the baseline window (its mean, for scalar features).
    pub baseline: Option<f64>,
    /// Summary of the feature in the recent window.
    pub recent: Option<f64>,
    /// For statistical tests: the p-value of "no change".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
}

/// Which statistic a [`DriftSignal`] computed. More will be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DriftStatistic {
    /// Baseline mean minus recent mean (a drop is positive).
    MeanDrop,
    /// Population stability index over binned values.
    Psi,
    /// First Wasserstein (earth mover's) distance between the two samples.
    Wasserstein,
    /// Two-sample Kolmogorov–Smirnov statistic (largest CDF gap).
    KolmogorovSmirnov,
    /// Chi-square test of a categorical mix (classes, verdicts).
    ChiSquare,
    /// Difference of two rates (e.g. the reviewers' override rate).
    RateChange,
}

impl DriftStatistic {
    /// The wire name (`mean_drop`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            DriftStatistic::MeanDrop => "mean_drop",
            DriftStatistic::Psi => "psi",
            DriftStatistic::Wasserstein => "wasserstein",
            DriftStatistic::KolmogorovSmirnov => "kolmogorov_smirnov",
            DriftStatistic::ChiSquare => "chi_square",
            DriftStatistic::RateChange => "rate_change",
        }
    }
}

/// Compares the decision confidences of a `baseline` window with a `recent` one.
pub fn drift_report(baseline: &[f32], recent: &[f32], cfg: &DriftConfig) -> DriftReport {
    let base = usable(baseline);
    let rec = usable(recent);
    let min = cfg.min_samples as usize;
    let enough_data = base.len() >= min && rec.len() >= min;
    let baseline_avg = mean(&base).unwrap_or(0.0);
    let recent_avg = mean(&rec).unwrap_or(0.0);
    let drift_score = if base.is_empty() || rec.is_empty() {
        0.0
    } else {
        baseline_avg - recent_avg
    };
    let tolerance = f64::from(cfg.tolerance);
    let drift_detected = enough_data && drift_score > tolerance;
    let mean_drop = DriftSignal {
        name: "confidence.mean_drop".into(),
        feature: "confidence".into(),
        statistic: DriftStatistic::MeanDrop,
        value: drift_score,
        threshold: tolerance,
        detected: drift_detected,
        baseline_n: base.len(),
        recent_n: rec.len(),
        enough_data,
        baseline: mean(&base),
        recent: mean(&rec),
        p_value: None,
    };
    DriftReport {
        drift_detected,
        drift_score,
        recent_avg,
        baseline_avg,
        baseline_n: base.len(),
        recent_n: rec.len(),
        enough_data,
        tolerance,
        signals: vec![mean_drop],
    }
}

/// Splits a series ordered oldest first into `(baseline, recent)` windows as `cfg` says:
/// recent is the last `recent_window` values; the baseline is the `baseline_window` values
/// right before it (`trailing`) or the first `baseline_window` values ever (a fixed
/// reference period). The windows never overlap, so a short history gives a short baseline.
pub fn drift_windows<'a, T>(series: &'a [T], cfg: &DriftConfig) -> (&'a [T], &'a [T]) {
    let recent_n = (cfg.recent_window as usize).min(series.len());
    let (older, recent) = series.split_at(series.len() - recent_n);
    let base_n = (cfg.baseline_window as usize).min(older.len());
    let baseline = if cfg.trailing {
        &older[older.len() - base_n..]
    } else {
        &older[..base_n]
    };
    (baseline, recent)
}

fn usable(values: &[f32]) -> Vec<f64> {
    values
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| f64::from(v.clamp(0.0, 1.0)))
        .collect()
}

fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(min_samples: u32, tolerance: f32) -> DriftConfig {
        DriftConfig {
            min_samples,
            tolerance,
            ..DriftConfig::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn a_confidence_drop_beyond_tolerance_is_drift() {
        // baseline mean (0.9+0.8+0.9+0.8)/4 = 0.85; recent (0.6+0.7+0.65+0.65)/4 = 0.65.
        let r = drift_report(&[0.9, 0.8, 0.9, 0.8], &[0.6, 0.7, 0.65, 0.65], &cfg(4, 0.1));
        assert!(close(r.baseline_avg, 0.85));
        assert!(close(r.recent_avg, 0.65));
        assert!(close(r.drift_score, 0.20));
        assert!(r.enough_data);
        assert!(r.drift_detected);
        assert_eq!((r.baseline_n, r.recent_n), (4, 4));
        assert_eq!(r.signals.len(), 1);
        assert!(r.signals[0].detected);
        assert_eq!(r.signals[0].statistic, DriftStatistic::MeanDrop);
        assert_eq!(r.signals[0].name, "confidence.mean_drop");
    }

    #[test]
    fn a_drop_within_tolerance_is_not_drift() {
        // 0.85 − 0.80 = 0.05 ≤ 0.1.
        let r = drift_report(&[0.9, 0.8, 0.9, 0.8], &[0.8, 0.8, 0.8, 0.8], &cfg(4, 0.1));
        assert!(close(r.drift_score, 0.05));
        assert!(r.enough_data);
        assert!(!r.drift_detected);
    }

    #[test]
    fn rising_confidence_gives_a_negative_score_and_no_drift() {
        let r = drift_report(&[0.5, 0.5], &[0.9, 0.7], &cfg(2, 0.1));
        assert!(close(r.drift_score, -0.3));
        assert!(!r.drift_detected);
    }

    #[test]
    fn too_few_samples_say_not_enough_data_rather_than_no_drift() {
        // A huge drop, but the recent window holds 2 < 3 values.
        let r = drift_report(&[0.9, 0.9, 0.9], &[0.1, 0.1], &cfg(3, 0.1));
        assert!(!r.enough_data);
        assert!(!r.drift_detected);
        assert!(close(r.drift_score, 0.8), "the score is still reported");
        assert!(!r.signals[0].enough_data);
    }

    #[test]
    fn empty_windows_report_zeros_and_not_enough_data() {
        let r = drift_report(&[], &[], &DriftConfig::default());
        assert_eq!(
            (r.drift_score, r.recent_avg, r.baseline_avg),
            (0.0, 0.0, 0.0)
        );
        assert_eq!((r.baseline_n, r.recent_n), (0, 0));
        assert!(!r.enough_data);
        assert_eq!(r.signals[0].baseline, None);
    }

    #[test]
    fn non_finite_values_are_skipped_and_out_of_range_ones_clamped() {
        // baseline uses [1.0 (clamped), 0.8] → 0.9; recent uses [0.0 (clamped), 0.6] → 0.3.
        let r = drift_report(
            &[1.5, f32::NAN, 0.8],
            &[-1.0, 0.6, f32::INFINITY],
            &cfg(2, 0.1),
        );
        assert_eq!((r.baseline_n, r.recent_n), (2, 2));
        assert!(close(r.baseline_avg, 0.9));
        assert!(close(r.recent_avg, 0.3));
        assert!(r.drift_detected);
    }

    #[test]
    fn report_serialises_with_the_seed_fields_first() {
        // Values exact in binary, so the JSON text is exact too.
        let r = drift_report(&[0.75; 3], &[0.5; 3], &cfg(3, 0.125));
        let json = serde_json::to_string(&r).expect("json");
        assert!(
            json.starts_with(
                r#"{"drift_detected":true,"drift_score":0.25,"recent_avg":0.5,"baseline_avg":0.75,"baseline_n":3,"recent_n":3,"enough_data":true,"tolerance":0.125,"signals":["#
            ),
            "{json}"
        );
        assert!(json.contains(r#""signals":[{"name":"confidence.mean_drop","feature":"confidence","statistic":"mean_drop""#), "{json}");
        let back: DriftReport = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, r);
    }

    #[test]
    fn fixed_baseline_is_the_oldest_window_and_trailing_the_one_before_recent() {
        let series: Vec<u32> = (0..10).collect();
        let mut c = DriftConfig {
            baseline_window: 3,
            recent_window: 4,
            ..DriftConfig::default()
        };
        assert_eq!(
            drift_windows(&series, &c),
            (&[0, 1, 2][..], &[6, 7, 8, 9][..])
        );
        c.trailing = true;
        assert_eq!(
            drift_windows(&series, &c),
            (&[3, 4, 5][..], &[6, 7, 8, 9][..])
        );
    }

    #[test]
    fn short_history_gives_non_overlapping_short_windows() {
        let series = [1, 2, 3, 4, 5];
        let c = DriftConfig {
            baseline_window: 200,
            recent_window: 3,
            ..DriftConfig::default()
        };
        assert_eq!(drift_windows(&series, &c), (&[1, 2][..], &[3, 4, 5][..]));
        let empty: [u8; 0] = [];
        assert_eq!(drift_windows(&empty, &c), (&[][..], &[][..]));
    }

    #[test]
    fn statistic_wire_names_match_serde() {
        for s in [
            DriftStatistic::MeanDrop,
            DriftStatistic::Psi,
            DriftStatistic::Wasserstein,
            DriftStatistic::KolmogorovSmirnov,
            DriftStatistic::ChiSquare,
            DriftStatistic::RateChange,
        ] {
            assert_eq!(serde_json::to_value(s).expect("json"), s.as_str());
        }
    }
}
