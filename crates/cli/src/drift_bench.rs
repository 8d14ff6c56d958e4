//! `opti drift-bench`: how fast drift analytics notices each drift knob of the simulated
//! line, and how often it cries wolf on an unchanged one.
//!
//! The line: a fixed baseline of `--baseline` clean-line parts, then a stream of parts
//! evaluated every `--every` parts against it with a sliding recent window of
//! `--recent` parts — exactly the signals of `GET /drift/` (`opti_core::drift::evaluate`).
//! - False-alarm rate: the stream stays unchanged for `--windows` evaluations; the share
//!   of evaluations with any alarm is reported (and the signals that fired).
//! - Detection delay, per knob: the knob ramps from neutral to its full value over
//!   `--ramp` parts; the delay is the number of parts (and evaluations) from the onset of
//!   drift until the first alarm, and the report names the signals that fired.
//!
//! What each part contributes: image statistics computed by `opti_vision::image_stats` on
//! the rendered image (cheap), always. Decision confidence and predicted classes need the
//! detector: with `--detector` the real shipped model runs on every part (slow: ~0.1–0.3
//! s per image on a laptop core); without it the confidence signals are left without data
//! (they say "not enough data") and the class mix uses the simulator's ground truth (a
//! perfect-detector proxy).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use opti_core::drift::{evaluate, DriftReport, DriftSample, ScopeWindows, OVERALL};
use opti_core::{Config, DriftConfig, RoutingPolicy};
use opti_sim::{generate, Drift, SimParams, STREAM_CLEAN_FRACTION};
use opti_vision::{image_stats, Detector, DetectorOptions};
use serde::Serialize;

/// Options of `opti drift-bench`.
#[derive(clap::Args, Debug)]
pub struct DriftBenchArgs {
    /// Parts in the fixed baseline window.
    #[arg(long, default_value_t = 200)]
    pub baseline: usize,
    /// Parts in the sliding recent window.
    #[arg(long, default_value_t = 50)]
    pub recent: usize,
    /// Evaluate after every this many parts.
    #[arg(long, default_value_t = 25)]
    pub every: usize,
    /// Evaluations of the unchanged line (false-alarm rate).
    #[arg(long, default_value_t = 40)]
    pub windows: usize,
    /// Parts over which a knob ramps from neutral to its full value.
    #[arg(long, default_value_t = 100)]
    pub ramp: usize,
    /// Most evaluations after the onset of drift before a knob counts as missed.
    #[arg(long, default_value_t = 16)]
    pub max_windows: usize,
    /// Knobs to run, comma-separated: illumination, darkening, blur, noise, material,
    /// defect, offset.
    #[arg(
        long,
        default_value = "illumination,darkening,blur,noise,material,defect,offset"
    )]
    pub knobs: String,
    /// Image side in pixels (the simulator's default line is 640; smaller is faster).
    #[arg(long, default_value_t = 320)]
    pub size: u32,
    /// Seed of the simulated line.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Run the real detector on every part (confidence and class-mix signals from the
    /// model; slow). Without it: image statistics and ground-truth class mix only.
    #[arg(long)]
    pub detector: bool,
    /// The ONNX model for `--detector` (default: the shipped one).
    #[arg(long, env = "OPTI_MODEL")]
    pub model: Option<PathBuf>,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One knob at full strength.
fn knob(name: &str) -> Option<Drift> {
    let d = Drift::default();
    Some(match name {
        "illumination" => Drift {
            illumination_shift: 0.3,
            ..d
        },
        "darkening" => Drift {
            illumination_shift: -0.3,
            ..d
        },
        "blur" => Drift {
            blur_sigma: 2.0,
            ..d
        },
        "noise" => Drift {
            noise_sigma: 0.04,
            ..d
        },
        "material" => Drift {
            material_shift: 1.0,
            ..d
        },
        "defect" => Drift {
            defect_shift: 1.0,
            ..d
        },
        "offset" => Drift {
            camera_offset_x: 0.15,
            camera_offset_y: 0.1,
            ..d
        },
        _ => return None,
    })
}

/// `full` scaled by `t` in [0, 1].
fn scaled(full: &Drift, t: f32) -> Drift {
    Drift {
        illumination_shift: full.illumination_shift * t,
        blur_sigma: full.blur_sigma * t,
        noise_sigma: full.noise_sigma * t,
        material_shift: full.material_shift * t,
        defect_shift: full.defect_shift * t,
        camera_offset_x: full.camera_offset_x * t,
        camera_offset_y: full.camera_offset_y * t,
    }
}

