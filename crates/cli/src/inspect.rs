//! `opti inspect PATH…`: runs the detector and the routing policy on files or folders
//! and reports one row per image (table, JSON lines or CSV), then a summary. Folders are
//! walked recursively; images are recognised by their magic bytes. A file that cannot be
//! inspected (corrupt, truncated, not PNG/JPEG, too large) becomes a `rejected` row with
//! the reason — the run goes on.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use opti_core::routing::RoutingPolicy;
use opti_core::{inspection_id, Config, Decision, Detection, ImageStats, Status};
use opti_vision::decode::{read_limited, sniff};
use opti_vision::{Detector, DetectorOptions, ModelCache};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Output format of `opti inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

/// Arguments of `opti inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image files or folders (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// ONNX model (an Ultralytics export); default: models/default/model.onnx.
    #[arg(long, env = "OPTI_MODEL")]
    pub model: Option<PathBuf>,
    /// Write the rows to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Routing configuration as JSON (thresholds, decision cut, audit rate); default: built-in.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Lowest box confidence the detector reports.
    #[arg(long, default_value_t = 0.25)]
    pub conf: f32,
    /// Images inspected at once, one per worker thread (rows still come out in input
    /// order); default: the cores this process may use, at most 8 (each worker may hold
    /// one decoded image of up to the decode limit in memory).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// One output row.
#[derive(Debug, Serialize)]
struct Row {
    path: String,
    id: Option<String>,
    status: Status,
    decision: Option<Decision>,
    confidence: Option<f32>,
    threshold_used: Option<f32>,
    audit_sample: bool,
    detections: Vec<Detection>,
    model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_stats: Option<ImageStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Counts for the closing summary.
#[derive(Debug, Default)]
struct Summary {
    total: usize,
    auto_validated: usize,
    pending: usize,
    audit: usize,
    defective: usize,
    rejected: usize,
    skipped: usize,
}

impl Summary {
    fn add(&mut self, row: &Row) {
        self.total += 1;
        match row.status {
            Status::AutoValidated => self.auto_validated += 1,
            Status::PendingReview => {
                self.pending += 1;
                if row.audit_sample {
                    self.audit += 1;
                }
            }
            Status::Rejected => self.rejected += 1,
            _ => {}
        }
        if row.decision == Some(Decision::Defective) {
            self.defective += 1;
        }
    }

    fn render(&self, seconds: f64) -> String {
        let pct = |n: usize| {
            if self.total == 0 {
                0.0
            } else {
                100.0 * n as f64 / self.total as f64
            }
        };
        let mut s = format!(
            "{} images: {} auto-validated ({:.1}%), {} pending review ({:.1}%, of which {} audit samples), {} rejected ({:.1}%); {} defective",
            self.total,
            self.auto_validated,
            pct(self.auto_validated),
            self.pending,
            pct(self.pending),
            self.audit,
            self.rejected,
            pct(self.rejected),
            self.defective,
        );
        if self.skipped > 0 {
            s.push_str(&format!("; {} non-image files skipped", self.skipped));
        }
        let inspected = self.total - self.rejected;
        if seconds > 0.0 && inspected > 0 {
            s.push_str(&format!(
                "; {:.1}s ({:.1} images/s)",
                seconds,
                inspected as f64 / seconds
            ));
        }
        s
    }
}

/// Extensions that mark a file as meant to be an image: such a file in a folder is
/// inspected (and rejected with the reason if it is not PNG/JPEG), other non-images are
/// skipped.
const IMAGE_LIKE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "tif", "tiff", "bmp", "gif", "webp", "heic", "avif",
];

/// The files to inspect: named files always; in folders, files whose magic bytes say
/// PNG/JPEG or whose extension says image. Returns them and the number skipped.
fn collect(paths: &[PathBuf]) -> (Vec<PathBuf>, usize) {
    let mut files = Vec::new();
    let mut skipped = 0;
    for p in paths {
        if p.is_dir() {
            walk(p, &mut files, &mut skipped);
        } else {
            files.push(p.clone());
        }
    }
    (files, skipped)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, skipped: &mut usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        // Unreadable folder: report it as a rejected "file" so it is not silently lost.
        files.push(dir.to_path_buf());
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(&path, files, skipped);
        } else if ft.is_file() || (ft.is_symlink() && path.is_file()) {
            if is_image_candidate(&path) {
                files.push(path);
            } else {
                *skipped += 1;
            }
        }
        // Symlinked folders are not followed (no loops).
    }
}

