//! The routing policy: what the model decided about a part, how sure it is, and whether a
//! human must look at it (uncertain, or drawn as an audit sample of the automation).
//!
//! # Decision confidence
//!
//! Every inspection gets a *decision confidence* in `[0, 1]` for whatever it decided:
//!
//! - **Defective** when any detection has confidence ≥ `decision_cut`. The decision
//!   confidence is the confidence of the strongest such detection, and the threshold
//!   used is the one of its class (`Config::threshold_for(Some(class))`).
//! - **Clean** otherwise. The decision confidence is `1 − max_score`: the probability
//!   mass not claimed by the strongest defect evidence anywhere in the image (every
//!   candidate box before any floor, see [`ModelOutput::max_score`]). An empty output is
//!   therefore clean with confidence 1.0 — a good part is *not* sent to a human (the seed
//!   system gave clean parts confidence 0 and sent every one of them to review). The
//!   threshold used is the one of the class behind that strongest evidence
//!   (`Config::threshold_for(max_class)`), or the global one when there was none.
//!
//! A decision confidence below the threshold used sends the part to review
//! ([`Status::PendingReview`]); otherwise it is [`Status::AutoValidated`], except that a
//! deterministic audit sample of those (share `audit_rate`, see [`audit_unit`]) also goes
//! to review with `audit_sample = true`, so the true miss rate of the automation is
//! measured rather than assumed. Uncertain parts are never flagged as audit samples.
//!
//! # Odd inputs
//!
//! - Scores outside `[0, 1]` (including ±∞) are clamped into it.
//! - A NaN score anywhere (a detection's confidence or `max_score`) means the model output
//!   cannot be trusted: the decision is taken from the finite scores alone, but its
//!   confidence is 0 (maximal uncertainty), so the part always goes to review.
//! - If `max_score` is below a detection's confidence (an inconsistent detector), the
//!   strongest evidence is the larger of the two.
//! - A NaN threshold (an unvalidated config) is treated as 1.0: everything is reviewed; a
//!   non-finite decision cut as the default 0.5.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::types::{Decision, ModelOutput, Status};

/// The routing settings taken from a [`Config`]: thresholds, decision cut, audit rate.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingPolicy {
    config: Config,
}

/// What the model decided and how sure it is, before any routing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Assessment {
    pub decision: Decision,
    /// Decision confidence in `[0, 1]` (see the module documentation).
    pub confidence: f32,
    /// The class that drove the decision: the strongest defect for a defective part, the
    /// strongest (sub-cut) evidence for a clean one; `None` when there was none.
    pub driving_class: Option<String>,
}

/// The outcome of routing one inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoutingDecision {
    pub decision: Decision,
    /// Decision confidence in `[0, 1]` (see the module documentation).
    pub confidence: f32,
    /// The threshold the confidence was compared against (global or per-class).
    pub threshold_used: f32,
    /// `AutoValidated`, or `PendingReview` (uncertain, or an audit sample).
    pub status: Status,
    /// Sent to review as an audit sample of the automation, not for uncertainty.
    pub audit_sample: bool,
}

impl From<&Config> for RoutingPolicy {
    fn from(config: &Config) -> Self {
        Self::new(config)
    }
}

impl RoutingPolicy {
    /// The policy of `config` (expected to be validated; see the module doc for odd values).
    pub fn new(config: &Config) -> Self {
        let mut config = config.clone();
        if !config.decision_cut.is_finite() {
            config.decision_cut = Config::default().decision_cut;
        }
        Self { config }
    }

