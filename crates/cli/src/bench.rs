//! `opti bench`: how fast and how heavy the detector is. Per-image latency split into
//! decode / preprocess / inference / postprocess (median and p90), model load time, peak
//! RSS (`VmHWM`), and images per second for each thread count t in `--threads`: t workers
//! (whole images each on one thread), one image at a time on t threads (tract's
//! multithreaded executor / onnxruntime's intra-op threads), and — tract — t workers sharing
//! one t-thread pool, as `opti serve` runs. With `--compare-ort` the same
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
use opti_vision::{Detector, DetectorOptions, LoadedFrom, ModelCache};
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
    /// Thread counts, comma-separated: throughput of t workers, of one image at a time on
    /// t threads, and of t workers sharing a t-thread pool.
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
    /// Also measure tract with its stock optimiser only (no project graph rewrites).
    #[arg(long)]
    pub plain_tract: bool,
    /// Repeat the whole measurement (tract, then onnxruntime) this many times and print
    /// the median of each metric over the repeats (steadier on a shared machine).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
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
#[derive(Debug, Default, Clone)]
struct Report {
    runtime: String,
    load_ms: f64,
    /// tract with a model cache: the same load from the ONNX with the cache off.
    load_onnx_ms: f64,
    /// Decode → decision of the first image right after loading (cold caches, first
    /// allocations).
    first_ms: f64,
    decode: Spread,
    preprocess: Spread,
    inference: Spread,
    postprocess: Spread,
    /// Thread CPU time of the inference.
    inference_cpu: Spread,
    total: Spread,
    /// Images per second by worker count.
    workers: Vec<(usize, f64)>,
    /// Images per second, one image at a time, each inference on t threads (tract's
    /// multithreaded executor; onnxruntime's `intra_op_num_threads`).
    intra: Vec<(usize, f64)>,
    /// tract only: images per second of t workers sharing one t-thread pool (what
    /// `opti serve` runs: as many inference slots as cores, one pool).
    pooled: Vec<(usize, f64)>,
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

/// CPU time of the calling thread (`/proc/thread-self/schedstat`; zero where absent).
/// Other jobs on a shared machine stretch wall time; CPU time far less.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// Runs the whole pipeline on one image (what `Detector::inspect_bytes` does, stage by
/// stage); returns the four stage times, then the thread CPU time of the inference.
fn run_one(detector: &Detector, bytes: &[u8]) -> Result<[Duration; 5]> {
    let t0 = Instant::now();
    let decoded = decode_bytes(bytes, &detector.options().decode_limits)?;
    let t1 = Instant::now();
    let pre = detector.preprocess(&decoded.rgb)?;
    let t2 = Instant::now();
    let c2 = thread_cpu();
    let raw = detector.infer(pre.input)?;
    let c3 = thread_cpu();
    let t3 = Instant::now();
    detector.postprocess(&raw, &pre.geometry)?;
    let t4 = Instant::now();
    Ok([t1 - t0, t2 - t1, t3 - t2, t4 - t3, c3.saturating_sub(c2)])
}

/// Loads the tract variants (the default path first, so that its load time and peak
/// RSS are those of a fresh process; with a model cache, its ONNX load comes first and
/// the timed load is the cached one), then times them image by image in turn, so that
/// the machine's background load hits all of them alike.
fn bench_tract(
    args: &BenchArgs,
    model: &Path,
    blobs: &[Vec<u8>],
    variants: &[DetectorOptions],
    measure_rss: bool,
) -> Result<Vec<Report>> {
    let mut detectors = Vec::new();
    let mut reports = Vec::new();
    for (v, options) in variants.iter().enumerate() {
        let load = |options: DetectorOptions| {
            let t0 = Instant::now();
            let detector = Detector::load(model, options)
                .with_context(|| format!("cannot load model {}", model.display()))?;
            anyhow::Ok((detector, t0.elapsed().as_secs_f64() * 1000.0))
        };
        let load_onnx_ms = if options.cache == ModelCache::Off {
            f64::NAN
        } else {
            // The ONNX path first (fresh process), then make sure the cache exists so that
            // the timed load below is the one every later start makes.
            let (_, ms) = load(DetectorOptions {
                cache: ModelCache::Off,
                ..*options
            })?;
            let (primed, _) = load(*options)?;
            if let Some(note) = &primed.info().cache_note {
                eprintln!("model cache: {note}");
            }
            ms
        };
        let (detector, load_ms) = load(*options)?;
        if v == 0 {
            let phases: Vec<String> = detector
                .info()
                .load_phases
                .iter()
                .map(|(name, d)| format!("{name} {:.1} ms", d.as_secs_f64() * 1000.0))
                .collect();
            eprintln!("model load phases: {}", phases.join(" · "));
        }
        let t1 = Instant::now();
        run_one(&detector, &blobs[0])?;
        let first_ms = t1.elapsed().as_secs_f64() * 1000.0;
        for i in 0..args.warmup {
            run_one(&detector, &blobs[i % blobs.len()])?;
        }
        let peak_rss_mb = if v == 0 && measure_rss {
            for b in blobs {
                run_one(&detector, b)?;
            }
            peak_rss_mb()
        } else {
            // Shares the process with the variants (and repeats) loaded before it.
            f64::NAN
        };
        let runtime = match (options.plain_tract, detector.info().loaded_from) {
            (true, _) => "tract 0.23 stock",
            (false, LoadedFrom::Cache) => "tract 0.23 + rewrites, cached",
            (false, LoadedFrom::Onnx) => "tract 0.23 + rewrites",
        };
        reports.push(Report {
            runtime: runtime.to_owned(),
            load_ms,
            load_onnx_ms,
            first_ms,
            peak_rss_mb,
            ..Report::default()
        });
        detectors.push(detector);
    }
    let mut stages: Vec<[Vec<Duration>; 5]> =
        detectors.iter().map(|_| Default::default()).collect();
    let mut totals: Vec<Vec<Duration>> = detectors.iter().map(|_| Vec::new()).collect();
    for _ in 0..args.rounds.max(1) {
        for b in blobs {
            for (v, detector) in detectors.iter().enumerate() {
                let t = run_one(detector, b)?;
                for (k, d) in t.iter().enumerate() {
                    stages[v][k].push(*d);
                }
                totals[v].push(t[..4].iter().sum());
            }
        }
    }
    let jobs = blobs.len() * args.rounds.max(1);
    for &n in &args.threads {
        let n = n.max(1);
        for (v, detector) in detectors.iter().enumerate() {
            let ips = throughput(detector, blobs, jobs, n, args.warmup)?;
            reports[v].workers.push((n, ips));
        }
    }
    for &t in &args.threads {
        let t = t.max(1);
        for (v, detector) in detectors.iter().enumerate() {
            let report = &mut reports[v];
            if t == 1 {
                // One image at a time on one thread is the one-worker run above.
                let one = lookup(&report.workers, 1);
                report.intra.push((1, one));
                continue;
            }
            let on_t = detector.with_threads(t);
            report
                .intra
                .push((t, throughput(&on_t, blobs, jobs, 1, args.warmup)?));
            report
                .pooled
                .push((t, throughput(&on_t, blobs, jobs, t, args.warmup)?));
        }
    }
    for (v, report) in reports.iter_mut().enumerate() {
        report.decode = spread(&stages[v][0]);
        report.preprocess = spread(&stages[v][1]);
        report.inference = spread(&stages[v][2]);
        report.postprocess = spread(&stages[v][3]);
        report.inference_cpu = spread(&stages[v][4]);
        report.total = spread(&totals[v]);
    }
    Ok(reports)
}

/// Images per second of `n` workers sharing `jobs` images (each worker whole images).
/// Each worker first runs `warmup` images untimed, as bench/ort_bench.py warms its
/// sessions: a fresh thread (and a fresh inference pool) allocates its per-thread
/// scratch buffers on its first images, which is start-up, not throughput. The clock
/// starts when every worker is warm.
fn throughput(
    detector: &Detector,
    blobs: &[Vec<u8>],
    jobs: usize,
    n: usize,
    warmup: usize,
) -> Result<f64> {
    let next = AtomicUsize::new(0);
    let ready = std::sync::Barrier::new(n + 1);
    let start = std::thread::scope(|s| -> Result<Instant> {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (det, next, ready) = (detector.clone(), &next, &ready);
                s.spawn(move || -> Result<()> {
                    let warm = (0..warmup)
                        .try_for_each(|i| run_one(&det, &blobs[i % blobs.len()]).map(drop));
                    // Reached whatever the warm-up gave, so that no one waits forever.
                    ready.wait();
                    warm?;
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
        ready.wait();
        let start = Instant::now();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("benchmark worker panicked"))??;
        }
        Ok(start)
    })?;
    Ok(jobs as f64 / start.elapsed().as_secs_f64())
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
        load_onnx_ms: f64::NAN,
        first_ms: v["first_ms"].as_f64().unwrap_or(f64::NAN),
        decode: sp("decode"),
        preprocess: sp("preprocess"),
        inference: sp("inference"),
        postprocess: sp("postprocess"),
        inference_cpu: sp("inference_cpu"),
        total: sp("total"),
        workers: per("workers"),
        intra: per("intra"),
        pooled: Vec::new(),
        peak_rss_mb: v["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
    })
}

