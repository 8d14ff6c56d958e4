//! Graph rewrites that make tract run Ultralytics exports faster, applied at load time
//! (no fork of tract, no change to the model file).
//!
//! - [`AxisSoftmax`]: the DFL head of YOLOv8/11 takes a softmax over the 16 distance
//!   bins on a *non-last* axis (`[1, 16, 4, N]`, axis 1). tract 0.23 evaluates such a
//!   softmax element by element through ndarray views (about a third of the whole
//!   inference at 640). This op computes the same softmax block by block: for each
//!   outer index, the rows along the softmax axis are contiguous runs of `inner`
//!   values, so max, exp, sum and scale are streaming loops over contiguous memory,
//!   with an `exp` 8 lanes at a time. The attention block's softmax (last axis) goes
//!   through the same op: 0.14 ms in tract's, 0.03 in this one.
//! - [`declutter_without_concat_then_einsum`]: tract's `ConcatThenEinsum` declutter pass
//!   splits a 1x1 convolution that follows a `Concat` into one small matmul per input
//!   (`k = 16` slices in the C2f/C3k2 blocks), which is slower than the single matmul
//!   and adds load time. The pass is left out.
//! - [`OptiConv`] ([`direct_convolutions`]): every convolution, with its bias and the
//!   SiLU after it, runs on the project's kernels ([`crate::conv`]): dense ones through
//!   [`DirectConv`], depthwise ones through [`DepthwiseConv`], 1x1 ones (the `EinSum`s
//!   declutter makes of them, in the forms of the ONNX and of the cache) through
//!   [`PointwiseConv`], reading a channel `Concat`'s inputs in place.
//! - [`OptiMaxPool`] ([`max_pools`]): SPPF's max pooling, separable, per plane.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::array::TypedConcat;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cast::Cast;
use tract_onnx::tract_core::ops::cnn::conv::KernelFormat;
use tract_onnx::tract_core::ops::cnn::{Conv, MaxPool, PoolSpec};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::math::Add;
use tract_onnx::tract_core::ops::nn::{
    CoordTransformer, DataFormat, Interpolator, Nearest, NearestUpsample, Resize, Silu, Softmax,
};
use tract_onnx::tract_core::optim::Optimizer;

use crate::conv::{ConvPlan, ConvShape, DepthwiseConv, DirectConv, PointwiseConv};

/// Softmax of f32 values along one axis, evaluated on contiguous runs (see the module
/// documentation) with a vectorised `exp`. Same output as tract's `Softmax` with `axes =
/// [axis]`, to float rounding (3e-7). For the last axis (the attention block's softmax)
/// each row is one run.
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
            // Blocks (DFL: one per box side) or rows (attention) over the inference's
            // team, if any.
            crate::conv::for_each_chunk(crate::team::current(), data, n * inner, |_, block| {
                softmax_blocks(block, n, inner)
            });
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
    if inner == 1 {
        // A softmax along the last axis: each block is one contiguous row.
        for row in data.chunks_exact_mut(n) {
            let max = row[1..]
                .iter()
                .fold(row[0], |m, &x| if x > m { x } else { m });
            let scale = 1.0 / crate::conv::exp_shifted_total(row, max);
            for x in row.iter_mut() {
                *x *= scale;
            }
        }
        return;
    }
    let mut max = vec![0f32; inner];
    let mut sum = vec![0f32; inner];
    for chunk in data.chunks_exact_mut(block) {
        max.copy_from_slice(&chunk[..inner]);
        for row in chunk[inner..].chunks_exact(inner) {
            for (m, x) in max.iter_mut().zip(row) {
                // A plain max instruction, vectorised (`f32::max`'s NaN rule costs a
                // blend; a NaN logit gives NaN either way through the exp).
                *m = if *x > *m { *x } else { *m };
            }
        }
        sum.iter_mut().for_each(|s| *s = 0.0);
        for row in chunk.chunks_exact_mut(inner) {
            crate::conv::exp_shifted_sum(row, &max, &mut sum);
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
    /// 1x1, stride 1, unpadded (a matrix product over the channels).
    Pointwise(Arc<PointwiseConv>),
}

impl ConvKernel {
    /// The plan behind any kind.
    pub fn plan(&self) -> &dyn ConvPlan {
        match self {
            ConvKernel::Dense(c) => &**c,
            ConvKernel::Depthwise(c) => &**c,
            ConvKernel::Pointwise(c) => &**c,
        }
    }
}

/// A convolution run by one of the project's kernels ([`ConvKernel`]), with what
/// followed it fused in (bias, SiLU, order-preserving reshapes such as the removal of
/// the batch axis). The input is an f32 shape holding the `cin × h × w` values in NCHW
/// order (`[1, cin, h, w]`, tract's `CHW` `[cin, h, w]`, or the pixels flattened), or
/// for a 1x1 convolution several such parts whose channels make the input in order;
/// the output any shape holding `cout × oh × ow` in that order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OptiConv {
    /// The planned convolution with its packed weights.
    pub conv: ConvKernel,
    /// The input's shape, or the shapes of its parts: for a 1x1 convolution, the
    /// inputs of the channel concatenation that fed it (their values in order are the
    /// `cin × h × w` input, which is then never written whole).
    pub input_shapes: TVec<TVec<usize>>,
    /// The output's shape.
    pub output_shape: TVec<usize>,
    /// Whether a last input, of the output's shape, is added to the result (a
    /// bottleneck's shortcut `x + conv(…)`, fused from the `Add` after it).
    pub residual: bool,
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
            match self.conv {
                ConvKernel::Depthwise(_) => "depthwise ",
                ConvKernel::Pointwise(_) => "pointwise ",
                ConvKernel::Dense(_) => "",
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
        )]
        .into_iter()
        .chain(
            (self.input_shapes.len() > 1 + usize::from(self.residual))
                .then(|| format!("input concatenated from {:?}", self.input_shapes)),
        )
        .chain(self.residual.then(|| "plus a residual".to_string()))
        .collect())
    }

    op_as_typed_op!();
}

impl EvalOp for OptiConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        // Small vectors (inline up to 4 parts): no allocation per run.
        let plains = inputs
            .iter()
            .map(|i| i.try_as_plain_ram())
            .collect::<TractResult<TVec<_>>>()?;
        let parts = plains
            .iter()
            .map(|p| p.as_slice::<f32>())
            .collect::<TractResult<TVec<_>>>()?;
        // SAFETY: the plan writes every one of the `cout × oh × ow` values (or returns
        // an error, and the tensor is dropped unread).
        let mut out = unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? };
        {
            let mut plain_out = out.try_as_plain_ram_mut()?;
            let output = plain_out.as_slice_mut::<f32>()?;
            // The team the detector runs this inference on (`DetectorOptions::threads >
            // 1`), if any.
            let pool = crate::team::current();
            let (parts, residual) = match (self.residual, &parts[..]) {
                (true, [parts @ .., residual]) => (parts, Some(*residual)),
                (_, parts) => (parts, None),
            };
            match (&self.conv, parts) {
                (ConvKernel::Pointwise(conv), parts) => {
                    conv.run_parts(parts, residual, output, pool)
                }
                (conv, [input]) => conv.plan().run_with_residual(input, residual, output, pool),
                _ => bail!("OptiConv: {} inputs for a single-input plan", parts.len()),
            }
            .map_err(|e| format_err!("{e}"))?;
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for OptiConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == self.input_shapes.len()
                && inputs.iter().zip(&self.input_shapes).all(|(i, shape)| {
                    i.datum_type == f32::datum_type() && i.shape.as_concrete() == Some(&shape[..])
                }),
            "OptiConv expects f32 {:?}, got {:?}",
            self.input_shapes,
            inputs
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

/// The concrete shape of `outlet` when it is an f32 tensor of one (what every op here
/// reads and writes).
fn f32_shape(model: &TypedModel, outlet: OutletId) -> TractResult<Option<TVec<usize>>> {
    let fact = model.outlet_fact(outlet)?;
    Ok(match fact.shape.as_concrete() {
        Some(shape) if fact.datum_type == f32::datum_type() => Some(shape.into()),
        _ => None,
    })
}

/// A 2-D pool spec's padding for an `h × w` input: top, left, bottom, right.
fn explicit_padding(spec: &PoolSpec, h: usize, w: usize) -> ([usize; 4], (usize, usize)) {
    let padding = spec.computed_padding(&[h, w]);
    (
        [
            padding[0].pad_before,
            padding[1].pad_before,
            padding[0].pad_after,
            padding[1].pad_after,
        ],
        (padding[0].convoluted, padding[1].convoluted),
    )
}

/// Wires `op` on `inputs` in place of `replaced` (the output of the last node it takes
/// over; what only fed it is dropped by the next `compact`).
fn patch_in(
    model: &mut TypedModel,
    name: String,
    op: impl TypedOp,
    inputs: &[OutletId],
    replaced: OutletId,
) -> TractResult<()> {
    let mut patch = TypedModelPatch::default();
    let taps = inputs
        .iter()
        .map(|&o| patch.tap_model(model, o))
        .collect::<TractResult<TVec<_>>>()?;
    let y = patch.wire_node(name, op, &taps)?[0];
    patch.shunt_outside(model, replaced, y)?;
    patch.apply(model)
}

/// Which of the project's kernels runs a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dense,
    /// One kernel per channel (`weights` `[channel][1][kh][kw]`).
    Depthwise,
    /// 1x1, stride 1, unpadded.
    Pointwise,
}