fn is_image_candidate(path: &Path) -> bool {
    let ext_says_image = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_LIKE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    if ext_says_image {
        return true;
    }
    let mut head = [0u8; 16];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    sniff(&head[..n]).is_ok()
}

fn model_version(path: &Path) -> Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let digest = Sha256::digest(&bytes);
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{stem}-{hex}"))
}

/// The row of a file that could not be inspected.
fn rejected_row(path: &Path, version: &str, reason: &str) -> Row {
    Row {
        path: path.display().to_string(),
        id: None,
        status: Status::Rejected,
        decision: None,
        confidence: None,
        threshold_used: None,
        audit_sample: false,
        detections: Vec::new(),
        model_version: version.to_owned(),
        image_stats: None,
        reason: Some(reason.to_owned()),
    }
}

fn inspect_one(detector: &Detector, policy: &RoutingPolicy, path: &Path, version: &str) -> Row {
    let display = path.display().to_string();
    let rejected = |reason: String| rejected_row(path, version, &reason);
    if path.is_dir() {
        return rejected("folder could not be read".into());
    }
    let bytes = match read_limited(path, &detector.options().decode_limits) {
        Ok(b) => b,
        Err(e) => return rejected(e.to_string()),
    };
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let id = inspection_id(&format!("file:{hex}"));
    match detector.inspect_bytes(&bytes) {
        Ok(analysis) => {
            let routed = policy.route(&id, &analysis.output);
            Row {
                path: display,
                id: Some(id),
                status: routed.status,
                decision: Some(routed.decision),
                confidence: Some(routed.confidence),
                threshold_used: Some(routed.threshold_used),
                audit_sample: routed.audit_sample,
                detections: analysis.output.detections,
                model_version: version.to_owned(),
                image_stats: Some(analysis.stats),
                reason: None,
            }
        }
        Err(e) => {
            let mut row = rejected(e.to_string());
            row.id = Some(id);
            row
        }
    }
}

fn load_config(path: Option<&Path>) -> Result<Config> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let config: Config = serde_json::from_str(&text)
        .with_context(|| format!("config {} is not valid JSON", path.display()))?;
    config
        .validate()
        .with_context(|| format!("config {} is invalid", path.display()))?;
    Ok(config)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn fmt_opt(v: Option<f32>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_default()
}

fn detections_brief(d: &[Detection]) -> String {
    if d.is_empty() {
        return "-".into();
    }
    let mut parts: Vec<String> = d
        .iter()
        .take(3)
        .map(|d| format!("{} {:.2}", d.class, d.confidence))
        .collect();
    if d.len() > 3 {
        parts.push(format!("+{}", d.len() - 3));
    }
    parts.join(", ")
}

/// Writes rows in the chosen format as they come.
struct RowWriter<W: Write> {
    out: W,
    format: Format,
    path_width: usize,
}

impl<W: Write> RowWriter<W> {
    fn header(&mut self) -> Result<()> {
        match self.format {
            Format::Table => writeln!(
                self.out,
                "{:<pw$}  {:<14}  {:<9}  {:>6}  {:>5}  DETECTIONS / REASON",
                "PATH",
                "STATUS",
                "DECISION",
                "CONF",
                "THR",
                pw = self.path_width
            )?,
            Format::Csv => writeln!(
                self.out,
                "path,id,status,decision,confidence,threshold_used,audit_sample,n_detections,detections,model_version,brightness,contrast,sharpness,reason"
            )?,
            Format::Jsonl => {}
        }
        Ok(())
    }

