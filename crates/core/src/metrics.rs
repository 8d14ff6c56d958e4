//! Detection metrics — precision, recall, mAP50, mAP50-95 — computed exactly as Ultralytics
//! 8.4 does (`DetectionValidator` + `utils/metrics.py`), so that numbers measured here with
//! tract and numbers the trainer reports can be compared and gated on.
//!
//! 1. Per image, predictions (in descending confidence) are matched to ground truth of the
//!    same class at IoU thresholds 0.50:0.05:0.95, greedily as `match_predictions` does:
//!    each prediction takes the unclaimed label it overlaps most, per threshold.
//! 2. Over all images, `ap_per_class`: predictions sorted by confidence, cumulative TP/FP
//!    per class, precision–recall curves, precision envelope, AP by 101-point
//!    interpolation (`np.interp`) and trapezoid integration (COCO-style).
//! 3. Precision and recall are reported at the confidence that maximises the mean F1 over
//!    classes (F1 on a 1000-point confidence grid, box-smoothed over 10 % of it).
//!
//! Classes without any label are left out of every mean (as in Ultralytics); classes with
//! labels but no prediction count with zeros. Boxes are normalised `[x1, y1, x2, y2]`.
//! Ties in confidence keep the input order (image by image, as pycocotools ranks them);
//! Ultralytics leaves their order to NumPy's unstable sort, so on tied confidences its own
//! result varies with the NumPy build (by ~0.003 mAP on the fixture's tie case).
//! Predictions with a non-finite confidence are ignored. A perfect detector scores AP
//! 0.995, not 1, exactly as in Ultralytics (the 101-point integral's last trapezoid).
//! `tests/fixtures/make_map_fixture.py` checks all of this against Ultralytics itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::class::ClassNames;
use crate::types::{iou, Detection, MetricSet};

/// Number of IoU thresholds of mAP50-95.
pub const N_IOU: usize = 10;

/// The IoU thresholds 0.50, 0.55, …, 0.95.
pub const IOU_THRESHOLDS: [f64; N_IOU] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];

/// Whether one prediction is a true positive at each IoU threshold.
pub type Correct = [bool; N_IOU];

/// Points of the confidence grid on which P, R and F1 curves are evaluated.
const CURVE_POINTS: usize = 1000;
/// Points of the recall grid of the AP integral (COCO's 101).
const AP_POINTS: usize = 101;
/// Ultralytics' `eps` in `ap_per_class`.
const EPS: f64 = 1e-16;

/// Precision, recall and AP of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassMetrics {
    pub class: String,
    /// Ground-truth boxes of this class.
    pub labels: usize,
    /// Predictions of this class.
    pub predictions: usize,
    /// At the confidence of the best mean F1.
    pub precision: f64,
    /// At the confidence of the best mean F1.
    pub recall: f64,
    pub f1: f64,
    /// True positives at the best-F1 confidence (`round(recall × labels)`).
    pub tp: f64,
    /// False positives at the best-F1 confidence.
    pub fp: f64,
    pub ap50: f64,
    /// AP averaged over IoU 0.50:0.95.
    pub ap50_95: f64,
}

/// The result of an evaluation: the means (as Ultralytics prints them on the `all` row)
/// and the classes that have labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DetectionMetrics {
    pub overall: MetricSet,
    /// Mean F1 over classes at the best-F1 confidence.
    pub f1: f64,
    /// The confidence at which precision and recall are reported (best smoothed mean F1).
    pub best_f1_confidence: f64,
    pub images: usize,
    pub labels: usize,
    pub predictions: usize,
    /// Classes with at least one label, in class-id order.
    pub per_class: Vec<ClassMetrics>,
}

/// Accumulates images (predictions and ground truth), then computes the metrics.
#[derive(Debug, Clone, Default)]
pub struct DetectionEvaluator {
    class_names: Vec<String>,
    class_ids: BTreeMap<String, usize>,
    images: usize,
    correct: Vec<Correct>,
    conf: Vec<f64>,
    pred_cls: Vec<usize>,
    target_cls: Vec<usize>,
}

