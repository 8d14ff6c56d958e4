//! The YOLO detector: an Ultralytics-exported ONNX model run by tract, with the
//! pre-processing (letterbox, RGB 0..1 NCHW) and post-processing (candidates, NMS,
//! boxes mapped back to the original image) that make it answer like Ultralytics'
//! `predict`. Class names and input size come from the model's metadata.
//!
//! Each stage is a public method so that a benchmark can time decode, preprocess,
//! inference and postprocess separately; [`Detector::inspect_bytes`] runs them all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;
use opti_core::{ClassNames, Detection, ImageStats, ModelOutput};
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;

use crate::cache::{self, cache_path_for, LoadedFrom, ModelCache};
use crate::decode::{decode_bytes, DecodeError, DecodeLimits, ImageKind};
use crate::letterbox::{letterbox, to_nchw, LetterboxGeometry};
use crate::metadata::{parse_imgsz, parse_names, MetadataError};
use crate::postprocess::{candidates, end_to_end, nms, NmsOptions, OutputLayout};
use crate::rewrite::{declutter_without_concat_then_einsum, speed_up, RewriteReport};
use crate::stats::image_stats;
use crate::team::Team;

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file is missing or unreadable.
    #[error("cannot read model {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// tract could not parse, type or optimise the graph.
    #[error("cannot load ONNX model {path}: {message}")]
    Onnx { path: PathBuf, message: String },
    /// A metadata entry Ultralytics writes (`names`, `imgsz`) is absent.
    #[error("model {path} has no `{key}` metadata (is it an Ultralytics export?)")]
    MissingMetadata { path: PathBuf, key: &'static str },
    /// A metadata entry is present but cannot be read.
    #[error("model {path}: {source}")]
    BadMetadata {
        path: PathBuf,
        source: MetadataError,
    },
    /// The output is neither `[1, 4 + nc, N]` nor `[1, K, 6]`, or disagrees with `names`.
    #[error("model {path} has an unsupported output shape {shape:?}: {reason}")]
    UnsupportedOutput {
        path: PathBuf,
        shape: Vec<usize>,
        reason: String,
    },
}

/// Why running the model on an image failed.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// tract failed while running the plan.
    #[error("inference failed: {0}")]
    Run(String),
    /// The output does not have the shape the model declared.
    #[error("model output has {got} values, expected {expected}")]
    OutputSize { got: usize, expected: usize },
    /// The model produced a class id it has no name for.
    #[error("model produced class id {id} but names only {count} classes")]
    UnknownClass { id: usize, count: usize },
}

/// Anything that can go wrong between bytes and detections.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

/// Knobs of the detector. Defaults are Ultralytics predict's (conf 0.25, IoU 0.7, 300 boxes).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DetectorOptions {
    pub nms: NmsOptions,
    pub decode_limits: DecodeLimits,
    /// Optimise with tract's stock passes only, without the project's graph rewrites
    /// ([`crate::rewrite`]): for benchmarks and parity checks of the rewrites.
    pub plain_tract: bool,
    /// Whether [`Detector::load`] keeps a load-optimised copy of the model next to it.
    pub cache: ModelCache,
    /// Threads one inference may use: the calling thread and `threads - 1` helpers that
    /// the project's convolutions split over ([`crate::team::Team`]; with `plain_tract`,
    /// tract's multithreaded executor), shared by every call and clone of the detector.
    /// 0 or 1: the calling thread only.
    pub threads: usize,
}

/// What the model file says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub path: PathBuf,
    /// Class names, by class id, from the `names` metadata.
    pub names: ClassNames,
    /// Model input width and height in pixels, from the `imgsz` metadata.
    pub input_width: u32,
    pub input_height: u32,
    pub layout: OutputLayout,
    /// Every `metadata_props` entry of the ONNX file (`version`, `date`, `task`, …).
    pub metadata: BTreeMap<String, String>,
    /// The graph rewrites applied at load time.
    pub rewrites: RewriteReport,
    /// Whether the graph came from the ONNX or from a load-optimised cache.
    pub loaded_from: LoadedFrom,
    /// Why a requested cache was not used, not written, or read the slow way (tract's
    /// NNEF parser); `None` when it was used as is or none was requested.
    pub cache_note: Option<String>,
    /// Whether this load wrote a fresh load-optimised copy (an ONNX load with a cache
    /// location, written and checked to load back).
    pub cache_written: bool,
    /// Where the load's time went, phase by phase, in order.
    pub load_phases: Vec<(&'static str, Duration)>,
}

