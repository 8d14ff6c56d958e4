//! Graph rewrites that make tract run Ultralytics exports faster, applied at load time
//! (no fork of tract, no change to the model file).
//!
//! - [`AxisSoftmax`]: the DFL head of YOLOv8/11 takes a softmax over the 16 distance
//!   bins on a *non-last* axis (`[1, 16, 4, N]`, axis 1). tract 0.23 evaluates such a
//!   softmax element by element through ndarray views (about a third of the whole
//!   inference at 640). This op computes the same softmax block by block: for each
//!   outer index, the rows along the softmax axis are contiguous runs of `inner`
//!   values, so max, exp, sum and scale are streaming loops over contiguous memory.
//! - [`declutter_without_concat_then_einsum`]: tract's `ConcatThenEinsum` declutter pass
//!   splits a 1x1 convolution that follows a `Concat` into one small matmul per input
//!   (`k = 16` slices in the C2f/C3k2 blocks), which is slower than the single matmul
//!   and adds load time. The pass is left out.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::Softmax;
use tract_onnx::tract_core::optim::Optimizer;

/// Softmax of f32 values along one axis that is not the last one, evaluated on
/// contiguous runs (see the module documentation). Same output as tract's `Softmax`
/// with `axes = [axis]`, to float rounding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AxisSoftmax {
    /// The axis the softmax normalises over.
    pub axis: usize,
}

impl Op for AxisSoftmax {
    fn name(&self) -> StaticName {
        "OptiAxisSoftmax".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("Axis: {}", self.axis)])
    }

    op_as_typed_op!();
}

impl EvalOp for AxisSoftmax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let mut tensor = input.into_tensor();
        let shape: TVec<usize> = tensor.shape().into();
        ensure!(
            self.axis < shape.len(),
            "softmax axis {} out of range",
            self.axis
        );
        let n = shape[self.axis];
        let inner: usize = shape[self.axis + 1..].iter().product();
        {
            let mut plain = tensor.try_as_plain_ram_mut()?;
            let data = plain.as_slice_mut::<f32>()?;
            softmax_blocks(data, n, inner);
        }
        Ok(tvec!(tensor.into_tvalue()))
    }
}

impl TypedOp for AxisSoftmax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs[0].datum_type == f32::datum_type(),
            "AxisSoftmax is f32 only"
        );
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    fn axes_mapping(
        &self,
        inputs: &[&TypedFact],
        outputs: &[&TypedFact],
    ) -> TractResult<AxesMapping> {
        AxesMapping::natural(inputs, outputs)
    }

    as_op!();
}

/// In place softmax over blocks of `n` rows of `inner` contiguous values: for each block
/// and each column `j`, `x[i][j] = exp(x[i][j] - max_i x[i][j]) / sum_i exp(...)`.
pub fn softmax_blocks(data: &mut [f32], n: usize, inner: usize) {
    let block = n * inner;
    if block == 0 {
        return;
    }
    let mut max = vec![0f32; inner];
    let mut sum = vec![0f32; inner];
    for chunk in data.chunks_exact_mut(block) {
        max.copy_from_slice(&chunk[..inner]);
        for row in chunk[inner..].chunks_exact(inner) {
            for (m, x) in max.iter_mut().zip(row) {
                *m = m.max(*x);
            }
        }
        sum.iter_mut().for_each(|s| *s = 0.0);
        for row in chunk.chunks_exact_mut(inner) {
            for ((x, m), s) in row.iter_mut().zip(&max).zip(sum.iter_mut()) {
                *x = (*x - m).exp();
                *s += *x;
            }
        }
        for s in sum.iter_mut() {
            *s = 1.0 / *s;
        }
        for row in chunk.chunks_exact_mut(inner) {
            for (x, r) in row.iter_mut().zip(&sum) {
                *x *= r;
            }
        }
    }
}

/// What [`speed_up`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RewriteReport {
    /// Softmax nodes on a non-last axis replaced by [`AxisSoftmax`].
    pub softmaxes: usize,
}

