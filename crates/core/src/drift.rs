//! Drift analytics: is the line still what the model knows? A [`DriftReport`] compares a
//! baseline window of inspections with the recent one, per scope (`overall` and
//! `camera:<id>`), with one [`DriftSignal`] per (feature, statistic):
//!
//! - decision confidence: the seed's mean drop, PSI, Wasserstein, KS (information only);
//! - image statistics (brightness, contrast, log10 sharpness): PSI, Wasserstein in
//!   baseline standard deviations, KS (information only);
//! - reviewer override rate and audit-sample miss rate: the rise of the rate;
//! - class mix of the model's predictions: Cramér's V.
//!
//! Drift is decided on *distances* with thresholds from [`DriftConfig`], never on
//! p-values, so a large sample does not alarm on a trivial change; and each threshold is
//! raised to the statistic's noise floor at the windows' sizes (`noise_z` null standard
//! deviations), so small windows do not alarm on chance. A window below its minimum size
//! makes the signal say `enough_data: false` — never a silent "no drift". Why each
//! threshold is what it is: docs/drift.md. Non-finite values are skipped and confidences
//! outside `[0, 1]` clamped; the counts are of the values used.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::DriftConfig;
use crate::drift_stats as st;
use crate::types::{Decision, ImageStats, Inspection};

/// Scope of the whole line.
pub const OVERALL: &str = "overall";

/// The scope name of one camera/line: `camera:<id>`.
pub fn camera_scope(camera_id: &str) -> String {
    format!("camera:{camera_id}")
}

fn overall() -> String {
    OVERALL.to_string()
}

fn yes() -> bool {
    true
}

/// Overall verdict of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DriftStatus {
    /// At least one alerting signal is beyond its threshold.
    Drift,
    /// Every alerting signal of the main scope had enough data and none is beyond its threshold.
    NoDrift,
    /// No signal alarms, but the main scope's windows are below their minimum sizes.
    #[default]
    NotEnoughData,
}

/// The answer of `GET /drift/`: the seed's four fields first, then the details.
///
/// Serialises as `{"drift_detected", "drift_score", "recent_avg", "baseline_avg",
/// "baseline_n", "recent_n", "enough_data", "tolerance", "status", "scope", "alarms",
/// "signals"}` in that order. The fields before `status` describe the decision
/// confidence of the main scope (the first evaluated: `overall`, or the camera asked for).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriftReport {
    /// True when any alerting signal of any scope is beyond its threshold (see `alarms`).
    pub drift_detected: bool,
    /// `baseline_avg − recent_avg` of decision confidence (positive: confidence fell);
    /// 0 when a window is empty. The seed's single number, kept for its readers.
    pub drift_score: f64,
    /// Mean decision confidence of the recent window (0 when empty).
    pub recent_avg: f64,
    /// Mean decision confidence of the baseline window (0 when empty).
    pub baseline_avg: f64,
    pub baseline_n: usize,
    pub recent_n: usize,
    /// Both confidence windows of the main scope hold at least `min_samples` values.
    pub enough_data: bool,
    /// The drop of average confidence that counts as drift (`DriftConfig::tolerance`).
    pub tolerance: f64,
    /// `drift`, `no_drift` or `not_enough_data`.
    #[serde(default)]
    pub status: DriftStatus,
    /// The main scope: `overall` or `camera:<id>`.
    #[serde(default = "overall")]
    pub scope: String,
    /// `<scope>/<signal name>` of every alerting signal beyond its threshold.
    #[serde(default)]
    pub alarms: Vec<String>,
    /// Every test that was run, scope by scope, the main scope's mean-confidence drop first.
    pub signals: Vec<DriftSignal>,
}

