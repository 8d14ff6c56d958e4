//! Measuring tools for the shipped model under tract, not checks: ignored by default.
//! Run one at a time (the test harness would run them in parallel) with
//!
//! ```text
//! cargo test -p opti-vision --test profile -- --ignored --nocapture --test-threads 1 [NAME]
//! ```
//!
//! - `per_operator_time_of_the_shipped_model`: time per operator, with and without the
//!   project's graph rewrites (`opti_vision::rewrite`);
//! - `load_phases_of_the_shipped_model`, `optimizer_pass_times`, `detector_load_times`:
//!   where the load time goes (parse, typing, declutter, codegen; ONNX vs the model cache);
//! - `knob_sweep`: inference time under tract's scopable codegen knobs
//!   (`KNOBS="NAME=value,NAME=value;…"`, `ROUNDS=n`), wall and thread CPU time;
//! - `worker_scaling`: inferences per second and CPU time per inference, 1 and 2 workers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opti_vision::rewrite::{declutter_without_concat_then_einsum, speed_up};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::eval;

/// The shipped model's ONNX.
fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default/model.onnx")
}

/// `model` parsed and typed for one 320×320 image, not yet decluttered.
fn typed(model: &Path) -> TractResult<TypedModel> {
    tract_onnx::onnx()
        .model_for_path(model)?
        .with_input_fact(0, f32::fact([1, 3, 320, 320]).into())?
        .into_typed()
}

fn plan(model: &Path, rewrites: bool) -> TractResult<Arc<TypedRunnableModel>> {
    let mut typed = typed(model)?;
    if rewrites {
        declutter_without_concat_then_einsum(&mut typed)?;
        speed_up(&mut typed)?;
    } else {
        typed.declutter()?;
    }
    typed.optimize()?;
    typed.into_runnable()
}

fn profile(plan: &Arc<TypedRunnableModel>, runs: usize) -> TractResult<BTreeMap<String, Duration>> {
    profile_by(plan, runs, |node| node.op().name().to_string())
}

fn profile_by(
    plan: &Arc<TypedRunnableModel>,
    runs: usize,
    key: fn(&TypedNode) -> String,
) -> TractResult<BTreeMap<String, Duration>> {
    let input = Tensor::zero::<f32>(&[1, 3, 320, 320])?;
    let mut by_op: BTreeMap<String, Duration> = BTreeMap::new();
    let mut state = plan.spawn()?;
    for _ in 0..runs {
        state.run_plan_with_eval(
            tvec!(input.clone().into_tvalue()),
            |ctx, st, node, inputs| {
                let t = Instant::now();
                let out = eval(ctx, st, node, inputs);
                *by_op.entry(key(node)).or_default() += t.elapsed();
                out
            },
        )?;
    }
    Ok(by_op)
}

#[test]
#[ignore = "measuring tool"]
fn per_operator_time_of_the_shipped_model() -> TractResult<()> {
    let model = shipped();
    let runs = 20;
    for rewrites in [false, true] {
        let p = plan(&model, rewrites)?;
        profile(&p, 3)?;
        print_slowest(
            &format!("rewrites {rewrites}"),
            profile(&p, runs)?,
            runs,
            12,
        );
    }
    Ok(())
}

/// The total and the `top` slowest entries of a profile, in ms per run.
fn print_slowest(label: &str, by: BTreeMap<String, Duration>, runs: usize, top: usize) {
    let per_run = |d: Duration| d.as_secs_f64() * 1000.0 / runs as f64;
    let total: Duration = by.values().sum();
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    println!("{label}: {:.2} ms per run", per_run(total));
    for (name, d) in v.iter().take(top) {
        println!("  {:>8.3} ms  {name}", per_run(*d));
    }
}

/// A count from the environment (`THREADS`, `TOP`), or `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(default)
}

