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
use tract_onnx::tract_core::ops::cast::Cast;
use tract_onnx::tract_core::ops::cnn::conv::KernelFormat;
use tract_onnx::tract_core::ops::cnn::Conv;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::nn::{DataFormat, Silu, Softmax};
use tract_onnx::tract_core::optim::Optimizer;

use crate::conv::{ConvPlan, ConvShape, DepthwiseConv, DirectConv};

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

/// The project's convolution kernels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConvKernel {
    /// Dense (group 1).
    Dense(Arc<DirectConv>),
    /// Depthwise (one group per channel).
    Depthwise(Arc<DepthwiseConv>),
}

impl ConvKernel {
    /// The plan behind either kind.
    pub fn plan(&self) -> &dyn ConvPlan {
        match self {
            ConvKernel::Dense(c) => &**c,
            ConvKernel::Depthwise(c) => &**c,
        }
    }
}

/// A convolution run by the project's [`DirectConv`] or [`DepthwiseConv`], with what followed it fused in
/// (SiLU, order-preserving reshapes such as the removal of the batch axis). The input is
/// an f32 shape holding the `cin × h × w` values in NCHW order (`[1, cin, h, w]`, or
/// tract's `CHW` `[cin, h, w]`), the output any shape holding `cout × oh × ow` in that
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OptiConv {
    /// The planned convolution with its packed weights.
    pub conv: ConvKernel,
    /// The input's shape.
    pub input_shape: TVec<usize>,
    /// The output's shape.
    pub output_shape: TVec<usize>,
}

