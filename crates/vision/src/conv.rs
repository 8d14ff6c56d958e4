//! A direct f32 convolution for the shapes of YOLO's dense convolutions (NCHW tensors,
//! batch 1, group 1, any kernel size, stride 1 or 2, explicit zero padding), with the
//! bias and optionally the SiLU activation applied while the output tile is still in
//! registers. What onnxruntime's lead over tract on YOLO11n is made of (its "NCHWc"
//! convolutions, docs/BENCHMARKS.md, issue 10), inside one op:
//!
//! - The input is *staged* once per run into a zero-padded, channel-blocked layout
//!   (`[channel block][row][column][8 channels]`): the 8 channels of one pixel are
//!   contiguous, and so is a row of pixels.
//! - The AVX2/FMA kernel holds 16 output channels (two vectors) × 6 output pixels of
//!   one row in 12 registers. For each input channel of each kernel tap it loads the
//!   two weight vectors (packed once, when the plan is built, in the order the kernel
//!   reads them) and broadcasts the 6 pixels' input values, which all lie in one short
//!   run of the staged row: the input a tile reads is a few KB that stay in L1, and the
//!   weights stream sequentially.
//! - The result is written channel-blocked too and turned back into NCHW at the end.
//!
//! Everything the kernel reads or writes is inside buffers whose sizes are checked when
//! the plan is built and when it runs; the kernel is `unsafe` only for the SIMD loads
//! and stores at those offsets. Where AVX2/FMA are missing, a scalar path computes the
//! same from the same layout (tests, other CPUs).

// Off x86-64 only the scalar paths exist (and `rewrite` never inserts these ops there):
// the SIMD plan's fields and the pool parameters go unused.
#![cfg_attr(
    not(target_arch = "x86_64"),
    allow(dead_code, unused_variables, unused_mut)
)]

use std::fmt;

use crate::team::TeamRef;

/// f32 lanes per AVX2 vector, and channels per block.
const LANES: usize = 8;
/// Output pixels per kernel tile: 6, or 5 where that divides the output width and 6
/// does not (20 and 10 pixels wide: no tile computed past the row's end).
fn tile_width(out_w: usize) -> usize {
    if !out_w.is_multiple_of(6) && out_w.is_multiple_of(5) {
        5
    } else {
        6
    }
}
/// Output channel blocks per kernel tile (2 × 8 = 16 channels).
const OB: usize = 2;

/// The static description of one convolution: shapes, stride and padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvShape {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride, the same on both axes.
    pub stride: usize,
    /// Zero padding: top, left, bottom, right.
    pub pad: [usize; 4],
}

/// Largest channel count, side and padding a plan accepts, and largest kernel side: with
/// these every buffer size and offset the kernels compute fits in a 64-bit `usize`
/// (an unchecked product of absurd sizes could wrap and pass the bounds checks).
const MAX_SIDE: usize = 1 << 16;
const MAX_KERNEL: usize = 64;

impl ConvShape {
    /// Refuses shapes with an empty or absurdly large dimension.
    fn check(&self) -> Result<(), ConvPlanError> {
        let sides = [self.cin, self.cout, self.h, self.w];
        if sides.iter().any(|&d| d == 0 || d > MAX_SIDE)
            || self.pad.iter().any(|&p| p > MAX_SIDE)
            || !(1..=MAX_KERNEL).contains(&self.kh)
            || !(1..=MAX_KERNEL).contains(&self.kw)
            || !(1..=2).contains(&self.stride)
        {
            return Err(ConvPlanError(format!("unsupported convolution {self:?}")));
        }
        Ok(())
    }

    /// A square `k × k` kernel over a square `size × size` input, `k / 2` zeros on every
    /// side ("same" at stride 1): the shape of YOLO's convolutions.
    pub fn square(cin: usize, cout: usize, size: usize, k: usize, stride: usize) -> ConvShape {
        ConvShape {
            cin,
            cout,
            h: size,
            w: size,
            kh: k,
            kw: k,
            stride,
            pad: [k / 2; 4],
        }
    }

    /// A 1x1 kernel, stride 1, no padding, over `h × w` pixels.
    pub fn pointwise(cin: usize, cout: usize, h: usize, w: usize) -> ConvShape {
        ConvShape {
            cin,
            cout,
            h,
            w,
            kh: 1,
            kw: 1,
            stride: 1,
            pad: [0; 4],
        }
    }

    fn padded(&self) -> (usize, usize) {
        (
            self.h + self.pad[0] + self.pad[2],
            self.w + self.pad[1] + self.pad[3],
        )
    }

    /// Output height and width.
    pub fn output(&self) -> (usize, usize) {
        let (hp, wp) = self.padded();
        (
            (hp.saturating_sub(self.kh)) / self.stride + 1,
            (wp.saturating_sub(self.kw)) / self.stride + 1,
        )
    }
}

/// Why a convolution cannot be planned or run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvPlanError(String);

impl fmt::Display for ConvPlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConvPlanError {}

/// A planned convolution: [`DirectConv`], [`DepthwiseConv`] or [`PointwiseConv`].
pub trait ConvPlan: fmt::Debug + Send + Sync {
    /// The convolution's shape.
    fn shape(&self) -> ConvShape;

    /// Whether SiLU is applied to the output.
    fn silu(&self) -> bool;

    /// Runs it: `input` is `cin × h × w`, `output` is `cout × out_h × out_w`; the work
    /// is spread over `pool` when it has more than one thread.
    fn run_in(
        &self,
        input: &[f32],
        output: &mut [f32],
        pool: Option<TeamRef<'_>>,
    ) -> Result<(), ConvPlanError>;

    /// Output height and width.
    fn output_hw(&self) -> (usize, usize) {
        self.shape().output()
    }

    /// Refuses an `input` or `output` buffer whose size is not this plan's
    /// (`cin × h × w` and `cout × out_h × out_w` values).
    fn check_sizes(&self, input: &[f32], output: &[f32]) -> Result<(), ConvPlanError> {
        let s = self.shape();
        let (oh, ow) = self.output_hw();
        let (want_in, want_out) = (s.cin * s.h * s.w, s.cout * oh * ow);
        if input.len() != want_in || output.len() != want_out {
            return Err(ConvPlanError(format!(
                "{s:?}: input has {} values, output {} (expected {want_in} and {want_out})",
                input.len(),
                output.len()
            )));
        }
        Ok(())
    }

    /// Refuses a `residual` whose size is not the output's.
    fn check_residual(
        &self,
        residual: Option<&[f32]>,
        output: &[f32],
    ) -> Result<(), ConvPlanError> {
        match residual {
            Some(r) if r.len() != output.len() => Err(ConvPlanError(format!(
                "{:?}: a residual of {} values for an output of {}",
                self.shape(),
                r.len(),
                output.len()
            ))),
            _ => Ok(()),
        }
    }

    /// [`ConvPlan::run_in`], then `residual` (the output's size: a bottleneck's shortcut
    /// `x + conv(x)`) added to the result. This default adds it in one more pass over
    /// `pool`; [`DirectConv`] adds it while it writes the output.
    fn run_with_residual(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
        pool: Option<TeamRef<'_>>,
    ) -> Result<(), ConvPlanError> {
        self.check_residual(residual, output)?;
        self.run_in(input, output, pool)?;
        add_residual(residual, output, pool);
        Ok(())
    }

    /// [`ConvPlan::run_in`] on the calling thread.
    fn run(&self, input: &[f32], output: &mut [f32]) -> Result<(), ConvPlanError> {
        self.run_in(input, output, None)
    }
}

