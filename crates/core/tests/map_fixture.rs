//! Detection metrics agree with Ultralytics' own numbers on the cases of
//! `fixtures/map_fixture.json` (made by `fixtures/make_map_fixture.py`).

use std::collections::BTreeMap;

use opti_core::metrics::evaluate;
use opti_core::{ClassNames, Detection};
use serde::Deserialize;

/// Agreement required for precision, recall, mAP50 and mAP50-95.
const TOLERANCE: f64 = 0.002;

#[derive(Deserialize)]
struct Fixture {
    ultralytics_version: String,
    classes: Vec<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    images: Vec<Image>,
    /// Ultralytics as it ran.
    expected: Expected,
    /// Ultralytics with tied confidences ranked in input order; present where NumPy's
    /// unstable sort reordered ties, which leaves Ultralytics' own result to chance.
    expected_stable_ties: Option<Expected>,
}

#[derive(Deserialize)]
struct Image {
    predictions: Vec<Detection>,
    ground_truth: Vec<Detection>,
}

#[derive(Deserialize)]
struct Expected {
    precision: f64,
    recall: f64,
    map50: f64,
    map50_95: f64,
    per_class: BTreeMap<String, ExpectedClass>,
}

#[derive(Deserialize)]
struct ExpectedClass {
    precision: f64,
    recall: f64,
    ap50: f64,
    ap50_95: f64,
}

fn fixture() -> Fixture {
    let text = include_str!("fixtures/map_fixture.json");
    serde_json::from_str(text).expect("fixture parses")
}

#[test]
fn metrics_match_ultralytics_within_0_002_on_every_fixture_case() {
    let fixture = fixture();
    assert_eq!(fixture.ultralytics_version, "8.4.190");
    let classes = ClassNames(fixture.classes.clone());
    let mut worst = [0.0f64; 4];
    let mut failures = Vec::new();
    for case in &fixture.cases {
        let m = evaluate(
            case.images
                .iter()
                .map(|im| (&im.predictions[..], &im.ground_truth[..])),
            &classes,
        );
        // Ties in confidence are ranked in input order here (as pycocotools does); where
        // NumPy happened to order them otherwise, compare with that ranking instead.
        let e = case.expected_stable_ties.as_ref().unwrap_or(&case.expected);
        if case.expected_stable_ties.is_some() {
            println!(
                "{}: NumPy reordered tied confidences; as Ultralytics ran, mAP50 {:.4} and \
                 mAP50-95 {:.4}, with ties in input order {:.4} and {:.4}, ours {:.4} and {:.4}",
                case.name,
                case.expected.map50,
                case.expected.map50_95,
                e.map50,
                e.map50_95,
                m.overall.map50,
                m.overall.map50_95
            );
        }
        let got = [
            m.overall.precision,
            m.overall.recall,
            m.overall.map50,
            m.overall.map50_95,
        ];
        let want = [e.precision, e.recall, e.map50, e.map50_95];
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            let diff = (g - w).abs();
            worst[k] = worst[k].max(diff);
            if diff > TOLERANCE {
                failures.push(format!("{}: metric {k} got {g:.6} want {w:.6}", case.name));
            }
        }
        let ours: BTreeMap<&str, _> = m.per_class.iter().map(|c| (c.class.as_str(), c)).collect();
        assert_eq!(
            ours.keys().copied().collect::<Vec<_>>(),
            e.per_class.keys().map(String::as_str).collect::<Vec<_>>(),
            "{}: classes with labels",
            case.name
        );
        for (class, want) in &e.per_class {
            let got = ours[class.as_str()];
            for (what, g, w) in [
                ("precision", got.precision, want.precision),
                ("recall", got.recall, want.recall),
                ("ap50", got.ap50, want.ap50),
                ("ap50_95", got.ap50_95, want.ap50_95),
            ] {
                if (g - w).abs() > TOLERANCE {
                    failures.push(format!(
                        "{} / {class}: {what} got {g:.6} want {w:.6}",
                        case.name
                    ));
                }
            }
        }
    }
    println!(
        "max |diff| over {} cases: precision {:.2e}, recall {:.2e}, mAP50 {:.2e}, mAP50-95 {:.2e}",
        fixture.cases.len(),
        worst[0],
        worst[1],
        worst[2],
        worst[3]
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
