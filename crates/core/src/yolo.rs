//! The YOLO label format (one `class cx cy w h` line per box, normalised to the image)
//! used by training sets, and its conversion to and from the `[x1, y1, x2, y2]` boxes of
//! [`Detection`](crate::types::Detection).

use std::fmt::Write as _;

use thiserror::Error;

use crate::class::ClassNames;
use crate::types::Detection;

/// One box of a YOLO label file: class id and centre/size normalised to `[0, 1]` of the
/// image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YoloLabel {
    /// Index into the model's class names.
    pub class_id: usize,
    /// Box centre, x, in `[0, 1]`.
    pub cx: f32,
    /// Box centre, y, in `[0, 1]`.
    pub cy: f32,
    /// Box width, in `[0, 1]`.
    pub w: f32,
    /// Box height, in `[0, 1]`.
    pub h: f32,
}

/// Why a label file could not be read. Every variant names the 1-based line.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LabelError {
    /// A line did not have exactly five fields.
    #[error("line {line}: expected 5 fields `class cx cy w h`, found {found}")]
    FieldCount { line: usize, found: usize },
    /// The class field is not a non-negative integer.
    #[error("line {line}: class id `{value}` is not a non-negative integer")]
    BadClass { line: usize, value: String },
    /// A coordinate field is not a finite number.
    #[error("line {line}: {field} `{value}` is not a number")]
    NotANumber {
        line: usize,
        field: &'static str,
        value: String,
    },
    /// A coordinate is outside `[0, 1]`.
    #[error("line {line}: {field} = {value} is outside [0, 1]")]
    OutOfRange {
        line: usize,
        field: &'static str,
        value: f32,
    },
}

/// Slack for coordinates written by tools that round slightly past the edge.
const RANGE_EPS: f32 = 1e-4;

impl YoloLabel {
    /// The box as normalised `[x1, y1, x2, y2]`, clamped to `[0, 1]`.
    pub fn to_xyxy(&self) -> [f32; 4] {
        let c = |v: f32| v.clamp(0.0, 1.0);
        [
            c(self.cx - self.w / 2.0),
            c(self.cy - self.h / 2.0),
            c(self.cx + self.w / 2.0),
            c(self.cy + self.h / 2.0),
        ]
    }

    /// The label for a normalised `[x1, y1, x2, y2]` box (clamped to `[0, 1]`; corners in
    /// either order).
    pub fn from_xyxy(class_id: usize, bbox: [f32; 4]) -> Self {
        let c = |v: f32| v.clamp(0.0, 1.0);
        let (x1, x2) = (c(bbox[0].min(bbox[2])), c(bbox[0].max(bbox[2])));
        let (y1, y2) = (c(bbox[1].min(bbox[3])), c(bbox[1].max(bbox[3])));
        Self {
            class_id,
            cx: (x1 + x2) / 2.0,
            cy: (y1 + y2) / 2.0,
            w: x2 - x1,
            h: y2 - y1,
        }
    }

    /// The label for a detection, if `classes` knows its class.
    pub fn from_detection(detection: &Detection, classes: &ClassNames) -> Option<Self> {
        let id = classes.id(&detection.class)?;
        Some(Self::from_xyxy(id, detection.bbox))
    }

    /// The detection for this label (confidence 1.0, as for a ground-truth or reviewer
    /// box), if `classes` knows its class id.
    pub fn to_detection(&self, classes: &ClassNames) -> Option<Detection> {
        Some(Detection {
            class: classes.name(self.class_id)?.to_owned(),
            confidence: 1.0,
            bbox: self.to_xyxy(),
        })
    }
}

/// Parses a YOLO label file. Blank lines are skipped; an empty file is a clean image.
pub fn parse_label_file(text: &str) -> Result<Vec<YoloLabel>, LabelError> {
    let mut labels = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let fields: Vec<&str> = raw.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != 5 {
            return Err(LabelError::FieldCount {
                line,
                found: fields.len(),
            });
        }
        let class_id = fields[0]
            .parse::<usize>()
            .map_err(|_| LabelError::BadClass {
                line,
                value: fields[0].to_owned(),
            })?;
        let mut coords = [0f32; 4];
        for (k, name) in ["cx", "cy", "w", "h"].into_iter().enumerate() {
            let value = fields[k + 1];
            let v = value
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| LabelError::NotANumber {
                    line,
                    field: name,
                    value: value.to_owned(),
                })?;
            if !(-RANGE_EPS..=1.0 + RANGE_EPS).contains(&v) {
                return Err(LabelError::OutOfRange {
                    line,
                    field: name,
                    value: v,
                });
            }
            coords[k] = v.clamp(0.0, 1.0);
        }
        labels.push(YoloLabel {
            class_id,
            cx: coords[0],
            cy: coords[1],
            w: coords[2],
            h: coords[3],
        });
    }
    Ok(labels)
}