/// A convolution found in the graph, before what follows it is fused in.
struct Found {
    shape: ConvShape,
    kind: Kind,
    /// OIHW.
    weights: Vec<f32>,
    /// Per output channel, or `None` where the node adds none (a matrix product).
    bias: Option<Vec<f32>>,
    input: OutletId,
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
    let batch = spec.data_format == DataFormat::NCHW;
    let (Some(input_shape), Some(output_shape)) = (
        f32_shape(model, node.inputs[0])?,
        f32_shape(model, OutletId::new(node.id, 0))?,
    ) else {
        return Ok(None);
    };
    let (cin, h, w) = match *input_shape {
        [1, cin, h, w] if batch => (cin, h, w),
        [cin, h, w] if !batch => (cin, h, w),
        _ => return Ok(None),
    };
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
    let (pad, convoluted) = explicit_padding(spec, h, w);
    let shape = ConvShape {
        cin,
        cout,
        h,
        w,
        kh,
        kw,
        stride: strides[0],
        pad,
    };
    if shape.output() != convoluted {
        return Ok(None);
    }
    let kind = if depthwise {
        Kind::Depthwise
    } else if (kh, kw, shape.stride, shape.pad) == (1, 1, 1, [0; 4]) {
        Kind::Pointwise
    } else {
        Kind::Dense
    };
    Ok(Some(Found {
        shape,
        kind,
        weights: f32_values(&kernel)?,
        bias: Some(bias),
        input: node.inputs[0],
        output_shape,
    }))
}

/// An f32 `EinSum` of a constant `W` and an activation `X`, by what its axes of size > 1
/// do: `k` (in `W` and `X`, summed over), `m` (in `W` and the output), `n` (in `X` and
/// the output). Each as (position, position, size) in the two tensors named.
struct EinsumRoles {
    /// Which input is `X`.
    xi: usize,
    weights: Arc<Tensor>,
    x_shape: TVec<usize>,
    out_shape: TVec<usize>,
    /// Positions in `W` and `X`.
    k: Option<(usize, usize, usize)>,
    /// Positions in `W` and the output.
    m: Option<(usize, usize, usize)>,
    /// Positions in `X` and the output, in the order of the axes mapping.
    n: Vec<(usize, usize, usize)>,
}

/// The [`EinsumRoles`] of `node`, when it is such a product without broadcasting, an axis
/// repeated in one tensor, or more than one `k` or `m` axis.
fn einsum_roles(model: &TypedModel, node: &TypedNode) -> TractResult<Option<EinsumRoles>> {
    let Some(op) = node.op_as::<EinSum>() else {
        return Ok(None);
    };
    if op.q_params.is_some()
        || op.operating_dt != f32::datum_type()
        || node.inputs.len() != 2
        || node.outputs.len() != 1
    {
        return Ok(None);
    }
    let (wi, xi, weights) = match (
        constant_f32(model, node.inputs[0])?,
        constant_f32(model, node.inputs[1])?,
    ) {
        (Some(w), None) => (0, 1, w),
        (None, Some(w)) => (1, 0, w),
        _ => return Ok(None),
    };
    let (Some(x_shape), Some(out_shape)) = (
        f32_shape(model, node.inputs[xi])?,
        f32_shape(model, OutletId::new(node.id, 0))?,
    ) else {
        return Ok(None);
    };
    let (mut k, mut m) = (None, None);
    let mut n = Vec::new();
    for axis in op.axes.iter_all_axes() {
        let (w_at, x_at, o_at) = (&axis.inputs[wi], &axis.inputs[xi], &axis.outputs[0]);
        if w_at.len() > 1 || x_at.len() > 1 || o_at.len() > 1 {
            return Ok(None);
        }
        let (w_at, x_at, o_at) = (w_at.first(), x_at.first(), o_at.first());
        let size = match (w_at, x_at, o_at) {
            (_, Some(&i), _) => x_shape[i],
            (_, _, Some(&i)) => out_shape[i],
            (Some(&i), _, _) => weights.shape()[i],
            _ => 1,
        };
        // No broadcasting: the axis has this size wherever it appears.
        let dims = [
            w_at.map(|&i| weights.shape()[i]),
            x_at.map(|&i| x_shape[i]),
            o_at.map(|&i| out_shape[i]),
        ];
        if dims.iter().flatten().any(|&d| d != size) {
            return Ok(None);
        }
        if size == 1 {
            continue;
        }
        match (w_at, x_at, o_at) {
            (Some(&w), Some(&x), None) if k.is_none() => k = Some((w, x, size)),
            (Some(&w), None, Some(&o)) if m.is_none() => m = Some((w, o, size)),
            (None, Some(&x), Some(&o)) => n.push((x, o, size)),
            _ => return Ok(None),
        }
    }
    Ok(Some(EinsumRoles {
        xi,
        weights,
        x_shape,
        out_shape,
        k,
        m,
        n,
    }))
}

/// A 1x1 convolution as tract's declutter leaves it: an f32 `EinSum` of a constant
/// weight matrix `W` and the activation `X`, `out[m, n…] = Σ_k W[m, k] · X[k, n…]`,
/// where `X` holds its `k` rows of `n…` pixels contiguously (NCHW, CHW, or the pixels
/// flattened, as the ONNX import and the cache's NNEF form write it) and the output its
/// `m` rows the same way; every other axis has size 1. The bias is the `Add` after it
/// ([`fuse_successors`]).
fn found_einsum(model: &TypedModel, node: &TypedNode) -> TractResult<Option<Found>> {
    let Some(EinsumRoles {
        xi,
        weights,
        x_shape: _,
        out_shape,
        k,
        m,
        mut n,
    }) = einsum_roles(model, node)?
    else {
        return Ok(None);
    };
    // Memory order: X is [k][n…] and the output [m][n…] once the unit axes are dropped.
    n.sort_unstable();
    let x_order: Vec<usize> = k.iter().map(|k| k.1).chain(n.iter().map(|n| n.0)).collect();
    let o_order: Vec<usize> = m.iter().map(|m| m.1).chain(n.iter().map(|n| n.1)).collect();
    if !x_order.windows(2).all(|p| p[0] < p[1]) || !o_order.windows(2).all(|p| p[0] < p[1]) {
        return Ok(None);
    }
    let (cin, cout) = (k.map_or(1, |k| k.2), m.map_or(1, |m| m.2));
    let sizes: Vec<usize> = n.iter().map(|n| n.2).collect();
    let (h, w) = match sizes.split_last() {
        None => (1, 1),
        Some((&last, rest)) => (rest.iter().product(), last),
    };
    // W's values as [cout][cin], through its row-major strides.
    let w_shape = weights.shape();
    let stride = |axis: Option<usize>| axis.map_or(0, |a| w_shape[a + 1..].iter().product());
    let (m_stride, k_stride) = (stride(m.map(|m| m.0)), stride(k.map(|k| k.0)));
    let values = f32_values(&weights)?;
    let mut oi = Vec::with_capacity(cout * cin);
    for o in 0..cout {
        for c in 0..cin {
            oi.push(values[o * m_stride + c * k_stride]);
        }
    }
    Ok(Some(Found {
        shape: ConvShape::pointwise(cin, cout, h, w),
        kind: Kind::Pointwise,
        weights: oi,
        bias: None,
        input: node.inputs[xi],
        output_shape: out_shape,
    }))
}

/// The inputs of the channel concatenation behind `input` of a 1x1 convolution of
/// `shape`, when its values are theirs one after the other in whole planes: a
/// `Concat` (through order-preserving reshapes, which YOLO's exports and the cache put
/// between it and the product) along an axis with only axes of 1 before it, of f32
/// inputs that each hold whole `h × w` planes.
fn concat_parts(
    model: &TypedModel,
    input: OutletId,
    shape: ConvShape,
) -> TractResult<Option<Vec<OutletId>>> {
    let pixels = shape.h * shape.w;
    let at = memory_source(model, input);
    let node = &model.nodes[at.node];
    let Some(concat) = node.op_as::<TypedConcat>() else {
        return Ok(None);
    };
    let Some(out_shape) = f32_shape(model, at)? else {
        return Ok(None);
    };
    if concat.axis >= out_shape.len()
        || out_shape[..concat.axis].iter().any(|&d| d != 1)
        || out_shape.iter().product::<usize>() != shape.cin * pixels
    {
        return Ok(None);
    }
    for &part in &node.inputs {
        match f32_shape(model, part)? {
            Some(s) if s.iter().product::<usize>() % pixels == 0 => {}
            _ => return Ok(None),
        }
    }
    Ok(Some(node.inputs.to_vec()))
}

