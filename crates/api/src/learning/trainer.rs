//! The trainer port and its local adapter: `python -m opti_trainer` as a subprocess that
//! fine-tunes the active model's weights on a snapshot plus a replay sample, reports
//! each epoch as a JSON line, and exports ONNX. (In AWS a SageMaker job plays this role.)

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use opti_core::ports::BlobStore;
use opti_core::retrain::EpochProgress;
use opti_core::snapshot::Split;
use opti_core::MetricSet;
use std::io::{BufRead, BufReader, Read};

use super::snapshot::SnapshotManifest;

/// How many log lines a job keeps.
pub const LOG_TAIL_LINES: usize = 40;

/// What the trainer is asked to do.
pub struct TrainRequest {
    pub job_id: String,
    pub snapshot: SnapshotManifest,
    /// Where the snapshot's files are (keys under `snapshot.prefix()`).
    pub blobs: Arc<dyn BlobStore>,
    /// The parent model's training weights (`.pt`) to fine-tune.
    pub parent_weights: Vec<u8>,
    pub epochs: u32,
    pub imgsz: u32,
    pub batch: u32,
}

/// What a finished training hands back.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    pub onnx: Vec<u8>,
    /// Training weights (`.pt`) of the result, for the next fine-tune.
    pub weights: Vec<u8>,
    /// The trainer's metrics on its val split.
    pub metrics: Option<MetricSet>,
    /// Versions, arguments, replay size: stored with the model as its recipe.
    pub recipe: serde_json::Value,
    /// Replayed images mixed into training.
    pub replay: usize,
    pub log_tail: Vec<String>,
}

/// A failed training: why, and the last lines of its log.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TrainFailure {
    pub message: String,
    pub log_tail: Vec<String>,
}

impl TrainFailure {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            log_tail: Vec::new(),
        }
    }
}

/// Where epoch reports go while a training runs.
pub type ProgressSink = tokio::sync::mpsc::UnboundedSender<EpochProgress>;

/// Fine-tunes a model on a snapshot.
#[async_trait]
pub trait Trainer: Send + Sync {
    async fn train(
        &self,
        request: TrainRequest,
        progress: ProgressSink,
    ) -> Result<TrainedModel, TrainFailure>;
}

/// Earlier training data to replay so that fine-tuning does not forget (see DESIGN.md,
/// "Retraining without forgetting").
pub trait ReplaySource: Send + Sync {
    /// Up to `n` training images (label files beside them under `labels/`), the same
    /// ones for the same `n`. Blocking (may generate them).
    fn train_images(&self, n: usize) -> Result<Vec<PathBuf>, String>;
}

/// The fine-tune recipe every retraining starts from (Ultralytics `--set` arguments; an
/// operator's own `--trainer-set` values come after and win). Measured on the learning-loop
/// benchmark's new line (docs/learning-loop.md, "Fine-tune recipe"): Ultralytics' defaults
/// (`optimizer=auto`, three warm-up epochs with a bias learning rate of 0.1) learn the new
/// line but cost the shipped line 0.04–0.11 mAP50-95, more than the gate allows; AdamW at
/// 0.0003 without warm-up learns it almost as well and keeps the shipped line within 0.02.
pub const FINE_TUNE_RECIPE: &[&str] = &["optimizer=AdamW", "lr0=0.0003", "warmup_epochs=0"];

/// The local trainer: runs the Python trainer as a subprocess.
pub struct SubprocessTrainer {
    /// The Python with Ultralytics (the venv's; `OPTI_PYTHON`).
    pub python: PathBuf,
    /// Folder holding the `opti_trainer` package (put on `PYTHONPATH`).
    pub trainer_dir: PathBuf,
    /// Where each job gets its work folder (`{work_root}/{job}`).
    pub work_root: PathBuf,
    pub replay: Option<Arc<dyn ReplaySource>>,
    /// Replayed images per new training image.
    pub replay_ratio: f64,
    /// At most this many replayed images.
    pub replay_max: usize,
    /// Extra `--set KEY=VALUE` arguments for Ultralytics.
    pub extra: Vec<String>,
}