/// One drift test on one feature in one scope, comparing the baseline window with the
/// recent one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriftSignal {
    /// Stable identifier, `<feature>.<statistic>` (`confidence.mean_drop`).
    pub name: String,
    /// What was measured: `confidence`, `brightness`, `contrast`, `sharpness`,
    /// `override_rate`, `audit_miss_rate`, `class_mix`.
    pub feature: String,
    pub statistic: DriftStatistic,
    /// The statistic's value (its unit depends on the statistic).
    pub value: f64,
    /// `value` above this counts as drift: the configured distance, raised to
    /// `noise_floor` when that is higher.
    pub threshold: f64,
    /// `enough_data && value > threshold`.
    pub detected: bool,
    pub baseline_n: usize,
    pub recent_n: usize,
    pub enough_data: bool,
    /// Summary of the feature in the baseline window (its mean, or its rate).
    pub baseline: Option<f64>,
    /// Summary of the feature in the recent window.
    pub recent: Option<f64>,
    /// For statistical tests: the p-value of "no change" (information only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// `overall` or `camera:<id>`.
    #[serde(default = "overall")]
    pub scope: String,
    /// Whether a detection raises an alarm (false for KS, which is reported for
    /// information: on large samples it flags trivial changes).
    #[serde(default = "yes")]
    pub alerting: bool,
    /// What equal distributions reach by chance at these window sizes (`noise_z` null
    /// standard deviations), when the statistic has such a floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_floor: Option<f64>,
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
    /// Wasserstein distance in standard deviations of the baseline.
    WassersteinSd,
    /// Cramér's V of the 2×k table baseline/recent × category.
    CramersV,
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
            DriftStatistic::WassersteinSd => "wasserstein_sd",
            DriftStatistic::CramersV => "cramers_v",
        }
    }

    /// The short name used in signal names (`confidence.psi`, `brightness.ks`).
    fn short(self) -> &'static str {
        match self {
            DriftStatistic::KolmogorovSmirnov => "ks",
            DriftStatistic::WassersteinSd => "wasserstein",
            other => other.as_str(),
        }
    }
}

/// What drift analytics needs of one inspection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DriftSample {
    /// Decision confidence.
    pub confidence: f32,
    /// Statistics of the input image, when they were computed.
    pub image: Option<ImageStats>,
    /// Classes the model found (boxes at or above the decision cut), deduplicated;
    /// empty for a part it called clean.
    pub classes: Vec<String>,
    /// `Some(changed)` once a reviewer judged it: whether the verdict or classes changed.
    pub overridden: Option<bool>,
    /// A random audit of the automation (not sent for uncertainty).
    pub audit_sample: bool,
}

impl DriftSample {
    /// The drift view of an inspection; `decision_cut` is the class score at which a box
    /// counts as a found defect (`Config::decision_cut`).
    pub fn from_inspection(i: &Inspection, decision_cut: f32) -> Self {
        let classes: BTreeSet<&str> = if i.decision == Some(Decision::Clean) {
            BTreeSet::new()
        } else {
            i.detections
                .iter()
                .filter(|d| d.confidence >= decision_cut)
                .map(|d| d.class.as_str())
                .collect()
        };
        DriftSample {
            confidence: i.confidence,
            image: i.image_stats,
            classes: classes.into_iter().map(str::to_owned).collect(),
            overridden: i.overridden(),
            audit_sample: i.audit_sample,
        }
    }

    /// A sample that carries only a decision confidence.
    pub fn confidence_only(confidence: f32) -> Self {
        DriftSample {
            confidence,
            ..DriftSample::default()
        }
    }
}

/// The two windows of one scope.
#[derive(Debug, Clone, Copy)]
pub struct ScopeWindows<'a> {
    /// `overall` or `camera:<id>`.
    pub scope: &'a str,
    pub baseline: &'a [DriftSample],
    pub recent: &'a [DriftSample],
}

/// Compares the decision confidences of a `baseline` window with a `recent` one (the
/// seed's entry point): confidence signals only, scope `overall`.
pub fn drift_report(baseline: &[f32], recent: &[f32], cfg: &DriftConfig) -> DriftReport {
    let to = |v: &[f32]| {
        v.iter()
            .map(|&c| DriftSample::confidence_only(c))
            .collect::<Vec<_>>()
    };
    let (b, r) = (to(baseline), to(recent));
    evaluate(
        &[ScopeWindows {
            scope: OVERALL,
            baseline: &b,
            recent: &r,
        }],
        cfg,
    )
}