/// Milliseconds per call of `f`, over `runs` calls after 5 to warm up.
fn ms_per_run(runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..5 {
        f();
    }
    let t = Instant::now();
    for _ in 0..runs {
        f();
    }
    t.elapsed().as_secs_f64() * 1000.0 / runs as f64
}

/// The slowest nodes (with their op and input shapes) of the shipped model's plan.
#[test]
#[ignore = "measuring tool"]
fn per_node_time_of_the_shipped_model() -> TractResult<()> {
    let model = shipped();
    let runs = 20;
    let p = plan(&model, true)?;
    profile(&p, 3)?;
    let threads = env_count("THREADS", 1);
    // `BY_OP=1`: totals per operator instead of per node.
    let key: fn(&TypedNode) -> String = if std::env::var("BY_OP").is_ok() {
        |node| node.op().name().to_string()
    } else {
        |node| format!("{} {}", node.name, node.op().name())
    };
    let by_node = if threads > 1 {
        // As the detector runs it: the project's kernels on a team, tract's operators on
        // the calling thread.
        let team = opti_vision::team::Team::new(threads, "profile")?;
        team.run(|_| profile_by(&p, runs, key))?
    } else {
        profile_by(&p, runs, key)?
    };
    print_slowest(
        &format!("{threads} thread(s)"),
        by_node,
        runs,
        env_count("TOP", 25),
    );
    Ok(())
}