    /// What the model decided about the part and how sure it is (no routing, no sampling).
    pub fn assess(&self, output: &ModelOutput) -> Assessment {
        let cut = self.config.decision_cut;
        let mut saw_nan = output.max_score.is_nan();
        // Strongest detection at or above the cut (first one on ties), and strongest overall.
        let mut top_defect: Option<(usize, f32)> = None;
        let mut top_any: Option<(usize, f32)> = None;
        for (i, d) in output.detections.iter().enumerate() {
            if d.confidence.is_nan() {
                saw_nan = true;
                continue;
            }
            let c = d.confidence.clamp(0.0, 1.0);
            if top_any.is_none_or(|(_, best)| c > best) {
                top_any = Some((i, c));
            }
            if c >= cut && top_defect.is_none_or(|(_, best)| c > best) {
                top_defect = Some((i, c));
            }
        }
        let (decision, confidence, driving_class) = match top_defect {
            Some((i, c)) => (
                Decision::Defective,
                c,
                Some(output.detections[i].class.clone()),
            ),
            None => {
                let max_score = if output.max_score.is_nan() {
                    0.0
                } else {
                    output.max_score.clamp(0.0, 1.0)
                };
                let (evidence, class) = match top_any {
                    Some((i, c)) if c > max_score => (c, Some(output.detections[i].class.clone())),
                    _ => (max_score, output.max_class.clone()),
                };
                (Decision::Clean, 1.0 - evidence, class)
            }
        };
        Assessment {
            decision,
            confidence: if saw_nan { 0.0 } else { confidence },
            driving_class,
        }
    }

    /// The threshold for a decision driven by `class`, made safe to compare against:
    /// clamped into `[0, 1]`, NaN → 1.0 (review everything rather than nothing).
    pub fn threshold_for(&self, class: Option<&str>) -> f32 {
        let t = self.config.threshold_for(class);
        if t.is_nan() {
            1.0
        } else {
            t.clamp(0.0, 1.0)
        }
    }

    /// True when inspection `inspection_id` belongs to the audit sample (see [`audit_unit`]).
    pub fn audit_sampled(&self, inspection_id: &str) -> bool {
        is_audit_sampled(inspection_id, self.config.audit_rate)
    }

    /// Routes inspection `inspection_id` given what the model saw.
    pub fn route(&self, inspection_id: &str, output: &ModelOutput) -> RoutingDecision {
        let assessment = self.assess(output);
        let threshold_used = self.threshold_for(assessment.driving_class.as_deref());
        let (status, audit_sample) = if assessment.confidence < threshold_used {
            (Status::PendingReview, false)
        } else if self.audit_sampled(inspection_id) {
            (Status::PendingReview, true)
        } else {
            (Status::AutoValidated, false)
        };
        RoutingDecision {
            decision: assessment.decision,
            confidence: assessment.confidence,
            threshold_used,
            status,
            audit_sample,
        }
    }
}