/// Time spent in each stage of one inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageTimings {
    pub decode: Duration,
    pub preprocess: Duration,
    pub inference: Duration,
    pub postprocess: Duration,
}

impl StageTimings {
    /// Sum of the stages.
    pub fn total(&self) -> Duration {
        self.decode + self.preprocess + self.inference + self.postprocess
    }
}

/// A letterboxed image ready for the model, and where the original sits in it.
#[derive(Debug, Clone)]
pub struct Preprocessed {
    pub input: Tensor,
    pub geometry: LetterboxGeometry,
}

/// The model's raw output: `[1, 4 + nc, N]` or `[1, K, 6]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutput {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Everything one image yields: detections, image statistics, timings.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub output: ModelOutput,
    pub stats: ImageStats,
    pub kind: ImageKind,
    pub timings: StageTimings,
}

/// A loaded, optimised YOLO model with its pre- and post-processing. Cheap to share
/// between threads (`Arc` inside); each call runs its own state.
#[derive(Debug, Clone)]
pub struct Detector {
    plan: Arc<TypedRunnableModel>,
    info: Arc<ModelInfo>,
    options: DetectorOptions,
    /// `Some` when `options.threads > 1`: the pool one inference is split over.
    pool: Option<Arc<InferencePool>>,
}

/// The threads one inference at a time runs on (see [`Detector::infer`]).
#[derive(Debug)]
enum InferencePool {
    /// The project's kernels (every convolution) split over a [`Team`]; tract's few
    /// remaining operators run on the calling thread, the team's leader.
    Team(Team),
    /// Plain tract ([`DetectorOptions::plain_tract`]): tract's multithreaded executor.
    Tract {
        executor: Executor,
        /// Held by the inference running in the pool.
        busy: std::sync::Mutex<()>,
    },
}

/// The pool for `threads` (none for one thread, or if no thread could be started: the
/// calling thread then runs every inference, as with one thread).
fn pool_for(threads: usize, plain_tract: bool) -> Option<Arc<InferencePool>> {
    if threads < 2 {
        return None;
    }
    let pool = if plain_tract {
        InferencePool::Tract {
            executor: Executor::multithread_with_name(threads, "opti-infer"),
            busy: std::sync::Mutex::new(()),
        }
    } else {
        InferencePool::Team(Team::new(threads, "opti-infer").ok()?)
    };
    Some(Arc::new(pool))
}

/// `run` inside tract's multithreaded `executor` (plain tract), so that tract's matrix
/// products split over its pool.
fn tract_pool_run<R: Send>(executor: &Executor, run: impl FnOnce() -> R + Send) -> R {
    match executor {
        Executor::MultiThread(rayon) => {
            rayon.install(|| multithread_tract_scope(executor.clone(), run))
        }
        other => multithread_tract_scope(other.clone(), run),
    }
}

impl Detector {
    /// Loads an Ultralytics ONNX export: reads `names` and `imgsz` from its metadata,
    /// fixes the input to `[1, 3, h, w]` f32, optimises it and makes it runnable. With
    /// [`ModelCache::NextToModel`] the decluttered graph is read from (or written to)
    /// [`cache_path_for`] the model.
    pub fn load(path: &Path, options: DetectorOptions) -> Result<Self, ModelError> {
        let onnx = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        let cache = match options.cache {
            ModelCache::Off => None,
            ModelCache::NextToModel => Some(cache_path_for(path)),
        };
        Self::from_onnx_bytes(&onnx, path, options, cache.as_deref())
    }