/// Where the values at `outlet` come from in the same memory order: back through the
/// axis changes that keep it (reshapes, added or removed unit axes; not `Move`s).
fn memory_source(model: &TypedModel, mut outlet: OutletId) -> OutletId {
    loop {
        let node = &model.nodes[outlet.node];
        match node.op_as::<AxisOp>() {
            Some(op) if !matches!(op, AxisOp::Move(..)) && node.inputs.len() == 1 => {
                outlet = node.inputs[0]
            }
            _ => return outlet,
        }
    }
}

/// What follows a convolution and can run inside it, each node the only successor of
/// the one before and not a model output: order-preserving axis changes, casts of f32 to
/// f32, one addition of a per-channel constant (the bias, where the convolution has
/// none: a matrix product) and one SiLU (after the bias).
struct Fused {
    /// The last node fused (the convolution itself when nothing follows).
    last: usize,
    output_shape: TVec<usize>,
    bias: Option<Vec<f32>>,
    silu: bool,
    /// The other input of a last `Add` of a tensor of the output's shape.
    residual: Option<OutletId>,
}

fn fuse_successors(model: &TypedModel, found: &Found, id: usize) -> TractResult<Fused> {
    let cout = found.shape.cout;
    let mut fused = Fused {
        last: id,
        output_shape: found.output_shape.clone(),
        bias: found.bias.clone(),
        silu: false,
        residual: None,
    };
    let is_output = |n: usize| model.outputs.iter().any(|o| o.node == n);
    // Nothing is fused after a shortcut's `Add`.
    while fused.residual.is_none() && !is_output(fused.last) {
        let Some(next) = model.single_succ(fused.last)? else {
            break;
        };
        let from = OutletId::new(fused.last, 0);
        let Some(shape) = f32_shape(model, OutletId::new(next.id, 0))? else {
            break;
        };
        if next.outputs.len() != 1 {
            break;
        }
        if let Some(op) = next.op_as::<AxisOp>() {
            if matches!(op, AxisOp::Move(..)) || next.inputs.len() != 1 {
                break;
            }
        } else if next.op_is::<Cast>() {
            // f32 in (what came before is f32) and f32 out: nothing to do.
            if next.inputs.len() != 1 {
                break;
            }
        } else if let Some(op) = next.op_as::<TypedBinOp>() {
            if !op.0.is::<Add>() || next.inputs.len() != 2 {
                break;
            }
            let other = if next.inputs[0] == from {
                next.inputs[1]
            } else {
                next.inputs[0]
            };
            if other == from || shape != fused.output_shape {
                break;
            }
            if let Some(bias) = constant_f32(model, other)? {
                // A bias only right after the product (before any SiLU), and only one.
                if fused.bias.is_some() || fused.silu {
                    break;
                }
                let Some(values) = per_channel(&bias, &shape, cout)? else {
                    break;
                };
                fused.bias = Some(values);
            } else if f32_shape(model, other)?.as_ref() == Some(&shape) {
                // A tensor of the output's own shape, not a constant: a shortcut.
                fused.residual = Some(other);
            } else {
                break;
            }
        } else if next
            .op_as::<ElementWiseOp>()
            .is_some_and(|op| op.0.is::<Silu>())
            && next.inputs.len() == 1
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

/// `bias`'s values per output channel when, broadcast against `shape` (which holds
/// `cout` channels of pixels, channel-major), it is constant over the pixels: a scalar,
/// or `cout` values on the shape's channel axis (the first that is not 1).
fn per_channel(bias: &Tensor, shape: &[usize], cout: usize) -> TractResult<Option<Vec<f32>>> {
    let values = f32_values(bias)?;
    if values.len() == 1 && bias.rank() <= shape.len() {
        return Ok(Some(vec![values[0]; cout]));
    }
    if values.len() != cout || bias.rank() > shape.len() {
        return Ok(None);
    }
    // The bias's axes right-aligned against the shape's: its one axis of `cout` values
    // must be the shape's channel axis (all axes before it 1).
    let offset = shape.len() - bias.rank();
    for (i, &d) in bias.shape().iter().enumerate() {
        let j = i + offset;
        if d == cout && shape[j] == cout && shape[..j].iter().all(|&s| s == 1) {
            return Ok(Some(values));
        }
        if d != 1 {
            return Ok(None);
        }
    }
    Ok(None)
}

/// Replaces the convolutions this project runs by [`OptiConv`], with what follows them
/// fused in ([`fuse_successors`]): tract `Conv`s ([`found_conv`]: in YOLO11n every dense
/// 3x3 and depthwise one) and the 1x1 convolutions that declutter turned into matrix
/// products ([`found_einsum`]), run by [`PointwiseConv`] on the NCHW layout (through
/// [`DirectConv`]'s channel-blocked staging they had measured no faster than tract's
/// products: 9.25 vs 9.06 ms). Returns how many were replaced, how many of those are
/// 1x1 and how many took a shortcut's `Add`. Only where the SIMD kernels run (x86-64 with AVX2 and FMA): elsewhere
/// tract's own kernels are faster than the portable path.
pub fn direct_convolutions(model: &mut TypedModel) -> TractResult<(usize, usize, usize)> {
    if !crate::conv::simd_available() {
        return Ok((0, 0, 0));
    }
    let (mut count, mut pointwise, mut residuals) = (0, 0, 0);
    let candidates: Vec<usize> = model
        .nodes
        .iter()
        .filter(|n| n.op_is::<Conv>() || n.op_is::<EinSum>())
        .map(|n| n.id)
        .collect();
    for id in candidates {
        let node = &model.nodes[id];
        let found = match found_conv(model, node)? {
            Some(found) => found,
            None => match found_einsum(model, node)? {
                Some(found) => found,
                None => continue,
            },
        };
        let fused = fuse_successors(model, &found, id)?;
        let bias = fused
            .bias
            .clone()
            .unwrap_or_else(|| vec![0.0; found.shape.cout]);
        let (shape, weights, silu) = (found.shape, &found.weights, fused.silu);
        let conv = match found.kind {
            Kind::Depthwise => DepthwiseConv::new(shape, weights, &bias, silu)
                .map(|c| ConvKernel::Depthwise(Arc::new(c))),
            Kind::Pointwise => PointwiseConv::new(shape, weights, &bias, silu)
                .map(|c| ConvKernel::Pointwise(Arc::new(c))),
            Kind::Dense => {
                DirectConv::new(shape, weights, &bias, silu).map(|c| ConvKernel::Dense(Arc::new(c)))
            }
        };
        let Ok(conv) = conv else {
            continue;
        };
        // A 1x1 convolution reads a channel concatenation's inputs where they are.
        let parts = match found.kind {
            Kind::Pointwise => concat_parts(model, found.input, found.shape)?,
            _ => None,
        }
        .unwrap_or_else(|| vec![found.input]);
        let mut parts = parts;
        parts.extend(fused.residual);
        let input_shapes = parts
            .iter()
            .map(|&o| {
                f32_shape(model, o)?.ok_or_else(|| format_err!("{o:?} is not f32 of a known shape"))
            })
            .collect::<TractResult<_>>()?;
        let op = OptiConv {
            conv,
            input_shapes,
            output_shape: fused.output_shape.clone(),
            residual: fused.residual.is_some(),
        };
        let name = node.name.clone();
        patch_in(model, name, op, &parts, OutletId::new(fused.last, 0))?;
        count += 1;
        pointwise += usize::from(found.kind == Kind::Pointwise);
        residuals += usize::from(fused.residual.is_some());
    }
    if count > 0 {
        model.compact()?;
    }
    Ok((count, pointwise, residuals))
}

/// The output of an op that maps each of `planes` f32 planes of `input` (`plane_in` values)
/// to one of `output_shape` (`plane_out` values) with `plane(src, dst)`, which must write
/// every value of `dst`; the planes are split over the inference's team, if any.
fn per_plane(
    input: TValue,
    planes: usize,
    plane_in: usize,
    output_shape: &[usize],
    plane_out: usize,
    plane: impl Fn(&[f32], &mut [f32]) + Sync,
) -> TractResult<TVec<TValue>> {
    let plain = input.try_as_plain_ram()?;
    let data = plain.as_slice::<f32>()?;
    ensure!(data.len() == planes * plane_in);
    // SAFETY: `plane` writes every value of each output plane, and the planes cover the
    // output (checked below); on an error the tensor is dropped unread.
    let mut out = unsafe { Tensor::uninitialized::<f32>(output_shape)? };
    {
        let mut plain_out = out.try_as_plain_ram_mut()?;
        let out_data = plain_out.as_slice_mut::<f32>()?;
        ensure!(out_data.len() == planes * plane_out);
        crate::conv::for_each_chunk(crate::team::current(), out_data, plane_out, |i, dst| {
            plane(&data[i * plane_in..(i + 1) * plane_in], dst)
        });
    }
    Ok(tvec!(out.into_tvalue()))
}

/// The output fact of an op planned for one f32 input shape.
fn fixed_shape_fact(
    op: &str,
    inputs: &[&TypedFact],
    input_shape: &[usize],
    output_shape: &[usize],
) -> TractResult<TVec<TypedFact>> {
    ensure!(
        inputs[0].datum_type == f32::datum_type()
            && inputs[0].shape.as_concrete() == Some(input_shape),
        "{op} expects f32 {input_shape:?}, got {:?}",
        inputs[0]
    );
    Ok(tvec!(f32::fact(output_shape)))
}

/// Max pooling with stride 1 over the planes of an f32 NCHW (batch 1) or CHW tensor,
/// the padding ignored (as tract's `MaxPool` does): YOLO's SPPF block pools 5×5 three
/// times. tract 0.23 walks each window through ndarray views (0.52 ms per YOLO11n
/// inference at 320 against onnxruntime's 0.07); this op takes the window maximum in
/// two passes per plane, along the rows and then down the columns (the max is
/// separable), each a loop over contiguous values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OptiMaxPool {
    /// Planes, and their input height and width.
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    /// Window height and width.
    pub kh: usize,
    pub kw: usize,
    /// Padding: top, left, bottom, right (each below the window's side).
    pub pad: [usize; 4],
    pub input_shape: TVec<usize>,
    pub output_shape: TVec<usize>,
}

impl OptiMaxPool {
    fn output_hw(&self) -> (usize, usize) {
        (
            self.h + self.pad[0] + self.pad[2] + 1 - self.kh,
            self.w + self.pad[1] + self.pad[3] + 1 - self.kw,
        )
    }

    /// Pools one plane: `input` `h × w` into `out` `oh × ow`, `rows` (`h × ow`) the
    /// scratch for the row pass.
    fn plane(&self, input: &[f32], rows: &mut [f32], out: &mut [f32]) {
        let (oh, ow) = self.output_hw();
        let [pt, pl, _, _] = self.pad;
        // Window of output x (or y): input x + kx - pl for the kx that land inside.
        let span = |o: usize, pad: usize, k: usize, len: usize| {
            (o.saturating_sub(pad), (o + k - pad).min(len))
        };
        // `if a > b` rather than `f32::max`: a plain max instruction, vectorised (the
        // values are finite activations; `f32::max`'s NaN rule costs a blend).
        let max = |a: f32, b: f32| if b > a { b } else { a };
        for (src, dst) in input.chunks_exact(self.w).zip(rows.chunks_exact_mut(ow)) {
            // Shifted copies: for each kx, every output x whose window holds input x +
            // kx - pl (inside the row) takes the max with it.
            dst.fill(f32::NEG_INFINITY);
            for kx in 0..self.kw {
                let (x0, x1) = (pl.saturating_sub(kx), (self.w + pl - kx).min(ow));
                if x0 < x1 {
                    let shifted = &src[x0 + kx - pl..x1 + kx - pl];
                    for (d, v) in dst[x0..x1].iter_mut().zip(shifted) {
                        *d = max(*d, *v);
                    }
                }
            }
        }
        for (y, dst) in out.chunks_exact_mut(ow).enumerate().take(oh) {
            let (a, b) = span(y, pt, self.kh, self.h);
            dst.copy_from_slice(&rows[a * ow..(a + 1) * ow]);
            for row in rows[(a + 1) * ow..b * ow].chunks_exact(ow) {
                for (d, v) in dst.iter_mut().zip(row) {
                    *d = max(*d, *v);
                }
            }
        }
    }
}

impl Op for OptiMaxPool {
    fn name(&self) -> StaticName {
        "OptiMaxPool".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}x{} pad {:?} over {} planes of {}x{}",
            self.kh, self.kw, self.pad, self.planes, self.h, self.w
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for OptiMaxPool {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (oh, ow) = self.output_hw();
        // The column pass starts each output row with a copy: every value is written.
        per_plane(
            args_1!(inputs),
            self.planes,
            self.h * self.w,
            &self.output_shape,
            oh * ow,
            |src, dst| self.plane(src, &mut vec![0f32; self.h * ow], dst),
        )
    }
}

impl TypedOp for OptiMaxPool {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        fixed_shape_fact("OptiMaxPool", inputs, &self.input_shape, &self.output_shape)
    }

    as_op!();
}