/// Runs every signal on every scope. The report's top-level fields describe the first
/// scope (the main one); `drift_detected` and `alarms` cover all of them.
pub fn evaluate(scopes: &[ScopeWindows<'_>], cfg: &DriftConfig) -> DriftReport {
    let mut signals = Vec::new();
    for s in scopes {
        signals.extend(scope_signals(s, cfg));
    }
    let main = scopes.first().map_or(OVERALL, |s| s.scope).to_string();
    let seed = signals
        .iter()
        .find(|s| s.scope == main && s.statistic == DriftStatistic::MeanDrop);
    let alarms: Vec<String> = signals
        .iter()
        .filter(|s| s.alerting && s.detected)
        .map(signal_key)
        .collect();
    let enough_data = seed.is_some_and(|s| s.enough_data);
    let drift_detected = !alarms.is_empty();
    DriftReport {
        drift_detected,
        drift_score: seed.map_or(0.0, |s| s.value),
        recent_avg: seed.and_then(|s| s.recent).unwrap_or(0.0),
        baseline_avg: seed.and_then(|s| s.baseline).unwrap_or(0.0),
        baseline_n: seed.map_or(0, |s| s.baseline_n),
        recent_n: seed.map_or(0, |s| s.recent_n),
        enough_data,
        tolerance: f64::from(cfg.tolerance),
        status: if drift_detected {
            DriftStatus::Drift
        } else if enough_data {
            DriftStatus::NoDrift
        } else {
            DriftStatus::NotEnoughData
        },
        scope: main,
        alarms,
        signals,
    }
}

/// `<scope>/<name>`: how alarms and episodes name a signal.
pub fn signal_key(s: &DriftSignal) -> String {
    format!("{}/{}", s.scope, s.name)
}

/// What the alarm episodes look like after one more report.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlarmEpisodes {
    /// Signals (`<scope>/<name>`) in an open episode after this report, sorted.
    pub open: Vec<String>,
    /// Episodes this report opened: alert on these, and only these.
    pub raised: Vec<String>,
    /// Episodes this report closed (evaluated with enough data and back below threshold).
    pub cleared: Vec<String>,
}

/// Advances the alarm episodes: an episode opens when an alerting signal crosses its
/// threshold and stays open (without a new alert) until that signal is evaluated with
/// enough data and is back below it. A signal without enough data, or not evaluated at
/// all, keeps its state: a quiet hour is not a recovery.
pub fn advance_episodes(previously_open: &[String], report: &DriftReport) -> AlarmEpisodes {
    let mut open: BTreeSet<String> = previously_open.iter().cloned().collect();
    let mut raised = Vec::new();
    let mut cleared = Vec::new();
    for s in report.signals.iter().filter(|s| s.alerting) {
        let key = signal_key(s);
        if s.detected {
            if open.insert(key.clone()) {
                raised.push(key);
            }
        } else if s.enough_data && open.remove(&key) {
            cleared.push(key);
        }
    }
    AlarmEpisodes {
        open: open.into_iter().collect(),
        raised,
        cleared,
    }
}

/// One stored evaluation: the report, when it was made, the window it covered and the
/// alarm episodes after it. Serialises as the report's fields plus these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DriftRecord {
    /// Derived from `window_key`: one record per evaluated window.
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub evaluated_at: OffsetDateTime,
    /// Identifies the data evaluated (newest inspection, counts, reviews, config): an
    /// evaluation of an unchanged window is skipped.
    pub window_key: String,
    pub episodes: AlarmEpisodes,
    #[serde(flatten)]
    pub report: DriftReport,
}

/// How a continuous feature's Wasserstein distance is thresholded.
enum Distance {
    /// In the feature's own unit, against this threshold.
    Raw(f64),
    /// In baseline standard deviations, against this threshold.
    InSd(f64),
}

struct Ctx<'a> {
    scope: &'a str,
    cfg: &'a DriftConfig,
}