/// Turns simulated parts into drift samples.
struct Line {
    seed: u64,
    params: SimParams,
    detector: Option<(Detector, RoutingPolicy, f32)>,
    class_names: Vec<String>,
}

impl Line {
    fn sample(&self, index: u64, drift: Drift) -> Result<DriftSample> {
        let params = SimParams {
            drift,
            ..self.params.clone()
        };
        let s = generate(self.seed, index, &params);
        let image = Some(image_stats(&s.image));
        match &self.detector {
            Some((det, policy, cut)) => {
                let (output, _) = det
                    .detect(&s.image)
                    .map_err(|e| anyhow::anyhow!("detector: {e}"))?;
                let routed = policy.route(&format!("bench-{index}"), &output);
                let mut classes: Vec<String> = output
                    .detections
                    .iter()
                    .filter(|d| d.confidence >= *cut)
                    .map(|d| d.class.clone())
                    .collect();
                classes.sort();
                classes.dedup();
                Ok(DriftSample {
                    confidence: routed.confidence,
                    image,
                    classes,
                    overridden: None,
                    audit_sample: false,
                })
            }
            None => {
                let mut classes: Vec<String> = s
                    .labels
                    .iter()
                    .filter_map(|l| self.class_names.get(l.class_id).cloned())
                    .collect();
                classes.sort();
                classes.dedup();
                Ok(DriftSample {
                    // Not measured: the confidence signals say "not enough data".
                    confidence: f32::NAN,
                    image,
                    classes,
                    overridden: None,
                    audit_sample: false,
                })
            }
        }
    }
}

/// The outcome for one knob.
#[derive(Debug, Serialize)]
pub struct KnobResult {
    pub knob: String,
    /// Parts from the onset of drift to the evaluation that first alarmed.
    pub delay_parts: Option<usize>,
    /// Evaluations from the onset of drift to the first alarm (1 = the first one after).
    pub delay_windows: Option<usize>,
    /// Knob strength (share of full) when it alarmed.
    pub strength_at_alarm: Option<f32>,
    /// The alarms of the first alarming evaluation (`scope/signal`).
    pub signals: Vec<String>,
}

/// Everything `opti drift-bench` measured.
#[derive(Debug, Serialize)]
pub struct DriftBenchResult {
    pub baseline: usize,
    pub recent: usize,
    pub every: usize,
    pub ramp: usize,
    pub size: u32,
    pub detector: bool,
    /// Evaluations of the unchanged line.
    pub clean_windows: usize,
    /// Of those, how many raised any alarm.
    pub false_alarm_windows: usize,
    pub false_alarm_rate: f64,
    /// Signals that fired on the unchanged line, with counts.
    pub false_alarm_signals: BTreeMap<String, usize>,
    pub knobs: Vec<KnobResult>,
    pub seconds: f64,
}

fn report(cfg: &DriftConfig, baseline: &[DriftSample], recent: &[DriftSample]) -> DriftReport {
    evaluate(
        &[ScopeWindows {
            scope: OVERALL,
            baseline,
            recent,
        }],
        cfg,
    )
}

