//! `opti bench`: how fast and how heavy the detector is. Per-image latency split into
//! decode / preprocess / inference / postprocess (median and p90), model load time, peak
//! RSS (`VmHWM`), and images per second with 1, 2, … workers (each worker runs whole
//! images on one thread; tract itself is single-threaded). With `--compare-ort` the same
//! model, images and thread counts go through `bench/ort_bench.py` (onnxruntime) in the
//! same run and both are printed side by side with the ratio.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use opti_sim::dataset::{encode_image, ImageFormat};
use opti_sim::SimParams;
use opti_vision::decode::{decode_bytes, sniff};
use opti_vision::{Detector, DetectorOptions};
use serde_json::Value;

/// Arguments of `opti bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// ONNX model (an Ultralytics export); default: models/default/model.onnx.
    #[arg(long, env = "OPTI_MODEL")]
    pub model: Option<PathBuf>,
    /// Folder of PNG/JPEG images (recursive); default: simulated 640×640 JPEG parts.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Number of images (simulated, or the first N of --images).
    #[arg(long, default_value_t = 20)]
    pub count: usize,
    /// Worker counts to measure throughput with, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Untimed runs before measuring.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Passes over the image set for each measurement.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Also run bench/ort_bench.py (onnxruntime) on the same model, images and threads.
    #[arg(long)]
    pub compare_ort: bool,
    /// Python with onnxruntime and OpenCV for --compare-ort.
    #[arg(long, env = "OPTI_PYTHON")]
    pub python: Option<PathBuf>,
    /// Print the table as Markdown (for docs/BENCHMARKS.md).
    #[arg(long)]
    pub markdown: bool,
    /// Experiment: leave tract's ConcatThenEinsum declutter pass out.
    #[arg(long)]
    pub skip_concat_then_einsum: bool,
}

/// Median and 90th percentile of a sample, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
struct Spread {
    median: f64,
    p90: f64,
}