/// The [`OptiMaxPool`] for a tract `MaxPool` node it can replace: f32, NCHW (batch 1)
/// or CHW, 2-D, stride 1, no dilation, no index output, each padding below the
/// window's side (so that every window holds at least one input value).
fn found_max_pool(model: &TypedModel, node: &TypedNode) -> TractResult<Option<OptiMaxPool>> {
    let Some(pool) = node.op_as::<MaxPool>() else {
        return Ok(None);
    };
    let spec = &pool.pool_spec;
    // The cache's NNEF form asks for the argmax indices too (`max_pool_with_index`):
    // fine as long as nothing reads them.
    let indices_unused = node.outputs.iter().enumerate().skip(1).all(|(slot, o)| {
        o.successors.is_empty() && !model.outputs.contains(&OutletId::new(node.id, slot))
    });
    if !indices_unused
        || !matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        || spec.rank() != 2
        || spec.dilations().iter().any(|d| *d != 1)
        || spec.strides().iter().any(|s| *s != 1)
        || node.inputs.len() != 1
    {
        return Ok(None);
    }
    let (Some(input_shape), Some(output_shape)) = (
        f32_shape(model, node.inputs[0])?,
        f32_shape(model, OutletId::new(node.id, 0))?,
    ) else {
        return Ok(None);
    };
    let (planes, h, w) = match (spec.data_format, &input_shape[..]) {
        (DataFormat::NCHW, &[1, c, h, w]) | (DataFormat::CHW, &[c, h, w]) => (c, h, w),
        _ => return Ok(None),
    };
    let (kh, kw) = (spec.kernel_shape[0], spec.kernel_shape[1]);
    let (pad, convoluted) = explicit_padding(spec, h, w);
    if kh == 0 || kw == 0 || pad[0].max(pad[2]) >= kh || pad[1].max(pad[3]) >= kw {
        return Ok(None);
    }
    let op = OptiMaxPool {
        planes,
        h,
        w,
        kh,
        kw,
        pad,
        input_shape,
        output_shape,
    };
    let (oh, ow) = op.output_hw();
    if (oh, ow) != convoluted || op.output_shape.iter().product::<usize>() != planes * oh * ow {
        return Ok(None);
    }
    Ok(Some(op))
}

/// Replaces the `MaxPool`s [`OptiMaxPool`] runs; returns how many.
pub fn max_pools(model: &mut TypedModel) -> TractResult<usize> {
    replace_each(model, |model, node| {
        Ok(found_max_pool(model, node)?.map(|op| (op, node.inputs[0])))
    })
}

/// Replaces every node for which `found` gives an op, and the outlet that op reads, by
/// that op; returns how many.
fn replace_each<O: TypedOp>(
    model: &mut TypedModel,
    found: impl Fn(&TypedModel, &TypedNode) -> TractResult<Option<(O, OutletId)>>,
) -> TractResult<usize> {
    let mut count = 0;
    for id in 0..model.nodes.len() {
        let node = &model.nodes[id];
        let Some((op, input)) = found(model, node)? else {
            continue;
        };
        let name = node.name.clone();
        patch_in(model, name, op, &[input], OutletId::new(id, 0))?;
        count += 1;
    }
    if count > 0 {
        model.compact()?;
    }
    Ok(count)
}

/// A product with a constant vector along one axis: `out[o][j] = Σ_i w[i] · x[o][i][j]`
/// for an input laid out as `[outer][k][inner]`. YOLO's DFL head takes the expected
/// distance of each box side this way (a 1x1 convolution of the 16-bin softmax with the
/// weights 0..15). tract splits it into two, moves `k` last and runs a matrix-vector
/// product, with packing: 0.28 ms per inference at 320 against ~0.02 here (one pass
/// over 2 × 16 × 2100 values, `docs/BENCHMARKS.md`). Where the product's input is a
/// `Move` of `k` (the model cache's form), the op reads the moved tensor instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Contraction {
    pub outer: usize,
    pub inner: usize,
    /// `k` values.
    pub weights: Vec<f32>,
    pub output_shape: TVec<usize>,
}

impl std::hash::Hash for Contraction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.outer, self.inner, &self.output_shape).hash(state);
        self.weights.iter().for_each(|w| w.to_bits().hash(state));
    }
}

impl Eq for Contraction {}