    fn row(&mut self, row: &Row) -> Result<()> {
        match self.format {
            Format::Jsonl => writeln!(self.out, "{}", serde_json::to_string(row)?)?,
            Format::Csv => {
                let stats = row.image_stats;
                let fields = [
                    csv_field(&row.path),
                    row.id.clone().unwrap_or_default(),
                    row.status.to_string(),
                    row.decision
                        .map(|d| match d {
                            Decision::Defective => "defective".to_owned(),
                            Decision::Clean => "clean".to_owned(),
                        })
                        .unwrap_or_default(),
                    fmt_opt(row.confidence),
                    fmt_opt(row.threshold_used),
                    row.audit_sample.to_string(),
                    row.detections.len().to_string(),
                    csv_field(&serde_json::to_string(&row.detections)?),
                    csv_field(&row.model_version),
                    fmt_opt(stats.map(|s| s.brightness)),
                    fmt_opt(stats.map(|s| s.contrast)),
                    stats
                        .map(|s| format!("{:.6}", s.sharpness))
                        .unwrap_or_default(),
                    csv_field(row.reason.as_deref().unwrap_or("")),
                ];
                writeln!(self.out, "{}", fields.join(","))?;
            }
            Format::Table => {
                let decision = match row.decision {
                    Some(Decision::Defective) => "defective",
                    Some(Decision::Clean) => "clean",
                    None => "-",
                };
                let status = if row.audit_sample {
                    "pending(audit)".to_owned()
                } else {
                    row.status.to_string()
                };
                let tail = match &row.reason {
                    Some(r) => r.clone(),
                    None => detections_brief(&row.detections),
                };
                writeln!(
                    self.out,
                    "{:<pw$}  {:<14}  {:<9}  {:>6}  {:>5}  {}",
                    row.path,
                    status,
                    decision,
                    row.confidence
                        .map(|c| format!("{c:.3}"))
                        .unwrap_or("-".into()),
                    row.threshold_used
                        .map(|c| format!("{c:.2}"))
                        .unwrap_or("-".into()),
                    tail,
                    pw = self.path_width
                )?;
            }
        }
        Ok(())
    }
}