fn spread(samples: &[Duration]) -> Spread {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    if ms.is_empty() {
        return Spread::default();
    }
    // Nearest-rank on linear interpolation, as numpy's default percentile.
    let pct = |q: f64| {
        let pos = q * (ms.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        ms[lo] + (ms[hi] - ms[lo]) * (pos - lo as f64)
    };
    Spread {
        median: pct(0.5),
        p90: pct(0.9),
    }
}

/// One runtime's results.
#[derive(Debug, Default)]
struct Report {
    runtime: String,
    load_ms: f64,
    decode: Spread,
    preprocess: Spread,
    inference: Spread,
    postprocess: Spread,
    total: Spread,
    /// Images per second by worker count.
    workers: Vec<(usize, f64)>,
    /// onnxruntime only: images per second with intra-op threads.
    intra: Vec<(usize, f64)>,
    peak_rss_mb: f64,
}

/// Peak resident set size of this process (`VmHWM`), in MiB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The images: files of --images (by magic bytes), or simulated parts written to a
/// temporary folder (so that onnxruntime reads the very same bytes).
fn load_images(args: &BenchArgs) -> Result<(Vec<Vec<u8>>, PathBuf, bool)> {
    if let Some(dir) = &args.images {
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        files.sort();
        let mut blobs = Vec::new();
        for f in files {
            let bytes = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
            if sniff(&bytes).is_ok() {
                blobs.push(bytes);
            }
            if blobs.len() >= args.count {
                break;
            }
        }
        if blobs.is_empty() {
            bail!("no PNG/JPEG images in {}", dir.display());
        }
        return Ok((blobs, dir.clone(), false));
    }
    let dir = std::env::temp_dir().join(format!("opti-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let params = SimParams::default();
    let mut blobs = Vec::new();
    for i in 0..args.count as u64 {
        let sample = opti_sim::generate(7, i, &params);
        let bytes = encode_image(&sample.image, ImageFormat::default())
            .map_err(|e| anyhow::anyhow!("encoding simulated image: {e}"))?;
        std::fs::write(dir.join(format!("sim_{i:04}.jpg")), &bytes)?;
        blobs.push(bytes);
    }
    Ok((blobs, dir, true))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let ft = e.file_type()?;
        if ft.is_dir() {
            collect_files(&e.path(), out)?;
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// Runs the whole pipeline on one image; returns the four stage times.
fn run_one(detector: &Detector, bytes: &[u8]) -> Result<[Duration; 4]> {
    let t0 = Instant::now();
    let decoded = decode_bytes(bytes, &detector.options().decode_limits)?;
    let decode = t0.elapsed();
    let (_, t) = detector.detect(&decoded.rgb)?;
    Ok([decode, t.preprocess, t.inference, t.postprocess])
}

fn bench_tract(args: &BenchArgs, model: &Path, blobs: &[Vec<u8>]) -> Result<Report> {
    let options = DetectorOptions {
        skip_concat_then_einsum: args.skip_concat_then_einsum,
        ..DetectorOptions::default()
    };
    let t0 = Instant::now();
    let detector = Detector::load(model, options)
        .with_context(|| format!("cannot load model {}", model.display()))?;
    let load_ms = t0.elapsed().as_secs_f64() * 1000.0;
    for i in 0..args.warmup {
        run_one(&detector, &blobs[i % blobs.len()])?;
    }
    let mut stages: [Vec<Duration>; 4] = Default::default();
    let mut totals = Vec::new();
    for _ in 0..args.rounds.max(1) {
        for b in blobs {
            let t = run_one(&detector, b)?;
            for (k, d) in t.iter().enumerate() {
                stages[k].push(*d);
            }
            totals.push(t.iter().sum());
        }
    }
    let peak = peak_rss_mb();

    let jobs = blobs.len() * args.rounds.max(1);
    let mut workers = Vec::new();
    for &n in &args.threads {
        let n = n.max(1);
        let next = AtomicUsize::new(0);
        let start = Instant::now();
        std::thread::scope(|s| -> Result<()> {
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    let (det, next) = (detector.clone(), &next);
                    s.spawn(move || -> Result<()> {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= jobs {
                                return Ok(());
                            }
                            run_one(&det, &blobs[i % blobs.len()])?;
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| anyhow::anyhow!("benchmark worker panicked"))??;
            }
            Ok(())
        })?;
        workers.push((n, jobs as f64 / start.elapsed().as_secs_f64()));
    }
    Ok(Report {
        runtime: format!(
            "tract 0.23{}",
            if args.skip_concat_then_einsum {
                " (no ConcatThenEinsum)"
            } else {
                ""
            }
        ),
        load_ms,
        decode: spread(&stages[0]),
        preprocess: spread(&stages[1]),
        inference: spread(&stages[2]),
        postprocess: spread(&stages[3]),
        total: spread(&totals),
        workers,
        intra: Vec::new(),
        peak_rss_mb: peak,
    })
}

fn python() -> PathBuf {
    let venv = PathBuf::from("/root/.cache/opti-quality/venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

fn find_ort_script() -> Result<PathBuf> {
    let rel = Path::new("bench/ort_bench.py");
    let mut candidates = vec![rel.to_path_buf()];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).take(4).map(|d| d.join(rel)));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .context("bench/ort_bench.py not found (run from the repository root)")
}

fn bench_ort(args: &BenchArgs, model: &Path, dir: &Path, count: usize) -> Result<Report> {
    let script = find_ort_script()?;
    let py = args.python.clone().unwrap_or_else(python);
    let threads: Vec<String> = args.threads.iter().map(|t| t.to_string()).collect();
    let out = Command::new(&py)
        .arg(&script)
        .arg("--model")
        .arg(model)
        .arg("--images")
        .arg(dir)
        .args(["--count", &count.to_string()])
        .args(["--threads", &threads.join(",")])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--rounds", &args.rounds.max(1).to_string()])
        .arg("--json")
        .output()
        .with_context(|| format!("running {} {}", py.display(), script.display()))?;
    if !out.status.success() {
        bail!(
            "ort_bench.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).context("ort_bench.py output is not JSON")?;
    let sp = |stage: &str| Spread {
        median: v["latency_ms"][stage]["median"]
            .as_f64()
            .unwrap_or(f64::NAN),
        p90: v["latency_ms"][stage]["p90"].as_f64().unwrap_or(f64::NAN),
    };
    let per = |key: &str| -> Vec<(usize, f64)> {
        args.threads
            .iter()
            .map(|t| (*t, v[key][t.to_string()].as_f64().unwrap_or(f64::NAN)))
            .collect()
    };
    Ok(Report {
        runtime: v["runtime"].as_str().unwrap_or("onnxruntime").to_owned(),
        load_ms: v["load_ms"].as_f64().unwrap_or(f64::NAN),
        decode: sp("decode"),
        preprocess: sp("preprocess"),
        inference: sp("inference"),
        postprocess: sp("postprocess"),
        total: sp("total"),
        workers: per("workers"),
        intra: per("intra"),
        peak_rss_mb: v["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
    })
}

/// Rows of the comparison: label, tract value, onnxruntime value (if any).
fn rows(t: &Report, o: Option<&Report>) -> Vec<(String, f64, Option<f64>)> {
    let mut r = vec![(
        "model load (ms)".to_owned(),
        t.load_ms,
        o.map(|o| o.load_ms),
    )];
    let stage = |name: &str, f: fn(&Report) -> Spread| {
        [
            (
                format!("{name} median (ms)"),
                f(t).median,
                o.map(|o| f(o).median),
            ),
            (format!("{name} p90 (ms)"), f(t).p90, o.map(|o| f(o).p90)),
        ]
    };
    r.extend(stage("decode", |r| r.decode));
    r.extend(stage("preprocess", |r| r.preprocess));
    r.extend(stage("inference", |r| r.inference));
    r.extend(stage("postprocess", |r| r.postprocess));
    r.extend(stage("total", |r| r.total));
    for (n, ips) in &t.workers {
        let other = o.and_then(|o| o.workers.iter().find(|(m, _)| m == n).map(|(_, v)| *v));
        r.push((format!("images/s, {n} worker(s)"), *ips, other));
    }
    r.push((
        "peak RSS (MiB)".into(),
        t.peak_rss_mb,
        o.map(|o| o.peak_rss_mb),
    ));
    r
}

fn print_table(t: &Report, o: Option<&Report>, markdown: bool) {
    let rows = rows(t, o);
    let fmt = |v: f64| {
        if v.is_nan() {
            "-".to_owned()
        } else if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    if markdown {
        match o {
            Some(o) => {
                println!("| metric | {} | {} | tract / ort |", t.runtime, o.runtime);
                println!("|---|---:|---:|---:|");
            }
            None => {
                println!("| metric | {} |", t.runtime);
                println!("|---|---:|");
            }
        }
    } else {
        match o {
            Some(o) => println!(
                "{:<28} {:>14} {:>18} {:>12}",
                "metric", t.runtime, o.runtime, "tract/ort"
            ),
            None => println!("{:<28} {:>14}", "metric", t.runtime),
        }
    }
    for (label, tv, ov) in rows {
        let ratio = ov.map(|ov| if ov > 0.0 { fmt(tv / ov) } else { "-".into() });
        match (markdown, ov) {
            (true, Some(ov)) => println!(
                "| {label} | {} | {} | {} |",
                fmt(tv),
                fmt(ov),
                ratio.unwrap_or_default()
            ),
            (true, None) => println!("| {label} | {} |", fmt(tv)),
            (false, Some(ov)) => println!(
                "{label:<28} {:>14} {:>18} {:>12}",
                fmt(tv),
                fmt(ov),
                ratio.unwrap_or_default()
            ),
            (false, None) => println!("{label:<28} {:>14}", fmt(tv)),
        }
    }
    if let Some(o) = o {
        for (n, ips) in &o.intra {
            let label = format!("ort images/s, 1 session, intra_op_num_threads={n}");
            if markdown {
                println!("| {label} | | {} | |", fmt(*ips));
            } else {
                println!("{label:<28} {:>14} {:>18}", "", fmt(*ips));
            }
        }
    }
}

/// Runs `opti bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    anyhow::ensure!(
        !args.threads.is_empty(),
        "--threads needs at least one count"
    );
    let model = crate::serve::default_model_path(args.model.as_deref())?;
    let (blobs, dir, temporary) = load_images(&args)?;
    let outcome = (|| -> Result<()> {
        let tract = bench_tract(&args, &model, &blobs)?;
        let ort = if args.compare_ort {
            Some(bench_ort(&args, &model, &dir, blobs.len())?)
        } else {
            None
        };
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!(
            "model {} · {} images ({}) × {} round(s) · warmup {} · {} CPU cores visible",
            model.display(),
            blobs.len(),
            if temporary {
                "simulated 640x640 JPEG".to_owned()
            } else {
                dir.display().to_string()
            },
            args.rounds.max(1),
            args.warmup,
            cores
        );
        print_table(&tract, ort.as_ref(), args.markdown);
        Ok(())
    })();
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_gives_median_and_p90_like_numpy() {
        let d: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        let s = spread(&d);
        assert!((s.median - 5.5).abs() < 1e-9, "{s:?}");
        assert!((s.p90 - 9.1).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn peak_rss_is_read_from_proc() {
        let mb = peak_rss_mb();
        assert!(mb > 0.0, "{mb}");
    }
}
