//! From the raw model output to boxes: candidate extraction for both Ultralytics output
//! layouts, class-aware NMS as Ultralytics' `non_max_suppression` does it, and the
//! strongest score over all anchors (which routing needs to judge a clean image).

use std::cmp::Ordering;

/// The two output layouts of Ultralytics' ONNX exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLayout {
    /// `[1, 4 + nc, N]`: per anchor `cx, cy, w, h` then one score per class (YOLOv8/11).
    Anchors {
        num_classes: usize,
        num_anchors: usize,
    },
    /// `[1, K, 6]`: per row `x1, y1, x2, y2, score, class` (NMS-free heads, YOLO26).
    EndToEnd { rows: usize },
}

impl OutputLayout {
    /// Number of `f32` values of one output tensor.
    pub fn len(&self) -> usize {
        match *self {
            OutputLayout::Anchors {
                num_classes,
                num_anchors,
            } => (4 + num_classes) * num_anchors,
            OutputLayout::EndToEnd { rows } => rows * 6,
        }
    }

    /// True for a layout with no values (never for a loaded model).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Thresholds of the post-processing (Ultralytics predict defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NmsOptions {
    /// Boxes need a score strictly above this.
    pub conf: f32,
    /// A box is suppressed by a stronger one of its class with IoU strictly above this.
    pub iou: f32,
    /// At most this many boxes are kept.
    pub max_det: usize,
    /// At most this many candidates enter NMS (the strongest).
    pub max_nms: usize,
}

impl Default for NmsOptions {
    fn default() -> Self {
        Self {
            conf: 0.25,
            iou: 0.7,
            max_det: 300,
            max_nms: 30_000,
        }
    }
}

/// A box in model-input pixels (`x1, y1, x2, y2`), its score and class id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub bbox: [f32; 4],
    pub score: f32,
    pub class: usize,
}

/// The strongest class score over every anchor, before any floor, and its class.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PeakScore {
    pub score: f32,
    pub class: Option<usize>,
}

/// Extracts the boxes above `conf` (best class per anchor) and the peak score.
pub fn candidates(raw: &[f32], layout: OutputLayout, conf: f32) -> (Vec<Candidate>, PeakScore) {
    let mut peak = PeakScore::default();
    let mut out = Vec::new();
    match layout {
        OutputLayout::Anchors {
            num_classes,
            num_anchors: n,
        } => {
            let row = |r: usize| &raw[r * n..(r + 1) * n];
            let (cx, cy, w, h) = (row(0), row(1), row(2), row(3));
            for a in 0..n {
                // First maximum, as torch's max does.
                let (mut best, mut best_class) = (f32::NEG_INFINITY, 0usize);
                for c in 0..num_classes {
                    let s = raw[(4 + c) * n + a];
                    if s > best {
                        best = s;
                        best_class = c;
                    }
                }
                if best > peak.score || peak.class.is_none() {
                    peak = PeakScore {
                        score: best,
                        class: Some(best_class),
                    };
                }
                if best > conf {
                    let (hw, hh) = (w[a] / 2.0, h[a] / 2.0);
                    out.push(Candidate {
                        bbox: [cx[a] - hw, cy[a] - hh, cx[a] + hw, cy[a] + hh],
                        score: best,
                        class: best_class,
                    });
                }
            }
        }
        OutputLayout::EndToEnd { rows } => {
            for r in raw.chunks_exact(6).take(rows) {
                let score = r[4];
                let class = if r[5].is_finite() && r[5] >= 0.0 {
                    r[5].round() as usize
                } else {
                    usize::MAX
                };
                if score > peak.score || peak.class.is_none() {
                    peak = PeakScore {
                        score,
                        class: Some(class),
                    };
                }
                if score > conf {
                    out.push(Candidate {
                        bbox: [r[0], r[1], r[2], r[3]],
                        score,
                        class,
                    });
                }
            }
        }
    }
    if peak.class.is_some() {
        peak.score = peak.score.clamp(0.0, 1.0);
    }
    (out, peak)
}

fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]) * (b[3] - b[1])
}

/// IoU as torchvision's `nms` computes it (areas unclamped, intersection clamped at 0).
fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    if inter == 0.0 {
        return 0.0;
    }
    inter / (area(a) + area(b) - inter)
}