/// `output[i] += residual[i]` (when there is a residual, of the output's size), split over
/// `pool`.
fn add_residual(residual: Option<&[f32]>, output: &mut [f32], pool: Option<TeamRef<'_>>) {
    let Some(residual) = residual else {
        return;
    };
    assert_eq!(residual.len(), output.len(), "residual size");
    const CHUNK: usize = 4096;
    for_each_chunk(pool, output, CHUNK, |i, chunk| {
        let res = &residual[i * CHUNK..i * CHUNK + chunk.len()];
        chunk.iter_mut().zip(res).for_each(|(v, r)| *v += r);
    });
}

/// `Debug`, `Hash` and `Eq` of a plan from its shape and activation (its weights are
/// large, and equal shapes planned from other weights compare by `PartialEq`), and its
/// [`ConvPlan`] accessors.
macro_rules! plan_identity {
    ($plan:ident) => {
        impl fmt::Debug for $plan {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($plan))
                    .field("shape", &self.shape)
                    .field("silu", &self.silu)
                    .finish_non_exhaustive()
            }
        }

        impl std::hash::Hash for $plan {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.shape.hash(state);
                self.silu.hash(state);
            }
        }

        impl Eq for $plan {}
    };
}

/// The channel-blocked output, written by several threads at once (each its own rows).
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);

// SAFETY: the pointer is only used by `DirectConv::compute`, whose jobs write disjoint
// rows of a buffer that outlives them (the scope joins them before it returns).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Per-thread buffers reused from run to run (a fresh allocation of a few hundred KB per
/// run is a fresh mapping whose page faults cost as much as the arithmetic). They keep
/// the size of the largest convolution the thread ran: for YOLO11n at 320 the stem's,
/// about 3.4 MB staged + 1.7 MB blocked per inference thread (four times that at 640).
#[derive(Default)]
struct Scratch {
    /// The staged (padded, channel-blocked) input.
    staged: Vec<f32>,
    /// The channel-blocked output.
    blocked: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// A convolution ready to run: packed weights and the checked geometry.
#[derive(Clone, PartialEq)]
pub struct DirectConv {
    shape: ConvShape,
    silu: bool,
    out_h: usize,
    out_w: usize,
    /// Output pixels per kernel tile ([`tile_width`]).
    xb: usize,
    /// Output row width rounded up to whole tiles of `xb` pixels.
    out_w_tiles: usize,
    /// Staged input: channel blocks, rows and columns (columns cover every tile's reads).
    in_blocks: usize,
    staged_h: usize,
    staged_w: usize,
    /// Output channel blocks, rounded up to whole tiles of [`OB`] blocks.
    out_blocks: usize,
    /// Weights in the kernel's reading order: `[tile of 16 out][in block][ky][kx][in
    /// channel of the block][16 out]`, zero for output channels past `cout`.
    packed: Vec<f32>,
    /// Bias per output channel, zero past `cout`.
    bias: Vec<f32>,
    /// For each (input block, ky, kx) in the kernel's order: the offset of its first
    /// value from a tile's origin in the staged input, and the block's channel count.
    taps: Vec<(usize, usize)>,
}

plan_identity!(DirectConv);

impl DirectConv {
    /// Plans a convolution with `weights` in OIHW order (`cout × cin × kh × kw`) and one
    /// `bias` per output channel; `silu` applies `x · sigmoid(x)` to the result.
    pub fn new(
        shape: ConvShape,
        weights: &[f32],
        bias: &[f32],
        silu: bool,
    ) -> Result<DirectConv, ConvPlanError> {
        let ConvShape {
            cin,
            cout,
            kh,
            kw,
            stride,
            ..
        } = shape;
        let err = |m: String| Err(ConvPlanError(m));
        shape.check()?;
        let (hp, wp) = shape.padded();
        if hp < kh || wp < kw {
            return err(format!("kernel larger than the padded input: {shape:?}"));
        }
        if weights.len() != cout * cin * kh * kw {
            return err(format!(
                "{} weights for {cout}×{cin}×{kh}×{kw}",
                weights.len()
            ));
        }
        if bias.len() != cout {
            return err(format!("{} biases for {cout} output channels", bias.len()));
        }
        let (out_h, out_w) = shape.output();
        let xb = tile_width(out_w);
        let out_w_tiles = out_w.div_ceil(xb) * xb;
        let in_blocks = cin.div_ceil(LANES);
        // The last tile of a row reads up to column (out_w_tiles - 1) * stride + kw - 1.
        let staged_w = wp.max((out_w_tiles - 1) * stride + kw);
        let staged_h = hp;
        let out_blocks = cout.div_ceil(LANES * OB) * OB;
        let tiles = out_blocks / OB;
        let mut packed = Vec::with_capacity(tiles * cin * kh * kw * OB * LANES);
        for t in 0..tiles {
            for b in 0..in_blocks {
                for ky in 0..kh {
                    for kx in 0..kw {
                        for c in b * LANES..(b * LANES + LANES).min(cin) {
                            for j in 0..OB * LANES {
                                let o = t * OB * LANES + j;
                                packed.push(if o < cout {
                                    weights[((o * cin + c) * kh + ky) * kw + kx]
                                } else {
                                    0.0
                                });
                            }
                        }
                    }
                }
            }
        }
        let mut padded_bias = vec![0f32; out_blocks * LANES];
        padded_bias[..cout].copy_from_slice(bias);
        let mut taps = Vec::with_capacity(in_blocks * kh * kw);
        for b in 0..in_blocks {
            for ky in 0..kh {
                for kx in 0..kw {
                    taps.push((
                        ((b * staged_h + ky) * staged_w + kx) * LANES,
                        (cin - b * LANES).min(LANES),
                    ));
                }
            }
        }
        Ok(DirectConv {
            shape,
            silu,
            out_h,
            out_w,
            xb,
            out_w_tiles,
            in_blocks,
            staged_h,
            staged_w,
            out_blocks,
            packed,
            bias: padded_bias,
            taps,
        })
    }

    /// Multiply-accumulates per run.
    pub fn macs(&self) -> usize {
        let s = &self.shape;
        s.cout * s.cin * s.kh * s.kw * self.out_h * self.out_w
    }

    /// Packed weights per tile of 16 output channels.
    fn tile_weights(&self) -> usize {
        let s = &self.shape;
        s.cin * s.kh * s.kw * OB * LANES
    }

    fn staged_len(&self) -> usize {
        self.in_blocks * self.staged_h * self.staged_w * LANES
    }

    fn blocked_len(&self) -> usize {
        self.out_blocks * self.out_h * self.out_w_tiles * LANES
    }

    /// Copies the input into the zero-padded, channel-blocked layout.
    fn stage(&self, input: &[f32], staged: &mut [f32], pool: Option<TeamRef<'_>>) {
        let ConvShape { cin, h, w, pad, .. } = self.shape;
        assert!(input.len() >= cin * h * w && staged.len() >= self.staged_len());
        let (sh, sw) = (self.staged_h, self.staged_w);
        let whole = simd_prefix(w);
        // One staged row (all its pixels' 8 channels) per job.
        let row_job = |r: usize, row: &mut [f32]| {
            let (b, py) = (r / sh, r % sh);
            if py < pad[0] || py >= pad[0] + h {
                row.fill(0.0);
                return;
            }
            let y = py - pad[0];
            let channels = (cin - b * LANES).min(LANES);
            row[..pad[1] * LANES].fill(0.0);
            row[(pad[1] + w) * LANES..].fill(0.0);
            let row = &mut row[pad[1] * LANES..(pad[1] + w) * LANES];
            #[cfg(target_arch = "x86_64")]
            if whole > 0 {
                // SAFETY: AVX2 was detected (`whole` is 0 otherwise); reads channels b·8 ..
                // b·8 + channels, row y, columns 0 .. whole <= w of `input` (asserted
                // size), writes pixels 0 .. whole of this row.
                unsafe {
                    avx::block_8x8(
                        input.as_ptr().add(((b * LANES) * h + y) * w),
                        h * w,
                        channels,
                        row.as_mut_ptr(),
                        whole / LANES,
                    )
                };
            }
            for x in whole..w {
                for c in 0..LANES {
                    row[x * LANES + c] = if c < channels {
                        input[((b * LANES + c) * h + y) * w + x]
                    } else {
                        0.0
                    };
                }
            }
        };
        for_each_chunk(pool, &mut staged[..self.staged_len()], sw * LANES, row_job);
    }