    /// Loads an Ultralytics ONNX export from its bytes (`path` names it in errors and
    /// [`ModelInfo::path`]). With `cache`, a load-optimised copy is read from that file
    /// when it was made from these very bytes (see [`crate::cache`]), and written there
    /// after an ONNX load otherwise; any cache problem falls back to the ONNX and is
    /// reported in [`ModelInfo::cache_note`], never as an error. `options.cache` is not
    /// consulted here, and `plain_tract` never uses a cache.
    pub fn from_onnx_bytes(
        onnx: &[u8],
        path: &Path,
        options: DetectorOptions,
        cache: Option<&Path>,
    ) -> Result<Self, ModelError> {
        let mut from = LoadedFrom::Onnx;
        match Self::load_inner(onnx, path, options, cache, true, &mut from) {
            // A cache that read back but could not be used after all (metadata, input,
            // rewrites, codegen or output it should not have): load from the ONNX,
            // which also rewrites the cache.
            Err(e) if from == LoadedFrom::Cache => {
                let mut detector = Self::load_inner(onnx, path, options, cache, false, &mut from)?;
                if let Some(info) = Arc::get_mut(&mut detector.info) {
                    info.cache_note = Some(format!(
                        "cache read back but not usable ({e}); {}",
                        info.cache_note.as_deref().unwrap_or("loaded from the ONNX")
                    ));
                }
                Ok(detector)
            }
            result => result,
        }
    }

    /// [`Detector::from_onnx_bytes`], reading the cache only when `read_cache`; `from`
    /// says where the graph came from (also when a later step fails).
    fn load_inner(
        onnx: &[u8],
        path: &Path,
        options: DetectorOptions,
        cache: Option<&Path>,
        read_cache: bool,
        from: &mut LoadedFrom,
    ) -> Result<Self, ModelError> {
        let onnx_err = |e: TractError| ModelError::Onnx {
            path: path.to_owned(),
            message: format!("{e:#}"),
        };
        let cache = cache.filter(|_| !options.plain_tract);
        let mut phases: Vec<(&'static str, Duration)> = Vec::new();
        let mut clock = Instant::now();
        let mut lap = |name: &'static str| {
            let now = Instant::now();
            phases.push((name, now - clock));
            clock = now;
        };
        let mut cache_note = None;
        let mut cache_written = false;
        let (key, cached) = match cache {
            Some(file) if read_cache => match cache::lookup(file, onnx) {
                (key, Ok(c)) => {
                    if let Some(why) = &c.slow_read {
                        cache_note = Some(format!("read with tract's NNEF parser: {why}"));
                    }
                    (Some(key), Some(c))
                }
                (key, Err(e)) => {
                    cache_note = Some(e.to_string());
                    (Some(key), None)
                }
            },
            Some(_) => (Some(cache::onnx_key(onnx)), None),
            None => (None, None),
        };
        lap(if cached.is_some() {
            "hash ONNX ‖ read cache (NNEF)"
        } else {
            "hash ONNX, look for a cache"
        });
        let (metadata, mut typed, loaded_from) = match cached {
            Some(c) => (c.metadata, c.model, LoadedFrom::Cache),
            None => {
                let model = tract_onnx::onnx()
                    .model_for_read(&mut &onnx[..])
                    .map_err(onnx_err)?;
                lap("parse ONNX");
                let metadata = read_metadata(&model);
                let (h, w) = input_size(path, &metadata)?;
                let fact = f32::fact([1, 3, h as usize, w as usize]);
                let model = model.with_input_fact(0, fact.into()).map_err(onnx_err)?;
                let mut typed = model.into_typed().map_err(onnx_err)?;
                lap("type");
                if options.plain_tract {
                    typed.declutter().map_err(onnx_err)?;
                } else {
                    declutter_without_concat_then_einsum(&mut typed).map_err(onnx_err)?;
                }
                lap("declutter");
                if let (Some(file), Some(key)) = (cache, &key) {
                    match cache::write(file, key, &metadata, &typed) {
                        Ok(()) => cache_written = true,
                        Err(e) => {
                            cache_note = Some(format!(
                                "{}; not rewritten: {e}",
                                cache_note.unwrap_or_default()
                            ))
                        }
                    }
                    lap("write cache");
                }
                (metadata, typed, LoadedFrom::Onnx)
            }
        };
        *from = loaded_from;
        let names = metadata
            .get("names")
            .ok_or_else(|| ModelError::MissingMetadata {
                path: path.to_owned(),
                key: "names",
            })
            .and_then(|n| {
                parse_names(n).map_err(|source| ModelError::BadMetadata {
                    path: path.to_owned(),
                    source,
                })
            })?;
        let (input_height, input_width) = input_size(path, &metadata)?;
        let want = [1, 3, input_height as usize, input_width as usize];
        let got = typed.input_fact(0).map_err(onnx_err)?;
        if got.datum_type != f32::datum_type() || got.shape.as_concrete() != Some(&want[..]) {
            return Err(ModelError::Onnx {
                path: path.to_owned(),
                message: format!("model input is {got:?}, expected f32 {want:?}"),
            });
        }

        let rewrites = if options.plain_tract {
            RewriteReport::default()
        } else {
            speed_up(&mut typed).map_err(onnx_err)?
        };
        lap("project rewrites");
        typed.optimize().map_err(onnx_err)?;
        lap("optimise (codegen)");

        let shape: Vec<usize> = typed
            .output_fact(0)
            .map_err(onnx_err)?
            .shape
            .as_concrete()
            .map(<[usize]>::to_vec)
            .ok_or_else(|| ModelError::UnsupportedOutput {
                path: path.to_owned(),
                shape: vec![],
                reason: "output shape is not fixed".into(),
            })?;
        let end2end_meta = metadata
            .get("end2end")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let layout = infer_layout(&shape, names.len(), end2end_meta).map_err(|reason| {
            ModelError::UnsupportedOutput {
                path: path.to_owned(),
                shape: shape.clone(),
                reason,
            }
        })?;
        let plan = typed.into_runnable().map_err(onnx_err)?;
        lap("plan");
        Ok(Self {
            plan,
            info: Arc::new(ModelInfo {
                path: path.to_owned(),
                names: ClassNames(names),
                input_width,
                input_height,
                layout,
                metadata,
                rewrites,
                loaded_from,
                cache_note,
                cache_written,
                load_phases: phases,
            }),
            options,
            pool: pool_for(options.threads, options.plain_tract),
        })
    }