impl Ctx<'_> {
    #[allow(clippy::too_many_arguments)]
    fn signal(
        &self,
        feature: &str,
        statistic: DriftStatistic,
        value: Option<f64>,
        configured: f64,
        floor: Option<f64>,
        counts: (usize, usize),
        enough: bool,
        summaries: (Option<f64>, Option<f64>),
    ) -> DriftSignal {
        let value = value.unwrap_or(0.0);
        let floor = floor.filter(|f| f.is_finite());
        let threshold = floor.map_or(configured, |f| f.max(configured));
        // A statistic that could not be computed (an empty side) is not enough data.
        let enough = enough && value.is_finite();
        DriftSignal {
            name: format!("{feature}.{}", statistic.short()),
            feature: feature.to_string(),
            statistic,
            value: if value.is_finite() { value } else { 0.0 },
            threshold,
            detected: enough && value > threshold,
            baseline_n: counts.0,
            recent_n: counts.1,
            enough_data: enough,
            baseline: summaries.0,
            recent: summaries.1,
            p_value: None,
            scope: self.scope.to_string(),
            alerting: true,
            noise_floor: floor,
        }
    }

    /// PSI, Wasserstein and KS of one continuous feature.
    fn continuous(
        &self,
        feature: &str,
        base: &[f64],
        rec: &[f64],
        distance: Distance,
    ) -> Vec<DriftSignal> {
        let cfg = self.cfg;
        let z = f64::from(cfg.noise_z);
        let (nb, nr) = (base.len(), rec.len());
        let min = cfg.min_samples as usize;
        let enough = nb >= min && nr >= min && nb > 0 && nr > 0;
        let sums = (st::mean(base), st::mean(rec));
        let psi = st::psi(base, rec);
        let psi_signal = self.signal(
            feature,
            DriftStatistic::Psi,
            psi.map(|p| p.0),
            f64::from(cfg.psi_threshold),
            psi.map(|(_, bins)| st::psi_noise_floor(bins, nb, nr, z)),
            (nb, nr),
            enough,
            sums,
        );
        let w = st::wasserstein(base, rec);
        let sd = st::std_dev(base).unwrap_or(0.0);
        let w_floor_sd = st::wasserstein_noise_floor_sd(nb, nr, z);
        let w_signal = match distance {
            Distance::Raw(t) => self.signal(
                feature,
                DriftStatistic::Wasserstein,
                w,
                t,
                Some(w_floor_sd * sd),
                (nb, nr),
                enough,
                sums,
            ),
            Distance::InSd(t) => self.signal(
                feature,
                DriftStatistic::WassersteinSd,
                // A constant baseline: any move is "infinitely many" SDs; cap it.
                w.map(|w| (w / sd.max(1e-12)).min(1e6)),
                t,
                Some(w_floor_sd),
                (nb, nr),
                enough,
                sums,
            ),
        };
        let ks = st::ks_statistic(base, rec);
        // The distance KS reaches by chance at these sizes, for reading, not alarming.
        let ks_floor = (st::effective_n(nb, nr) > 0.0)
            .then(|| 1.95 / st::effective_n(nb, nr).sqrt())
            .filter(|f| f.is_finite());
        let mut ks_signal = self.signal(
            feature,
            DriftStatistic::KolmogorovSmirnov,
            ks,
            0.0,
            ks_floor,
            (nb, nr),
            enough,
            sums,
        );
        ks_signal.alerting = false;
        ks_signal.p_value = ks.and_then(|d| st::ks_p_value(d, nb, nr));
        vec![psi_signal, w_signal, ks_signal]
    }

    /// Rise of a share (override rate, audit miss rate) among the items that qualify.
    fn rate(&self, feature: &str, base: &[bool], rec: &[bool]) -> DriftSignal {
        let (nb, nr) = (base.len(), rec.len());
        let min = self.cfg.min_reviews as usize;
        let share = |v: &[bool]| {
            (!v.is_empty()).then(|| v.iter().filter(|x| **x).count() as f64 / v.len() as f64)
        };
        let (rb, rr) = (share(base), share(rec));
        let pooled =
            (base.iter().chain(rec).filter(|x| **x).count() as f64) / ((nb + nr).max(1) as f64);
        self.signal(
            feature,
            DriftStatistic::RateChange,
            rb.zip(rr).map(|(b, r)| r - b),
            f64::from(self.cfg.rate_increase),
            Some(st::rate_noise_floor(
                pooled,
                nb,
                nr,
                f64::from(self.cfg.noise_z),
            )),
            (nb, nr),
            nb >= min && nr >= min,
            (rb, rr),
        )
    }

    /// Cramér's V of the predicted class mix (`clean` plus each class found).
    fn class_mix(&self, base: &[DriftSample], rec: &[DriftSample]) -> DriftSignal {
        fn tally(v: &[DriftSample]) -> BTreeMap<&str, f64> {
            let mut m: BTreeMap<&str, f64> = BTreeMap::new();
            for s in v {
                if s.classes.is_empty() {
                    *m.entry("clean").or_default() += 1.0;
                }
                for c in &s.classes {
                    *m.entry(c.as_str()).or_default() += 1.0;
                }
            }
            m
        }
        let (tb, tr) = (tally(base), tally(rec));
        let cats: BTreeSet<&str> = tb.keys().chain(tr.keys()).copied().collect();
        let col = |t: &BTreeMap<&str, f64>| {
            cats.iter()
                .map(|c| t.get(c).copied().unwrap_or(0.0))
                .collect::<Vec<f64>>()
        };
        let (cb, cr) = (col(&tb), col(&tr));
        let (nb, nr) = (base.len(), rec.len());
        let min = self.cfg.min_samples as usize;
        let n_items: f64 = cb.iter().chain(&cr).sum();
        let v = if cats.len() == 1 && nb > 0 && nr > 0 {
            // One category on both sides: the mix is identical.
            Some((0.0, 1))
        } else {
            st::cramers_v(&cb, &cr)
        };
        let defect_share = |v: &[DriftSample]| {
            (!v.is_empty())
                .then(|| v.iter().filter(|s| !s.classes.is_empty()).count() as f64 / v.len() as f64)
        };
        self.signal(
            "class_mix",
            DriftStatistic::CramersV,
            v.map(|x| x.0),
            f64::from(self.cfg.class_mix_v),
            v.map(|(_, k)| {
                st::cramers_v_noise_floor(k.max(2), n_items as usize, f64::from(self.cfg.noise_z))
            }),
            (nb, nr),
            nb >= min && nr >= min,
            (defect_share(base), defect_share(rec)),
        )
    }
}