/// Class-aware greedy NMS: strongest first; a box is dropped when a kept box of the same
/// class overlaps it with IoU above `opts.iou`. Keeps at most `opts.max_det`, strongest
/// first. (Ultralytics offsets boxes by class × 7680 px to the same effect.)
pub fn nms(mut cands: Vec<Candidate>, opts: &NmsOptions) -> Vec<Candidate> {
    // Stable sort: ties keep anchor order.
    cands.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal));
    cands.truncate(opts.max_nms);
    let mut kept: Vec<Candidate> = Vec::new();
    for c in cands {
        if kept.len() >= opts.max_det {
            break;
        }
        let suppressed = kept
            .iter()
            .any(|k| k.class == c.class && iou(&k.bbox, &c.bbox) > opts.iou);
        if !suppressed {
            kept.push(c);
        }
    }
    kept
}

/// For the end-to-end layout: no NMS, the first `max_det` rows above the floor.
pub fn end_to_end(cands: Vec<Candidate>, opts: &NmsOptions) -> Vec<Candidate> {
    cands.into_iter().take(opts.max_det).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(b: [f32; 4], score: f32, class: usize) -> Candidate {
        Candidate {
            bbox: b,
            score,
            class,
        }
    }

    #[test]
    fn overlapping_boxes_of_one_class_keep_the_strongest() {
        let out = nms(
            vec![
                cand([0.0, 0.0, 10.0, 10.0], 0.8, 0),
                cand([0.5, 0.0, 10.5, 10.0], 0.9, 0),
                cand([50.0, 50.0, 60.0, 60.0], 0.3, 0),
            ],
            &NmsOptions::default(),
        );
        let scores: Vec<f32> = out.iter().map(|c| c.score).collect();
        assert_eq!(scores, [0.9, 0.3]);
    }

    #[test]
    fn overlapping_boxes_of_different_classes_both_survive() {
        let out = nms(
            vec![
                cand([0.0, 0.0, 10.0, 10.0], 0.8, 0),
                cand([0.0, 0.0, 10.0, 10.0], 0.7, 1),
            ],
            &NmsOptions::default(),
        );
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn iou_exactly_at_threshold_is_kept() {
        // Two 10x10 boxes overlapping 5x10: IoU = 50 / 150 = 1/3.
        let opts = NmsOptions {
            iou: 1.0 / 3.0,
            ..NmsOptions::default()
        };
        let out = nms(
            vec![
                cand([0.0, 0.0, 10.0, 10.0], 0.8, 0),
                cand([5.0, 0.0, 15.0, 10.0], 0.7, 0),
            ],
            &opts,
        );
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn max_det_caps_the_output() {
        let many: Vec<Candidate> = (0..50)
            .map(|i| cand([i as f32 * 20.0, 0.0, i as f32 * 20.0 + 10.0, 10.0], 0.5, 0))
            .collect();
        let opts = NmsOptions {
            max_det: 7,
            ..NmsOptions::default()
        };
        assert_eq!(nms(many, &opts).len(), 7);
    }

    #[test]
    fn anchor_layout_decodes_centre_boxes_and_tracks_the_peak_below_the_floor() {
        // 2 classes, 3 anchors; rows: cx, cy, w, h, s0, s1.
        let raw = [
            10.0, 20.0, 30.0, // cx
            10.0, 20.0, 30.0, // cy
            4.0, 4.0, 4.0, // w
            2.0, 2.0, 2.0, // h
            0.1, 0.6, 0.2, // class 0
            0.2, 0.3, 0.24, // class 1
        ];
        let layout = OutputLayout::Anchors {
            num_classes: 2,
            num_anchors: 3,
        };
        let (c, peak) = candidates(&raw, layout, 0.25);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].bbox, [18.0, 19.0, 22.0, 21.0]);
        assert_eq!((c[0].score, c[0].class), (0.6, 0));
        assert_eq!(
            peak,
            PeakScore {
                score: 0.6,
                class: Some(0)
            }
        );
        let (none, peak) = candidates(&raw, layout, 0.9);
        assert!(none.is_empty());
        assert_eq!(peak.score, 0.6, "peak is reported even when nothing passes");
    }

    #[test]
    fn end_to_end_layout_reads_corner_boxes_and_class_column() {
        let raw = [
            1.0, 2.0, 3.0, 4.0, 0.9, 2.0, //
            5.0, 6.0, 7.0, 8.0, 0.1, 1.0,
        ];
        let (c, peak) = candidates(&raw, OutputLayout::EndToEnd { rows: 2 }, 0.25);
        assert_eq!(c, vec![cand([1.0, 2.0, 3.0, 4.0], 0.9, 2)]);
        assert_eq!(
            peak,
            PeakScore {
                score: 0.9,
                class: Some(2)
            }
        );
    }
}