    /// The same model (shared, not reloaded) running each inference on `threads`
    /// threads (0 or 1: the calling thread).
    pub fn with_threads(&self, threads: usize) -> Detector {
        Detector {
            plan: self.plan.clone(),
            info: self.info.clone(),
            options: DetectorOptions {
                threads,
                ..self.options
            },
            pool: pool_for(threads, self.options.plain_tract),
        }
    }

    /// What the model says about itself.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The options it was loaded with.
    pub fn options(&self) -> &DetectorOptions {
        &self.options
    }

    /// Letterboxes a decoded image into the model's input tensor.
    pub fn preprocess(&self, image: &RgbImage) -> Result<Preprocessed, InferenceError> {
        let (boxed, geometry) = letterbox(image, self.info.input_width, self.info.input_height);
        Ok(Preprocessed {
            input: self.tensor_from_letterboxed(&boxed)?,
            geometry,
        })
    }

    /// The input tensor of an image that is already letterboxed to the model size.
    pub fn tensor_from_letterboxed(&self, boxed: &RgbImage) -> Result<Tensor, InferenceError> {
        let (w, h) = (boxed.width() as usize, boxed.height() as usize);
        let mut data = vec![0f32; 3 * w * h];
        to_nchw(boxed, &mut data);
        tract_ndarray::Array4::from_shape_vec((1, 3, h, w), data)
            .map(|a| a.into_tensor())
            .map_err(|e| InferenceError::Run(format!("input tensor: {e}")))
    }