/// Every signal of one scope, the mean-confidence drop first.
fn scope_signals(w: &ScopeWindows<'_>, cfg: &DriftConfig) -> Vec<DriftSignal> {
    let ctx = Ctx {
        scope: w.scope,
        cfg,
    };
    let conf = |v: &[DriftSample]| usable(v.iter().map(|s| s.confidence));
    let (cb, cr) = (conf(w.baseline), conf(w.recent));
    let min = cfg.min_samples as usize;
    let enough = cb.len() >= min && cr.len() >= min;
    let (mb, mr) = (st::mean(&cb), st::mean(&cr));
    let mut out = vec![ctx.signal(
        "confidence",
        DriftStatistic::MeanDrop,
        Some(match (mb, mr) {
            (Some(b), Some(r)) => b - r,
            _ => 0.0,
        }),
        f64::from(cfg.tolerance),
        None,
        (cb.len(), cr.len()),
        enough,
        (mb, mr),
    )];
    out.extend(ctx.continuous(
        "confidence",
        &cb,
        &cr,
        Distance::Raw(f64::from(cfg.confidence_wasserstein)),
    ));
    type Pick = fn(&ImageStats) -> f64;
    let features: [(&str, Pick); 3] = [
        ("brightness", |s| f64::from(s.brightness)),
        ("contrast", |s| f64::from(s.contrast)),
        // Laplacian variance spans decades (and blur scales it): compare its logarithm.
        ("sharpness", |s| f64::from(s.sharpness).max(1e-9).log10()),
    ];
    for (name, pick) in features {
        let values = |v: &[DriftSample]| -> Vec<f64> {
            v.iter()
                .filter_map(|s| s.image.as_ref().map(pick))
                .filter(|x| x.is_finite())
                .collect()
        };
        out.extend(ctx.continuous(
            name,
            &values(w.baseline),
            &values(w.recent),
            Distance::InSd(f64::from(cfg.image_shift_sd)),
        ));
    }
    let overrides = |v: &[DriftSample]| v.iter().filter_map(|s| s.overridden).collect::<Vec<_>>();
    out.push(ctx.rate(
        "override_rate",
        &overrides(w.baseline),
        &overrides(w.recent),
    ));
    let misses = |v: &[DriftSample]| {
        v.iter()
            .filter(|s| s.audit_sample)
            .filter_map(|s| s.overridden)
            .collect::<Vec<_>>()
    };
    out.push(ctx.rate("audit_miss_rate", &misses(w.baseline), &misses(w.recent)));
    out.push(ctx.class_mix(w.baseline, w.recent));
    out
}