impl Op for OptiConv {
    fn name(&self) -> StaticName {
        "OptiConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let plan = self.conv.plan();
        let s = plan.shape();
        Ok(vec![format!(
            "{}{}->{} {}x{} stride {} pad {:?} on {}x{}{}",
            if matches!(self.conv, ConvKernel::Depthwise(_)) {
                "depthwise "
            } else {
                ""
            },
            s.cin,
            s.cout,
            s.kh,
            s.kw,
            s.stride,
            s.pad,
            s.h,
            s.w,
            if plan.silu() { ", SiLU" } else { "" }
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for OptiConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let plain = input.try_as_plain_ram()?;
        let data = plain.as_slice::<f32>()?;
        // SAFETY: `ConvPlan::run_in` writes every one of the `cout × oh × ow` values (or
        // returns an error, and the tensor is dropped unread).
        let mut out = unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? };
        {
            let mut plain_out = out.try_as_plain_ram_mut()?;
            // The executor the detector runs this inference under (its own pool with
            // `DetectorOptions::threads > 1`).
            let executor = tract_linalg::multithread::current_tract_executor();
            let pool = match &executor {
                tract_linalg::multithread::Executor::MultiThread(pool) => Some(&**pool),
                _ => None,
            };
            self.conv
                .plan()
                .run_in(data, plain_out.as_slice_mut::<f32>()?, pool)
                .map_err(|e| format_err!("{e}"))?;
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for OptiConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs[0].datum_type == f32::datum_type()
                && inputs[0].shape.as_concrete() == Some(&self.input_shape[..]),
            "OptiConv expects f32 {:?}, got {:?}",
            self.input_shape,
            inputs[0]
        );
        Ok(tvec!(f32::fact(&self.output_shape)))
    }

    as_op!();
}

/// The constant value of `outlet` as f32, also through a `Cast` of a constant (the
/// model cache is read without a second declutter, which would fold those).
fn constant_f32(model: &TypedModel, outlet: OutletId) -> TractResult<Option<Arc<Tensor>>> {
    let fact = model.outlet_fact(outlet)?;
    let value = match &fact.konst {
        Some(k) => Some(k.clone()),
        // A cast to anything but f32 would round the values the way the graph expects.
        None if fact.datum_type != f32::datum_type() => None,
        None => {
            let node = &model.nodes[outlet.node];
            match node.op_as::<Cast>() {
                Some(_) if node.inputs.len() == 1 => {
                    model.outlet_fact(node.inputs[0])?.konst.clone()
                }
                _ => None,
            }
        }
    };
    Ok(match value {
        Some(v) if v.datum_type() == f32::datum_type() => Some(v),
        Some(v) if v.datum_type().is_float() => {
            Some(v.cast_to::<f32>()?.into_owned().into_arc_tensor())
        }
        _ => None,
    })
}

fn f32_values(t: &Tensor) -> TractResult<Vec<f32>> {
    Ok(t.try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
}

/// A convolution found in the graph, before what follows it is fused in.
struct Found {
    shape: ConvShape,
    /// One kernel per channel (`weights` `[channel][1][kh][kw]`).
    depthwise: bool,
    /// OIHW.
    weights: Vec<f32>,
    /// Per output channel.
    bias: Vec<f32>,
    input: OutletId,
    input_shape: TVec<usize>,
    output_shape: TVec<usize>,
}

/// A tract `Conv` this project runs: f32, NCHW with batch 1 or CHW, group 1 or depthwise, OIHW
/// constant kernel and bias, 2-D, no dilation, equal strides of 1 or 2.
fn found_conv(model: &TypedModel, node: &TypedNode) -> TractResult<Option<Found>> {
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let spec = &conv.pool_spec;
    if conv.q_params.is_some()
        || conv.kernel_fmt != KernelFormat::OIHW
        || !matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        || spec.rank() != 2
        || spec.dilations().iter().any(|d| *d != 1)
        || node.inputs.len() != 3
    {
        return Ok(None);
    }
    let strides = spec.strides();
    if strides[0] != strides[1] || !(1..=2).contains(&strides[0]) {
        return Ok(None);
    }
    let input = model.outlet_fact(node.inputs[0])?;
    let batch = spec.data_format == DataFormat::NCHW;
    let Some(input_shape) = input.shape.as_concrete() else {
        return Ok(None);
    };
    let (cin, h, w) = match *input_shape {
        [1, cin, h, w] if batch => (cin, h, w),
        [cin, h, w] if !batch => (cin, h, w),
        _ => return Ok(None),
    };
    if input.datum_type != f32::datum_type() {
        return Ok(None);
    }
    let (Some(kernel), Some(bias)) = (
        constant_f32(model, node.inputs[1])?,
        constant_f32(model, node.inputs[2])?,
    ) else {
        return Ok(None);
    };
    let &[cout, kcin, kh, kw] = kernel.shape() else {
        return Ok(None);
    };
    let depthwise = conv.group == cin && cout == cin && kcin == 1 && cin > 1;
    if !(conv.group == 1 && kcin == cin || depthwise) {
        return Ok(None);
    }
    let bias = match bias.len() {
        n if n == cout => f32_values(&bias)?,
        1 => vec![f32_values(&bias)?[0]; cout],
        _ => return Ok(None),
    };
    let padding = spec.computed_padding(&[h, w]);
    let shape = ConvShape {
        cin,
        cout,
        h,
        w,
        kh,
        kw,
        stride: strides[0],
        pad: [
            padding[0].pad_before,
            padding[1].pad_before,
            padding[0].pad_after,
            padding[1].pad_after,
        ],
    };
    let (oh, ow) = shape.output();
    if (oh, ow) != (padding[0].convoluted, padding[1].convoluted) {
        return Ok(None);
    }
    let output = model.outlet_fact(OutletId::new(node.id, 0))?;
    let Some(output_shape) = output.shape.as_concrete() else {
        return Ok(None);
    };
    if output.datum_type != f32::datum_type() {
        return Ok(None);
    }
    Ok(Some(Found {
        shape,
        depthwise,
        weights: f32_values(&kernel)?,
        bias,
        input: node.inputs[0],
        input_shape: input_shape.into(),
        output_shape: output_shape.into(),
    }))
}

/// What follows a convolution and can run inside it, each node the only successor of
/// the one before and not a model output: order-preserving axis changes, casts of f32 to
/// f32 and one SiLU.
struct Fused {
    /// The last node fused (the convolution itself when nothing follows).
    last: usize,
    output_shape: TVec<usize>,
    silu: bool,
}

fn fuse_successors(model: &TypedModel, found: &Found, id: usize) -> TractResult<Fused> {
    let mut fused = Fused {
        last: id,
        output_shape: found.output_shape.clone(),
        silu: false,
    };
    let is_output = |n: usize| model.outputs.iter().any(|o| o.node == n);
    while !is_output(fused.last) {
        let Some(next) = model.single_succ(fused.last)? else {
            break;
        };
        let out = model.outlet_fact(OutletId::new(next.id, 0))?;
        let Some(shape) = out.shape.as_concrete().map(TVec::from) else {
            break;
        };
        if out.datum_type != f32::datum_type() || next.outputs.len() != 1 || next.inputs.len() != 1
        {
            break;
        }
        if let Some(op) = next.op_as::<AxisOp>() {
            if matches!(op, AxisOp::Move(..)) {
                break;
            }
        } else if next.op_is::<Cast>() {
            // f32 in (what came before is f32) and f32 out: nothing to do.
        } else if next
            .op_as::<ElementWiseOp>()
            .is_some_and(|op| op.0.is::<Silu>())
        {
            if fused.silu {
                break;
            }
            fused.silu = true;
        } else {
            break;
        }
        fused.last = next.id;
        fused.output_shape = shape;
    }
    Ok(fused)
}

/// Replaces the convolutions this project runs ([`found_conv`]: in YOLO11n every dense
/// 3x3 one) by [`OptiConv`], with what follows them fused in ([`fuse_successors`]).
/// Only where the SIMD kernel runs (x86-64 with AVX2 and FMA): elsewhere tract's own
/// kernels are faster than the portable path.
///
/// The 1x1 convolutions stay tract's matrix products (which declutter makes of them):
/// run through [`DirectConv`] they measured no faster on one thread (9.25 vs 9.06 ms
/// for all of YOLO11n's, bias and SiLU fused) and slower on two (staging and unblocking
/// a small-`k` product's input and output is memory-bound).
pub fn direct_convolutions(model: &mut TypedModel) -> TractResult<usize> {
    if !crate::conv::simd_available() {
        return Ok(0);
    }
    let mut count = 0;
    let candidates: Vec<usize> = model
        .nodes
        .iter()
        .filter(|n| n.op_is::<Conv>())
        .map(|n| n.id)
        .collect();
    for id in candidates {
        let node = &model.nodes[id];
        let Some(found) = found_conv(model, node)? else {
            continue;
        };
        let fused = fuse_successors(model, &found, id)?;
        let conv = if found.depthwise {
            DepthwiseConv::new(found.shape, &found.weights, &found.bias, fused.silu)
                .map(|c| ConvKernel::Depthwise(Arc::new(c)))
        } else {
            DirectConv::new(found.shape, &found.weights, &found.bias, fused.silu)
                .map(|c| ConvKernel::Dense(Arc::new(c)))
        };
        let Ok(conv) = conv else {
            continue;
        };
        let op = OptiConv {
            conv,
            input_shape: found.input_shape.clone(),
            output_shape: fused.output_shape.clone(),
        };
        let name = node.name.clone();
        let mut patch = TypedModelPatch::default();
        let x = patch.tap_model(model, found.input)?;
        let y = patch.wire_node(name, op, &[x])?[0];
        patch.shunt_outside(model, OutletId::new(fused.last, 0), y)?;
        patch.apply(model)?;
        count += 1;
    }
    if count > 0 {
        model.compact()?;
    }
    Ok(count)
}

/// What [`speed_up`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RewriteReport {
    /// Softmax nodes on a non-last axis replaced by [`AxisSoftmax`].
    pub softmaxes: usize,
    /// Convolutions replaced by [`OptiConv`].
    pub convolutions: usize,
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
    report.convolutions = direct_convolutions(model)?;
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

    /// A graph of `Conv` (+ what follows) run by tract and after `direct_convolutions`.
    fn conv_graph(
        batch: bool,
        then: &str,
        stride: usize,
        rewrite: bool,
    ) -> TractResult<(Tensor, usize)> {
        use tract_onnx::tract_core::ops::cnn::{PaddingSpec, PoolSpec};
        // "dw" in `then`: a depthwise convolution (one group per channel).
        let depthwise = then.contains("dw");
        let (cin, h, w) = (12usize, 11usize, 14usize);
        let cout = if depthwise { cin } else { 20 };
        let kcin = if depthwise { 1 } else { cin };
        let values = |n: usize, seed: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 2003.0 - 0.5) * 2.0)
                .collect()
        };
        let mut model = TypedModel::default();
        let shape: TVec<usize> = if batch {
            tvec![1, cin, h, w]
        } else {
            tvec![cin, h, w]
        };
        let x = model.add_source("x", f32::fact(&shape))?;
        let kernel = tract_ndarray::ArrayD::from_shape_vec(
            &[cout, kcin, 3, 3][..],
            values(cout * kcin * 9, 1),
        )?
        .into_tensor();
        let k = model.add_const("k", kernel)?;
        let b = model.add_const("b", tract_ndarray::arr1(&values(cout, 2)).into_tensor())?;
        let conv = Conv {
            pool_spec: PoolSpec {
                data_format: if batch {
                    DataFormat::NCHW
                } else {
                    DataFormat::CHW
                },
                kernel_shape: tvec![3, 3],
                // "same": tract's SAME_UPPER (at stride 2 on an even side: pad 0 before,
                // 1 after).
                padding: if then.contains("same") {
                    PaddingSpec::SameUpper
                } else {
                    PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1])
                },
                dilations: None,
                strides: Some(tvec![stride, stride]),
                input_channels: cin,
                output_channels: cout,
            },
            kernel_fmt: KernelFormat::OIHW,
            group: if depthwise { cin } else { 1 },
            q_params: None,
        };
        let conv_out = model.wire_node("conv", conv, &[x, k, b])?;
        let mut y = conv_out.clone();
        if then.contains("rm") {
            y = model.wire_node("rm", AxisOp::Rm(0), &y)?;
        }
        if then.contains("silu") {
            y = model.wire_node("silu", tract_onnx::tract_core::ops::nn::silu::silu(), &y)?;
        }
        // "fork": the convolution's own output is a model output too (nothing after it
        // may be fused then; both outputs must come out right).
        let mut outputs = y.to_vec();
        if then.contains("fork") {
            outputs.push(conv_out[0]);
        }
        model.select_output_outlets(&outputs)?;
        let replaced = if rewrite {
            direct_convolutions(&mut model)?
        } else {
            0
        };
        let input =
            tract_ndarray::ArrayD::from_shape_vec(&shape[..], values(shape.iter().product(), 3))?
                .into_tensor();
        let plan = model.into_optimized()?.into_runnable()?;
        let out = plan.run(tvec!(input.into_tvalue()))?;
        let mut all = out[0].clone().into_tensor();
        if out.len() > 1 {
            // Both outputs, flattened one after the other, for one comparison.
            let mut values = all
                .to_plain_array_view::<f32>()?
                .iter()
                .copied()
                .collect::<Vec<_>>();
            values.extend(out[1].to_plain_array_view::<f32>()?.iter().copied());
            all = tract_ndarray::Array1::from_vec(values).into_tensor();
        }
        Ok((all, replaced))
    }

    #[test]
    fn direct_convolution_op_matches_tract_with_what_it_fuses() -> TractResult<()> {
        for (batch, then, stride) in [
            (true, "", 1),
            (true, "silu", 1),
            (true, "silu", 2),
            (true, "rm silu", 1),
            (true, "rm", 2),
            (false, "silu", 1),
            (false, "", 2),
            (true, "dw silu", 1),
            (false, "dw", 1),
            (true, "dw rm silu", 2),
            (true, "same silu", 2),
            (false, "same", 1),
            (true, "fork silu", 1),
            (true, "fork rm silu", 2),
        ] {
            let (want, _) = conv_graph(batch, then, stride, false)?;
            let (got, replaced) = conv_graph(batch, then, stride, true)?;
            let expected = usize::from(crate::conv::simd_available());
            assert_eq!(replaced, expected, "{batch} {then:?} {stride}");
            assert_eq!(got.shape(), want.shape(), "{batch} {then:?} {stride}");
            let (a, b) = (
                got.to_plain_array_view::<f32>()?,
                want.to_plain_array_view::<f32>()?,
            );
            for (x, y) in a.iter().zip(b.iter()) {
                assert!(
                    (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                    "{batch} {then:?} {stride}: {x} vs {y}"
                );
            }
        }
        Ok(())
    }
}