/// A stable pseudo-random number in `[0, 1)` for an inspection id: FNV-1a (64-bit) of the
/// id's UTF-8 bytes, mixed by the splitmix64 finaliser, top 53 bits as a fraction.
/// Identical on every platform (no std hasher, no randomness), so an id is always either
/// in the audit sample or not.
pub fn audit_unit(inspection_id: &str) -> f64 {
    let h = splitmix64_finalise(fnv1a64(inspection_id.as_bytes()));
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True when `audit_unit(inspection_id) < rate`: rate 0 (or NaN) never samples, rate 1
/// always does, and the sampled share of many ids is close to `rate`.
pub fn is_audit_sampled(inspection_id: &str, rate: f32) -> bool {
    audit_unit(inspection_id) < f64::from(rate)
}

/// FNV-1a, 64-bit.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The splitmix64 output function: spreads FNV's weak low-entropy bits over all 64.
fn splitmix64_finalise(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Detection;
    use proptest::prelude::*;

    fn det(class: &str, confidence: f32) -> Detection {
        Detection {
            class: class.into(),
            confidence,
            bbox: [0.1, 0.1, 0.3, 0.3],
        }
    }

    fn output(detections: Vec<Detection>, max_score: f32, max_class: Option<&str>) -> ModelOutput {
        ModelOutput {
            detections,
            max_score,
            max_class: max_class.map(str::to_owned),
        }
    }

    fn no_audit() -> Config {
        Config {
            audit_rate: 0.0,
            ..Config::default()
        }
    }

    #[test]
    fn empty_output_is_a_clean_part_with_full_confidence_and_is_not_reviewed() {
        let policy = RoutingPolicy::new(&no_audit());
        let d = policy.route("insp_a", &ModelOutput::default());
        assert_eq!(d.decision, Decision::Clean);
        assert_eq!(d.confidence, 1.0);
        assert_eq!(d.threshold_used, 0.6);
        assert_eq!(d.status, Status::AutoValidated);
        assert!(!d.audit_sample);
    }

    #[test]
    fn strong_detection_makes_a_confident_defective_decision() {
        let policy = RoutingPolicy::new(&no_audit());
        let out = output(
            vec![det("stain", 0.55), det("fracture", 0.91)],
            0.91,
            Some("fracture"),
        );
        let d = policy.route("insp_a", &out);
        assert_eq!(d.decision, Decision::Defective);
        assert_eq!(d.confidence, 0.91);
        assert_eq!(d.status, Status::AutoValidated);
    }

    #[test]
    fn detection_just_over_the_cut_is_defective_but_uncertain() {
        let policy = RoutingPolicy::new(&no_audit());
        let out = output(vec![det("stain", 0.52)], 0.52, Some("stain"));
        let d = policy.route("insp_a", &out);
        assert_eq!(d.decision, Decision::Defective);
        assert_eq!(d.confidence, 0.52);
        assert_eq!(d.status, Status::PendingReview);
        assert!(!d.audit_sample);
    }

    #[test]
    fn weak_evidence_below_the_cut_is_clean_with_the_remaining_mass_as_confidence() {
        let policy = RoutingPolicy::new(&no_audit());
        let out = output(vec![det("stain", 0.3)], 0.3, Some("stain"));
        let d = policy.route("insp_a", &out);
        assert_eq!(d.decision, Decision::Clean);
        assert!((d.confidence - 0.7).abs() < 1e-6);
        assert_eq!(d.status, Status::AutoValidated);
    }

    #[test]
    fn sub_floor_evidence_without_boxes_still_lowers_clean_confidence() {
        let policy = RoutingPolicy::new(&no_audit());
        let out = output(vec![], 0.45, Some("fracture"));
        let d = policy.route("insp_a", &out);
        assert_eq!(d.decision, Decision::Clean);
        assert!((d.confidence - 0.55).abs() < 1e-6);
        assert_eq!(d.status, Status::PendingReview);
    }

    #[test]
    fn class_override_applies_to_the_class_that_drove_the_decision() {
        let mut cfg = no_audit();
        cfg.class_thresholds.insert("fracture".into(), 0.95);
        let policy = RoutingPolicy::new(&cfg);
        let fracture = output(vec![det("fracture", 0.9)], 0.9, Some("fracture"));
        let stain = output(vec![det("stain", 0.9)], 0.9, Some("stain"));
        assert_eq!(policy.route("i", &fracture).threshold_used, 0.95);
        assert_eq!(policy.route("i", &fracture).status, Status::PendingReview);
        assert_eq!(policy.route("i", &stain).threshold_used, 0.6);
        assert_eq!(policy.route("i", &stain).status, Status::AutoValidated);
        // A clean decision is driven by the class of the strongest sub-cut evidence.
        let clean = output(vec![], 0.1, Some("fracture"));
        assert_eq!(policy.route("i", &clean).threshold_used, 0.95);
        assert_eq!(policy.route("i", &clean).status, Status::PendingReview);
    }

    #[test]
    fn nan_score_means_maximal_uncertainty_and_review() {
        let policy = RoutingPolicy::new(&no_audit());
        let d = policy.route(
            "i",
            &output(vec![det("stain", f32::NAN)], 0.2, Some("stain")),
        );
        assert_eq!(d.decision, Decision::Clean);
        assert_eq!(d.confidence, 0.0);
        assert_eq!(d.status, Status::PendingReview);
        let d = policy.route("i", &output(vec![det("stain", 0.95)], f32::NAN, None));
        assert_eq!(d.decision, Decision::Defective);
        assert_eq!(d.confidence, 0.0);
        assert_eq!(d.status, Status::PendingReview);
    }

    #[test]
    fn out_of_range_scores_are_clamped_into_the_unit_interval() {
        let policy = RoutingPolicy::new(&no_audit());
        let d = policy.route("i", &output(vec![det("stain", 1.7)], 1.7, Some("stain")));
        assert_eq!(d.confidence, 1.0);
        let d = policy.route("i", &output(vec![], -3.0, None));
        assert_eq!(d.confidence, 1.0);
        let d = policy.route("i", &output(vec![], f32::INFINITY, None));
        assert_eq!(d.confidence, 0.0);
    }

    #[test]
    fn max_score_lower_than_a_detection_uses_the_detection_as_evidence() {
        let policy = RoutingPolicy::new(&no_audit());
        let d = policy.route("i", &output(vec![det("stain", 0.45)], 0.1, None));
        assert_eq!(d.decision, Decision::Clean);
        assert!((d.confidence - 0.55).abs() < 1e-6);
    }

    #[test]
    fn nan_threshold_sends_everything_to_review() {
        let cfg = Config {
            threshold: f32::NAN,
            audit_rate: 0.0,
            ..Config::default()
        };
        let d = RoutingPolicy::new(&cfg).route("i", &ModelOutput::default());
        assert_eq!(d.threshold_used, 1.0);
        assert_eq!(
            d.status,
            Status::AutoValidated,
            "confidence 1.0 meets threshold 1.0"
        );
        let d = RoutingPolicy::new(&cfg).route("i", &output(vec![], 0.01, None));
        assert_eq!(d.status, Status::PendingReview);
    }

    #[test]
    fn audit_sampled_confident_part_goes_to_review_flagged_as_audit() {
        let cfg = Config {
            audit_rate: 1.0,
            ..Config::default()
        };
        let d = RoutingPolicy::new(&cfg).route("insp_a", &ModelOutput::default());
        assert_eq!(d.status, Status::PendingReview);
        assert!(d.audit_sample);
        assert_eq!(d.confidence, 1.0);
    }

    #[test]
    fn audit_unit_is_pinned_so_every_platform_samples_the_same_ids() {
        // Reference values computed by hand-checked FNV-1a 64 + splitmix64; a change here
        // would silently re-draw the audit sample of every stored inspection.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(splitmix64_finalise(0), 0xe220_a839_7b1d_cdaf);
        let u = audit_unit("insp_0123456789abcdef01234567");
        assert!((0.0..1.0).contains(&u));
        assert_eq!(u, audit_unit("insp_0123456789abcdef01234567"));
    }

    fn arb_output() -> impl Strategy<Value = ModelOutput> {
        let class = prop::sample::select(vec!["defect", "fracture", "stain", "misalignment"]);
        let detection = (class.clone(), 0.0f32..=1.0).prop_map(|(c, s)| det(c, s));
        (
            prop::collection::vec(detection, 0..6),
            0.0f32..=1.0,
            prop::option::of(class),
        )
            .prop_map(|(detections, floor_max, max_class)| {
                let top = detections
                    .iter()
                    .map(|d| d.confidence)
                    .fold(floor_max, f32::max);
                ModelOutput {
                    detections,
                    max_score: top,
                    max_class: max_class.map(str::to_owned),
                }
            })
    }

    proptest! {
        #[test]
        fn confidence_is_always_in_the_unit_interval(
            out in arb_output(),
            id in "[a-z0-9_]{1,30}",
            nan in any::<bool>(),
        ) {
            let mut out = out;
            if nan {
                out.max_score = f32::NAN;
            }
            let d = RoutingPolicy::new(&Config::default()).route(&id, &out);
            prop_assert!((0.0..=1.0).contains(&d.confidence));
            prop_assert!((0.0..=1.0).contains(&d.threshold_used));
        }

        #[test]
        fn raising_the_threshold_never_auto_validates_a_reviewed_part(
            out in arb_output(),
            id in "[a-z0-9_]{1,30}",
            low in 0.01f32..=1.0,
            raise in 0.0f32..=1.0,
            rate in 0.0f32..=1.0,
        ) {
            let high = (low + raise).min(1.0);
            let cfg = |t| Config { threshold: t, audit_rate: rate, ..Config::default() };
            let before = RoutingPolicy::new(&cfg(low)).route(&id, &out);
            let after = RoutingPolicy::new(&cfg(high)).route(&id, &out);
            if before.status == Status::PendingReview {
                prop_assert_eq!(after.status, Status::PendingReview);
            }
        }

        #[test]
        fn empty_output_without_audit_is_always_auto_validated_with_confidence_one(
            id in ".{0,40}",
            threshold in 0.01f32..=1.0,
        ) {
            let cfg = Config { threshold, audit_rate: 0.0, ..Config::default() };
            let d = RoutingPolicy::new(&cfg).route(&id, &ModelOutput::default());
            prop_assert_eq!(d.status, Status::AutoValidated);
            prop_assert_eq!(d.confidence, 1.0);
            prop_assert!(!d.audit_sample);
        }

        #[test]
        fn audit_rate_zero_never_samples_and_one_samples_every_confident_part(
            out in arb_output(),
            id in ".{0,40}",
        ) {
            let route = |rate| {
                RoutingPolicy::new(&Config { audit_rate: rate, ..Config::default() }).route(&id, &out)
            };
            let never = route(0.0);
            prop_assert!(!never.audit_sample);
            let always = route(1.0);
            let confident = never.status == Status::AutoValidated;
            prop_assert_eq!(always.audit_sample, confident);
            prop_assert_eq!(always.status, Status::PendingReview);
        }

        #[test]
        fn uncertain_parts_are_never_flagged_as_audit_samples(
            out in arb_output(),
            id in ".{0,40}",
            rate in 0.0f32..=1.0,
        ) {
            let policy = RoutingPolicy::new(&Config { audit_rate: rate, ..Config::default() });
            let d = policy.route(&id, &out);
            if d.confidence < d.threshold_used {
                prop_assert_eq!(d.status, Status::PendingReview);
                prop_assert!(!d.audit_sample);
            }
        }

        #[test]
        fn audit_sampling_is_deterministic_per_id(id in ".{0,60}", rate in 0.0f32..=1.0) {
            prop_assert_eq!(is_audit_sampled(&id, rate), is_audit_sampled(&id.clone(), rate));
            prop_assert!((0.0..1.0).contains(&audit_unit(&id)));
        }

        #[test]
        fn sampled_share_of_many_ids_is_close_to_the_rate(rate in 0.0f32..=1.0) {
            // Real-shaped ids, fixed so that the test is deterministic.
            let n = 10_000;
            let sampled = (0..n)
                .filter(|i| is_audit_sampled(&crate::types::inspection_id(&format!("cam-7/{i}")), rate))
                .count();
            let share = sampled as f64 / n as f64;
            prop_assert!((share - f64::from(rate)).abs() <= 0.02, "share {} rate {}", share, rate);
        }

        #[test]
        fn class_override_only_affects_decisions_driven_by_that_class(
            out in arb_output(),
            id in "[a-z0-9_]{1,30}",
            class in prop::sample::select(vec!["defect", "fracture", "stain", "misalignment"]),
            override_t in 0.01f32..=1.0,
            rate in 0.0f32..=1.0,
        ) {
            let base = Config { audit_rate: rate, ..Config::default() };
            let mut with = base.clone();
            with.class_thresholds.insert(class.to_owned(), override_t);
            let plain = RoutingPolicy::new(&base);
            let before = plain.route(&id, &out);
            let after = RoutingPolicy::new(&with).route(&id, &out);
            let driven_by_class = plain.assess(&out).driving_class.as_deref() == Some(class);
            if driven_by_class {
                prop_assert_eq!(after.threshold_used, override_t);
            } else {
                prop_assert_eq!(&after, &before);
            }
            prop_assert_eq!(after.decision, before.decision);
            prop_assert_eq!(after.confidence, before.confidence);
        }
    }
}
