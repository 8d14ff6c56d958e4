//! `opti drift-bench` on the simulated line, end to end: an unchanged line raises no
//! alarm across many evaluations, and each drift knob alarms within a few evaluations,
//! naming the signal that should move. Image statistics come from `opti_vision` on the
//! rendered images; the detector is not run (see the module doc of `drift_bench`).

use std::process::Command;

use serde_json::Value;

fn run_bench(knobs: &str, windows: &str) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("drift.json");
    let out = Command::new(env!("CARGO_BIN_EXE_opti"))
        .args([
            "drift-bench",
            "--size",
            "160",
            "--baseline",
            "200",
            "--recent",
            "50",
            "--every",
            "25",
            "--ramp",
            "50",
            "--max-windows",
            "8",
            "--windows",
            windows,
            "--knobs",
            knobs,
            "--json",
        ])
        .arg(&json)
        .output()
        .expect("run opti drift-bench");
    assert!(
        out.status.success(),
        "drift-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("| knob | delay (parts)"), "{table}");
    serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json parses")
}

fn signals_of(result: &Value, knob: &str) -> (u64, Vec<String>) {
    let k = result["knobs"]
        .as_array()
        .and_then(|a| a.iter().find(|k| k["knob"] == knob))
        .unwrap_or_else(|| panic!("knob {knob} missing: {result}"));
    let delay = k["delay_windows"]
        .as_u64()
        .unwrap_or_else(|| panic!("{knob} was not detected: {k}"));
    let signals = k["signals"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (delay, signals)
}

#[test]
fn unchanged_line_never_alarms_and_each_knob_alarms_within_four_evaluations_naming_its_signal() {
    // Given a line evaluated 30 times without any change, then three kinds of drift…
    let r = run_bench("illumination,blur,material", "30");
    // …the unchanged line raised no alarm at all,
    assert_eq!(r["clean_windows"], 30);
    assert_eq!(
        r["false_alarm_windows"], 0,
        "false alarms: {}",
        r["false_alarm_signals"]
    );
    // …and each knob alarmed within 4 evaluations (100 parts) of its onset, on the
    // feature that a quality engineer would check first.
    let expect: [(&str, &[&str]); 3] = [
        ("illumination", &["brightness."]),
        ("blur", &["sharpness."]),
        ("material", &["brightness.", "contrast.", "sharpness."]),
    ];
    for (knob, features) in expect {
        let (delay, signals) = signals_of(&r, knob);
        assert!(delay <= 4, "{knob} took {delay} evaluations: {signals:?}");
        assert!(
            signals
                .iter()
                .any(|s| features.iter().any(|f| s.contains(f))),
            "{knob} alarmed on {signals:?}, expected one of {features:?}"
        );
    }
    // Without the detector the confidence signals had no data: not a silent "no drift".
    assert_eq!(r["detector"], false);
}

#[test]
fn unknown_knob_is_refused_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_opti"))
        .args(["drift-bench", "--knobs", "sunshine", "--windows", "1"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown knob \"sunshine\""), "{err}");
}