    /// Runs the model on an input tensor.
    ///
    /// With `threads > 1` an inference that finds the team free leads it: the calling
    /// thread runs the graph, and each convolution is split between it and the team's
    /// helpers, which spin for work while the inference lasts and sleep otherwise. One
    /// that finds the team taken by another inference runs on the calling thread alone:
    /// a lone image gets every core, a busy line one image per core. (With
    /// `plain_tract` the same holds for tract's pool, entered by the inference; two
    /// inferences in one tract pool would meet inside tract, whose per-thread scratch
    /// space is not re-entrant.)
    pub fn infer(&self, input: Tensor) -> Result<RawOutput, InferenceError> {
        // A panic inside tract (a bug, not bad input: the input shape is fixed) becomes
        // this call's error; unwinding also never crosses tract's executor scope, which
        // would leave a pool thread pointing at its own pool.
        let run = || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.plan.run(tvec!(input.into_tvalue()))
            }))
            .unwrap_or_else(|_| Err(TractError::msg("tract panicked during inference")))
        };
        let outputs = match self.pool.as_deref() {
            // On the team when it is free, else on this thread alone.
            Some(InferencePool::Team(team)) => team.run(|_| run()),
            // A poisoned lock (an inference panicked inside tract, which became that
            // call's error) still holds the pool.
            Some(InferencePool::Tract { executor, busy }) => match busy.try_lock() {
                Err(std::sync::TryLockError::WouldBlock) => run(),
                _held => tract_pool_run(executor, run),
            },
            None => run(),
        }
        .map_err(|e| InferenceError::Run(format!("{e:#}")))?;
        let out = outputs
            .first()
            .ok_or_else(|| InferenceError::Run("model returned no output".into()))?;
        let view = out
            .to_plain_array_view::<f32>()
            .map_err(|e| InferenceError::Run(format!("{e:#}")))?;
        let raw = RawOutput {
            shape: view.shape().to_vec(),
            data: view.iter().copied().collect(),
        };
        let expected = self.info.layout.len();
        if raw.data.len() != expected {
            return Err(InferenceError::OutputSize {
                got: raw.data.len(),
                expected,
            });
        }
        Ok(raw)
    }

    /// Candidates, NMS and mapping to normalised original-image boxes; also the strongest
    /// score over all anchors (before the floor) for routing.
    pub fn postprocess(
        &self,
        raw: &RawOutput,
        geometry: &LetterboxGeometry,
    ) -> Result<ModelOutput, InferenceError> {
        self.postprocess_with(raw, geometry, &self.options.nms)
    }

    /// [`Detector::postprocess`] with other thresholds (e.g. a lower floor).
    pub fn postprocess_with(
        &self,
        raw: &RawOutput,
        geometry: &LetterboxGeometry,
        opts: &NmsOptions,
    ) -> Result<ModelOutput, InferenceError> {
        let layout = self.info.layout;
        let (cands, peak) = candidates(&raw.data, layout, opts.conf);
        let kept = match layout {
            OutputLayout::Anchors { .. } => nms(cands, opts),
            OutputLayout::EndToEnd { .. } => end_to_end(cands, opts),
        };
        let names = &self.info.names;
        let name = |id: usize| {
            names
                .name(id)
                .map(str::to_owned)
                .ok_or(InferenceError::UnknownClass {
                    id,
                    count: names.len(),
                })
        };
        let detections = kept
            .into_iter()
            .map(|c| {
                Ok(Detection {
                    class: name(c.class)?,
                    confidence: c.score,
                    bbox: geometry.to_original_normalised(c.bbox),
                })
            })
            .collect::<Result<Vec<_>, InferenceError>>()?;
        let max_class = peak.class.map(name).transpose()?;
        Ok(ModelOutput {
            detections,
            max_score: peak.score,
            max_class,
        })
    }

    /// Preprocess, infer and postprocess a decoded image.
    pub fn detect(&self, image: &RgbImage) -> Result<(ModelOutput, StageTimings), InferenceError> {
        let t0 = Instant::now();
        let pre = self.preprocess(image)?;
        let t1 = Instant::now();
        let raw = self.infer(pre.input)?;
        let t2 = Instant::now();
        let output = self.postprocess(&raw, &pre.geometry)?;
        let t3 = Instant::now();
        Ok((
            output,
            StageTimings {
                decode: Duration::ZERO,
                preprocess: t1 - t0,
                inference: t2 - t1,
                postprocess: t3 - t2,
            },
        ))
    }

    /// The whole pipeline on an uploaded file's bytes: hardened decode, image
    /// statistics, detection.
    pub fn inspect_bytes(&self, bytes: &[u8]) -> Result<Analysis, VisionError> {
        let t0 = Instant::now();
        let decoded = decode_bytes(bytes, &self.options.decode_limits)?;
        let decode = t0.elapsed();
        let stats = image_stats(&decoded.rgb);
        let (output, mut timings) = self.detect(&decoded.rgb)?;
        timings.decode = decode;
        Ok(Analysis {
            output,
            stats,
            kind: decoded.kind,
            timings,
        })
    }

    /// [`Detector::inspect_bytes`] on a file, read with the byte cap.
    pub fn inspect_file(&self, path: &Path) -> Result<Analysis, VisionError> {
        let t0 = Instant::now();
        let bytes = crate::decode::read_limited(path, &self.options.decode_limits)?;
        let read = t0.elapsed();
        let mut analysis = self.inspect_bytes(&bytes)?;
        analysis.timings.decode += read;
        Ok(analysis)
    }
}