/// Keeps the last lines of a log.
#[derive(Default)]
struct Tail(VecDeque<String>);

impl Tail {
    fn push(&mut self, line: String) {
        if self.0.len() == LOG_TAIL_LINES {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }
    fn lines(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

/// Sends each line of `reader` (lossy UTF-8) to `tx`, from a plain thread.
fn spawn_reader(
    reader: impl Read + Send + 'static,
    is_out: bool,
    tx: tokio::sync::mpsc::UnboundedSender<(bool, String)>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    if tx.send((is_out, line)).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// A child process killed when dropped before it was waited for.
struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    /// Waits for the exit without blocking the runtime.
    async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        loop {
            let child = self
                .0
                .as_mut()
                .ok_or_else(|| std::io::Error::other("no child"))?;
            if let Some(status) = child.try_wait()? {
                self.0 = None;
                return Ok(status);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An epoch report of the trainer's JSON line, if it is one.
pub fn parse_epoch(event: &serde_json::Value) -> Option<EpochProgress> {
    if event.get("event")?.as_str()? != "epoch" {
        return None;
    }
    let num = |k: &str| event.get(k).and_then(serde_json::Value::as_f64);
    let losses = event
        .get("losses")
        .and_then(|l| l.as_object())
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default();
    let metrics = match (
        num("precision"),
        num("recall"),
        num("mAP50"),
        num("mAP50-95"),
    ) {
        (Some(precision), Some(recall), Some(map50), Some(map50_95)) => Some(MetricSet {
            precision,
            recall,
            map50,
            map50_95,
        }),
        _ => None,
    };
    Some(EpochProgress {
        epoch: num("epoch").unwrap_or(0.0) as u32,
        epochs: num("epochs").unwrap_or(0.0) as u32,
        losses,
        metrics,
        elapsed_s: num("elapsed_s").unwrap_or(0.0),
    })
}

/// The four headline metrics of a trainer report (`precision`, `recall`, `mAP50`,
/// `mAP50-95`), if all are there.
pub fn metric_set(v: &serde_json::Value) -> Option<MetricSet> {
    Some(MetricSet {
        precision: v.get("precision")?.as_f64()?,
        recall: v.get("recall")?.as_f64()?,
        map50: v.get("mAP50")?.as_f64()?,
        map50_95: v.get("mAP50-95")?.as_f64()?,
    })
}

/// Evenly spread, deterministic pick of `n` of `items`.
fn spread<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    if n >= items.len() {
        return items.to_vec();
    }
    (0..n).map(|k| items[k * items.len() / n].clone()).collect()
}

async fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainFailure> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| TrainFailure::new(format!("creating {}: {e}", dir.display())))?;
    }
    tokio::fs::write(path, bytes)
        .await
        .map_err(|e| TrainFailure::new(format!("writing {}: {e}", path.display())))
}

impl SubprocessTrainer {
    /// Copies the snapshot's train and val files into `dir` (the trainer reads files).
    async fn materialise(
        &self,
        request: &TrainRequest,
        dir: &Path,
    ) -> Result<(Vec<PathBuf>, Vec<PathBuf>), TrainFailure> {
        let prefix = request.snapshot.prefix();
        let mut train = Vec::new();
        let mut val = Vec::new();
        for entry in &request.snapshot.entries {
            let list = match entry.split {
                Split::Train => &mut train,
                Split::Val => &mut val,
                Split::Holdout => continue,
            };
            for path in [&entry.image, &entry.label] {
                let bytes = request
                    .blobs
                    .get_blob(&format!("{prefix}{path}"))
                    .await
                    .map_err(|e| TrainFailure::new(format!("reading snapshot file {path}: {e}")))?;
                write_file(&dir.join(path), &bytes).await?;
            }
            list.push(dir.join(&entry.image));
        }
        Ok((train, val))
    }

    /// Runs one `python -m opti_trainer …` and feeds its JSON lines to `on_event`.
    async fn run_python(
        &self,
        args: &[String],
        tail: &mut Tail,
        on_event: &mut (dyn FnMut(&serde_json::Value) + Send),
    ) -> Result<Option<serde_json::Value>, TrainFailure> {
        // std::process with reader threads (tokio's process feature is not compiled in);
        // the guard kills the trainer if this task is dropped (service shutdown).
        let mut command = std::process::Command::new(&self.python);
        command
            .arg("-m")
            .arg("opti_trainer")
            .args(args)
            .current_dir(&self.trainer_dir)
            .env("PYTHONPATH", &self.trainer_dir)
            .env("YOLO_OFFLINE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| {
            TrainFailure::new(format!(
                "cannot start the trainer {} ({e}); set OPTI_PYTHON to the venv's python (make venv)",
                self.python.display()
            ))
        })?;
        let (line_tx, mut line_rx) = tokio::sync::mpsc::unbounded_channel::<(bool, String)>();
        if let Some(out) = child.stdout.take() {
            spawn_reader(out, true, line_tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            spawn_reader(err, false, line_tx.clone());
        }
        drop(line_tx);
        let mut guard = KillOnDrop(Some(child));
        let mut last_error = None;
        let mut final_event = None;
        while let Some((is_out, line)) = line_rx.recv().await {
            let parsed = is_out
                .then(|| serde_json::from_str::<serde_json::Value>(&line).ok())
                .flatten();
            match parsed {
                Some(event) => {
                    if event.get("event").and_then(|e| e.as_str()) == Some("error") {
                        last_error = event
                            .get("message")
                            .and_then(|m| m.as_str())
                            .map(str::to_owned);
                    }
                    tail.push(line);
                    on_event(&event);
                    final_event = Some(event);
                }
                None => {
                    // tqdm redraws with carriage returns; keep the last state of a line.
                    let shown = line.rsplit('\r').next().unwrap_or(&line).trim_end();
                    if !shown.is_empty() {
                        tail.push(shown.to_owned());
                    }
                }
            }
        }
        let status = guard.wait().await.map_err(|e| TrainFailure {
            message: format!("waiting for the trainer: {e}"),
            log_tail: tail.lines(),
        })?;
        if !status.success() {
            return Err(TrainFailure {
                message: format!(
                    "trainer `{}` failed ({status}): {}",
                    args.first().map_or("", String::as_str),
                    last_error.unwrap_or_else(|| "see the log tail".into())
                ),
                log_tail: tail.lines(),
            });
        }
        Ok(final_event)
    }
}

#[async_trait]
impl Trainer for SubprocessTrainer {
    async fn train(
        &self,
        request: TrainRequest,
        progress: ProgressSink,
    ) -> Result<TrainedModel, TrainFailure> {
        let dir = self.work_root.join(&request.job_id);
        let dataset = dir.join("dataset");
        let (train, val) = self.materialise(&request, &dataset).await?;
        if train.is_empty() {
            return Err(TrainFailure::new(
                "the snapshot has no training items: review more inspections first",
            ));
        }
        let wanted =
            ((train.len() as f64 * self.replay_ratio).round() as usize).min(self.replay_max);
        let replay: Vec<PathBuf> = match (&self.replay, wanted) {
            (Some(source), n) if n > 0 => {
                let source = source.clone();
                tokio::task::spawn_blocking(move || source.train_images(n))
                    .await
                    .map_err(|e| TrainFailure::new(format!("replay task failed: {e}")))?
                    .map_err(|e| TrainFailure::new(format!("replay data: {e}")))?
            }
            _ => Vec::new(),
        };
        let replay = spread(&replay, wanted);
        let lines = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        };
        let mut train_all = train.clone();
        train_all.extend(replay.iter().cloned());
        // Ultralytics needs a val split; a tiny snapshot may have none yet.
        let val = if val.is_empty() { train.clone() } else { val };
        write_file(&dataset.join("train.txt"), lines(&train_all).as_bytes()).await?;
        write_file(&dataset.join("val.txt"), lines(&val).as_bytes()).await?;
        let classes = opti_core::ClassNames(request.snapshot.classes.clone());
        let mut yaml = format!(
            "path: {}\ntrain: train.txt\nval: val.txt\n",
            serde_json::to_string(&dataset.to_string_lossy()).unwrap_or_default()
        );
        yaml.push_str(&format!("nc: {}\nnames:\n", classes.len()));
        for (i, n) in classes.iter().enumerate() {
            yaml.push_str(&format!(
                "  {i}: {}\n",
                serde_json::to_string(n).unwrap_or_default()
            ));
        }
        write_file(&dataset.join("data.yaml"), yaml.as_bytes()).await?;
        let parent = dir.join("parent.pt");
        write_file(&parent, &request.parent_weights).await?;

        let run = dir.join("run");
        let mut args: Vec<String> = vec![
            "train".into(),
            "--data".into(),
            dataset.join("data.yaml").to_string_lossy().into_owned(),
            "--out".into(),
            run.to_string_lossy().into_owned(),
            "--weights".into(),
            parent.to_string_lossy().into_owned(),
            "--epochs".into(),
            request.epochs.to_string(),
            "--imgsz".into(),
            request.imgsz.to_string(),
            "--batch".into(),
            request.batch.to_string(),
            "--workers".into(),
            "0".into(),
        ];
        for extra in &self.extra {
            args.push("--set".into());
            args.push(extra.clone());
        }
        let mut tail = Tail::default();
        let done = self
            .run_python(&args, &mut tail, &mut |event| {
                if let Some(p) = parse_epoch(event) {
                    let _ = progress.send(p);
                }
            })
            .await?;
        let done = done.filter(|e| e.get("event").and_then(|v| v.as_str()) == Some("done"));
        let best = done
            .as_ref()
            .and_then(|e| e.get("best"))
            .and_then(|b| b.as_str())
            .map(PathBuf::from)
            .ok_or_else(|| TrainFailure {
                message: "the trainer finished without reporting its weights".into(),
                log_tail: tail.lines(),
            })?;
        let metrics = done
            .as_ref()
            .and_then(|e| e.get("metrics"))
            .and_then(metric_set);
        let onnx_path = dir.join("model.onnx");
        let export_args: Vec<String> = vec![
            "export".into(),
            "--weights".into(),
            best.to_string_lossy().into_owned(),
            "--out".into(),
            onnx_path.to_string_lossy().into_owned(),
            "--imgsz".into(),
            request.imgsz.to_string(),
        ];
        self.run_python(&export_args, &mut tail, &mut |_| {})
            .await?;
        let read = |p: PathBuf| async move {
            tokio::fs::read(&p)
                .await
                .map_err(|e| format!("reading {}: {e}", p.display()))
        };
        let onnx = read(onnx_path).await.map_err(|m| TrainFailure {
            message: m,
            log_tail: tail.lines(),
        })?;
        let weights = read(best.clone()).await.map_err(|m| TrainFailure {
            message: m,
            log_tail: tail.lines(),
        })?;
        let summary: serde_json::Value = tokio::fs::read(run.join("train_summary.json"))
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null);
        // The copied dataset is only needed while training.
        let _ = tokio::fs::remove_dir_all(&dataset).await;
        let recipe = serde_json::json!({
            "job": request.job_id,
            "snapshot_id": request.snapshot.id,
            "versions": summary.get("versions"),
            "args": summary.get("args"),
            "train_seconds": summary.get("train_seconds"),
            "train_images": train.len(),
            "replay_images": replay.len(),
            "metrics": summary.get("metrics"),
        });
        Ok(TrainedModel {
            onnx,
            weights,
            metrics,
            recipe,
            replay: replay.len(),
            log_tail: tail.lines(),
        })
    }
}