/// Picks one stage's spread out of a report.
type StageOf = fn(&Report) -> Spread;

/// The value for thread count `n` in a `(count, value)` list, NaN when not measured.
fn lookup(list: &[(usize, f64)], n: usize) -> f64 {
    list.iter()
        .find(|(m, _)| *m == n)
        .map_or(f64::NAN, |(_, v)| *v)
}

/// Rows of the table: label and one value per report.
fn rows(reports: &[Report]) -> Vec<(String, Vec<f64>)> {
    let all = |f: &dyn Fn(&Report) -> f64| reports.iter().map(f).collect::<Vec<_>>();
    let mut r = vec![
        ("model load (ms)".to_owned(), all(&|r| r.load_ms)),
        (
            "model load from the ONNX, no cache (ms)".to_owned(),
            all(&|r| r.load_onnx_ms),
        ),
        (
            "first image, decode→decision (ms)".to_owned(),
            all(&|r| r.first_ms),
        ),
        (
            "cold start: load + first image (ms)".to_owned(),
            all(&|r| r.load_ms + r.first_ms),
        ),
    ];
    let stages: [(&str, StageOf); 6] = [
        ("decode", |r| r.decode),
        ("preprocess", |r| r.preprocess),
        ("inference", |r| r.inference),
        ("inference, thread CPU time,", |r| r.inference_cpu),
        ("postprocess", |r| r.postprocess),
        ("total", |r| r.total),
    ];
    for (name, f) in stages {
        r.push((format!("{name} median (ms)"), all(&|x| f(x).median)));
        r.push((format!("{name} p90 (ms)"), all(&|x| f(x).p90)));
    }
    r.push((
        "total ÷ inference (medians)".to_owned(),
        all(&|x| x.total.median / x.inference.median),
    ));
    let workers: Vec<usize> = reports
        .first()
        .map(|t| t.workers.iter().map(|(n, _)| *n).collect())
        .unwrap_or_default();
    let ips = |x: &Report, n: usize| lookup(&x.workers, n);
    for &n in &workers {
        r.push((format!("images/s, {n} worker(s)"), all(&|x| ips(x, n))));
    }
    if let (Some(&lo), Some(&hi)) = (workers.first(), workers.last()) {
        if hi > lo {
            r.push((
                format!("throughput {hi} ÷ {lo} worker(s)"),
                all(&|x| ips(x, hi) / ips(x, lo)),
            ));
        }
    }
    let intra: Vec<usize> = reports
        .first()
        .map(|t| t.intra.iter().map(|(n, _)| *n).collect())
        .unwrap_or_default();
    for &t in &intra {
        r.push((
            format!("images/s, 1 image at a time on {t} thread(s)"),
            all(&|x| lookup(&x.intra, t)),
        ));
    }
    if let (Some(&lo), Some(&hi)) = (intra.first(), intra.last()) {
        if hi > lo {
            r.push((
                format!("1 image at a time, {hi} ÷ {lo} thread(s)"),
                all(&|x| lookup(&x.intra, hi) / lookup(&x.intra, lo)),
            ));
        }
    }
    for &t in intra.iter().filter(|t| **t > 1) {
        r.push((
            format!("images/s, {t} workers sharing a {t}-thread pool (opti serve --inference-threads {t} on {t} cores)"),
            all(&|x| lookup(&x.pooled, t)),
        ));
    }
    r.push(("peak RSS (MiB)".into(), all(&|x| x.peak_rss_mb)));
    r
}