/// Runs the benchmark and returns its results (also used by the tests).
pub fn measure(args: &DriftBenchArgs) -> Result<DriftBenchResult> {
    if args.baseline < 2 || args.recent < 2 || args.every == 0 || args.size < 64 {
        bail!("--baseline and --recent must be at least 2, --every at least 1, --size at least 64");
    }
    let knobs: Vec<(String, Drift)> = args
        .knobs
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            knob(k)
                .map(|d| (k.to_string(), d))
                .with_context(|| format!("unknown knob {k:?} (illumination, darkening, blur, noise, material, defect, offset)"))
        })
        .collect::<Result<_>>()?;
    let started = std::time::Instant::now();
    let config = Config::default();
    let detector = if args.detector {
        let path = crate::serve::default_model_path(args.model.as_deref())?;
        let det = Detector::load(&path, DetectorOptions::default())
            .map_err(|e| anyhow::anyhow!("loading {}: {e}", path.display()))?;
        Some((det, RoutingPolicy::new(&config), config.decision_cut))
    } else {
        None
    };
    let line = Line {
        seed: args.seed,
        params: SimParams {
            width: args.size,
            height: args.size,
            clean_fraction: STREAM_CLEAN_FRACTION,
            ..SimParams::default()
        },
        detector,
        // The simulator's class ids (opti_sim::class) in the shipped model's order.
        class_names: ["defect", "fracture", "stain", "misalignment"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let cfg = DriftConfig {
        baseline_window: args.baseline as u32,
        recent_window: args.recent as u32,
        ..DriftConfig::default()
    };
    let neutral = Drift::default();
    let baseline: Vec<DriftSample> = (0..args.baseline as u64)
        .map(|i| line.sample(i, neutral))
        .collect::<Result<_>>()?;

    // The unchanged line: parts after the baseline, a sliding recent window.
    let mut stream: Vec<DriftSample> = Vec::new();
    let mut next = args.baseline as u64;
    let mut false_alarm_windows = 0;
    let mut false_alarm_signals: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..args.windows {
        let need = if stream.is_empty() {
            args.recent
        } else {
            args.every
        };
        for _ in 0..need {
            stream.push(line.sample(next, neutral)?);
            next += 1;
        }
        let r = report(&cfg, &baseline, &stream[stream.len() - args.recent..]);
        if r.drift_detected {
            false_alarm_windows += 1;
            for a in r.alarms {
                *false_alarm_signals.entry(a).or_default() += 1;
            }
        }
    }
    // Each knob continues from a full recent window of the unchanged line.
    let warm: Vec<DriftSample> = stream[stream.len().saturating_sub(args.recent)..].to_vec();
    let mut results = Vec::new();
    for (name, full) in &knobs {
        let mut window = warm.clone();
        let mut index = next + 1_000_000;
        let mut result = KnobResult {
            knob: name.clone(),
            delay_parts: None,
            delay_windows: None,
            strength_at_alarm: None,
            signals: Vec::new(),
        };
        let mut parts = 0usize;
        for w in 1..=args.max_windows {
            let mut t = 0.0;
            for _ in 0..args.every {
                parts += 1;
                t = (parts as f32 / args.ramp.max(1) as f32).min(1.0);
                window.push(line.sample(index, scaled(full, t))?);
                index += 1;
            }
            let start = window.len() - args.recent;
            window.drain(..start);
            let r = report(&cfg, &baseline, &window);
            if r.drift_detected {
                result.delay_parts = Some(parts);
                result.delay_windows = Some(w);
                result.strength_at_alarm = Some(t);
                result.signals = r.alarms;
                break;
            }
        }
        results.push(result);
    }
    let clean = args.windows;
    Ok(DriftBenchResult {
        baseline: args.baseline,
        recent: args.recent,
        every: args.every,
        ramp: args.ramp,
        size: args.size,
        detector: args.detector,
        clean_windows: clean,
        false_alarm_windows,
        false_alarm_rate: if clean == 0 {
            0.0
        } else {
            false_alarm_windows as f64 / clean as f64
        },
        false_alarm_signals,
        knobs: results,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Prints the results as a Markdown table (the one in docs/BENCHMARKS.md).
fn print_table(r: &DriftBenchResult) {
    println!(
        "Drift benchmark: baseline {} parts, recent window {} parts, evaluated every {} parts, ramp {} parts, {}x{} images, confidence from {}",
        r.baseline,
        r.recent,
        r.every,
        r.ramp,
        r.size,
        r.size,
        if r.detector { "the shipped detector" } else { "no detector (image statistics + ground-truth class mix)" }
    );
    println!(
        "Unchanged line: {} of {} evaluations alarmed (false-alarm rate {:.3}){}",
        r.false_alarm_windows,
        r.clean_windows,
        r.false_alarm_rate,
        if r.false_alarm_signals.is_empty() {
            String::new()
        } else {
            format!(": {:?}", r.false_alarm_signals)
        }
    );
    println!();
    println!(
        "| knob | delay (parts) | delay (evaluations) | knob strength at alarm | first signals |"
    );
    println!("|---|---|---|---|---|");
    for k in &r.knobs {
        let show = |v: Option<usize>| v.map_or("not detected".to_string(), |v| v.to_string());
        let mut signals: Vec<&str> = k
            .signals
            .iter()
            .map(|s| s.strip_prefix("overall/").unwrap_or(s))
            .collect();
        signals.truncate(4);
        println!(
            "| {} | {} | {} | {} | {} |",
            k.knob,
            show(k.delay_parts),
            show(k.delay_windows),
            k.strength_at_alarm
                .map_or("–".to_string(), |t| format!("{:.0} %", t * 100.0)),
            signals.join(", ")
        );
    }
    println!();
    println!("({:.1} s)", r.seconds);
}

/// Runs `opti drift-bench`.
pub fn run(args: DriftBenchArgs) -> Result<()> {
    let result = measure(&args)?;
    print_table(&result);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