impl DetectionEvaluator {
    /// An evaluator that numbers classes in order of first appearance.
    pub fn new() -> Self {
        Self::default()
    }

    /// An evaluator that numbers classes as the model does (unknown names come after).
    pub fn with_classes(classes: &ClassNames) -> Self {
        let mut e = Self::default();
        for name in classes.iter() {
            e.class_id(name);
        }
        e
    }

    fn class_id(&mut self, name: &str) -> usize {
        if let Some(&id) = self.class_ids.get(name) {
            return id;
        }
        let id = self.class_names.len();
        self.class_names.push(name.to_owned());
        self.class_ids.insert(name.to_owned(), id);
        id
    }

    /// Adds one image: the model's boxes and the ground truth (whose confidences are
    /// ignored). An image without ground truth makes every prediction a false positive.
    pub fn add_image(&mut self, predictions: &[Detection], ground_truth: &[Detection]) {
        self.images += 1;
        // NMS hands predictions over in descending confidence; matching depends on it.
        let mut preds: Vec<&Detection> = predictions
            .iter()
            .filter(|d| d.confidence.is_finite())
            .collect();
        preds.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        let pred_cls: Vec<usize> = preds.iter().map(|d| self.class_id(&d.class)).collect();
        let true_cls: Vec<usize> = ground_truth
            .iter()
            .map(|d| self.class_id(&d.class))
            .collect();
        let ious: Vec<f64> = ground_truth
            .iter()
            .flat_map(|g| preds.iter().map(move |p| f64::from(iou(&g.bbox, &p.bbox))))
            .collect();
        self.correct
            .extend(match_predictions(&pred_cls, &true_cls, &ious));
        self.conf
            .extend(preds.iter().map(|d| f64::from(d.confidence)));
        self.pred_cls.extend(pred_cls);
        self.target_cls.extend(true_cls);
    }

    /// The metrics of everything added so far.
    pub fn finish(&self) -> DetectionMetrics {
        let ap = ap_per_class(&self.correct, &self.conf, &self.pred_cls, &self.target_cls);
        let mean = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let ap50: Vec<f64> = ap.ap.iter().map(|a| a[0]).collect();
        let ap50_95: Vec<f64> = ap
            .ap
            .iter()
            .map(|a| a.iter().sum::<f64>() / N_IOU as f64)
            .collect();
        let per_class = ap
            .classes
            .iter()
            .enumerate()
            .map(|(i, &c)| ClassMetrics {
                class: self.class_names.get(c).cloned().unwrap_or_default(),
                labels: ap.labels[i],
                predictions: self.pred_cls.iter().filter(|&&p| p == c).count(),
                precision: ap.precision[i],
                recall: ap.recall[i],
                f1: ap.f1[i],
                tp: ap.tp[i],
                fp: ap.fp[i],
                ap50: ap50[i],
                ap50_95: ap50_95[i],
            })
            .collect();
        DetectionMetrics {
            overall: MetricSet {
                precision: mean(&ap.precision),
                recall: mean(&ap.recall),
                map50: mean(&ap50),
                // Mean over the whole (classes × thresholds) table, as `all_ap.mean()`.
                map50_95: mean(&ap50_95),
            },
            f1: mean(&ap.f1),
            best_f1_confidence: ap.best_f1_confidence,
            images: self.images,
            labels: self.target_cls.len(),
            predictions: self.conf.len(),
            per_class,
        }
    }
}

/// Evaluates `(predictions, ground_truth)` pairs, numbering classes as `classes` does.
pub fn evaluate<'a, I>(images: I, classes: &ClassNames) -> DetectionMetrics
where
    I: IntoIterator<Item = (&'a [Detection], &'a [Detection])>,
{
    let mut e = DetectionEvaluator::with_classes(classes);
    for (predictions, ground_truth) in images {
        e.add_image(predictions, ground_truth);
    }
    e.finish()
}