/// Runs `opti inspect`.
pub fn run(args: InspectArgs) -> Result<()> {
    let config = load_config(args.config.as_deref())?;
    let policy = RoutingPolicy::new(&config);
    let model_path = crate::serve::default_model_path(args.model.as_deref())?;
    anyhow::ensure!(
        args.conf.is_finite() && (0.0..1.0).contains(&args.conf),
        "--conf must be in [0, 1), got {}",
        args.conf
    );
    let mut options = DetectorOptions {
        cache: ModelCache::NextToModel,
        ..DetectorOptions::default()
    };
    options.nms.conf = args.conf;
    let detector = Detector::load(&model_path, options)
        .with_context(|| format!("cannot load model {}", model_path.display()))?;
    let version = model_version(&model_path)?;

    anyhow::ensure!(args.jobs != Some(0), "--jobs must be at least 1");
    let (files, skipped) = collect(&args.paths);
    anyhow::ensure!(
        !files.is_empty(),
        "no images found in {} ({skipped} non-image files skipped)",
        args.paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
        .clamp(1, files.len());
    let sink: Box<dyn Write> = match &args.out {
        Some(p) => {
            Box::new(File::create(p).with_context(|| format!("cannot create {}", p.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let path_width = files
        .iter()
        .map(|p| p.display().to_string().chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 60);
    let mut writer = RowWriter {
        out: BufWriter::new(sink),
        format: args.format,
        path_width,
    };
    writer.header()?;

    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut summary = Summary {
        skipped,
        ..Summary::default()
    };
    let started = Instant::now();
    let flush_each = args.out.is_none() && args.format == Format::Table;
    // Workers take the next file, decode and inspect it on their own thread; this
    // thread writes the rows back in input order.
    let next = AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Row)>(jobs * 2);
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (detector, policy, files, version, next) =
                (&detector, &policy, &files, &version, &next);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { return };
                // A bug in one file's inspection becomes that file's rejected row, not a
                // hole that would hold back every later row.
                let row = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    inspect_one(detector, policy, path, version)
                }))
                .unwrap_or_else(|_| rejected_row(path, version, "internal error while inspecting"));
                if tx.send((i, row)).is_err() {
                    return; // the writer stopped (an output error): stop too
                }
            });
        }
        drop(tx);
        let mut ready = BTreeMap::new();
        let mut want = 0;
        for (i, row) in rx {
            ready.insert(i, row);
            while let Some(row) = ready.remove(&want) {
                summary.add(&row);
                bar.suspend(|| writer.row(&row))?;
                if flush_each {
                    bar.suspend(|| writer.out.flush())?;
                }
                bar.inc(1);
                want += 1;
            }
        }
        anyhow::ensure!(
            want == files.len(),
            "{} of {} rows were not written",
            files.len() - want,
            files.len()
        );
        Ok(())
    })?;
    bar.finish_and_clear();
    let line = summary.render(started.elapsed().as_secs_f64());
    if args.format == Format::Table {
        writeln!(writer.out)?;
        writeln!(writer.out, "model: {} ({version})", model_path.display())?;
        writeln!(writer.out, "{line}")?;
    } else {
        eprintln!("model: {} ({version})", model_path.display());
        eprintln!("{line}");
    }
    writer.out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_and_quotes_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn folders_yield_images_and_image_named_files_and_skip_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::write(sub.join("a.bin"), b"\x89PNG\r\n\x1a\nxxxx").expect("write");
        std::fs::write(dir.path().join("notes.txt"), b"hello").expect("write");
        std::fs::write(dir.path().join("scan.tif"), b"II*\0").expect("write");
        let (files, skipped) = collect(&[dir.path().to_path_buf()]);
        let names: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, ["scan.tif", "a.bin"]);
        assert_eq!(skipped, 1);
    }

    /// The shipped model, or the development one (`make_dev_model.py`), or `OPTI_TEST_MODEL`.
    fn test_model() -> Option<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        std::env::var_os("OPTI_TEST_MODEL")
            .map(PathBuf::from)
            .into_iter()
            .chain([
                root.join("models/default/model.onnx"),
                PathBuf::from("/tmp/opti-dev/yolo11n-dev.onnx"),
            ])
            .find(|p| p.is_file())
    }

    #[test]
    fn bad_files_become_rejected_rows_and_good_ones_are_routed() {
        let Some(model) = test_model() else {
            eprintln!("SKIPPED: no model (models/default/model.onnx or a dev model)");
            return;
        };
        let detector = Detector::load(&model, DetectorOptions::default()).expect("model");
        let policy = RoutingPolicy::new(&Config::default());
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.png");
        let img = opti_vision::RgbImage::from_fn(64, 48, |x, y| {
            image_pixel((x * 4) as u8, (y * 5) as u8)
        });
        img.save(&good).expect("save png");
        let bytes = std::fs::read(&good).expect("read");
        let truncated = dir.path().join("truncated.png");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
        let tiff = dir.path().join("renamed.jpg");
        std::fs::write(&tiff, b"II*\0\x08\0\0\0").expect("write");
        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"").expect("write");

        let row = inspect_one(&detector, &policy, &good, "v");
        assert_ne!(row.status, Status::Rejected, "{row:?}");
        assert!(row.confidence.is_some_and(|c| (0.0..=1.0).contains(&c)));
        for (path, needle) in [
            (&truncated, "corrupt"),
            (&tiff, "tiff"),
            (&empty, "empty"),
            (&dir.path().join("missing.png"), "cannot read"),
        ] {
            let row = inspect_one(&detector, &policy, path, "v");
            assert_eq!(row.status, Status::Rejected, "{}", path.display());
            let reason = row.reason.unwrap_or_default();
            assert!(reason.contains(needle), "{}: {reason}", path.display());
        }
    }

    fn image_pixel(a: u8, b: u8) -> opti_vision::image::Rgb<u8> {
        opti_vision::image::Rgb([a, b, 128])
    }

    #[test]
    fn summary_counts_statuses_and_shares() {
        let mut s = Summary::default();
        let row = |status, audit| Row {
            path: "p".into(),
            id: None,
            status,
            decision: None,
            confidence: None,
            threshold_used: None,
            audit_sample: audit,
            detections: vec![],
            model_version: "m".into(),
            image_stats: None,
            reason: None,
        };
        s.add(&row(Status::AutoValidated, false));
        s.add(&row(Status::PendingReview, true));
        s.add(&row(Status::PendingReview, false));
        s.add(&row(Status::Rejected, false));
        let text = s.render(0.0);
        assert!(text.contains("4 images"), "{text}");
        assert!(text.contains("1 auto-validated (25.0%)"), "{text}");
        assert!(
            text.contains("2 pending review (50.0%, of which 1 audit samples)"),
            "{text}"
        );
        assert!(text.contains("1 rejected (25.0%)"), "{text}");
    }
}