    /// Copies the channel-blocked result into NCHW `output`.
    /// `residual`, when given, is added to the result (same layout as `output`).
    fn unblock(
        &self,
        blocked: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
        pool: Option<TeamRef<'_>>,
    ) {
        let (oh, ow) = (self.out_h, self.out_w);
        let cout = self.shape.cout;
        assert!(output.len() >= cout * oh * ow && blocked.len() >= self.blocked_len());
        assert!(residual.is_none_or(|r| r.len() == output.len()));
        let whole = simd_prefix(ow);
        // One block of 8 output channels (8 planes) per job.
        let block_job = |b: usize, planes: &mut [f32]| {
            let channels = planes.len() / (oh * ow);
            for y in 0..oh {
                let src = ((b * oh + y) * self.out_w_tiles) * LANES;
                #[cfg(target_arch = "x86_64")]
                if whole > 0 {
                    // SAFETY: AVX2 was detected (`whole` is 0 otherwise); reads pixels 0 ..
                    // whole (<= out_w <= out_w_tiles) × 8 channels of block b, row y
                    // (asserted size); writes row y, columns 0 .. whole of this job's
                    // `channels` planes.
                    unsafe {
                        avx::unblock_8x8(
                            blocked.as_ptr().add(src),
                            channels,
                            planes.as_mut_ptr().add(y * ow),
                            oh * ow,
                            whole / LANES,
                        )
                    };
                }
                for x in whole..ow {
                    for c in 0..channels {
                        planes[(c * oh + y) * ow + x] = blocked[src + x * LANES + c];
                    }
                }
                // The row just written is in L1: adding the residual there saves a pass
                // over the whole output.
                if let Some(residual) = residual {
                    let first = b * LANES * oh * ow;
                    for c in 0..channels {
                        let at = (c * oh + y) * ow;
                        let res = &residual[first + at..first + at + ow];
                        planes[at..at + ow]
                            .iter_mut()
                            .zip(res)
                            .for_each(|(v, r)| *v += r);
                    }
                }
            }
        };
        for_each_chunk(
            pool,
            &mut output[..cout * oh * ow],
            LANES * oh * ow,
            block_job,
        );
    }

    /// Fills the channel-blocked output from the staged input.
    fn compute(&self, staged: &[f32], blocked: &mut [f32], pool: Option<TeamRef<'_>>) {
        // The plan's invariants, which the SIMD kernel's reads and writes rely on.
        assert!(staged.len() >= self.staged_len() && blocked.len() >= self.blocked_len());
        assert!(self.staged_w >= (self.out_w_tiles - 1) * self.shape.stride + self.shape.kw);
        assert!(self.staged_h >= (self.out_h - 1) * self.shape.stride + self.shape.kh);
        #[cfg(target_arch = "x86_64")]
        if simd_available() {
            let out = OutPtr(blocked.as_mut_ptr());
            let tiles = self.out_blocks / OB;
            // Work items: (output row, tile of 16 channels), row-major.
            let items = |range: std::ops::Range<usize>| {
                for item in range {
                    let (y, t) = (item / tiles, item % tiles);
                    for x in (0..self.out_w_tiles).step_by(self.xb) {
                        // SAFETY: AVX2 and FMA were detected; the asserts above keep the
                        // tile's reads (rows y·s .. y·s + kh, columns x·s .. (x + xb -
                        // 1)·s + kw of every channel block) inside `staged` and its
                        // writes (blocks 2t, 2t + 1, row y, pixels x .. x + xb) inside
                        // `blocked`; jobs running at once have disjoint (row, tile) items.
                        unsafe {
                            if self.xb == 5 {
                                avx::tile5(self, staged, out.get(), t, y, x)
                            } else {
                                avx::tile6(self, staged, out.get(), t, y, x)
                            }
                        };
                    }
                }
            };
            for_each_range(pool, self.out_h * tiles, 8, items);
            return;
        }
        self.compute_scalar(staged, blocked);
    }

    /// The same as the SIMD kernel, one value at a time.
    fn compute_scalar(&self, staged: &[f32], blocked: &mut [f32]) {
        let ConvShape {
            cin,
            kh,
            kw,
            stride,
            ..
        } = self.shape;
        let k_tile = self.tile_weights();
        for y in 0..self.out_h {
            for x in 0..self.out_w_tiles {
                for t in 0..self.out_blocks / OB {
                    let mut acc = [0f32; OB * LANES];
                    let mut wi = t * k_tile;
                    for b in 0..self.in_blocks {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let at = ((b * self.staged_h + y * stride + ky) * self.staged_w
                                    + x * stride
                                    + kx)
                                    * LANES;
                                for c in 0..(cin - b * LANES).min(LANES) {
                                    let v = staged[at + c];
                                    for (j, a) in acc.iter_mut().enumerate() {
                                        *a += self.packed[wi + j] * v;
                                    }
                                    wi += OB * LANES;
                                }
                            }
                        }
                    }
                    for (j, a) in acc.iter().enumerate() {
                        let o = t * OB * LANES + j;
                        let v = a + self.bias[o];
                        blocked[(((o / LANES) * self.out_h + y) * self.out_w_tiles + x) * LANES
                            + o % LANES] = if self.silu { silu(v) } else { v };
                    }
                }
            }
        }
    }
}

impl ConvPlan for DirectConv {
    fn shape(&self) -> ConvShape {
        self.shape
    }

    fn silu(&self) -> bool {
        self.silu
    }

    fn run_in(
        &self,
        input: &[f32],
        output: &mut [f32],
        pool: Option<TeamRef<'_>>,
    ) -> Result<(), ConvPlanError> {
        self.run_with_residual(input, None, output, pool)
    }

    /// The residual is added while each output row is unblocked, still in L1.
    fn run_with_residual(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
        pool: Option<TeamRef<'_>>,
    ) -> Result<(), ConvPlanError> {
        self.check_sizes(input, output)?;
        self.check_residual(residual, output)?;
        // The buffers are taken out of the thread's slot for the run and put back after,
        // so that a convolution run from inside this one (none of the project's kernels
        // does) would find an empty slot rather than a borrowed one.
        let mut scratch = SCRATCH.with(|slot| std::mem::take(&mut *slot.borrow_mut()));
        {
            let Scratch { staged, blocked } = &mut scratch;
            // Grown when needed, never cleared: `stage` writes every staged value
            // (padding included) and `compute` every blocked one, so the zero-fill of a
            // fresh buffer would be wasted work (a 3.4 MB memset for the stem).
            let (staged_len, blocked_len) = (self.staged_len(), self.blocked_len());
            if staged.len() < staged_len {
                staged.resize(staged_len, 0.0);
            }
            if blocked.len() < blocked_len {
                blocked.resize(blocked_len, 0.0);
            }
            let (staged, blocked) = (&mut staged[..staged_len], &mut blocked[..blocked_len]);
            self.stage(input, staged, pool);
            self.compute(staged, blocked, pool);
            self.unblock(blocked, residual, output, pool);
        }
        SCRATCH.with(|slot| *slot.borrow_mut() = scratch);
        Ok(())
    }
}