/// Ultralytics' `match_predictions` (greedy, not Hungarian): `pred_classes` in descending
/// confidence, `iou` row-major `[label][prediction]`. Each prediction, in turn, takes the
/// unclaimed label of its class with the highest IoU (the first on ties) at each threshold.
/// A malformed `iou` (wrong length) matches nothing.
pub fn match_predictions(
    pred_classes: &[usize],
    true_classes: &[usize],
    iou: &[f64],
) -> Vec<Correct> {
    let (n_p, n_l) = (pred_classes.len(), true_classes.len());
    let mut correct = vec![[false; N_IOU]; n_p];
    if n_l == 0 || n_p == 0 || iou.len() != n_l * n_p {
        return correct;
    }
    // IoU with labels of another class counts as 0.
    let class_iou = |l: usize, j: usize| {
        if true_classes[l] == pred_classes[j] {
            iou[l * n_p + j]
        } else {
            0.0
        }
    };
    let mut matched = vec![[false; N_IOU]; n_l];
    for (j, correct_j) in correct.iter_mut().enumerate() {
        if !(0..n_l).any(|l| class_iou(l, j) >= IOU_THRESHOLDS[0]) {
            continue;
        }
        for (t, &threshold) in IOU_THRESHOLDS.iter().enumerate() {
            let mut best = (0usize, f64::NEG_INFINITY);
            for (l, m) in matched.iter().enumerate() {
                let available = if m[t] { 0.0 } else { class_iou(l, j) };
                if available > best.1 {
                    best = (l, available);
                }
            }
            if best.1 >= threshold {
                correct_j[t] = true;
                matched[best.0][t] = true;
            }
        }
    }
    correct
}

/// What [`ap_per_class`] returns, one entry per class with labels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApPerClass {
    /// Class ids that have labels, ascending.
    pub classes: Vec<usize>,
    pub labels: Vec<usize>,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub f1: Vec<f64>,
    pub tp: Vec<f64>,
    pub fp: Vec<f64>,
    /// AP at each IoU threshold.
    pub ap: Vec<[f64; N_IOU]>,
    /// Confidence at which precision, recall and F1 are taken.
    pub best_f1_confidence: f64,
}

