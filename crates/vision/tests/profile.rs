//! Per-operator time of the shipped model under tract, with and without the project's
//! graph rewrites (`opti_vision::rewrite`). A measuring tool, not a check: ignored by
//! default; run it with
//!
//! ```text
//! cargo test -p opti-vision --test profile -- --ignored --nocapture
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use opti_vision::rewrite::{declutter_without_concat_then_einsum, speed_up};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::eval;

fn plan(model: &Path, rewrites: bool) -> TractResult<Arc<TypedRunnableModel>> {
    let model = tract_onnx::onnx()
        .model_for_path(model)?
        .with_input_fact(0, f32::fact([1, 3, 320, 320]).into())?;
    let mut typed = model.into_typed()?;
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
    let input = Tensor::zero::<f32>(&[1, 3, 320, 320])?;
    let mut by_op: BTreeMap<String, Duration> = BTreeMap::new();
    let mut state = plan.spawn()?;
    for _ in 0..runs {
        state.run_plan_with_eval(
            tvec!(input.clone().into_tvalue()),
            |ctx, st, node, inputs| {
                let t = Instant::now();
                let out = eval(ctx, st, node, inputs);
                *by_op.entry(node.op().name().to_string()).or_default() += t.elapsed();
                out
            },
        )?;
    }
    Ok(by_op)
}

#[test]
#[ignore = "measuring tool"]
fn per_operator_time_of_the_shipped_model() -> TractResult<()> {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default/model.onnx");
    let runs = 20;
    for rewrites in [false, true] {
        let p = plan(&model, rewrites)?;
        profile(&p, 3)?;
        let by_op = profile(&p, runs)?;
        let total: Duration = by_op.values().sum();
        let mut v: Vec<_> = by_op.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        println!(
            "rewrites {rewrites}: {:.2} ms per run",
            total.as_secs_f64() * 1000.0 / runs as f64
        );
        for (op, d) in v.iter().take(12) {
            println!(
                "  {op:<24} {:>8.3} ms",
                d.as_secs_f64() * 1000.0 / runs as f64
            );
        }
    }
    Ok(())
}