/// `imgsz` from the metadata, as (height, width).
fn input_size(path: &Path, metadata: &BTreeMap<String, String>) -> Result<(u32, u32), ModelError> {
    let imgsz = metadata
        .get("imgsz")
        .ok_or_else(|| ModelError::MissingMetadata {
            path: path.to_owned(),
            key: "imgsz",
        })?;
    parse_imgsz(imgsz).map_err(|source| ModelError::BadMetadata {
        path: path.to_owned(),
        source,
    })
}

fn read_metadata(model: &InferenceModel) -> BTreeMap<String, String> {
    const PREFIX: &str = "onnx.metadata_props.";
    model
        .properties
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix(PREFIX)?;
            let value = v
                .try_as_plain_ram()
                .ok()?
                .to_scalar::<String>()
                .ok()?
                .clone();
            Some((key.to_owned(), value))
        })
        .collect()
}

/// Decides the output layout from its shape. `[1, 4 + nc, N]` when the second axis
/// matches the class count; `[1, K, 6]` for end-to-end heads (preferred when the
/// metadata says `end2end`, which also settles the nc = 2 ambiguity).
fn infer_layout(shape: &[usize], nc: usize, end2end: bool) -> Result<OutputLayout, String> {
    let &[batch, a, b] = shape else {
        return Err("expected 3 axes".into());
    };
    if batch != 1 {
        return Err("expected batch size 1".into());
    }
    let e2e = b == 6 && a > 0;
    let anchors = a == 4 + nc && b > 0;
    match (e2e, anchors) {
        (true, true) if end2end => Ok(OutputLayout::EndToEnd { rows: a }),
        (true, false) => Ok(OutputLayout::EndToEnd { rows: a }),
        (_, true) => Ok(OutputLayout::Anchors {
            num_classes: nc,
            num_anchors: b,
        }),
        (false, false) => Err(format!(
            "neither [1, 4 + {nc} classes, N] nor [1, K, 6]; do `names` match the head?"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_recognised_from_shape_and_class_count() {
        assert_eq!(
            infer_layout(&[1, 8, 2100], 4, false),
            Ok(OutputLayout::Anchors {
                num_classes: 4,
                num_anchors: 2100
            })
        );
        assert_eq!(
            infer_layout(&[1, 300, 6], 4, true),
            Ok(OutputLayout::EndToEnd { rows: 300 })
        );
        assert_eq!(
            infer_layout(&[1, 300, 6], 4, false),
            Ok(OutputLayout::EndToEnd { rows: 300 })
        );
        // nc = 2 makes [1, 6, 6] ambiguous; the metadata decides.
        assert_eq!(
            infer_layout(&[1, 6, 6], 2, true),
            Ok(OutputLayout::EndToEnd { rows: 6 })
        );
        assert!(infer_layout(&[1, 84, 2100], 4, false).is_err());
        assert!(infer_layout(&[2, 8, 2100], 4, false).is_err());
        assert!(infer_layout(&[8, 2100], 4, false).is_err());
    }

    #[test]
    fn missing_model_file_is_an_io_error() {
        let err = Detector::load(
            Path::new("/nonexistent/model.onnx"),
            DetectorOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ModelError::Io { .. }), "{err}");
    }

    #[test]
    fn a_file_that_is_not_onnx_is_a_clear_load_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, b"definitely not protobuf \xff\xff\xff").expect("write");
        let err = Detector::load(&path, DetectorOptions::default()).unwrap_err();
        assert!(matches!(err, ModelError::Onnx { .. }), "{err}");
    }
}