/// Ultralytics' `ap_per_class` over all predictions of a data set: `correct`, `conf` and
/// `pred_cls` per prediction, `target_cls` per label.
pub fn ap_per_class(
    correct: &[Correct],
    conf: &[f64],
    pred_cls: &[usize],
    target_cls: &[usize],
) -> ApPerClass {
    let n = correct.len().min(conf.len()).min(pred_cls.len());
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| conf[b].total_cmp(&conf[a]));

    let mut classes: Vec<usize> = target_cls.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let nc = classes.len();
    let labels: Vec<usize> = classes
        .iter()
        .map(|c| target_cls.iter().filter(|t| *t == c).count())
        .collect();

    let x = linspace(CURVE_POINTS);
    let neg_x: Vec<f64> = x.iter().map(|v| -v).collect();
    let mut ap = vec![[0.0; N_IOU]; nc];
    let mut p_curve = vec![vec![0.0; CURVE_POINTS]; nc];
    let mut r_curve = vec![vec![0.0; CURVE_POINTS]; nc];
    for (ci, &c) in classes.iter().enumerate() {
        let idx: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| pred_cls[i] == c)
            .collect();
        let n_l = labels[ci] as f64;
        if idx.is_empty() {
            continue;
        }
        let neg_conf: Vec<f64> = idx.iter().map(|&i| -conf[i]).collect();
        // Cumulative TP and FP counts, per IoU threshold, down the confidence ranking.
        let mut recall = vec![[0.0; N_IOU]; idx.len()];
        let mut precision = vec![[0.0; N_IOU]; idx.len()];
        let mut tpc = [0.0f64; N_IOU];
        let mut fpc = [0.0f64; N_IOU];
        for (k, &i) in idx.iter().enumerate() {
            for t in 0..N_IOU {
                if correct[i][t] {
                    tpc[t] += 1.0;
                } else {
                    fpc[t] += 1.0;
                }
                recall[k][t] = tpc[t] / (n_l + EPS);
                precision[k][t] = tpc[t] / (tpc[t] + fpc[t]);
            }
        }
        let r0: Vec<f64> = recall.iter().map(|r| r[0]).collect();
        let p0: Vec<f64> = precision.iter().map(|p| p[0]).collect();
        let (r_last, p_last) = (r0[r0.len() - 1], p0[p0.len() - 1]);
        for (k, &nx) in neg_x.iter().enumerate() {
            r_curve[ci][k] = interp(nx, &neg_conf, &r0, 0.0, r_last);
            p_curve[ci][k] = interp(nx, &neg_conf, &p0, 1.0, p_last);
        }
        for t in 0..N_IOU {
            let r: Vec<f64> = recall.iter().map(|r| r[t]).collect();
            let p: Vec<f64> = precision.iter().map(|p| p[t]).collect();
            ap[ci][t] = compute_ap(&r, &p);
        }
    }

    let f1_curve: Vec<Vec<f64>> = p_curve
        .iter()
        .zip(&r_curve)
        .map(|(p, r)| {
            p.iter()
                .zip(r)
                .map(|(p, r)| 2.0 * p * r / (p + r + EPS))
                .collect()
        })
        .collect();
    let best = if nc == 0 {
        0
    } else {
        let mean_f1: Vec<f64> = (0..CURVE_POINTS)
            .map(|k| f1_curve.iter().map(|f| f[k]).sum::<f64>() / nc as f64)
            .collect();
        argmax(&smooth(&mean_f1, 0.1))
    };
    let precision: Vec<f64> = p_curve.iter().map(|p| p[best]).collect();
    let recall: Vec<f64> = r_curve.iter().map(|r| r[best]).collect();
    let f1: Vec<f64> = f1_curve.iter().map(|f| f[best]).collect();
    let tp: Vec<f64> = recall
        .iter()
        .zip(&labels)
        .map(|(r, &n)| (r * n as f64).round_ties_even())
        .collect();
    let fp = tp
        .iter()
        .zip(&precision)
        .map(|(tp, p)| (tp / (p + EPS) - tp).round_ties_even())
        .collect();
    ApPerClass {
        classes,
        labels,
        precision,
        recall,
        f1,
        tp,
        fp,
        ap,
        best_f1_confidence: x[best],
    }
}

/// Ultralytics' `compute_ap`: AP of one precision–recall curve (recall ascending), by
/// the precision envelope sampled at 101 recall points and integrated by trapezoids.
pub fn compute_ap(recall: &[f64], precision: &[f64]) -> f64 {
    let last_recall = recall.last().copied().unwrap_or(1.0);
    let mut mrec = Vec::with_capacity(recall.len() + 3);
    mrec.push(0.0);
    mrec.extend_from_slice(recall);
    mrec.extend([last_recall, 1.0]);
    let mut mpre = Vec::with_capacity(precision.len() + 3);
    mpre.push(1.0);
    mpre.extend_from_slice(precision);
    mpre.extend([0.0, 0.0]);
    // Envelope: precision made non-increasing in recall.
    for i in (0..mpre.len() - 1).rev() {
        mpre[i] = mpre[i].max(mpre[i + 1]);
    }
    let ax = linspace(AP_POINTS);
    let ay: Vec<f64> = ax
        .iter()
        .map(|&v| interp(v, &mrec, &mpre, mpre[0], mpre[mpre.len() - 1]))
        .collect();
    ax.windows(2)
        .zip(ay.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[1] + y[0]) / 2.0)
        .sum()
}