/// tract's declutter, without the `ConcatThenEinsum` pass.
pub fn declutter_without_concat_then_einsum(model: &mut TypedModel) -> TractResult<()> {
    let mut declutter = Optimizer::declutter();
    declutter
        .passes
        .retain(|p| !format!("{p:?}").starts_with("ConcatThenEinsum"));
    declutter.optimize(model)
}

/// Replaces every f32 `Softmax` over a single non-last axis of a decluttered model with
/// [`AxisSoftmax`]. Run after declutter and before `optimize`.
pub fn speed_up(model: &mut TypedModel) -> TractResult<RewriteReport> {
    let mut report = RewriteReport::default();
    for id in 0..model.nodes.len() {
        let Some(softmax) = model.nodes[id].op.downcast_ref::<Softmax>() else {
            continue;
        };
        let fact = model.outlet_fact(OutletId::new(id, 0))?;
        let rank = fact.rank();
        let plain = softmax.quant_output_dt.is_none()
            && softmax.kind == Default::default()
            && fact.datum_type == f32::datum_type();
        match softmax.axes.as_slice() {
            &[axis] if plain && axis + 1 < rank => {
                model.nodes[id].op = Box::new(AxisSoftmax { axis });
                report.softmaxes += 1;
            }
            _ => {}
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[f32], outer: usize, n: usize, inner: usize) -> Vec<f32> {
        let mut out = data.to_vec();
        for o in 0..outer {
            for j in 0..inner {
                let at = |i: usize| o * n * inner + i * inner + j;
                let m = (0..n)
                    .map(|i| data[at(i)])
                    .fold(f32::NEG_INFINITY, f32::max);
                let s: f64 = (0..n).map(|i| f64::from((data[at(i)] - m).exp())).sum();
                for i in 0..n {
                    out[at(i)] = ((f64::from((data[at(i)] - m).exp())) / s) as f32;
                }
            }
        }
        out
    }

    #[test]
    fn block_softmax_equals_the_definition() {
        let (outer, n, inner) = (3, 16, 7);
        let data: Vec<f32> = (0..outer * n * inner)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let mut ours = data.clone();
        softmax_blocks(&mut ours, n, inner);
        let want = reference(&data, outer, n, inner);
        for (a, b) in ours.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        // Each column sums to one.
        let s: f32 = (0..n).map(|i| ours[i * inner + 3]).sum();
        assert!((s - 1.0).abs() < 1e-5);
    }

    #[test]
    fn large_logits_do_not_overflow() {
        let mut data = vec![1000.0f32, -1000.0, 999.0, 0.0];
        softmax_blocks(&mut data, 2, 2);
        assert!(data.iter().all(|x| x.is_finite()));
        assert!((data[0] + data[2] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn op_matches_tract_softmax_in_a_model() -> TractResult<()> {
        let shape = [1usize, 16, 4, 9];
        let len: usize = shape.iter().product();
        let data: Vec<f32> = (0..len)
            .map(|i| ((i * 13 % 29) as f32 - 14.0) / 3.0)
            .collect();
        let input = tract_ndarray::ArrayD::from_shape_vec(&shape[..], data)?.into_tensor();
        let build = |rewrite: bool| -> TractResult<Tensor> {
            let mut model = TypedModel::default();
            let src = model.add_source("x", f32::fact(shape))?;
            let out = model.wire_node(
                "sm",
                Softmax {
                    axes: tvec![1],
                    ..Softmax::default()
                },
                &[src],
            )?;
            model.select_output_outlets(&out)?;
            if rewrite {
                assert_eq!(speed_up(&mut model)?.softmaxes, 1);
            }
            let plan = model.into_optimized()?.into_runnable()?;
            let out = plan.run(tvec!(input.clone().into_tvalue()))?;
            Ok(out[0].clone().into_tensor())
        };
        let (a, b) = (build(false)?, build(true)?);
        let (a, b) = (
            a.to_plain_array_view::<f32>()?,
            b.to_plain_array_view::<f32>()?,
        );
        for (x, y) in a.iter().zip(b.iter()) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
        Ok(())
    }
}