/// Writes labels as a YOLO label file: one line per box, six decimals, trailing newline
/// (an empty string for no boxes).
pub fn format_label_file(labels: &[YoloLabel]) -> String {
    let mut out = String::with_capacity(labels.len() * 40);
    for l in labels {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{} {:.6} {:.6} {:.6} {:.6}",
            l.class_id, l.cx, l.cy, l.w, l.h
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn label() -> impl Strategy<Value = YoloLabel> {
        (0usize..80, 0f32..=1.0, 0f32..=1.0, 0f32..=1.0, 0f32..=1.0).prop_map(
            |(class_id, cx, cy, w, h)| YoloLabel {
                class_id,
                cx,
                cy,
                w,
                h,
            },
        )
    }

    proptest! {
        #[test]
        fn formatted_labels_parse_back_to_the_same_boxes(labels in prop::collection::vec(label(), 0..20)) {
            let parsed = parse_label_file(&format_label_file(&labels)).unwrap();
            prop_assert_eq!(parsed.len(), labels.len());
            for (a, b) in parsed.iter().zip(&labels) {
                prop_assert_eq!(a.class_id, b.class_id);
                for (x, y) in [(a.cx, b.cx), (a.cy, b.cy), (a.w, b.w), (a.h, b.h)] {
                    prop_assert!((x - y).abs() <= 1e-6, "{x} vs {y}");
                }
            }
        }

        #[test]
        fn xyxy_round_trip_keeps_boxes_inside_the_image(
            x1 in 0f32..=1.0, y1 in 0f32..=1.0, x2 in 0f32..=1.0, y2 in 0f32..=1.0
        ) {
            let label = YoloLabel::from_xyxy(2, [x1, y1, x2, y2]);
            let back = label.to_xyxy();
            prop_assert!((back[0] - x1.min(x2)).abs() < 1e-5);
            prop_assert!((back[1] - y1.min(y2)).abs() < 1e-5);
            prop_assert!((back[2] - x1.max(x2)).abs() < 1e-5);
            prop_assert!((back[3] - y1.max(y2)).abs() < 1e-5);
            prop_assert!(back.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }

    #[test]
    fn empty_file_is_a_clean_image() {
        assert_eq!(parse_label_file("").unwrap(), vec![]);
        assert_eq!(parse_label_file("\n  \n").unwrap(), vec![]);
        assert_eq!(format_label_file(&[]), "");
    }

    #[test]
    fn wrong_field_count_names_the_line() {
        let err = parse_label_file("0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.1\n").unwrap_err();
        assert_eq!(err, LabelError::FieldCount { line: 2, found: 4 });
        assert!(err.to_string().starts_with("line 2:"));
    }

    #[test]
    fn non_number_names_line_and_field() {
        let err = parse_label_file("0 0.5 abc 0.1 0.1").unwrap_err();
        assert_eq!(
            err,
            LabelError::NotANumber {
                line: 1,
                field: "cy",
                value: "abc".into()
            }
        );
        assert!(matches!(
            parse_label_file("0 0.5 NaN 0.1 0.1"),
            Err(LabelError::NotANumber { .. })
        ));
    }

    #[test]
    fn out_of_range_coordinate_is_rejected() {
        let err = parse_label_file("\n\n3 0.5 0.5 1.5 0.1").unwrap_err();
        assert_eq!(
            err,
            LabelError::OutOfRange {
                line: 3,
                field: "w",
                value: 1.5
            }
        );
        assert!(matches!(
            parse_label_file("0 -0.2 0.5 0.1 0.1"),
            Err(LabelError::OutOfRange { field: "cx", .. })
        ));
    }

    #[test]
    fn negative_or_fractional_class_is_rejected() {
        assert_eq!(
            parse_label_file("-1 0.5 0.5 0.1 0.1").unwrap_err(),
            LabelError::BadClass {
                line: 1,
                value: "-1".into()
            }
        );
        assert!(matches!(
            parse_label_file("1.5 0.5 0.5 0.1 0.1"),
            Err(LabelError::BadClass { line: 1, .. })
        ));
    }

    #[test]
    fn detection_conversion_uses_class_names() {
        let classes = ClassNames::default_line();
        let det = Detection {
            class: "stain".into(),
            confidence: 0.7,
            bbox: [0.1, 0.2, 0.3, 0.6],
        };
        let label = YoloLabel::from_detection(&det, &classes).unwrap();
        assert_eq!(label.class_id, 2);
        assert!((label.cx - 0.2).abs() < 1e-6 && (label.h - 0.4).abs() < 1e-6);
        let back = label.to_detection(&classes).unwrap();
        assert_eq!(back.class, "stain");
        assert_eq!(back.confidence, 1.0);
        let unknown = Detection {
            class: "rust".into(),
            ..det
        };
        assert!(YoloLabel::from_detection(&unknown, &classes).is_none());
    }
}