/// `np.linspace(0, 1, n)`.
fn linspace(n: usize) -> Vec<f64> {
    let step = 1.0 / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * step).collect();
    v[n - 1] = 1.0;
    v
}

/// `np.interp(x, xp, fp, left, right)` for ascending `xp` (ties allowed): the last `xp[j]`
/// not above `x` anchors the line, exactly as NumPy's C implementation.
fn interp(x: f64, xp: &[f64], fp: &[f64], left: f64, right: f64) -> f64 {
    let n = xp.len().min(fp.len());
    if n == 0 {
        return left;
    }
    if n == 1 {
        return if x < xp[0] {
            left
        } else if x > xp[0] {
            right
        } else {
            fp[0]
        };
    }
    if x > xp[n - 1] {
        return right;
    }
    if x < xp[0] {
        return left;
    }
    let j = xp[..n].partition_point(|&v| v <= x) - 1;
    if j == n - 1 || xp[j] == x {
        return fp[j];
    }
    let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    let y = slope * (x - xp[j]) + fp[j];
    if y.is_nan() {
        let y = slope * (x - xp[j + 1]) + fp[j + 1];
        if y.is_nan() && fp[j] == fp[j + 1] {
            return fp[j];
        }
        return y;
    }
    y
}

/// Ultralytics' `smooth`: a box filter over a fraction `f` of the curve, edges padded.
fn smooth(y: &[f64], f: f64) -> Vec<f64> {
    let nf = ((y.len() as f64 * f * 2.0).round_ties_even() as usize) / 2 + 1;
    let pad = nf / 2;
    let (first, last) = (y[0], y[y.len() - 1]);
    let padded: Vec<f64> = std::iter::repeat_n(first, pad)
        .chain(y.iter().copied())
        .chain(std::iter::repeat_n(last, pad))
        .collect();
    let w = 1.0 / nf as f64;
    padded
        .windows(nf)
        .map(|win| win.iter().map(|v| v * w).sum())
        .collect()
}