/// Median of some values, NaN ones left out (NaN when none is left).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// [`rows`] of each repeat, each cell the median over the repeats.
fn median_rows(runs: &[Vec<Report>]) -> Vec<(String, Vec<f64>)> {
    let all: Vec<Vec<(String, Vec<f64>)>> = runs.iter().map(|r| rows(r)).collect();
    let Some(first) = all.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(i, (label, values))| {
            let cells = (0..values.len())
                .map(|c| median(all.iter().filter_map(|run| run.get(i)?.1.get(c).copied())))
                .collect();
            (label.clone(), cells)
        })
        .collect()
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "-".to_owned()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Prints the reports side by side. When the last one is onnxruntime (`ort`), each
/// other column also gets its ratio to it.
fn print_table(runs: &[Vec<Report>], ort: bool, markdown: bool) {
    let Some(reports) = runs.first() else {
        return;
    };
    let (ours, reference) = if ort && reports.len() > 1 {
        (&reports[..reports.len() - 1], reports.last())
    } else {
        (reports.as_slice(), None)
    };
    let mut header: Vec<String> = vec!["metric".into()];
    header.extend(reports.iter().map(|r| r.runtime.clone()));
    if let Some(o) = reference {
        for r in ours {
            header.push(format!("{} ÷ {}", short(&r.runtime), short(&o.runtime)));
        }
    }
    let mut lines = vec![header];
    for (label, values) in median_rows(runs) {
        let mut line = vec![label];
        line.extend(values.iter().map(|v| fmt_value(*v)));
        if reference.is_some() {
            let ov = values[values.len() - 1];
            for v in &values[..values.len() - 1] {
                line.push(if ov > 0.0 {
                    fmt_value(v / ov)
                } else {
                    "-".into()
                });
            }
        }
        lines.push(line);
    }
    if markdown {
        for (i, line) in lines.iter().enumerate() {
            println!("| {} |", line.join(" | "));
            if i == 0 {
                let align: Vec<&str> = (0..line.len())
                    .map(|k| if k == 0 { "---" } else { "---:" })
                    .collect();
                println!("|{}|", align.join("|"));
            }
        }
    } else {
        let cols = lines[0].len();
        let width: Vec<usize> = (0..cols)
            .map(|k| {
                lines
                    .iter()
                    .map(|l| l.get(k).map_or(0, |c| c.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for line in &lines {
            let cells: Vec<String> = line
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    if k == 0 {
                        format!("{c:<w$}", w = width[k])
                    } else {
                        format!("{c:>w$}", w = width[k])
                    }
                })
                .collect();
            println!("{}", cells.join("  "));
        }
    }
}

/// First word of a runtime label ("tract", "onnxruntime") plus "stock" if present.
fn short(label: &str) -> String {
    let first = label.split_whitespace().next().unwrap_or(label);
    if label.contains("stock") {
        format!("{first} stock")
    } else {
        first.to_owned()
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
        let mut variants = vec![DetectorOptions {
            cache: ModelCache::NextToModel,
            ..DetectorOptions::default()
        }];
        if args.plain_tract {
            variants.push(DetectorOptions {
                plain_tract: true,
                ..DetectorOptions::default()
            });
        }
        let mut runs = Vec::new();
        for repeat in 0..args.repeat.max(1) {
            let mut reports = bench_tract(&args, &model, &blobs, &variants, repeat == 0)?;
            if args.compare_ort {
                reports.push(bench_ort(&args, &model, &dir, blobs.len())?);
            }
            runs.push(reports);
        }
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!(
            "model {} · {} images ({}) × {} round(s) · warmup {} · {} CPU cores visible · median of {} repeat(s)",
            model.display(),
            blobs.len(),
            if temporary {
                "simulated 640x640 JPEG".to_owned()
            } else {
                dir.display().to_string()
            },
            args.rounds.max(1),
            args.warmup,
            cores,
            args.repeat.max(1)
        );
        print_table(&runs, args.compare_ort, args.markdown);
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
    fn thread_cpu_time_advances_with_work_not_with_sleep() {
        let c0 = thread_cpu();
        std::thread::sleep(Duration::from_millis(30));
        let slept = thread_cpu() - c0;
        let c1 = thread_cpu();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let worked = thread_cpu() - c1;
        assert!(worked > Duration::from_millis(1), "{worked:?}");
        assert!(slept < Duration::from_millis(15), "{slept:?}");
    }

    #[test]
    fn peak_rss_is_read_from_proc() {
        let mb = peak_rss_mb();
        assert!(mb > 0.0, "{mb}");
    }
}