/// `f(range)` over consecutive ranges of the items `0..total`: all of them on the
/// calling thread without a team, else [`TeamRef::for_each_range`].
fn for_each_range<F>(team: Option<TeamRef<'_>>, total: usize, chunks_per_thread: usize, f: F)
where
    F: Fn(std::ops::Range<usize>) + Sync,
{
    match team {
        Some(team) => team.for_each_range(total, chunks_per_thread, &f),
        None => f(0..total),
    }
}

/// `f(index, chunk)` for each `chunk_len` chunk of `data` (the last may be shorter),
/// spread over `team` when it has more than one thread.
pub(crate) fn for_each_chunk<F>(team: Option<TeamRef<'_>>, data: &mut [f32], chunk_len: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let len = data.len();
    let chunks = len.div_ceil(chunk_len.max(1));
    let base = OutPtr(data.as_mut_ptr());
    for_each_range(team, chunks, 4, |range| {
        for i in range {
            let start = i * chunk_len;
            let end = (start + chunk_len).min(len);
            // SAFETY: `start < end <= len` for `i < chunks`, and the ranges of different
            // `i` are disjoint, each handed to one call only; `data` is borrowed
            // mutably for the whole loop.
            let chunk =
                unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
            f(i, chunk);
        }
    });
}

/// A depthwise convolution (one kernel per channel, `cin == cout`, NCHW, batch 1) with
/// its bias and optionally SiLU: YOLO11n's head and attention block have seven, which
/// tract runs at a quarter of onnxruntime's speed. Each channel's plane is copied into a
/// zero-padded scratch plane and every kernel tap is one pass of multiply-adds along an
/// output row (vectorised by the compiler, with AVX2 where the CPU has it).
#[derive(Clone, PartialEq)]
pub struct DepthwiseConv {
    shape: ConvShape,
    silu: bool,
    out_h: usize,
    out_w: usize,
    /// `[channel][ky][kx]`.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

plan_identity!(DepthwiseConv);

mod pointwise;
pub use pointwise::PointwiseConv;

thread_local! {
    static PLANE: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl DepthwiseConv {
    /// Plans a depthwise convolution of `shape` (`cin == cout` channels) with `weights`
    /// `[channel][1][kh][kw]` and one `bias` per channel.
    pub fn new(
        shape: ConvShape,
        weights: &[f32],
        bias: &[f32],
        silu: bool,
    ) -> Result<DepthwiseConv, ConvPlanError> {
        let ConvShape {
            cin, cout, kh, kw, ..
        } = shape;
        shape.check()?;
        let (hp, wp) = shape.padded();
        if cin != cout || hp < kh || wp < kw {
            return Err(ConvPlanError(format!(
                "unsupported depthwise convolution {shape:?}"
            )));
        }
        if weights.len() != cin * kh * kw || bias.len() != cin {
            return Err(ConvPlanError(format!(
                "{} weights and {} biases for {shape:?}",
                weights.len(),
                bias.len()
            )));
        }
        let (out_h, out_w) = shape.output();
        Ok(DepthwiseConv {
            shape,
            silu,
            out_h,
            out_w,
            weights: weights.to_vec(),
            bias: bias.to_vec(),
        })
    }

    fn channel(&self, c: usize, input: &[f32], out: &mut [f32]) {
        let ConvShape { h, w, pad, .. } = self.shape;
        let (hp, wp) = self.shape.padded();
        PLANE.with(|plane| {
            let mut plane = plane.borrow_mut();
            // Slack: the last 8-output block of a row reads up to 8 · stride values on.
            let len = hp * wp + LANES * self.shape.stride + self.shape.kw;
            if plane.len() < len {
                plane.resize(len, 0.0);
            }
            let padded = &mut plane[..len];
            // Every value written once: the padding (and the slack) zeroed, between the
            // rows the channel's values copied in.
            let mut at = 0;
            for (y, row) in input.chunks_exact(w).enumerate().take(h) {
                let start = (y + pad[0]) * wp + pad[1];
                padded[at..start].fill(0.0);
                padded[start..start + w].copy_from_slice(row);
                at = start + w;
            }
            padded[at..].fill(0.0);
            let padded = &*padded;
            #[cfg(target_arch = "x86_64")]
            if simd_available() {
                // SAFETY: AVX2 and FMA were detected; the body is safe code.
                unsafe { self.channel_avx(c, padded, out) };
                return;
            }
            self.channel_body(c, padded, out);
        });
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn channel_avx(&self, c: usize, padded: &[f32], out: &mut [f32]) {
        let ConvShape { kh, kw, stride, .. } = self.shape;
        if (kh, kw, stride) == (3, 3, 1) {
            let (_, wp) = self.shape.padded();
            let mut w = [0f32; 9];
            w.copy_from_slice(&self.weights[c * 9..(c + 1) * 9]);
            // Reads reach row (out_h - 1) + 2 and column (blocks of 8 from 0) + 2 + 7:
            // inside `padded` with its slack.
            assert!(
                padded.len() >= (self.out_h + 1) * wp + self.out_w.div_ceil(LANES) * LANES + 2
                    && out.len() >= self.out_h * self.out_w
            );
            avx::depthwise_3x3(padded, wp, out, self.out_h, self.out_w, &w, self.bias[c]);
            if self.silu {
                silu_in_place(out);
            }
            return;
        }
        self.channel_body(c, padded, out);
    }

    /// One channel from its zero-padded plane (with [`LANES`] values of slack at its end,
    /// so that the last block of a row may read past the row).
    #[inline(always)]
    fn channel_body(&self, c: usize, padded: &[f32], out: &mut [f32]) {
        let ConvShape { kh, kw, stride, .. } = self.shape;
        let (_, wp) = self.shape.padded();
        let weights = &self.weights[c * kh * kw..(c + 1) * kh * kw];
        let bias = self.bias[c];
        for (y, row) in out.chunks_exact_mut(self.out_w).enumerate() {
            // Blocks of 8 outputs, accumulated in registers over every tap.
            for (b, block) in row.chunks_mut(LANES).enumerate() {
                let x0 = b * LANES;
                let mut acc = [bias; LANES];
                for ky in 0..kh {
                    let line = (y * stride + ky) * wp + x0 * stride;
                    for kx in 0..kw {
                        let wt = weights[ky * kw + kx];
                        let start = line + kx;
                        if stride == 1 {
                            let src = &padded[start..start + LANES];
                            for (a, x) in acc.iter_mut().zip(src) {
                                *a += wt * *x;
                            }
                        } else {
                            for (i, a) in acc.iter_mut().enumerate() {
                                *a += wt * padded[start + i * stride];
                            }
                        }
                    }
                }
                block.copy_from_slice(&acc[..block.len()]);
            }
            if self.silu {
                silu_in_place(row);
            }
        }
    }
}

impl ConvPlan for DepthwiseConv {
    fn shape(&self) -> ConvShape {
        self.shape
    }

    fn silu(&self) -> bool {
        self.silu
    }

    fn run_in(
        &self,
        input: &[f32],
        output: &mut [f32],
        pool: Option<TeamRef<'_>>,
    ) -> Result<(), ConvPlanError> {
        self.check_sizes(input, output)?;
        let ConvShape { h, w, .. } = self.shape;
        let plane = self.out_h * self.out_w;
        for_each_chunk(pool, output, plane, |c, out| {
            self.channel(c, &input[c * h * w..(c + 1) * h * w], out)
        });
        Ok(())
    }
}

/// SiLU over a slice, 8 lanes at a time where AVX2/FMA are available.
fn silu_in_place(values: &mut [f32]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if simd_available() {
        // SAFETY: AVX2 and FMA were detected.
        unsafe { avx::silu_slice(values) };
        done = simd_prefix(values.len());
    }
    for v in &mut values[done..] {
        *v = silu(*v);
    }
}

/// `x · sigmoid(x)`.
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// `row[j] = exp(row[j] - max)` for every `j`, and their sum (the middle pass of a
/// softmax along a row), 8 lanes at a time where AVX2/FMA are available.
pub fn exp_shifted_total(row: &mut [f32], max: f32) -> f32 {
    let mut done = 0;
    let mut total = 0f32;
    #[cfg(target_arch = "x86_64")]
    if simd_available() {
        // SAFETY: AVX2 and FMA were detected.
        total = unsafe { avx::exp_shifted_total(row, max) };
        done = simd_prefix(row.len());
    }
    for x in &mut row[done..] {
        *x = (*x - max).exp();
        total += *x;
    }
    total
}

/// `row[j] = exp(row[j] - max[j])` and `sum[j] += row[j]` for every `j` (the middle
/// pass of a softmax over rows of columns), 8 lanes at a time where AVX2/FMA are
/// available (a polynomial `exp`, relative error about 1e-7); `max` and `sum` as long
/// as `row`.
pub fn exp_shifted_sum(row: &mut [f32], max: &[f32], sum: &mut [f32]) {
    assert!(max.len() == row.len() && sum.len() == row.len());
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if simd_available() {
        // SAFETY: AVX2 and FMA were detected; the lengths are equal (asserted).
        unsafe { avx::exp_shifted_sum(row, max, sum) };
        done = simd_prefix(row.len());
    }
    for ((x, m), s) in row[done..]
        .iter_mut()
        .zip(&max[done..])
        .zip(&mut sum[done..])
    {
        *x = (*x - m).exp();
        *s += *x;
    }
}

/// How many of `n` values the SIMD paths handle, whole vectors of 8 (0 where they do not
/// run); the scalar code takes the rest.
fn simd_prefix(n: usize) -> usize {
    if simd_available() {
        n / LANES * LANES
    } else {
        0
    }
}

/// Whether this CPU runs the SIMD kernel (x86-64 with AVX2 and FMA).
pub fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{DirectConv, LANES, OB};
    use std::arch::x86_64::*;

    /// Defines a tile kernel over the listed pixels: output channels `16 t .. 16 t + 16`
    /// × pixels `x ..` of output row `y`, written channel-blocked into `blocked`. Its
    /// accumulators are plain locals (an array of them is kept in memory and stored on
    /// every iteration): `$a` for the first 8 channels, `$b` for the next 8.
    macro_rules! tile_kernel {
        ($name:ident: $($i:literal => $a:ident, $b:ident);+) => {
            /// # Safety
            /// AVX2 and FMA must be available, and the plan's invariants hold (checked in
            /// `DirectConv::compute`): `staged` holds the plan's staged size and
            /// `blocked` points to its blocked size, `x + xb <= out_w_tiles`,
            /// `y < out_h`, `t < out_blocks / 2`.
            #[target_feature(enable = "avx2,fma")]
            pub(super) unsafe fn $name(
                conv: &DirectConv,
                staged: &[f32],
                blocked: *mut f32,
                t: usize,
                y: usize,
                x: usize,
            ) {
                let stride = conv.shape.stride;
                let z = _mm256_setzero_ps();
                $( let mut $a = z; let mut $b = z; )+
                let mut w = conv.packed.as_ptr().add(t * conv.tile_weights());
                let origin = staged
                    .as_ptr()
                    .add(((y * stride) * conv.staged_w + x * stride) * LANES);
                let step = stride * LANES;
                for &(offset, channels) in &conv.taps {
                    let at = origin.add(offset);
                    for c in 0..channels {
                        let w0 = _mm256_loadu_ps(w);
                        let w1 = _mm256_loadu_ps(w.add(LANES));
                        let p = at.add(c);
                        $(
                            let v = _mm256_broadcast_ss(&*p.add($i * step));
                            $a = _mm256_fmadd_ps(w0, v, $a);
                            $b = _mm256_fmadd_ps(w1, v, $b);
                        )+
                        w = w.add(OB * LANES);
                    }
                }
                let acc = [[$($a),+], [$($b),+]];
                for (v, row) in acc.iter().enumerate() {
                    let block = t * OB + v;
                    let bias = _mm256_loadu_ps(conv.bias.as_ptr().add(block * LANES));
                    let dst =
                        blocked.add(((block * conv.out_h + y) * conv.out_w_tiles + x) * LANES);
                    for (i, a) in row.iter().enumerate() {
                        let mut r = _mm256_add_ps(*a, bias);
                        if conv.silu {
                            r = silu8(r);
                        }
                        _mm256_storeu_ps(dst.add(i * LANES), r);
                    }
                }
            }
        };
    }

    tile_kernel!(tile6: 0 => a0, b0; 1 => a1, b1; 2 => a2, b2; 3 => a3, b3; 4 => a4, b4; 5 => a5, b5);
    tile_kernel!(tile5: 0 => a0, b0; 1 => a1, b1; 2 => a2, b2; 3 => a3, b3; 4 => a4, b4);

    /// One channel of a 3x3, stride-1 depthwise convolution from its zero-padded plane
    /// (`wp` wide): out[y][x] = bias + Σ w[ky·3 + kx] · padded[y + ky][x + kx], 8
    /// outputs at a time with the nine weights in registers.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `padded` must hold `(out_h + 1) · wp +
    /// ceil(out_w / 8) · 8 + 2` values, `out` `out_h · out_w`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn depthwise_3x3(
        padded: &[f32],
        wp: usize,
        out: &mut [f32],
        out_h: usize,
        out_w: usize,
        w: &[f32; 9],
        bias: f32,
    ) {
        let wv: [__m256; 9] = std::array::from_fn(|k| _mm256_set1_ps(w[k]));
        let b = _mm256_set1_ps(bias);
        let src = padded.as_ptr();
        let mut tail = [0f32; LANES];
        for y in 0..out_h {
            for x in (0..out_w).step_by(LANES) {
                let mut acc = b;
                for ky in 0..3 {
                    let row = src.add((y + ky) * wp + x);
                    acc = _mm256_fmadd_ps(wv[ky * 3], _mm256_loadu_ps(row), acc);
                    acc = _mm256_fmadd_ps(wv[ky * 3 + 1], _mm256_loadu_ps(row.add(1)), acc);
                    acc = _mm256_fmadd_ps(wv[ky * 3 + 2], _mm256_loadu_ps(row.add(2)), acc);
                }
                let dst = &mut out[y * out_w + x..];
                if dst.len() >= LANES && x + LANES <= out_w {
                    _mm256_storeu_ps(dst.as_mut_ptr(), acc);
                } else {
                    _mm256_storeu_ps(tail.as_mut_ptr(), acc);
                    let n = out_w - x;
                    dst[..n].copy_from_slice(&tail[..n]);
                }
            }
        }
    }

    /// SiLU in place over the whole blocks of 8 of `values` (the rest left as is).
    ///
    /// # Safety
    /// AVX2 and FMA must be available.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn silu_slice(values: &mut [f32]) {
        for chunk in values.chunks_exact_mut(LANES) {
            let v = silu8(_mm256_loadu_ps(chunk.as_ptr()));
            _mm256_storeu_ps(chunk.as_mut_ptr(), v);
        }
    }

    /// Transposes 8 rows of 8 floats in registers: out[i][j] = in[j][i].
    #[target_feature(enable = "avx2")]
    unsafe fn transpose(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }

    /// `blocks` × 8 pixels of `channels` (≤ 8) channel rows `channel_stride` apart, from
    /// `src`, written as channel-blocked pixels (missing channels zero) from `dst`.
    ///
    /// # Safety
    /// AVX2 must be available; `src + c · channel_stride .. + 8 · blocks` readable for
    /// each `c < channels`, `dst .. dst + 64 · blocks` writable.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn block_8x8(
        src: *const f32,
        channel_stride: usize,
        channels: usize,
        dst: *mut f32,
        blocks: usize,
    ) {
        for k in 0..blocks {
            let (src, dst) = (src.add(k * LANES), dst.add(k * LANES * LANES));
            let rows: [__m256; 8] = std::array::from_fn(|c| {
                if c < channels {
                    _mm256_loadu_ps(src.add(c * channel_stride))
                } else {
                    _mm256_setzero_ps()
                }
            });
            for (i, v) in transpose(rows).iter().enumerate() {
                _mm256_storeu_ps(dst.add(i * LANES), *v);
            }
        }
    }

    /// The reverse of [`block_8x8`]: `blocks` × 8 channel-blocked pixels from `src`
    /// written as `channels` rows of pixels, `channel_stride` apart, from `dst`.
    ///
    /// # Safety
    /// AVX2 must be available; `src .. src + 64 · blocks` readable, `dst + c ·
    /// channel_stride .. + 8 · blocks` writable for each `c < channels`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn unblock_8x8(
        src: *const f32,
        channels: usize,
        dst: *mut f32,
        channel_stride: usize,
        blocks: usize,
    ) {
        for k in 0..blocks {
            let (src, dst) = (src.add(k * LANES * LANES), dst.add(k * LANES));
            let pixels: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * LANES)));
            for (c, v) in transpose(pixels).iter().enumerate().take(channels) {
                _mm256_storeu_ps(dst.add(c * channel_stride), *v);
            }
        }
    }

    /// `x · sigmoid(x)` on 8 lanes, with `sigmoid(z) = 0.5 + z · P(z²) / Q(z²)` for `z`
    /// clamped to [-18, 18]: `P` of degree 5 and `Q` of degree 3 in `z²`, a rational
    /// fit made for this project (weighted least squares refined towards minimax on
    /// `sigmoid(z) - 0.5`; evaluated in f32 the sigmoid is within 1.9e-7 of the exact
    /// one, the same as with `P` of degree 6). The factor `x` is floored at -18 too, so
    /// the negative tail decays to -18 · sigmoid(-18) ≈ -3e-7 instead of growing with
    /// `x`.
    ///
    /// 13 vector operations and one division, against about 21 and a division for `x /
    /// (1 + exp(-x))` with a range-reduced polynomial `exp` (the version before this
    /// one): the SiLU is up to a third of a short-reduction convolution's time, and
    /// about 1.1 ms of the 22.5 of a YOLO11n inference at 320 on one thread.
    // The coefficients as fitted (in f64), rounded to f32 by the compiler.
    #[allow(clippy::excessive_precision)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn silu8(x: __m256) -> __m256 {
        const LIMIT: f32 = 18.0;
        const P: [f32; 6] = [
            2.499_999_341_861_359e-1,
            8.069_226_897_719_332e-3,
            4.550_124_820_454_929e-5,
            3.592_135_111_100_061e-8,
            -1.229_843_008_760_72e-11,
            4.356_555_140_420_91e-15,
        ];
        const Q: [f32; 4] = [
            1.0,
            1.156_099_903_635_865_5e-1,
            1.482_907_445_526_100_1e-3,
            3.546_137_783_888_894e-6,
        ];
        let f = _mm256_max_ps(x, _mm256_set1_ps(-LIMIT));
        let z = _mm256_min_ps(f, _mm256_set1_ps(LIMIT));
        let w = _mm256_mul_ps(z, z);
        let mut p = _mm256_set1_ps(P[5]);
        for &c in P[..5].iter().rev() {
            p = _mm256_fmadd_ps(p, w, _mm256_set1_ps(c));
        }
        let mut q = _mm256_set1_ps(Q[3]);
        for &c in Q[..3].iter().rev() {
            q = _mm256_fmadd_ps(q, w, _mm256_set1_ps(c));
        }
        let sigmoid = _mm256_fmadd_ps(z, _mm256_div_ps(p, q), _mm256_set1_ps(0.5));
        _mm256_mul_ps(f, sigmoid)
    }

    /// `row[j] = exp(row[j] - max[j])`, `sum[j] += row[j]` over the whole vectors of 8.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `max` and `sum` at least as long as the whole
    /// vectors of `row`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_shifted_sum(row: &mut [f32], max: &[f32], sum: &mut [f32]) {
        let n = row.len() / LANES * LANES;
        assert!(max.len() >= n && sum.len() >= n);
        for j in (0..n).step_by(LANES) {
            let x = _mm256_sub_ps(
                _mm256_loadu_ps(row.as_ptr().add(j)),
                _mm256_loadu_ps(max.as_ptr().add(j)),
            );
            let e = exp8(x);
            _mm256_storeu_ps(row.as_mut_ptr().add(j), e);
            let s = _mm256_add_ps(_mm256_loadu_ps(sum.as_ptr().add(j)), e);
            _mm256_storeu_ps(sum.as_mut_ptr().add(j), s);
        }
    }

    /// `row[j] = exp(row[j] - max)` over the whole vectors of 8, and their sum.
    ///
    /// # Safety
    /// AVX2 and FMA must be available.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_shifted_total(row: &mut [f32], max: f32) -> f32 {
        let n = row.len() / LANES * LANES;
        let m = _mm256_set1_ps(max);
        let mut sum = _mm256_setzero_ps();
        for j in (0..n).step_by(LANES) {
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row.as_ptr().add(j)), m));
            _mm256_storeu_ps(row.as_mut_ptr().add(j), e);
            sum = _mm256_add_ps(sum, e);
        }
        let mut lanes = [0f32; LANES];
        _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
        lanes.iter().sum()
    }

    /// `exp(x)` on 8 lanes: range reduction by ln 2 and a degree-5 polynomial (Cephes'
    /// `expf` coefficients, relative error about 1e-7 on [-87, 88]; inputs are clamped
    /// to that range).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp8(x: __m256) -> __m256 {
        let x = _mm256_min_ps(
            _mm256_set1_ps(88.0),
            _mm256_max_ps(_mm256_set1_ps(-87.0), x),
        );
        // n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two for precision).
        let n = _mm256_round_ps(
            _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut y = _mm256_set1_ps(1.987_569_1e-4);
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.398_199_9e-3));
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.333_452e-3));
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.166_579_6e-2));
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.666_666_5e-1));
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(0.5));
        let r2 = _mm256_mul_ps(r, r);
        y = _mm256_fmadd_ps(y, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0)));
        // Scale by 2^n through the exponent bits.
        let pow2n = _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
            23,
        ));
        _mm256_mul_ps(y, pow2n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::team::Team;
    use crate::test_support::values;

    /// The definition, in f64: out[o][y][x] = bias[o] + Σ w[o][c][ky][kx] · in[c][y·s + ky - pt][x·s + kx - pl].
    fn reference(
        shape: ConvShape,
        input: &[f32],
        weights: &[f32],
        bias: &[f32],
        silu_on: bool,
    ) -> Vec<f32> {
        let ConvShape {
            cin,
            cout,
            h,
            w,
            kh,
            kw,
            stride,
            pad,
        } = shape;
        let (oh, ow) = shape.output();
        let mut out = vec![0f32; cout * oh * ow];
        for o in 0..cout {
            for y in 0..oh {
                for x in 0..ow {
                    let mut acc = f64::from(bias[o]);
                    for c in 0..cin {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (y * stride + ky) as isize - pad[0] as isize;
                                let ix = (x * stride + kx) as isize - pad[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let v = input[(c * h + iy as usize) * w + ix as usize];
                                let wt = weights[((o * cin + c) * kh + ky) * kw + kx];
                                acc += f64::from(v) * f64::from(wt);
                            }
                        }
                    }
                    let v = acc as f32;
                    out[(o * oh + y) * ow + x] = if silu_on {
                        (f64::from(v) / (1.0 + (-f64::from(v)).exp())) as f32
                    } else {
                        v
                    };
                }
            }
        }
        out
    }

    /// Fills this thread's reused scratch buffers with NaN, so that a value a run does
    /// not write shows up in its output.
    fn poison_scratch() {
        SCRATCH.with(|slot| {
            let mut scratch = slot.borrow_mut();
            let Scratch { staged, blocked } = &mut *scratch;
            for buffer in [staged, blocked] {
                buffer.resize(buffer.len().max(1 << 16), f32::NAN);
                buffer.fill(f32::NAN);
            }
        });
    }

    /// Runs `shape` through the SIMD path (on poisoned scratch) and the scalar path and
    /// checks both against the definition, and the two against each other closely.
    fn check(shape: ConvShape, silu_on: bool) {
        let input = values(shape.cin * shape.h * shape.w, 1);
        let weights = values(shape.cout * shape.cin * shape.kh * shape.kw, 2);
        let bias = values(shape.cout, 3);
        let conv = DirectConv::new(shape, &weights, &bias, silu_on).expect("plan");
        let (oh, ow) = conv.output_hw();
        poison_scratch();
        let mut out = vec![f32::NAN; shape.cout * oh * ow];
        conv.run(&input, &mut out).expect("run");
        let want = reference(shape, &input, &weights, &bias, silu_on);
        let scale = (shape.cin * shape.kh * shape.kw) as f32;
        for (i, (a, b)) in out.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * scale.max(1.0) * (1.0 + b.abs()),
                "{shape:?} silu {silu_on}: value {i}: {a} vs {b}"
            );
        }
        let mut staged = vec![f32::NAN; conv.staged_len()];
        conv.stage(&input, &mut staged, None);
        let mut blocked = vec![f32::NAN; conv.blocked_len()];
        conv.compute_scalar(&staged, &mut blocked);
        let mut scalar = vec![f32::NAN; shape.cout * oh * ow];
        conv.unblock(&blocked, None, &mut scalar, None);
        for (i, (a, b)) in out.iter().zip(&scalar).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{shape:?} silu {silu_on}: value {i}: SIMD {a} vs scalar {b}"
            );
        }
    }

    #[test]
    fn simd_silu_matches_the_definition_across_its_range() {
        // 8 lanes × 2001 values from -100 to 100: the clamps of the exp (-87, 88) included.
        let mut xs: Vec<f32> = (0..2001).map(|i| (i as f32 - 1000.0) / 10.0).collect();
        xs.resize(2008, 0.5);
        let want: Vec<f32> = xs
            .iter()
            .map(|&x| (f64::from(x) / (1.0 + (-f64::from(x)).exp())) as f32)
            .collect();
        silu_in_place(&mut xs);
        for (x, (a, b)) in (0..).zip(xs.iter().zip(&want)) {
            assert!(
                (a - b).abs() <= 2e-6 * (1.0 + b.abs()),
                "value {x}: {a} vs {b}"
            );
        }
    }

    #[test]
    fn absurd_sizes_are_refused_before_any_arithmetic() {
        let huge = ConvShape {
            cin: 1,
            cout: 1,
            h: 1 << 62,
            w: 4,
            kh: 1,
            kw: 1,
            stride: 1,
            pad: [0; 4],
        };
        assert!(DirectConv::new(huge, &[1.0], &[0.0], false).is_err());
        assert!(DepthwiseConv::new(huge, &[1.0], &[0.0], false).is_err());
        let empty = ConvShape { w: 0, ..huge };
        assert!(DirectConv::new(ConvShape { h: 4, ..empty }, &[1.0], &[0.0], false).is_err());
        assert!(DepthwiseConv::new(ConvShape { h: 4, ..empty }, &[1.0], &[0.0], false).is_err());
    }

    #[test]
    fn matches_the_definition_on_yolo_shapes_and_odd_ones() {
        let shapes = [
            // 3x3 stride 1 and 2 with padding 1, as in YOLO's convolutions.
            ConvShape::square(16, 8, 20, 3, 1),
            ConvShape::square(8, 16, 20, 3, 2),
            // The stem: 3 channels, stride 2.
            ConvShape::square(3, 16, 32, 3, 2),
            // 1x1 in place, a channel count that is not a multiple of 4, positions not of 8.
            ConvShape {
                cin: 12,
                cout: 6,
                h: 7,
                w: 9,
                kh: 1,
                kw: 1,
                stride: 1,
                pad: [0; 4],
            },
            // Odd sizes, uneven padding, stride 2 over an odd padded width.
            ConvShape {
                cin: 5,
                cout: 7,
                h: 11,
                w: 13,
                kh: 3,
                kw: 3,
                stride: 2,
                pad: [1, 0, 0, 1],
            },
            ConvShape {
                cin: 4,
                cout: 5,
                h: 9,
                w: 10,
                kh: 5,
                kw: 5,
                stride: 1,
                pad: [2; 4],
            },
            ConvShape {
                cin: 2,
                cout: 3,
                h: 6,
                w: 5,
                kh: 3,
                kw: 3,
                stride: 1,
                pad: [0; 4],
            },
            // A 1x1 with padding and a 1x1 with stride 2.
            ConvShape {
                cin: 3,
                cout: 4,
                h: 5,
                w: 5,
                kh: 1,
                kw: 1,
                stride: 1,
                pad: [1; 4],
            },
            ConvShape {
                cin: 3,
                cout: 4,
                h: 9,
                w: 9,
                kh: 1,
                kw: 1,
                stride: 2,
                pad: [0; 4],
            },
        ];
        for shape in shapes {
            check(shape, false);
            check(shape, true);
        }
    }

    #[test]
    fn depthwise_matches_the_definition() {
        let team = Team::new(2, "test").expect("team");
        for shape in [
            ConvShape {
                cin: 5,
                cout: 5,
                h: 11,
                w: 13,
                kh: 3,
                kw: 3,
                stride: 1,
                pad: [1; 4],
            },
            ConvShape {
                cin: 3,
                cout: 3,
                h: 10,
                w: 9,
                kh: 3,
                kw: 3,
                stride: 2,
                pad: [1, 0, 1, 1],
            },
            ConvShape {
                cin: 2,
                cout: 2,
                h: 7,
                w: 8,
                kh: 5,
                kw: 5,
                stride: 1,
                pad: [2; 4],
            },
        ] {
            let input = values(shape.cin * shape.h * shape.w, 10);
            let weights = values(shape.cin * shape.kh * shape.kw, 11);
            let bias = values(shape.cin, 12);
            for silu_on in [false, true] {
                let dw = DepthwiseConv::new(shape, &weights, &bias, silu_on).expect("plan");
                let (oh, ow) = dw.output_hw();
                // The definition: a dense convolution whose kernel is zero off the diagonal.
                let mut dense = vec![0f32; shape.cout * shape.cin * shape.kh * shape.kw];
                for c in 0..shape.cin {
                    for k in 0..shape.kh * shape.kw {
                        dense[(c * shape.cin + c) * shape.kh * shape.kw + k] =
                            weights[c * shape.kh * shape.kw + k];
                    }
                }
                let want = reference(shape, &input, &dense, &bias, silu_on);
                for on_team in [false, true] {
                    // A plane left over from a larger run, poisoned: every value this run
                    // reads must be written by it.
                    PLANE.with(|p| *p.borrow_mut() = vec![f32::NAN; 1 << 12]);
                    let mut out = vec![f32::NAN; shape.cout * oh * ow];
                    team.run(|t| {
                        let t = t.expect("team free");
                        dw.run_in(&input, &mut out, on_team.then_some(t))
                    })
                    .expect("run");
                    for (a, b) in out.iter().zip(&want) {
                        assert!(
                            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                            "{shape:?}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_scalar_path_computes_what_the_simd_kernel_does() {
        let shape = ConvShape {
            cin: 11,
            cout: 19,
            h: 9,
            w: 13,
            kh: 3,
            kw: 3,
            stride: 2,
            pad: [1, 1, 0, 1],
        };
        let input = values(shape.cin * shape.h * shape.w, 7);
        let weights = values(shape.cout * shape.cin * shape.kh * shape.kw, 8);
        let bias = values(shape.cout, 9);
        let conv = DirectConv::new(shape, &weights, &bias, true).expect("plan");
        let (oh, ow) = conv.output_hw();
        let mut staged = vec![f32::NAN; conv.staged_len()];
        conv.stage(&input, &mut staged, None);
        let mut blocked = vec![f32::NAN; conv.blocked_len()];
        conv.compute_scalar(&staged, &mut blocked);
        let mut scalar = vec![f32::NAN; shape.cout * oh * ow];
        conv.unblock(&blocked, None, &mut scalar, None);
        let want = reference(shape, &input, &weights, &bias, true);
        for (a, b) in scalar.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
        let mut simd = vec![f32::NAN; shape.cout * oh * ow];
        conv.run(&input, &mut simd).expect("run");
        for (a, b) in simd.iter().zip(&scalar) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn rows_split_over_a_team_give_the_same_output() {
        let team = Team::new(3, "test").expect("team");
        for shape in [
            ConvShape {
                cin: 16,
                cout: 24,
                h: 13,
                w: 17,
                kh: 3,
                kw: 3,
                stride: 1,
                pad: [1; 4],
            },
            ConvShape::square(9, 16, 20, 3, 2),
        ] {
            let input = values(shape.cin * shape.h * shape.w, 4);
            let weights = values(shape.cout * shape.cin * shape.kh * shape.kw, 5);
            let bias = values(shape.cout, 6);
            let conv = DirectConv::new(shape, &weights, &bias, true).expect("plan");
            let (oh, ow) = conv.output_hw();
            let mut one = vec![f32::NAN; shape.cout * oh * ow];
            let mut many = vec![f32::NAN; shape.cout * oh * ow];
            conv.run(&input, &mut one).expect("run");
            team.run(|t| conv.run_in(&input, &mut many, Some(t.expect("team free"))))
                .expect("run");
            assert_eq!(one, many, "{shape:?}");
        }
    }

    #[test]
    fn shifted_exp_and_sum_match_the_definition() {
        // -100 .. 10 in steps of 0.01 (the clamp at -87 included), 11001 values: whole
        // vectors and a scalar tail.
        let xs: Vec<f32> = (0..11001).map(|i| i as f32 / 100.0 - 100.0).collect();
        let max: Vec<f32> = xs.iter().map(|x| x * 0.5).collect();
        let mut row = xs.clone();
        let mut sum = vec![1.0f32; xs.len()];
        exp_shifted_sum(&mut row, &max, &mut sum);
        for (i, ((x, m), (e, s))) in xs.iter().zip(&max).zip(row.iter().zip(&sum)).enumerate() {
            let want = (f64::from(*x) - f64::from(*m)).exp();
            let tolerance = 3e-7 * want + 1e-37;
            assert!(
                (f64::from(*e) - want).abs() <= tolerance,
                "{i}: exp({x} - {m}) = {e}, not {want}"
            );
            assert_eq!(*s, 1.0 + *e, "{i}");
        }
    }

    #[test]
    fn silu_is_exact_to_float_rounding_across_its_range() {
        for i in -2000..=2000 {
            let x = i as f32 / 20.0;
            let want = (f64::from(x) / (1.0 + (-f64::from(x)).exp())) as f32;
            assert!((silu(x) - want).abs() <= 1e-6 * (1.0 + want.abs()), "{x}");
        }
    }

    #[test]
    fn wrong_sizes_are_refused() {
        let shape = ConvShape::square(2, 2, 4, 3, 1);
        assert!(DirectConv::new(shape, &[0.0; 5], &[0.0; 2], false).is_err());
        assert!(DirectConv::new(shape, &[0.0; 36], &[0.0; 1], false).is_err());
        let bad_stride = ConvShape { stride: 3, ..shape };
        assert!(DirectConv::new(bad_stride, &[0.0; 36], &[0.0; 2], false).is_err());
        let conv = DirectConv::new(shape, &[0.0; 36], &[0.0; 2], false).expect("plan");
        let mut out = vec![0.0; 32];
        assert!(conv.run(&[0.0; 31], &mut out).is_err());
        assert!(conv.run(&[0.0; 32], &mut out[..31]).is_err());
    }
}

#[cfg(test)]
mod phase_times {
    use super::*;
    use crate::team::Team;

    /// Where a [`DirectConv`] run's time goes: staging, the kernel, unblocking
    /// (`cargo test -p opti-vision --lib phase_times -- --ignored --nocapture`).
    #[test]
    #[ignore = "measuring tool"]
    fn stage_compute_unblock() {
        let team = Team::new(2, "test").expect("team");
        let s3 = |cin, cout, size, stride| ConvShape::square(cin, cout, size, 3, stride);
        let s1 = |cin, cout, size| ConvShape::square(cin, cout, size, 1, 1);
        for shape in [
            s3(3, 16, 320, 2),
            s3(16, 8, 80, 1),
            s3(8, 16, 80, 1),
            s3(32, 32, 40, 1),
            s3(64, 64, 20, 1),
            s3(64, 64, 40, 1),
            s3(64, 64, 80, 2),
            s1(48, 64, 80),
            s1(32, 32, 80),
            s1(64, 64, 40),
            s1(256, 256, 10),
            s1(128, 64, 40),
        ] {
            let k = shape.cin * shape.kh * shape.kw;
            let weights: Vec<f32> = (0..shape.cout * k).map(|i| (i % 7) as f32 * 0.1).collect();
            let conv =
                DirectConv::new(shape, &weights, &vec![0.1; shape.cout], true).expect("plan");
            let (oh, ow) = conv.output_hw();
            let input = vec![0.5f32; shape.cin * shape.h * shape.w];
            let mut out = vec![0f32; shape.cout * oh * ow];
            let mut staged = vec![0f32; conv.staged_len()];
            let mut blocked = vec![0f32; conv.blocked_len()];
            let time = |f: &mut dyn FnMut()| {
                for _ in 0..20 {
                    f();
                }
                let t = std::time::Instant::now();
                for _ in 0..200 {
                    f();
                }
                t.elapsed().as_secs_f64() * 1000.0 / 200.0
            };
            let st = time(&mut || conv.stage(&input, &mut staged, None));
            let co = time(&mut || conv.compute(&staged, &mut blocked, None));
            let un = time(&mut || conv.unblock(&blocked, None, &mut out, None));
            // On a team of two.
            let (st2, co2, un2) = team.run(|p| {
                (
                    time(&mut || conv.stage(&input, &mut staged, p)),
                    time(&mut || conv.compute(&staged, &mut blocked, p)),
                    time(&mut || conv.unblock(&blocked, None, &mut out, p)),
                )
            });
            println!(
                "{shape:?}: stage {st:.4} compute {co:.4} unblock {un:.4} ms; 2 threads: \
                 {st2:.4} {co2:.4} {un2:.4}"
            );
        }
    }
}