impl Contraction {
    /// `input` (`outer × k × inner` values) into `out` (`outer × inner`).
    pub fn run(&self, input: &[f32], out: &mut [f32]) -> TractResult<()> {
        let (k, inner) = (self.weights.len(), self.inner);
        ensure!(
            input.len() == self.outer * k * inner && out.len() == self.outer * inner,
            "Contraction of {}×{k}×{inner}: {} values in, {} out",
            self.outer,
            input.len(),
            out.len()
        );
        if k == 0 {
            out.fill(0.0);
            return Ok(());
        }
        for (x, row) in input
            .chunks_exact(k * inner)
            .zip(out.chunks_exact_mut(inner))
        {
            if inner == 1 {
                row[0] = x.iter().zip(&self.weights).map(|(x, w)| x * w).sum();
                continue;
            }
            // Row by row over `k`, each a vectorised pass over `inner` values.
            let mut planes = x.chunks_exact(inner).zip(&self.weights);
            if let Some((first, &w)) = planes.next() {
                row.iter_mut().zip(first).for_each(|(r, x)| *r = w * x);
            }
            for (plane, &w) in planes {
                row.iter_mut().zip(plane).for_each(|(r, x)| *r += w * x);
            }
        }
        Ok(())
    }
}

impl Op for Contraction {
    fn name(&self) -> StaticName {
        "Contraction".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}×{}×{} by a vector of {}",
            self.outer,
            self.weights.len(),
            self.inner,
            self.weights.len()
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Contraction {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let plain = input.try_as_plain_ram()?;
        let data = plain.as_slice::<f32>()?;
        // SAFETY: `run` writes every value (or fails, and the tensor is dropped unread).
        let mut out = unsafe { Tensor::uninitialized::<f32>(&self.output_shape)? };
        {
            let mut plain_out = out.try_as_plain_ram_mut()?;
            self.run(data, plain_out.as_slice_mut::<f32>()?)?;
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for Contraction {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let len = self.outer * self.weights.len() * self.inner;
        ensure!(
            inputs[0].datum_type == f32::datum_type()
                && inputs[0]
                    .shape
                    .as_concrete()
                    .is_some_and(|s| s.iter().product::<usize>() == len),
            "Contraction expects {len} f32 values, got {:?}",
            inputs[0]
        );
        Ok(tvec!(f32::fact(&self.output_shape)))
    }

    as_op!();
}

/// The [`Contraction`] for an `EinSum` of an activation and a constant vector (one axis
/// of size > 1, summed over), when the other axes keep their order from input to output,
/// and the outlet it reads.
fn found_contraction(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(Contraction, OutletId)>> {
    let Some(EinsumRoles {
        xi,
        weights,
        x_shape,
        out_shape,
        k: Some((_, ka, k)),
        m: None,
        mut n,
    }) = einsum_roles(model, node)?
    else {
        return Ok(None);
    };
    n.sort_unstable();
    if !n.windows(2).all(|p| p[0].1 < p[1].1) {
        return Ok(None);
    }
    let mut input = node.inputs[xi];
    let (mut outer, mut inner) = (
        x_shape[..ka].iter().product::<usize>(),
        x_shape[ka + 1..].iter().product::<usize>(),
    );
    // Through order-keeping reshapes to a `Move` of `k` (its other axes keep their order,
    // so only where `k` sits changes): read the tensor before the move.
    let source = memory_source(model, input);
    let node_at = &model.nodes[source.node];
    if let (Some(&AxisOp::Move(from, to)), [before]) =
        (node_at.op_as::<AxisOp>(), node_at.inputs.as_slice())
    {
        if let (Some(moved), Some(unmoved)) =
            (f32_shape(model, source)?, f32_shape(model, *before)?)
        {
            let (moved_inner, unmoved_inner) = (
                moved[to + 1..].iter().product::<usize>(),
                unmoved[from + 1..].iter().product::<usize>(),
            );
            if moved[to] == k && moved_inner == inner && unmoved[from] == k {
                input = *before;
                inner = unmoved_inner;
                outer = unmoved[..from].iter().product();
            }
        }
    }
    Ok(Some((
        Contraction {
            outer,
            inner,
            weights: f32_values(&weights)?,
            output_shape: out_shape,
        },
        input,
    )))
}

/// Replaces the `EinSum`s that [`found_contraction`] recognises; how many.
pub fn contractions(model: &mut TypedModel) -> TractResult<usize> {
    replace_each(model, found_contraction)
}

/// Nearest-neighbour upsampling by whole factors of the last two axes (YOLO's neck: 2× twice),
/// its planes split over the inference's team. tract's `NearestUpsample` copies as fast on
/// one thread (0.04–0.05 ms each at 320, either); the point is the second thread.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OptiUpsample {
    /// Planes (the product of the leading axes), and the input height and width.
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    /// Factors along the height and the width.
    pub sh: usize,
    pub sw: usize,
    pub input_shape: TVec<usize>,
    pub output_shape: TVec<usize>,
}

impl OptiUpsample {
    /// One plane: `src` `h × w` into `dst` `h·sh × w·sw`.
    fn plane(&self, src: &[f32], dst: &mut [f32]) {
        let ow = self.w * self.sw;
        for (row, out) in src
            .chunks_exact(self.w)
            .zip(dst.chunks_exact_mut(ow * self.sh))
        {
            let (first, rest) = out.split_at_mut(ow);
            if self.sw == 2 {
                // The neck's factor, as pairs (vectorised: a fill per pixel is not).
                for (pair, &v) in first.chunks_exact_mut(2).zip(row) {
                    pair[0] = v;
                    pair[1] = v;
                }
            } else {
                for (x, v) in first.chunks_exact_mut(self.sw).zip(row) {
                    x.fill(*v);
                }
            }
            for copy in rest.chunks_exact_mut(ow) {
                copy.copy_from_slice(first);
            }
        }
    }
}

impl Op for OptiUpsample {
    fn name(&self) -> StaticName {
        "OptiUpsample".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}×{} over {} planes of {}x{}",
            self.sh, self.sw, self.planes, self.h, self.w
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for OptiUpsample {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        per_plane(
            args_1!(inputs),
            self.planes,
            self.h * self.w,
            &self.output_shape,
            self.h * self.sh * self.w * self.sw,
            |src, dst| self.plane(src, dst),
        )
    }
}

impl TypedOp for OptiUpsample {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        fixed_shape_fact(
            "OptiUpsample",
            inputs,
            &self.input_shape,
            &self.output_shape,
        )
    }

    as_op!();
}

/// The whole factors of a pixel-replicating upsampling: tract's `NearestUpsample` (what
/// declutter makes of an ONNX `Resize`), or the `Resize` itself as the model cache
/// holds it when it is one (nearest, asymmetric coordinates, rounding down, constant
/// whole scales: `out[i] = in[⌊i / s⌋]`).
fn upsample_scales(model: &TypedModel, node: &TypedNode) -> TractResult<Option<TVec<usize>>> {
    if let Some(up) = node.op_as::<NearestUpsample>() {
        return Ok(Some(up.scales.clone()));
    }
    let Some(resize) = node.op_as::<Resize>() else {
        return Ok(None);
    };
    let (Some(at), None) = (resize.optional_scales_input, resize.optional_sizes_input) else {
        return Ok(None);
    };
    if !matches!(resize.interpolator, Interpolator::Nearest)
        || !matches!(resize.coord_transformer, CoordTransformer::Asymmetric)
        || !matches!(resize.nearest, Nearest::Floor)
    {
        return Ok(None);
    }
    let Some(scales) = node
        .inputs
        .get(at)
        .map(|&i| constant_f32(model, i))
        .transpose()?
    else {
        return Ok(None);
    };
    let Some(scales) = scales else {
        return Ok(None);
    };
    let values = f32_values(&scales)?;
    if values
        .iter()
        .any(|&s| !(1.0..=64.0).contains(&s) || s.fract() != 0.0)
    {
        return Ok(None);
    }
    Ok(Some(values.iter().map(|&s| s as usize).collect()))
}

/// The [`OptiUpsample`] for an upsampling [`upsample_scales`] recognises, of an f32
/// tensor of a known shape and scaling only the last two axes, and the outlet it reads.
fn found_upsample(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(OptiUpsample, OutletId)>> {
    let Some(scales) = upsample_scales(model, node)? else {
        return Ok(None);
    };
    let (Some(shape), Some(out_shape)) = (
        f32_shape(model, node.inputs[0])?,
        f32_shape(model, OutletId::new(node.id, 0))?,
    ) else {
        return Ok(None);
    };
    let rank = shape.len();
    let output_shape: TVec<usize> = shape.iter().zip(&scales).map(|(d, s)| d * s).collect();
    if rank < 2
        || scales.len() != rank
        || scales[..rank - 2].iter().any(|&s| s != 1)
        || scales[rank - 2..].contains(&0)
        || output_shape != out_shape
    {
        return Ok(None);
    }
    let op = OptiUpsample {
        planes: shape[..rank - 2].iter().product(),
        h: shape[rank - 2],
        w: shape[rank - 1],
        sh: scales[rank - 2],
        sw: scales[rank - 1],
        output_shape,
        input_shape: shape,
    };
    Ok(Some((op, node.inputs[0])))
}

/// Replaces the upsamplings [`found_upsample`] recognises; how many.
pub fn upsamples(model: &mut TypedModel) -> TractResult<usize> {
    replace_each(model, found_upsample)
}

/// What [`speed_up`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RewriteReport {
    /// Softmax nodes over a single axis replaced by [`AxisSoftmax`] (the DFL's and the
    /// attention's in YOLO11n).
    pub softmaxes: usize,
    /// Convolutions replaced by [`OptiConv`] (1x1 ones included).
    pub convolutions: usize,
    /// Of those, 1x1 convolutions ([`PointwiseConv`]), most of them tract `EinSum`s
    /// after declutter.
    pub pointwise: usize,
    /// `MaxPool`s replaced by [`OptiMaxPool`].
    pub max_pools: usize,
    /// Of the convolutions, those that take the `Add` of a shortcut after them.
    pub residuals: usize,
    /// Products with a constant vector replaced by [`Contraction`] (the DFL's).
    pub contractions: usize,
    /// `NearestUpsample`s replaced by [`OptiUpsample`].
    pub upsamples: usize,
}

/// tract's declutter, without the `ConcatThenEinsum` pass.
pub fn declutter_without_concat_then_einsum(model: &mut TypedModel) -> TractResult<()> {
    let mut declutter = Optimizer::declutter();
    declutter
        .passes
        .retain(|p| !format!("{p:?}").starts_with("ConcatThenEinsum"));
    declutter.optimize(model)
}

/// Replaces every f32 `Softmax` over a single axis of a decluttered model with
/// [`AxisSoftmax`], the `MaxPool`s [`max_pools`] handles with [`OptiMaxPool`] and the
/// convolutions [`direct_convolutions`] handles with [`OptiConv`]. Run after declutter
/// and before `optimize`.
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
            &[axis] if plain && axis < rank => {
                model.nodes[id].op = Box::new(AxisSoftmax { axis });
                report.softmaxes += 1;
            }
            _ => {}
        }
    }
    report.max_pools = max_pools(model)?;
    (report.convolutions, report.pointwise, report.residuals) = direct_convolutions(model)?;
    report.contractions = contractions(model)?;
    report.upsamples = upsamples(model)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::values;

    /// The model's operations other than sources and constants.
    fn operations(model: &TypedModel) -> impl Iterator<Item = &TypedNode> {
        model.nodes.iter().filter(|n| {
            !n.op_is::<tract_onnx::tract_core::ops::source::TypedSource>()
                && !n.op_is::<tract_onnx::tract_core::ops::konst::Const>()
        })
    }

    /// `got` has `want`'s shape and its values within 1e-4 (relative above 1).
    fn assert_close(got: &Tensor, want: &Tensor, what: &str) -> TractResult<()> {
        assert_eq!(got.shape(), want.shape(), "{what}");
        let (a, b) = (
            got.to_plain_array_view::<f32>()?,
            want.to_plain_array_view::<f32>()?,
        );
        for (x, y) in a.iter().zip(b.iter()) {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}: {x} vs {y}"
            );
        }
        Ok(())
    }

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
    fn last_axis_softmax_equals_the_definition() {
        // Rows of 100 (the attention's) and of 13 (whole vectors and a scalar tail).
        for (outer, n) in [(6, 100), (5, 13)] {
            let data: Vec<f32> = (0..outer * n)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 5.0)
                .collect();
            let mut ours = data.clone();
            softmax_blocks(&mut ours, n, 1);
            let want = reference(&data, outer, n, 1);
            for (a, b) in ours.iter().zip(&want) {
                assert!((a - b).abs() < 1e-6, "{a} vs {b}");
            }
        }
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
        // The DFL's axis 1, and the last axis (the attention's softmax).
        for axis in [1, 3] {
            let build = |rewrite: bool| -> TractResult<Tensor> {
                let mut model = TypedModel::default();
                let src = model.add_source("x", f32::fact(shape))?;
                let out = model.wire_node(
                    "sm",
                    Softmax {
                        axes: tvec![axis],
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
                assert!((x - y).abs() < 1e-6, "axis {axis}: {x} vs {y}");
            }
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
        use tract_onnx::tract_core::ops::cnn::PaddingSpec;
        // "dw" in `then`: a depthwise convolution (one group per channel).
        let depthwise = then.contains("dw");
        let (cin, h, w) = (12usize, 11usize, 14usize);
        let cout = if depthwise { cin } else { 20 };
        let kcin = if depthwise { 1 } else { cin };
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
        // "res": a second input of the output's shape added last (a bottleneck's
        // shortcut, `x + conv(x)` in the model).
        let res_shape: Option<TVec<usize>> = then
            .contains("res")
            .then(|| {
                model
                    .outlet_fact(y[0])
                    .ok()?
                    .shape
                    .as_concrete()
                    .map(TVec::from)
            })
            .flatten();
        if let Some(r_shape) = &res_shape {
            let r = model.add_source("r", f32::fact(r_shape))?;
            y = model.wire_node(
                "shortcut",
                tract_onnx::tract_core::ops::math::add(),
                &[r, y[0]],
            )?;
        }
        // "fork": the convolution's own output is a model output too (nothing after it
        // may be fused then; both outputs must come out right).
        let mut outputs = y.to_vec();
        if then.contains("fork") {
            outputs.push(conv_out[0]);
        }
        model.select_output_outlets(&outputs)?;
        let replaced = if rewrite {
            direct_convolutions(&mut model)?.0
        } else {
            0
        };
        if rewrite && replaced > 0 && res_shape.is_some() {
            // The shortcut is fused: no addition left, the convolution takes it.
            assert!(
                operations(&model).all(|n| !n.op_is::<TypedBinOp>()),
                "{then}"
            );
            assert!(operations(&model).any(|n| n.op_as::<OptiConv>().is_some_and(|c| c.residual)));
        }
        let input =
            tract_ndarray::ArrayD::from_shape_vec(&shape[..], values(shape.iter().product(), 3))?
                .into_tensor();
        let mut inputs = tvec!(input.into_tvalue());
        if let Some(r_shape) = &res_shape {
            let r = tract_ndarray::ArrayD::from_shape_vec(
                &r_shape[..],
                values(r_shape.iter().product(), 4),
            )?;
            inputs.push(r.into_tensor().into_tvalue());
        }
        let plan = model.into_optimized()?.into_runnable()?;
        let out = plan.run(inputs)?;
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
            (true, "silu res", 1),
            (false, "res", 2),
            (true, "rm silu res", 1),
            (true, "dw silu res", 1),
        ] {
            let (want, _) = conv_graph(batch, then, stride, false)?;
            let (got, replaced) = conv_graph(batch, then, stride, true)?;
            let expected = usize::from(crate::conv::simd_available());
            assert_eq!(replaced, expected, "{batch} {then:?} {stride}");
            assert_close(&got, &want, &format!("{batch} {then:?} {stride}"))?;
        }
        Ok(())
    }

    /// One 1x1 convolution as tract's declutter leaves it, an `EinSum` of `form` (its
    /// first input the activation when `x_first`) + what follows, evaluated by tract
    /// with the rewrite (`rewrite`) or without: the output and how many convolutions
    /// (and 1x1 ones) were replaced. `then` lists the successors in order: "cast",
    /// "bias" (a per-channel constant of the output's rank), "scalar" (a constant
    /// [1,…]), "full" (a constant of the output's shape: not a bias), "reshape" (the
    /// last axis, 12 pixels, to 3 × 4), "silu".
    fn einsum_graph(
        form: &str,
        x_shape: &[usize],
        w_shape: &[usize],
        x_first: bool,
        then: &[&str],
        rewrite: bool,
    ) -> TractResult<(Tensor, (usize, usize), usize)> {
        use tract_onnx::tract_core::ops::cast::cast;
        use tract_onnx::tract_core::ops::math::add;
        let constant = |shape: &[usize], seed: usize| -> TractResult<Tensor> {
            let n = shape.iter().product();
            Ok(tract_ndarray::ArrayD::from_shape_vec(shape, values(n, seed))?.into_tensor())
        };
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact(x_shape))?;
        let w = model.add_const("w", constant(w_shape, 1)?)?;
        let inputs = if x_first { [x, w] } else { [w, x] };
        let op = EinSum::new(form.parse()?, f32::datum_type());
        let mut y = model.wire_node("einsum", op, &inputs)?[0];
        for (i, step) in then.iter().enumerate() {
            let shape: TVec<usize> = model
                .outlet_fact(y)?
                .shape
                .as_concrete()
                .map(TVec::from)
                .unwrap_or_default();
            let name = format!("{step}{i}");
            y = match *step {
                "cast" => model.wire_node(name, cast(f32::datum_type()), &[y])?[0],
                "bias" | "scalar" | "full" => {
                    // The channel axis: the first of the output's that is not 1.
                    let channel = shape.iter().position(|&d| d != 1).unwrap_or(0);
                    let b_shape: Vec<usize> = match *step {
                        "full" => shape.to_vec(),
                        "scalar" => vec![1; shape.len()],
                        _ => (0..shape.len())
                            .map(|a| if a == channel { shape[a] } else { 1 })
                            .collect(),
                    };
                    let b = model.add_const(format!("b{i}"), constant(&b_shape, 2)?)?;
                    model.wire_node(name, add(), &[y, b])?[0]
                }
                "reshape" => {
                    let last = shape.len() - 1;
                    let op =
                        AxisOp::Reshape(last, tvec![12.to_dim()], tvec![3.to_dim(), 4.to_dim()]);
                    model.wire_node(name, op, &[y])?[0]
                }
                "silu" => {
                    let op = tract_onnx::tract_core::ops::nn::silu::silu();
                    model.wire_node(name, op, &[y])?[0]
                }
                "res" => {
                    let r = model.add_source("r", f32::fact(&shape))?;
                    model.wire_node(name, add(), &[y, r])?[0]
                }
                other => bail!("unknown step {other}"),
            };
        }
        model.select_output_outlets(&[y])?;
        let replaced = if rewrite {
            let (count, pointwise, _) = direct_convolutions(&mut model)?;
            (count, pointwise)
        } else {
            (0, 0)
        };
        // The operations left (what was fused is gone).
        let ops = operations(&model).count();
        let mut inputs = tvec!(constant(x_shape, 3)?.into_tvalue());
        if let Some(r) = model.inputs.get(1) {
            let shape = model.outlet_fact(*r)?.shape.as_concrete().map(TVec::from);
            inputs.push(constant(&shape.unwrap_or_default(), 4)?.into_tvalue());
        }
        let plan = model.into_optimized()?.into_runnable()?;
        let out = plan.run(inputs)?;
        Ok((out[0].clone().into_tensor(), replaced, ops))
    }

    #[test]
    fn pointwise_convolution_op_matches_tract_on_the_einsum_forms() -> TractResult<()> {
        let simd = usize::from(crate::conv::simd_available());
        // (form, activation shape, weights shape, activation first, successors, replaced,
        // operations left where replaced)
        type Case<'a> = (
            &'a str,
            &'a [usize],
            &'a [usize],
            bool,
            &'a [&'a str],
            bool,
            usize,
        );
        let cases: &[Case] = &[
            // The forms of the shipped model's 1x1s in the cache (NNEF) ...
            (
                "mk,kn->mn",
                &[5, 12],
                &[6, 5],
                false,
                &["cast", "bias", "silu"],
                true,
                1,
            ),
            (
                "amk,akn->amn",
                &[1, 5, 12],
                &[1, 6, 5],
                false,
                &["reshape", "bias", "silu"],
                true,
                1,
            ),
            // ... and from the ONNX (the activation first, NCHW or CHW).
            (
                "IHW,OI->NOHW",
                &[5, 3, 4],
                &[6, 5],
                true,
                &["bias", "silu"],
                true,
                1,
            ),
            (
                "NIHW,OI->OHW",
                &[1, 5, 3, 4],
                &[6, 5],
                true,
                &["bias"],
                true,
                1,
            ),
            // The weights stored transposed; a scalar bias; no bias at all.
            (
                "km,kn->mn",
                &[5, 12],
                &[5, 6],
                false,
                &["scalar", "silu"],
                true,
                1,
            ),
            ("mk,kn->mn", &[5, 12], &[6, 5], false, &[], true, 1),
            // A shortcut added after the SiLU: fused too.
            (
                "IHW,OI->NOHW",
                &[5, 3, 4],
                &[6, 5],
                true,
                &["bias", "silu", "res"],
                true,
                1,
            ),
            // A constant that is not per channel stays tract's Add, and the SiLU after it.
            (
                "mk,kn->mn",
                &[5, 12],
                &[6, 5],
                false,
                &["full", "silu"],
                true,
                3,
            ),
            // The SiLU before the bias: the SiLU is fused, the Add stays.
            (
                "mk,kn->mn",
                &[5, 12],
                &[6, 5],
                false,
                &["silu", "bias"],
                true,
                2,
            ),
            // Pixels-major activation (NHWC-like): not this op's layout.
            (
                "amk,ank->amn",
                &[1, 12, 5],
                &[1, 6, 5],
                true,
                &["bias"],
                false,
                0,
            ),
            // Weights broadcast over a batch axis of the activation: refused.
            (
                "bmk,bkn->bmn",
                &[2, 5, 12],
                &[1, 6, 5],
                false,
                &[],
                false,
                0,
            ),
        ];
        for &(form, x_shape, w_shape, x_first, then, replaced, left) in cases {
            let what = format!("{form} {x_shape:?} {then:?}");
            let (want, _, ops_before) = einsum_graph(form, x_shape, w_shape, x_first, then, false)?;
            let (got, count, ops) = einsum_graph(form, x_shape, w_shape, x_first, then, true)?;
            if replaced && simd == 1 {
                assert_eq!((count, ops), ((1, 1), left), "{what}");
            } else {
                assert_eq!((count, ops), ((0, 0), ops_before), "{what}");
            }
            assert_close(&got, &want, &what)?;
        }
        Ok(())
    }

    #[test]
    fn contraction_op_matches_tract_on_the_dfl_forms() -> TractResult<()> {
        // (form, weights shape, axis changes before the product, contractions, whether
        // the replacement reads the source: directly, or past a move of the summed axis)
        type Case<'a> = (&'a str, &'a [usize], &'a [AxisOp], usize, bool);
        let dim = |d: usize| d.to_dim();
        let cases: &[Case] = &[
            // The ONNX form: the activation [2 sides][16 bins][anchors].
            ("HIW,I->NHW", &[16], &[], 1, true),
            // The cache's: the bins moved last, flattened, a unit axis added.
            (
                "amk,ank->amn",
                &[1, 1, 16],
                &[
                    AxisOp::Move(1, 2),
                    AxisOp::Reshape(0, tvec![dim(2), dim(7)], tvec![dim(14)]),
                    AxisOp::Add(0),
                ],
                1,
                true,
            ),
            // A move of another axis than the summed one: the product reads its output.
            ("IWH,I->WH", &[16], &[AxisOp::Move(0, 2)], 1, false),
            // Weights with an output axis (a 1x1 convolution): not this op's.
            ("HIW,OI->OHW", &[3, 16], &[], 0, false),
        ];
        for (form, w_shape, before, want_count, through) in cases.iter().cloned() {
            let run = |rewrite: bool| -> TractResult<(Tensor, usize, bool)> {
                let mut model = TypedModel::default();
                let source = model.add_source("x", f32::fact([2, 16, 7]))?;
                let mut x = source;
                for (i, op) in before.iter().enumerate() {
                    x = model.wire_node(format!("axis{i}"), op.clone(), &[x])?[0];
                }
                let n: usize = w_shape.iter().product();
                let w: Vec<f32> = (0..n).map(|i| i as f32).collect();
                let w = tract_ndarray::ArrayD::from_shape_vec(w_shape, w)?.into_tensor();
                let w = model.add_const("w", w)?;
                let op = EinSum::new(form.parse()?, f32::datum_type());
                let y = model.wire_node("product", op, &[x, w])?;
                model.select_output_outlets(&y)?;
                let count = if rewrite {
                    contractions(&mut model)?
                } else {
                    0
                };
                // Whether the replacement reads the source itself (past the move).
                let reads_source = operations(&model)
                    .any(|n| n.op_is::<Contraction>() && n.inputs[0].node == source.node);
                let input =
                    tract_ndarray::ArrayD::from_shape_vec(vec![2, 16, 7], values(2 * 16 * 7, 9))?;
                let plan = model.into_optimized()?.into_runnable()?;
                let out = plan.run(tvec!(input.into_tensor().into_tvalue()))?;
                Ok((out[0].clone().into_tensor(), count, reads_source))
            };
            let (want, ..) = run(false)?;
            let (got, count, reads_source) = run(true)?;
            let what = format!("{form} after {before:?}");
            assert_eq!((count, reads_source), (want_count, through), "{what}");
            assert_close(&got, &want, &what)?;
        }
        // Sizes that do not match are an error, not a read out of bounds.
        let op = Contraction {
            outer: 2,
            inner: 3,
            weights: vec![1.0; 4],
            output_shape: tvec![2, 3],
        };
        let mut out = vec![0.0; 6];
        assert!(op.run(&[0.0; 23], &mut out).is_err());
        assert!(op.run(&[0.0; 24], &mut out[..5]).is_err());
        op.run(&[0.5; 24], &mut out)?;
        assert_eq!(out, vec![2.0; 6]);
        Ok(())
    }

    #[test]
    fn upsample_op_matches_tract() -> TractResult<()> {
        // (input shape, scales, replaced)
        let cases: &[(&[usize], &[usize], usize)] = &[
            // The neck's: NCHW, 2× in both directions.
            (&[1, 3, 5, 7], &[1, 1, 2, 2], 1),
            // CHW, uneven factors, one of them 1.
            (&[2, 4, 3], &[1, 3, 1], 1),
            (&[2, 1, 6], &[1, 2, 3], 1),
            // A factor on a leading axis: tract's.
            (&[2, 3, 4], &[2, 2, 2], 0),
        ];
        for &(shape, scales, want_count) in cases {
            let op = NearestUpsample {
                scales: scales.iter().copied().collect(),
            };
            let run = |rewrite: bool| -> TractResult<(Tensor, usize)> {
                let mut model = TypedModel::default();
                let x = model.add_source("x", f32::fact(shape))?;
                let y = model.wire_node("up", op.clone(), &[x])?;
                model.select_output_outlets(&y)?;
                let count = if rewrite { upsamples(&mut model)? } else { 0 };
                let n = shape.iter().product();
                let input = tract_ndarray::ArrayD::from_shape_vec(shape, values(n, 5))?;
                let plan = model.into_optimized()?.into_runnable()?;
                let out = plan.run(tvec!(input.into_tensor().into_tvalue()))?;
                Ok((out[0].clone().into_tensor(), count))
            };
            let (want, _) = run(false)?;
            let (got, count) = run(true)?;
            assert_eq!(count, want_count, "{shape:?} {scales:?}");
            assert_eq!(got, want, "{shape:?} {scales:?}");
        }
        // The cache's form: tract's `Resize` with constant scales. Rounding down is pixel
        // replication (replaced); rounding to the nearest is not (kept).
        for (nearest, want_count) in [(Nearest::Floor, 1), (Nearest::RoundPreferCeil, 0)] {
            let resize = Resize {
                coord_transformer: CoordTransformer::Asymmetric,
                interpolator: Interpolator::Nearest,
                nearest,
                optional_scales_input: Some(1),
                optional_sizes_input: None,
            };
            let shape = [1usize, 2, 3, 4];
            let run = |rewrite: bool| -> TractResult<(Tensor, usize)> {
                let mut model = TypedModel::default();
                let x = model.add_source("x", f32::fact(shape))?;
                let scales = model.add_const("scales", tensor1(&[1f32, 1.0, 2.0, 2.0]))?;
                let y = model.wire_node("resize", resize.clone(), &[x, scales])?;
                model.select_output_outlets(&y)?;
                let count = if rewrite { upsamples(&mut model)? } else { 0 };
                let input = tract_ndarray::ArrayD::from_shape_vec(&shape[..], values(24, 6))?;
                let plan = model.into_runnable()?;
                let out = plan.run(tvec!(input.into_tensor().into_tvalue()))?;
                Ok((out[0].clone().into_tensor(), count))
            };
            let (want, _) = run(false)?;
            let (got, count) = run(true)?;
            assert_eq!(count, want_count, "{nearest:?}");
            assert_eq!(got, want, "{nearest:?}");
        }
        Ok(())
    }

    #[test]
    fn max_pool_op_matches_tract() -> TractResult<()> {
        use tract_onnx::tract_core::ops::cnn::PaddingSpec;
        // (batch, planes, h, w, kernel, padding)
        type Case = (bool, usize, usize, usize, [usize; 2], PaddingSpec);
        let cases: &[Case] = &[
            // SPPF's: 5×5, padding 2.
            (
                true,
                3,
                10,
                10,
                [5, 5],
                PaddingSpec::Explicit(tvec![2, 2], tvec![2, 2]),
            ),
            (
                false,
                2,
                7,
                9,
                [3, 3],
                PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1]),
            ),
            // Uneven and no padding, a window wider than tall, a plane narrower than it.
            (
                true,
                2,
                6,
                5,
                [2, 3],
                PaddingSpec::Explicit(tvec![0, 2], tvec![1, 0]),
            ),
            (true, 1, 4, 3, [3, 3], PaddingSpec::Valid),
            (false, 2, 5, 2, [3, 3], PaddingSpec::SameUpper),
        ];
        for (batch, planes, h, w, kernel, padding) in cases.iter().cloned() {
            let shape: TVec<usize> = if batch {
                tvec![1, planes, h, w]
            } else {
                tvec![planes, h, w]
            };
            let pool = MaxPool {
                pool_spec: PoolSpec {
                    data_format: if batch {
                        DataFormat::NCHW
                    } else {
                        DataFormat::CHW
                    },
                    kernel_shape: kernel.iter().copied().collect(),
                    padding: padding.clone(),
                    dilations: None,
                    strides: None,
                    input_channels: planes,
                    output_channels: planes,
                },
                with_index_outputs: None,
            };
            let run = |rewrite: bool| -> TractResult<(Tensor, usize)> {
                let mut model = TypedModel::default();
                let x = model.add_source("x", f32::fact(&shape))?;
                let y = model.wire_node("pool", pool.clone(), &[x])?;
                model.select_output_outlets(&y)?;
                let replaced = if rewrite { max_pools(&mut model)? } else { 0 };
                // Distinct values, negative ones included (padding must not count as 0).
                let n: usize = shape.iter().product();
                let values: Vec<f32> = (0..n).map(|i| ((i * 37) % 23) as f32 - 11.5).collect();
                let input = tract_ndarray::ArrayD::from_shape_vec(&shape[..], values)?;
                let plan = model.into_optimized()?.into_runnable()?;
                let out = plan.run(tvec!(input.into_tensor().into_tvalue()))?;
                Ok((out[0].clone().into_tensor(), replaced))
            };
            let (want, _) = run(false)?;
            let (got, replaced) = run(true)?;
            let what = format!("{shape:?} {kernel:?} {padding:?}");
            assert_eq!(replaced, 1, "{what}");
            assert_eq!(got, want, "{what}");
        }
        Ok(())
    }

    /// A 1x1 convolution (`amk,akn->amn`, bias, SiLU) of the concatenation of two
    /// sources `[1, c, 3, 4]` (`c` = 2 and 3) along `axis` (1: the channels; 3: the
    /// columns, which the op cannot read in place), reshaped to `[1, 5, 12]` / `[1, 4,
    /// 15]` as the cache's form does: output, replaced count and the operations left.
    fn concat_graph(axis: usize, rewrite: bool) -> TractResult<(Tensor, usize, Vec<String>)> {
        use tract_onnx::tract_core::ops::math::add;
        let (sa, sb): ([usize; 4], [usize; 4]) = if axis == 1 {
            ([1, 2, 3, 4], [1, 3, 3, 4])
        } else {
            ([1, 4, 3, 2], [1, 4, 3, 3])
        };
        let mut model = TypedModel::default();
        let a = model.add_source("a", f32::fact(sa))?;
        let b = model.add_source("b", f32::fact(sb))?;
        let cat = model.wire_node("cat", TypedConcat { axis }, &[a, b])?[0];
        let (cin, pixels) = if axis == 1 { (5, 12) } else { (4, 15) };
        let (h, w) = if axis == 1 { (3, 4) } else { (3, 5) };
        let flat = AxisOp::Reshape(2, tvec![h.to_dim(), w.to_dim()], tvec![pixels.to_dim()]);
        let x = model.wire_node("flat", flat, &[cat])?[0];
        let weights = tract_ndarray::ArrayD::from_shape_vec(&[1, 6, cin][..], values(6 * cin, 1))?;
        let wc = model.add_const("w", weights.into_tensor())?;
        let op = EinSum::new("amk,akn->amn".parse()?, f32::datum_type());
        let y = model.wire_node("einsum", op, &[wc, x])?[0];
        let bias = tract_ndarray::ArrayD::from_shape_vec(&[1, 6, 1][..], values(6, 2))?;
        let bc = model.add_const("b", bias.into_tensor())?;
        let y = model.wire_node("bias", add(), &[y, bc])?[0];
        let y = model.wire_node("silu", tract_onnx::tract_core::ops::nn::silu::silu(), &[y])?;
        model.select_output_outlets(&y)?;
        let replaced = if rewrite {
            direct_convolutions(&mut model)?.0
        } else {
            0
        };
        let ops = operations(&model)
            .map(|n| format!("{} {}", n.op().name(), n.inputs.len()))
            .collect();
        let input = |shape: [usize; 4], seed| -> TractResult<TValue> {
            let n = shape.iter().product();
            Ok(
                tract_ndarray::ArrayD::from_shape_vec(&shape[..], values(n, seed))?
                    .into_tensor()
                    .into_tvalue(),
            )
        };
        let plan = model.into_optimized()?.into_runnable()?;
        let out = plan.run(tvec!(input(sa, 3)?, input(sb, 4)?))?;
        Ok((out[0].clone().into_tensor(), replaced, ops))
    }

    #[test]
    fn pointwise_convolution_reads_a_channel_concatenation_in_place() -> TractResult<()> {
        let simd = crate::conv::simd_available();
        for (axis, left) in [
            (1, vec!["OptiConv 2"]),
            (3, vec!["Concat 2", "Reshape 1", "OptiConv 1"]),
        ] {
            let (want, _, _) = concat_graph(axis, false)?;
            let (got, replaced, ops) = concat_graph(axis, true)?;
            if simd {
                assert_eq!(replaced, 1, "axis {axis}");
                let mut ops = ops;
                ops.sort();
                let mut left: Vec<String> = left.iter().map(|s| s.to_string()).collect();
                left.sort();
                assert_eq!(ops, left, "axis {axis}");
            }
            assert_close(&got, &want, &format!("axis {axis}"))?;
        }
        Ok(())
    }
}