fn usable(values: impl Iterator<Item = f32>) -> Vec<f64> {
    values
        .filter(|v| v.is_finite())
        .map(|v| f64::from(v.clamp(0.0, 1.0)))
        .collect()
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
        assert_eq!(r.status, DriftStatus::Drift);
        assert!(r
            .alarms
            .contains(&"overall/confidence.mean_drop".to_string()));
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
        assert!(!r.signals[0].detected, "a rise is not a drop");
        // The distribution did move, though: the two-sided distances say so.
        assert!(r
            .alarms
            .contains(&"overall/confidence.wasserstein".to_string()));
    }

    #[test]
    fn too_few_samples_say_not_enough_data_rather_than_no_drift() {
        // A huge drop, but the recent window holds 2 < 3 values.
        let r = drift_report(&[0.9, 0.9, 0.9], &[0.1, 0.1], &cfg(3, 0.1));
        assert!(!r.enough_data);
        assert!(!r.drift_detected);
        assert!(close(r.drift_score, 0.8), "the score is still reported");
        assert!(!r.signals[0].enough_data);
        assert_eq!(r.status, DriftStatus::NotEnoughData);
        assert!(
            r.signals.iter().all(|s| !s.detected),
            "no signal decides on too little data"
        );
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
                r#"{"drift_detected":true,"drift_score":0.25,"recent_avg":0.5,"baseline_avg":0.75,"baseline_n":3,"recent_n":3,"enough_data":true,"tolerance":0.125,"status":"drift","scope":"overall","alarms":["overall/confidence.mean_drop"#
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
            DriftStatistic::WassersteinSd,
            DriftStatistic::CramersV,
        ] {
            assert_eq!(serde_json::to_value(s).expect("json"), s.as_str());
        }
    }

    /// Deterministic pseudo-random values in [0, 1) (an LCG; tests need no rand crate).
    fn uniform(seed: u64, n: usize) -> Vec<f64> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    /// A line part: confidence around 0.85, image stats around their usual values.
    fn parts(
        seed: u64,
        n: usize,
        brightness_shift: f32,
        sharpness_factor: f32,
    ) -> Vec<DriftSample> {
        let u = uniform(seed, n * 4);
        (0..n)
            .map(|i| DriftSample {
                confidence: (0.75 + 0.2 * u[4 * i]) as f32,
                image: Some(ImageStats {
                    width: 640,
                    height: 640,
                    brightness: (0.45 + 0.1 * u[4 * i + 1]) as f32 + brightness_shift,
                    contrast: (0.2 + 0.05 * u[4 * i + 2]) as f32,
                    sharpness: (0.01 + 0.01 * u[4 * i + 3]) as f32 * sharpness_factor,
                }),
                classes: if u[4 * i] < 0.3 {
                    vec!["stain".into()]
                } else {
                    vec![]
                },
                overridden: None,
                audit_sample: false,
            })
            .collect()
    }

    fn windows<'a>(scope: &'a str, b: &'a [DriftSample], r: &'a [DriftSample]) -> ScopeWindows<'a> {
        ScopeWindows {
            scope,
            baseline: b,
            recent: r,
        }
    }

    fn find<'a>(r: &'a DriftReport, scope: &str, name: &str) -> &'a DriftSignal {
        r.signals
            .iter()
            .find(|s| s.scope == scope && s.name == name)
            .unwrap_or_else(|| panic!("no signal {scope}/{name}"))
    }

    #[test]
    fn an_unchanged_line_raises_no_alarm_in_any_signal() {
        let c = DriftConfig::default();
        for seed in 0..20 {
            let (b, r) = (parts(seed, 200, 0.0, 1.0), parts(seed + 1000, 50, 0.0, 1.0));
            let rep = evaluate(&[windows(OVERALL, &b, &r)], &c);
            assert!(!rep.drift_detected, "seed {seed}: {:?}", rep.alarms);
            assert_eq!(rep.status, DriftStatus::NoDrift);
        }
    }

    #[test]
    fn a_brighter_camera_alarms_on_brightness_in_its_own_scope_only() {
        let c = DriftConfig::default();
        let (b, r) = (parts(1, 200, 0.0, 1.0), parts(2, 50, 0.0, 1.0));
        let bright = parts(3, 50, 0.08, 1.0);
        let rep = evaluate(
            &[
                windows(OVERALL, &b, &r),
                windows("camera:a", &b, &r),
                windows("camera:b", &b, &bright),
            ],
            &c,
        );
        assert!(rep.drift_detected);
        assert!(find(&rep, "camera:b", "brightness.psi").detected);
        assert!(find(&rep, "camera:b", "brightness.wasserstein").detected);
        assert!(!find(&rep, "camera:a", "brightness.psi").detected);
        assert!(
            rep.alarms
                .iter()
                .all(|a| a.starts_with("camera:b/brightness.")),
            "{:?}",
            rep.alarms
        );
        assert_eq!(rep.scope, OVERALL);
        let ks = find(&rep, "camera:b", "brightness.ks");
        assert!(!ks.alerting && ks.p_value.is_some_and(|p| p < 1e-3));
    }

    #[test]
    fn a_blurred_camera_alarms_on_sharpness_not_brightness() {
        let c = DriftConfig::default();
        let (b, r) = (parts(1, 200, 0.0, 1.0), parts(2, 50, 0.0, 0.3));
        let rep = evaluate(&[windows(OVERALL, &b, &r)], &c);
        assert!(find(&rep, OVERALL, "sharpness.wasserstein").detected);
        assert!(!find(&rep, OVERALL, "brightness.wasserstein").detected);
    }

    #[test]
    fn image_signals_without_image_stats_say_not_enough_data() {
        let c = DriftConfig::default();
        let strip = |v: Vec<DriftSample>| {
            v.into_iter()
                .map(|s| DriftSample { image: None, ..s })
                .collect::<Vec<_>>()
        };
        let (b, r) = (
            strip(parts(1, 200, 0.0, 1.0)),
            strip(parts(2, 50, 0.0, 1.0)),
        );
        let rep = evaluate(&[windows(OVERALL, &b, &r)], &c);
        let s = find(&rep, OVERALL, "brightness.psi");
        assert!(!s.enough_data && !s.detected && s.recent_n == 0);
    }

    #[test]
    fn override_rate_rise_alarms_once_enough_reviews_exist() {
        let c = DriftConfig::default();
        let reviewed = |n: usize, overridden_every: usize| {
            (0..n)
                .map(|i| DriftSample {
                    confidence: 0.8,
                    overridden: Some(i % overridden_every == 0),
                    ..DriftSample::default()
                })
                .collect::<Vec<_>>()
        };
        // 1 in 10 overridden before, 1 in 2 now.
        let (b, r) = (reviewed(200, 10), reviewed(60, 2));
        let rep = evaluate(&[windows(OVERALL, &b, &r)], &c);
        let s = find(&rep, OVERALL, "override_rate.rate_change");
        assert!(s.detected, "{s:?}");
        assert!(close(s.baseline.expect("rate"), 0.1) && close(s.recent.expect("rate"), 0.5));
        // Only 10 recent reviews (< min_reviews 20): not enough data, whatever the rate.
        let rep = evaluate(&[windows(OVERALL, &b, &reviewed(10, 1))], &c);
        let s = find(&rep, OVERALL, "override_rate.rate_change");
        assert!(!s.enough_data && !s.detected);
        let s = find(&rep, OVERALL, "audit_miss_rate.rate_change");
        assert!(
            !s.enough_data && s.baseline_n == 0,
            "no audit samples at all"
        );
    }

    #[test]
    fn a_new_class_in_the_mix_alarms_on_class_mix() {
        let c = DriftConfig::default();
        let b = parts(1, 200, 0.0, 1.0);
        let mut r = parts(2, 60, 0.0, 1.0);
        for s in r.iter_mut().take(30) {
            s.classes = vec!["fracture".into()];
        }
        let rep = evaluate(&[windows(OVERALL, &b, &r)], &c);
        let s = find(&rep, OVERALL, "class_mix.cramers_v");
        assert!(s.detected, "{s:?}");
        let same = evaluate(&[windows(OVERALL, &b, &parts(2, 60, 0.0, 1.0))], &c);
        assert!(!find(&same, OVERALL, "class_mix.cramers_v").detected);
    }

    #[test]
    fn alarm_episodes_alert_once_and_close_only_on_a_clear_reading() {
        let c = cfg(3, 0.1);
        let drifted = drift_report(&[0.9; 3], &[0.5; 3], &c);
        let first = advance_episodes(&[], &drifted);
        assert!(first
            .raised
            .contains(&"overall/confidence.mean_drop".to_string()));
        assert_eq!(first.open.len(), first.raised.len());
        // The same episode next run: nothing new to alert.
        let second = advance_episodes(&first.open, &drifted);
        assert!(second.raised.is_empty());
        assert_eq!(second.open, first.open);
        // Too few samples: the episode stays open, silently.
        let thin = drift_report(&[0.9; 3], &[0.9], &c);
        let third = advance_episodes(&second.open, &thin);
        assert!(third.raised.is_empty() && third.cleared.is_empty());
        assert_eq!(third.open, first.open);
        // Back to normal with enough data: closed; a later drift alerts again.
        let fine = drift_report(&[0.9; 3], &[0.9; 3], &c);
        let fourth = advance_episodes(&third.open, &fine);
        assert!(fourth.open.is_empty());
        assert!(fourth
            .cleared
            .contains(&"overall/confidence.mean_drop".to_string()));
        let fifth = advance_episodes(&fourth.open, &drifted);
        assert_eq!(fifth.raised, first.raised);
    }

    #[test]
    fn samples_from_inspections_keep_found_classes_and_review_outcome() {
        use crate::types::{Detection, Review, Status, Verdict};
        let t = OffsetDateTime::UNIX_EPOCH;
        let det = |class: &str, confidence: f32| Detection {
            class: class.into(),
            confidence,
            bbox: [0.1, 0.1, 0.2, 0.2],
        };
        let insp = Inspection {
            id: "insp_1".into(),
            ingest_key: "k".into(),
            image_key: "raw/c/1.jpg".into(),
            camera_id: "c".into(),
            filename: None,
            captured_at: None,
            created_at: t,
            updated_at: t,
            model_version: "v1".into(),
            detections: vec![det("stain", 0.9), det("stain", 0.7), det("fracture", 0.2)],
            decision: Some(Decision::Defective),
            confidence: 0.9,
            threshold_used: 0.6,
            status: Status::Reviewed,
            audit_sample: true,
            claim: None,
            review: Some(Review {
                reviewer: "r".into(),
                verdict: Verdict::Ok,
                detections: vec![],
                notes: String::new(),
                reviewed_at: t,
            }),
            rejection_reason: None,
            image_stats: None,
            version: 3,
        };
        let s = DriftSample::from_inspection(&insp, 0.5);
        assert_eq!(
            s.classes,
            vec!["stain".to_string()],
            "sub-cut boxes are not found defects"
        );
        assert_eq!(s.overridden, Some(true));
        assert!(s.audit_sample);
    }
}