#[test]
#[ignore = "measuring tool"]
fn load_phases_of_the_shipped_model() -> TractResult<()> {
    let path = shipped();
    for _ in 0..2 {
        let t = Instant::now();
        let bytes = std::fs::read(&path)?;
        let t_read = t.elapsed();
        let model = tract_onnx::onnx().model_for_read(&mut &bytes[..])?;
        let t_parse = t.elapsed();
        let model = model.with_input_fact(0, f32::fact([1, 3, 320, 320]).into())?;
        let mut typed = model.into_typed()?;
        let t_typed = t.elapsed();
        declutter_without_concat_then_einsum(&mut typed)?;
        let t_declutter = t.elapsed();
        speed_up(&mut typed)?;
        typed.optimize()?;
        let t_opt = t.elapsed();
        let plan = typed.into_runnable()?;
        let t_plan = t.elapsed();
        let input = Tensor::zero::<f32>(&[1, 3, 320, 320])?;
        plan.run(tvec!(input.clone().into_tvalue()))?;
        let t_first = t.elapsed();
        plan.run(tvec!(input.into_tvalue()))?;
        let t_second = t.elapsed();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "read {:.1} parse {:.1} into_typed {:.1} declutter {:.1} optimize {:.1} plan {:.1} first run {:.1} second run {:.1} (ms, cumulative)",
            ms(t_read), ms(t_parse), ms(t_typed), ms(t_declutter), ms(t_opt), ms(t_plan), ms(t_first), ms(t_second)
        );
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct Timed(
    Box<dyn tract_onnx::tract_core::optim::TypedPass>,
    std::sync::Arc<std::sync::Mutex<(Duration, usize)>>,
);

impl tract_onnx::tract_core::optim::TypedPass for Timed {
    fn reset(&mut self) -> TractResult<()> {
        self.0.reset()
    }
    fn next(
        &mut self,
        session: &mut tract_onnx::tract_core::optim::OptimizerSession,
        model: &TypedModel,
    ) -> TractResult<Option<TypedModelPatch>> {
        let t = Instant::now();
        let r = self.0.next(session, model);
        let mut g = self.1.lock().unwrap();
        g.0 += t.elapsed();
        if matches!(r, Ok(Some(_))) {
            g.1 += 1;
        }
        r
    }
    fn run_direct(&mut self, model: &mut TypedModel) -> TractResult<bool> {
        let t = Instant::now();
        let r = self.0.run_direct(model);
        self.1.lock().unwrap().0 += t.elapsed();
        r
    }
}

fn timed_run(
    name: &str,
    mut opt: tract_onnx::tract_core::optim::Optimizer,
    model: &mut TypedModel,
) -> TractResult<()> {
    let mut cells = vec![];
    opt.passes = opt
        .passes
        .into_iter()
        .map(|p| {
            let c = std::sync::Arc::new(std::sync::Mutex::new((Duration::ZERO, 0)));
            cells.push((format!("{p:?}"), c.clone()));
            Box::new(Timed(p, c)) as Box<dyn tract_onnx::tract_core::optim::TypedPass>
        })
        .collect();
    let t = Instant::now();
    opt.optimize(model)?;
    println!(
        "{name}: {:.1} ms total, {} nodes after",
        t.elapsed().as_secs_f64() * 1000.0,
        model.nodes.len()
    );
    for (n, c) in cells {
        let g = c.lock().unwrap();
        println!(
            "  {:<60} next+direct {:>7.1} ms, {} patches",
            n.chars().take(60).collect::<String>(),
            g.0.as_secs_f64() * 1000.0,
            g.1
        );
    }
    Ok(())
}

#[test]
#[ignore = "measuring tool"]
fn optimizer_pass_times() -> TractResult<()> {
    let mut typed = typed(&shipped())?;
    println!("{} nodes typed", typed.nodes.len());
    let mut d = tract_onnx::tract_core::optim::Optimizer::declutter();
    d.passes
        .retain(|p| !format!("{p:?}").starts_with("ConcatThenEinsum"));
    timed_run("declutter", d, &mut typed)?;
    speed_up(&mut typed)?;
    timed_run(
        "codegen",
        tract_onnx::tract_core::optim::Optimizer::codegen(),
        &mut typed,
    )?;
    Ok(())
}

#[test]
#[ignore = "measuring tool"]
fn knob_sweep() -> TractResult<()> {
    use tract_onnx::tract_core::knobs::KnobScope;
    let mut base = typed(&shipped())?;
    declutter_without_concat_then_einsum(&mut base)?;
    speed_up(&mut base)?;
    let spec = std::env::var("KNOBS").unwrap_or_default();
    let mut variants: Vec<(String, Vec<(String, String)>)> = vec![("default".into(), vec![])];
    for v in spec.split(';').filter(|s| !s.is_empty()) {
        let kv = v
            .split(',')
            .map(|p| {
                let (k, x) = p.split_once('=').unwrap();
                (k.to_string(), x.to_string())
            })
            .collect();
        variants.push((v.to_string(), kv));
    }
    let mut plans = vec![];
    for (name, kv) in &variants {
        let scope = KnobScope::new(kv.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        let t = Instant::now();
        let plan = scope.enter(|| -> TractResult<_> {
            let mut m = base.clone();
            m.optimize()?;
            m.into_runnable()
        })?;
        println!(
            "{name}: optimize {:.1} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
        plans.push(plan);
    }
    let data: Vec<f32> = (0..3 * 320 * 320usize)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let input = tract_ndarray::Array4::from_shape_vec((1, 3, 320, 320), data)?.into_tensor();
    let reference = plans[0].run(tvec!(input.clone().into_tvalue()))?[0]
        .clone()
        .into_tensor();
    let mut times = vec![vec![]; plans.len()];
    let mut cpu = vec![vec![]; plans.len()];
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(12);
    for round in 0..rounds {
        for (i, p) in plans.iter().enumerate() {
            let t = Instant::now();
            let c = thread_cpu_ns();
            let out = p.run(tvec!(input.clone().into_tvalue()))?;
            if round >= 2 {
                times[i].push(t.elapsed().as_secs_f64() * 1000.0);
                cpu[i].push((thread_cpu_ns() - c) as f64 / 1e6);
            }
            if round == 0 {
                let a = out[0].to_plain_array_view::<f32>()?;
                let b = reference.to_plain_array_view::<f32>()?;
                let d = a
                    .iter()
                    .zip(b.iter())
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                println!("{}: max diff vs default {d:.2e}", variants[i].0);
            }
        }
    }
    for (i, t) in times.iter_mut().enumerate() {
        t.sort_by(f64::total_cmp);
        cpu[i].sort_by(f64::total_cmp);
        println!(
            "{:<60} wall median {:>7.2} ms min {:>7.2}; thread CPU median {:>7.2} min {:>7.2}",
            variants[i].0,
            t[t.len() / 2],
            t[0],
            cpu[i][cpu[i].len() / 2],
            cpu[i][0]
        );
    }
    Ok(())
}

#[test]
#[ignore = "measuring tool"]
fn detector_load_times() {
    use opti_vision::{Detector, DetectorOptions, ModelCache};
    let original = shipped();
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("model.onnx");
    std::fs::copy(&original, &model).expect("copy");
    let bytes = std::fs::read(&model).expect("read");
    let t = Instant::now();
    let _ = opti_vision::cache::onnx_key(&bytes);
    println!(
        "sha256 of {} bytes: {:.1} ms",
        bytes.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    let cached = DetectorOptions {
        cache: ModelCache::NextToModel,
        ..DetectorOptions::default()
    };
    for (label, opts) in [
        ("onnx (cache off)", DetectorOptions::default()),
        ("onnx + cache write", cached),
        ("from cache", cached),
        ("onnx (cache off)", DetectorOptions::default()),
        ("from cache", cached),
    ] {
        let t = Instant::now();
        let d = Detector::load(&model, opts).expect("load");
        let load = t.elapsed();
        let input = Tensor::zero::<f32>(&[1, 3, 320, 320]).expect("zero");
        d.infer(input).expect("infer");
        println!(
            "{label:<20} load {:>6.1} ms, + first inference {:>6.1} ms ({:?})",
            load.as_secs_f64() * 1000.0,
            t.elapsed().as_secs_f64() * 1000.0,
            d.info().loaded_from
        );
        for (phase, took) in &d.info().load_phases {
            println!("    {phase:<40} {:>6.1} ms", took.as_secs_f64() * 1000.0);
        }
    }
}

/// CPU time of the calling thread, in ns (`/proc/thread-self/schedstat`): less disturbed
/// by other jobs on a shared machine than wall time.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Images per second with 1 and 2 workers on one detector (each worker whole inferences
/// on its own thread), and the CPU time each inference took: when the CPU time per
/// inference stays flat from 1 to 2 workers, throughput is limited by the CPU the
/// machine gives us, not by the detector.
#[test]
#[ignore = "measuring tool"]
fn worker_scaling() {
    use opti_vision::{Detector, DetectorOptions};
    let model = shipped();
    let d = Detector::load(&model, DetectorOptions::default()).expect("load");
    let per_worker: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let input = Tensor::zero::<f32>(&[1, 3, 320, 320]).expect("zero");
    d.infer(input.clone()).expect("warm up");
    for workers in [1usize, 2, 1, 2] {
        let t = Instant::now();
        let cpu: Vec<f64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let (d, input) = (d.clone(), input.clone());
                    s.spawn(move || {
                        let c = thread_cpu_ns();
                        for _ in 0..per_worker {
                            d.infer(input.clone()).expect("infer");
                        }
                        (thread_cpu_ns() - c) as f64 / 1e6 / per_worker as f64
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("worker"))
                .collect()
        });
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{workers} worker(s): {:.2} inferences/s, CPU per inference {:?} ms (load average {})",
            (workers * per_worker) as f64 / secs,
            cpu.iter()
                .map(|c| (c * 10.0).round() / 10.0)
                .collect::<Vec<_>>(),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split(' ')
                .next()
                .unwrap_or("?")
        );
    }
}

/// CPU time of the whole process (all threads), in ms, from `/proc/self/stat`.
fn process_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the `)`.
    (ticks(11) + ticks(12)) * 10.0
}

/// One image at a time on 1 and 2 threads (the detector's team of threads): wall time
/// and process CPU time per inference. CPU above wall means the team shares the work.
#[test]
#[ignore = "measuring tool"]
fn executor_threads() {
    use opti_vision::{Detector, DetectorOptions};
    let model = shipped();
    let cache = if std::env::var("NO_CACHE").is_ok() {
        opti_vision::ModelCache::Off
    } else {
        opti_vision::ModelCache::NextToModel
    };
    let options = DetectorOptions {
        cache,
        ..DetectorOptions::default()
    };
    let d = Detector::load(&model, options).expect("load");
    let input = Tensor::zero::<f32>(&[1, 3, 320, 320]).expect("zero");
    let runs = 30;
    // `PAUSE_MS=3`: that much busy work on the calling thread between inferences (what
    // decoding the next image does in `opti bench` and `opti serve`); only the
    // inferences are timed.
    let pause = std::time::Duration::from_secs_f64(
        std::env::var("PAUSE_MS")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1000.0,
    );
    for threads in [1usize, 2, 1, 2] {
        let d = d.with_threads(threads);
        d.infer(input.clone()).expect("warm up");
        let c = process_cpu_ms();
        let mut wall = std::time::Duration::ZERO;
        for _ in 0..runs {
            let busy = Instant::now();
            while busy.elapsed() < pause {
                std::hint::spin_loop();
            }
            let t = Instant::now();
            d.infer(input.clone()).expect("infer");
            wall += t.elapsed();
        }
        println!(
            "{threads} thread(s): wall {:.2} ms, process CPU {:.2} ms per inference (pause {pause:?})",
            wall.as_secs_f64() * 1000.0 / runs as f64,
            (process_cpu_ms() - c) / runs as f64
        );
    }
}

/// tract's plain matrix product at the shapes of the shipped model's 3x3 convolutions
/// (m = output channels, k = 9 × input channels, n = output pixels), to compare with the
/// same convolutions' time in `per_node_time_of_the_shipped_model` (lazy im2col).
#[test]
#[ignore = "measuring tool"]
fn plain_matmul_at_conv_shapes() -> TractResult<()> {
    use tract_onnx::tract_core::ops::einsum::EinSum;
    for (label, m, k, n) in [
        ("model.1 16->32 s2 @80x80", 32usize, 144usize, 6400usize),
        ("model.3 64->64 s2 @40x40", 64, 576, 1600),
        ("model.5 128->128 s2 @20x20", 128, 1152, 400),
        ("cv2.0.0 64->64 @40x40", 64, 576, 1600),
    ] {
        let mut model = TypedModel::default();
        let b = model.add_source("b", f32::fact([k, n]))?;
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let a = model.add_const(
            "a",
            tract_ndarray::Array2::from_shape_vec((m, k), a)?.into_tensor(),
        )?;
        let c = model.wire_node(
            "mm",
            EinSum::new("mk,kn->mn".parse()?, f32::datum_type()),
            &[a, b],
        )?;
        model.outputs = c.to_vec();
        let plan = model.into_optimized()?.into_runnable()?;
        let input = Tensor::zero::<f32>(&[k, n])?;
        let ms = ms_per_run(50, || {
            plan.run(tvec!(input.clone().into_tvalue())).expect("run");
        });
        println!(
            "{label:<28} m {m:>3} k {k:>3} n {n:>4}: {ms:.3} ms, {:.0} GMAC/s",
            (m * k * n) as f64 / ms / 1e6
        );
    }
    Ok(())
}

/// The cached load's read phase, split: the NNEF framework's construction (op registries)
/// and the graph read from the cache file's bytes.
#[test]
#[ignore = "measuring tool"]
fn nnef_read_phases() -> TractResult<()> {
    use tract_onnx::WithOnnx;
    let cache =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default/model.onnx.nnef-cache");
    let bytes = std::fs::read(&cache)?;
    let end = bytes.windows(2).position(|w| w == b"\n\n").expect("header") + 2;
    for _ in 0..3 {
        let t = Instant::now();
        let nnef = tract_nnef::nnef().with_onnx();
        let t_make = t.elapsed();
        let model = nnef.model_for_read(&mut &bytes[end..])?;
        let t_read = t.elapsed() - t_make;
        let t2 = Instant::now();
        let proto = nnef.proto_model_for_read(&mut &bytes[end..])?;
        let t_proto = t2.elapsed();

        println!(
            "framework {:.1} ms, model_for_read {:.1} ms ({} nodes); proto only {:.1} ms ({} tensors)",
            t_make.as_secs_f64() * 1e3,
            t_read.as_secs_f64() * 1e3,
            model.nodes.len(),
            t_proto.as_secs_f64() * 1e3,
            proto.tensors.len()
        );
    }
    Ok(())
}

/// The project's direct convolution (`opti_vision::conv`) at the shipped model's
/// convolution shapes, to compare with `per_node_time_of_the_shipped_model`.
#[test]
#[ignore = "measuring tool"]
fn direct_conv_at_conv_shapes() {
    use opti_vision::conv::{ConvPlan, ConvShape, DirectConv};
    let s3 = |cin, cout, size, stride| ConvShape::square(cin, cout, size, 3, stride);
    let s1 = |cin, cout, size| ConvShape::square(cin, cout, size, 1, 1);
    let silu: bool = std::env::var("SILU").is_ok();
    let threads = env_count("THREADS", 1);
    let team = opti_vision::team::Team::new(threads, "profile").expect("team");
    for (label, shape) in [
        ("model.0 3->16 s2 @320", s3(3, 16, 320, 2)),
        ("model.1 16->32 s2 @160", s3(16, 32, 160, 2)),
        ("model.3 64->64 s2 @80", s3(64, 64, 80, 2)),
        ("model.5 128->128 s2 @40", s3(128, 128, 40, 2)),
        ("model.7 128->256 s2 @20", s3(128, 256, 20, 2)),
        ("cv2.0.0 64->64 @40", s3(64, 64, 40, 1)),
        ("m.0.cv1 16->8 @80", s3(16, 8, 80, 1)),
        ("1x1 48->64 @80", s1(48, 64, 80)),
        ("1x1 32->32 @80", s1(32, 32, 80)),
        ("1x1 256->256 @10", s1(256, 256, 10)),
    ] {
        let k = shape.cin * shape.kh * shape.kw;
        let weights: Vec<f32> = (0..shape.cout * k)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let bias = vec![0.1f32; shape.cout];
        let conv = DirectConv::new(shape, &weights, &bias, silu).expect("plan");
        let (oh, ow) = conv.output_hw();
        let input = vec![0.5f32; shape.cin * shape.h * shape.w];
        let mut out = vec![0f32; shape.cout * oh * ow];
        let ms = team.run(|t| ms_per_run(50, || conv.run_in(&input, &mut out, t).expect("run")));
        println!(
            "{label:<26} {ms:.3} ms, {:.0} GMAC/s",
            conv.macs() as f64 / ms / 1e6
        );
    }
}

/// The project's depthwise convolution at the shipped model's head shapes.
#[test]
#[ignore = "measuring tool"]
fn depthwise_conv_at_head_shapes() {
    use opti_vision::conv::{ConvPlan, ConvShape, DepthwiseConv};
    for (c, h) in [(64usize, 40usize), (64, 20), (64, 10), (128, 10)] {
        let shape = ConvShape::square(c, c, h, 3, 1);
        let weights = vec![0.1f32; c * 9];
        let bias = vec![0.1f32; c];
        let dw = DepthwiseConv::new(shape, &weights, &bias, std::env::var("SILU").is_ok())
            .expect("plan");
        let input = vec![0.5f32; c * h * h];
        let mut out = vec![0f32; c * h * h];
        let ms = ms_per_run(200, || dw.run(&input, &mut out).expect("run"));
        println!("depthwise {c} ch @{h}: {ms:.3} ms");
    }
}

/// The matrix products (tract `EinSum`) of the decluttered graph, by expression and
/// shapes, from the ONNX and from the NNEF cache.
#[test]
#[ignore = "measuring tool"]
fn einsum_forms() -> TractResult<()> {
    use opti_vision::cache::{nnef, nnef_safe};
    use tract_onnx::tract_core::ops::einsum::EinSum;
    let mut typed = typed(&shipped())?;
    declutter_without_concat_then_einsum(&mut typed)?;
    let mut tar = Vec::new();
    nnef().write_to_tar(&nnef_safe(&typed), &mut tar)?;
    let cached = nnef().model_for_read(&mut &tar[..])?;
    for (label, m) in [("onnx", &typed), ("cache", &cached)] {
        let mut forms = BTreeMap::<String, usize>::new();
        for n in &m.nodes {
            if let Some(e) = n.op_as::<EinSum>() {
                let facts: Vec<String> = n
                    .inputs
                    .iter()
                    .map(|i| {
                        let f = m.outlet_fact(*i).unwrap();
                        format!("{:?}{}", f.shape, if f.konst.is_some() { "c" } else { "" })
                    })
                    .collect();
                let succ: Vec<String> = n.outputs[0]
                    .successors
                    .iter()
                    .map(|s| m.nodes[s.node].op().name().to_string())
                    .collect();
                let pred = m.nodes[n.inputs[1].node].op().name().to_string();
                *forms
                    .entry(format!(
                        "{} {} pred {pred} succ {succ:?}",
                        e.axes,
                        facts.len()
                    ))
                    .or_default() += 1;
            }
        }
        for (f, c) in forms {
            println!("{label}: {c:>3} × {f}");
        }
    }
    Ok(())
}

/// What one parallel section costs: a rayon scope of 16 jobs on a 2-thread pool against a
/// section of 16 items on a [`opti_vision::team::Team`] of 2, each after a serial stretch
/// of `gap` µs (what tract's own operators take between two convolutions) and with `work`
/// µs of items split over the two threads. Overhead = measured − (gap + work / 2).
#[test]
#[ignore = "measuring tool"]
fn section_overhead() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let busy = |us: f64| {
        let t = Instant::now();
        while t.elapsed().as_secs_f64() * 1e6 < us {
            std::hint::spin_loop();
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool");
    let team = opti_vision::team::Team::new(2, "profile").expect("team");
    let sink = AtomicU64::new(0);
    let n = 2000;
    for gap in [0.0, 10.0, 30.0, 100.0] {
        for work in [20.0, 60.0] {
            let item = || {
                busy(work / 16.0);
                sink.fetch_add(1, Ordering::Relaxed);
            };
            let rayon_us = pool.install(|| {
                let t = Instant::now();
                for _ in 0..n {
                    busy(gap);
                    rayon::scope(|s| {
                        for _ in 0..16 {
                            s.spawn(|_| item());
                        }
                    });
                }
                t.elapsed().as_secs_f64() * 1e6 / n as f64
            });
            let team_us = team.run(|t| {
                let t = t.expect("team free");
                let start = Instant::now();
                for _ in 0..n {
                    busy(gap);
                    t.for_each(16, &|_| item());
                }
                start.elapsed().as_secs_f64() * 1e6 / n as f64
            });
            let ideal = gap + work / 2.0;
            println!(
                "gap {gap:>5.1} µs, work {work:>4.1} µs: overhead per section rayon {:.1} µs, \
                 team {:.1} µs",
                rayon_us - ideal,
                team_us - ideal
            );
        }
    }
}