/// Index of the first maximum.
fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class: &str, confidence: f32, bbox: [f32; 4]) -> Detection {
        Detection {
            class: class.into(),
            confidence,
            bbox,
        }
    }

    fn gt(class: &str, bbox: [f32; 4]) -> Detection {
        det(class, 1.0, bbox)
    }

    const A: [f32; 4] = [0.1, 0.1, 0.3, 0.3];
    const B: [f32; 4] = [0.5, 0.5, 0.8, 0.9];

    #[test]
    fn perfect_predictions_score_0_995_map_as_in_ultralytics_and_full_precision_recall() {
        // The last trapezoid of the 101-point integral ends on the envelope's 0 sentinel,
        // so a perfect detector gets AP 0.995 in Ultralytics, and here.
        let preds = [det("stain", 0.9, A), det("fracture", 0.8, B)];
        let truth = [gt("stain", A), gt("fracture", B)];
        let m = evaluate([(&preds[..], &truth[..])], &ClassNames::default_line());
        assert!((m.overall.map50 - 0.995).abs() < 1e-9);
        assert!((m.overall.map50_95 - 0.995).abs() < 1e-9);
        assert!((m.overall.precision - 1.0).abs() < 1e-9);
        assert!((m.overall.recall - 1.0).abs() < 1e-9);
        assert_eq!(m.per_class.len(), 2);
        assert_eq!(
            m.per_class[0].class, "fracture",
            "class-id order of the model"
        );
        assert_eq!((m.labels, m.predictions, m.images), (2, 2, 1));
    }

    #[test]
    fn no_predictions_give_zero_and_no_labels_give_zero() {
        let truth = [gt("stain", A)];
        let m = evaluate([(&[][..], &truth[..])], &ClassNames::default_line());
        assert_eq!(m.overall, MetricSet::default());
        let preds = [det("stain", 0.9, A)];
        let m = evaluate([(&preds[..], &[][..])], &ClassNames::default_line());
        assert_eq!(m.overall, MetricSet::default());
        assert!(m.per_class.is_empty());
        let m = DetectionEvaluator::new().finish();
        assert_eq!(m.overall, MetricSet::default());
    }

    #[test]
    fn a_prediction_of_the_wrong_class_never_matches() {
        let correct = match_predictions(&[1], &[0], &[1.0]);
        assert_eq!(correct, vec![[false; N_IOU]]);
    }

    #[test]
    fn a_duplicate_prediction_is_a_false_positive_once_the_label_is_claimed() {
        // Two predictions on one label: the first (higher confidence) takes it.
        let correct = match_predictions(&[0, 0], &[0], &[0.97, 0.99]);
        assert_eq!(correct[0], [true; N_IOU]);
        assert_eq!(correct[1], [false; N_IOU]);
    }

    #[test]
    fn matching_is_per_threshold_so_a_loose_box_counts_only_at_low_iou() {
        // IoU 0.72: a hit at 0.50..0.70, a miss from 0.75 on.
        let correct = match_predictions(&[0], &[0], &[0.72]);
        assert_eq!(
            correct[0],
            [true, true, true, true, true, false, false, false, false, false]
        );
    }

    #[test]
    fn a_later_prediction_takes_a_label_left_free_at_a_strict_threshold() {
        // Prediction 0 overlaps label 0 at 0.6 and label 1 at 0.9; prediction 1 overlaps
        // label 1 at 0.95. Prediction 0 comes first and takes label 1 (its best) at every
        // threshold up to 0.90, so prediction 1 finds label 1 free only at 0.95.
        let iou = [0.6, 0.0, 0.9, 0.95];
        let correct = match_predictions(&[0, 0], &[0, 0], &iou);
        assert_eq!(
            correct[0],
            [true, true, true, true, true, true, true, true, true, false]
        );
        assert_eq!(
            correct[1],
            [false, false, false, false, false, false, false, false, false, true]
        );
    }

    #[test]
    fn compute_ap_of_a_perfect_curve_is_0_995_and_of_half_recall_0_495() {
        assert!((compute_ap(&[1.0], &[1.0]) - 0.995).abs() < 1e-12);
        assert!((compute_ap(&[0.5], &[1.0]) - 0.495).abs() < 1e-12);
    }

    #[test]
    fn interp_follows_numpy_at_ties_and_edges() {
        let xp = [0.0, 0.0, 0.5, 1.0];
        let fp = [1.0, 0.8, 0.6, 0.0];
        assert_eq!(interp(0.0, &xp, &fp, 9.0, 7.0), 0.8, "last of tied xp");
        assert_eq!(interp(-0.1, &xp, &fp, 9.0, 7.0), 9.0);
        assert_eq!(interp(1.1, &xp, &fp, 9.0, 7.0), 7.0);
        assert_eq!(interp(1.0, &xp, &fp, 9.0, 7.0), 0.0);
        assert!((interp(0.25, &xp, &fp, 9.0, 7.0) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn smooth_keeps_a_constant_curve_and_has_the_same_length() {
        let y = vec![0.5; CURVE_POINTS];
        let s = smooth(&y, 0.1);
        assert_eq!(s.len(), CURVE_POINTS);
        assert!(s.iter().all(|v| (v - 0.5).abs() < 1e-12));
    }

    #[test]
    fn predictions_with_nan_confidence_are_ignored() {
        let preds = [det("stain", f32::NAN, A), det("stain", 0.9, A)];
        let truth = [gt("stain", A)];
        let m = evaluate([(&preds[..], &truth[..])], &ClassNames::default_line());
        assert_eq!(m.predictions, 1);
        assert!((m.overall.map50 - 0.995).abs() < 1e-9);
    }
}
