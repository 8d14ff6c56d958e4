//! A 1x1 convolution (stride 1, no padding) straight on the NCHW layout, with its bias
//! and optionally SiLU: `out[o][p] = bias[o] + Σ_c w[o][c] · in[c][p]`.
//!
//! tract runs these as matrix products: it packs the input into panels at every run
//! (~0.8 ms per YOLO11n inference at 320) and applies the SiLU as a separate pass over
//! the output (~0.8 ms). Here a thread walks column blocks of the plane (16 to 64
//! pixels, as many as keep the block's panel within 16 KB). For each block it copies the
//! `cin` rows of its pixels into a small panel in L1 — the tiles then read sequential
//! memory instead of `cin` rows a plane apart, each its own TLB page — and runs every
//! tile of output channels on each 16-pixel strip of it. The AVX2/FMA kernel
//! vectorises over the pixels: a tile holds 6 output channels × 16 pixels (two vectors)
//! in 12 registers, and for each input channel it loads the two input vectors and
//! broadcasts the 6 weights (packed once, when the plan is built, in reading order).
//! Bias and SiLU are applied while the tile is in registers, and the result is stored
//! in NCHW. (A 4 × 24 tile reading the rows in place ran at 17-21 GMAC/s: with 12
//! accumulators, three inputs and a broadcast it needs all 16 registers, and LLVM
//! spilled an accumulator inside the loop.)
//!
//! The input may come in *parts* ([`PointwiseConv::run_parts`]): the inputs of a
//! `Concat` along the channels, which the panel copy reads from where they are (the
//! concatenation itself is never written).
//!
//! The same reasoning as [`super::DirectConv`]: every read and write is inside buffers
//! whose sizes are checked when the plan is built and when it runs; a scalar path
//! computes the same where AVX2/FMA are missing.

use super::{
    add_residual, for_each_range, silu, simd_available, ConvPlan, ConvPlanError, ConvShape, OutPtr,
    LANES,
};
use std::fmt;

use crate::team::TeamRef;

/// Output channels per kernel tile.
const MR: usize = 6;
/// Pixels per kernel tile (two vectors).
const NR: usize = 2 * LANES;

/// Values a panel holds at most (16 KB: half of L1, beside the weights and output
/// streams): up to 4 strips (64 pixels, 256 bytes of each input row) for a short
/// reduction, one strip for `cin` of 256 and more. Longer runs of each input row per copy,
/// and the output rows a thread writes continue where its last tile stopped.
const PANEL_FLOATS: usize = 4096;

thread_local! {
    /// The block of input the current thread's tiles read ([`PointwiseConv::pack_block`]).
    static PANEL: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A 1x1 convolution ready to run: packed weights and the checked geometry.
#[derive(Clone, PartialEq)]
pub struct PointwiseConv {
    shape: ConvShape,
    silu: bool,
    /// `h × w`.
    pixels: usize,
    /// Tiles of [`MR`] output channels (the last may be partly past `cout`).
    tiles: usize,
    /// Strips of [`NR`] pixels copied into one panel ([`PANEL_FLOATS`]).
    span: usize,
    /// Weights in the kernel's reading order: `[tile][input channel][MR]`, zero for
    /// output channels past `cout`.
    packed: Vec<f32>,
    /// Bias per output channel, zero past `cout`.
    bias: Vec<f32>,
}

plan_identity!(PointwiseConv);

impl PointwiseConv {
    /// Plans a 1x1 convolution of `shape` (`kh = kw = 1`, stride 1, no padding) with
    /// `weights` `[cout][cin]` (OIHW with 1x1 kernels) and one `bias` per output
    /// channel; `silu` applies `x · sigmoid(x)` to the result.
    pub fn new(
        shape: ConvShape,
        weights: &[f32],
        bias: &[f32],
        silu: bool,
    ) -> Result<PointwiseConv, ConvPlanError> {
        let ConvShape {
            cin, cout, h, w, ..
        } = shape;
        let err = |m: String| Err(ConvPlanError(m));
        shape.check()?;
        if (shape.kh, shape.kw, shape.stride, shape.pad) != (1, 1, 1, [0; 4]) {
            return err(format!(
                "not a 1x1, stride 1, unpadded convolution: {shape:?}"
            ));
        }
        if weights.len() != cout * cin {
            return err(format!("{} weights for {cout}×{cin}", weights.len()));
        }
        if bias.len() != cout {
            return err(format!("{} biases for {cout} output channels", bias.len()));
        }
        let tiles = cout.div_ceil(MR);
        let mut packed = Vec::with_capacity(tiles * cin * MR);
        for t in 0..tiles {
            for c in 0..cin {
                for j in 0..MR {
                    let o = t * MR + j;
                    packed.push(if o < cout { weights[o * cin + c] } else { 0.0 });
                }
            }
        }
        let mut padded_bias = vec![0f32; tiles * MR];
        padded_bias[..cout].copy_from_slice(bias);
        Ok(PointwiseConv {
            shape,
            silu,
            pixels: h * w,
            tiles,
            span: (PANEL_FLOATS / (cin * NR)).clamp(1, 4),
            packed,
            bias: padded_bias,
        })
    }

    /// Multiply-accumulates per run.
    pub fn macs(&self) -> usize {
        self.shape.cout * self.shape.cin * self.pixels
    }

    /// Pixels per panel.
    fn block_len(&self) -> usize {
        self.span * NR
    }

    /// Column blocks of [`Self::block_len`] pixels (the last may be shorter).
    fn blocks(&self) -> usize {
        self.pixels.div_ceil(self.block_len())
    }

    /// Copies the `cin` rows of `block`'s pixels, from the input's `parts` in order,
    /// into `panel` (`cin` rows of `block_len` values, contiguous, zero past the
    /// plane's end).
    fn pack_block(&self, parts: &[&[f32]], block: usize, panel: &mut [f32]) {
        let width = self.block_len();
        let p = block * width;
        let n = (self.pixels - p).min(width);
        let rows = parts
            .iter()
            .flat_map(|part| part.chunks_exact(self.pixels))
            .take(self.shape.cin);
        for (src, dst) in rows.zip(panel.chunks_exact_mut(width)) {
            dst[..n].copy_from_slice(&src[p..p + n]);
            dst[n..].fill(0.0);
        }
    }

    /// The same as the SIMD kernels, one value at a time, for output channels `MR·t ..`
    /// and `pixels`.
    fn tile_scalar(
        &self,
        parts: &[&[f32]],
        output: OutPtr,
        t: usize,
        pixels: std::ops::Range<usize>,
    ) {
        let (cin, cout, hw) = (self.shape.cin, self.shape.cout, self.pixels);
        for j in 0..MR.min(cout - t * MR) {
            let o = t * MR + j;
            for p in pixels.clone() {
                let mut acc = 0f32;
                let rows = parts.iter().flat_map(|part| part.chunks_exact(hw));
                for (c, row) in rows.enumerate().take(cin) {
                    acc += self.packed[(t * cin + c) * MR + j] * row[p];
                }
                let v = acc + self.bias[o];
                let v = if self.silu { silu(v) } else { v };
                // SAFETY: `run_parts` checked that the output holds `cout × hw` values,
                // `o < cout` and `p < hw`; this (tile, pixels) item is written by one
                // thread.
                unsafe { *output.get().add(o * hw + p) = v };
            }
        }
    }

    /// Runs it on an input in `parts` (whole channels each, `cin` in all, in order: the
    /// inputs of a channel concatenation), then adds `residual` if any; see
    /// [`ConvPlan::run_with_residual`].
    pub fn run_parts(
        &self,
        parts: &[&[f32]],
        residual: Option<&[f32]>,
        output: &mut [f32],
        pool: Option<TeamRef<'_>>,
    ) -> Result<(), ConvPlanError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if parts.iter().any(|p| p.len() % self.pixels != 0) || total != self.shape.cin * self.pixels
        {
            return Err(ConvPlanError(format!(
                "{:?}: input parts of {:?} values are not {} whole planes of {}",
                self.shape,
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                self.shape.cin,
                self.pixels
            )));
        }
        if output.len() != self.shape.cout * self.pixels {
            return Err(ConvPlanError(format!(
                "{:?}: output has {} values (expected {})",
                self.shape,
                output.len(),
                self.shape.cout * self.pixels
            )));
        }
        self.check_residual(residual, output)?;
        let out = OutPtr(output.as_mut_ptr());
        let blocks = self.blocks();
        // Work items: (group of output-channel tiles, block). One group unless there
        // are too few blocks to share between the threads (the small planes deep in
        // the network), then the tiles are split too.
        let threads = pool.map_or(1, |p| p.threads());
        let groups = if threads > 1 {
            (threads * 4).div_ceil(blocks).clamp(1, self.tiles)
        } else {
            1
        };
        let per_group = self.tiles.div_ceil(groups);
        let simd = simd_available();
        let width = self.block_len();
        let item = |i: usize| {
            let (g, block) = (i / blocks, i % blocks);
            let tiles = g * per_group..((g + 1) * per_group).min(self.tiles);
            let p0 = block * width;
            let n0 = (self.pixels - p0).min(width);
            #[cfg(target_arch = "x86_64")]
            if simd {
                PANEL.with(|panel| {
                    let mut panel = panel.borrow_mut();
                    let len = self.shape.cin * width;
                    if panel.len() < len {
                        panel.resize(len, 0.0);
                    }
                    let panel = &mut panel[..len];
                    self.pack_block(parts, block, panel);
                    for sub in (0..n0).step_by(NR) {
                        let (p, n) = (p0 + sub, (n0 - sub).min(NR));
                        for t in tiles.clone() {
                            // The last tile with fewer channels left runs a narrower
                            // kernel.
                            let kernel = match self.shape.cout - t * MR {
                                1..=2 => avx::tile2,
                                3..=4 => avx::tile4,
                                _ => avx::tile6,
                            };
                            // SAFETY: AVX2 and FMA were detected; `panel` holds `cin`
                            // rows of `width` values and `sub + NR <= width`, the
                            // output `cout × pixels` (checked above), `p + n <=
                            // pixels`; items are disjoint (block, tile) parts of the
                            // output.
                            unsafe {
                                kernel(self, panel.as_ptr().add(sub), width, out.get(), t, p, n)
                            };
                        }
                    }
                });
                return;
            }
            for t in tiles {
                self.tile_scalar(parts, out, t, p0..p0 + n0);
            }
        };
        // Consecutive blocks in each of a few ranges per thread.
        for_each_range(pool, blocks * groups, 4, |range| range.for_each(item));
        add_residual(residual, output, pool);
        Ok(())
    }
}

impl ConvPlan for PointwiseConv {
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
        // `run_parts` checks the sizes (one part of `cin` planes, the output's).
        self.run_parts(&[input], None, output, pool)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::super::avx::silu8;
    use super::{PointwiseConv, LANES, MR};
    use std::arch::x86_64::*;

    /// Bias, SiLU and store of one accumulator vector of output channel `o`.
    #[inline(always)]
    unsafe fn finish(conv: &PointwiseConv, acc: __m256, o: usize) -> __m256 {
        let r = _mm256_add_ps(acc, _mm256_broadcast_ss(&*conv.bias.as_ptr().add(o)));
        if conv.silu {
            silu8(r)
        } else {
            r
        }
    }

    /// Defines a tile kernel for the listed output channel rows: output channels `MR·t
    /// ..` (those below `cout`) × pixels `p .. p + n` (`n <= 16`), from a 16-pixel strip
    /// of the packed panel (`cin` rows, `row` values apart). Accumulators are plain locals, two
    /// vectors per row (`$a` for pixels 0..8, `$b` for 8..16): 12 of the 16 registers
    /// for 6 rows, with the two input vectors and one broadcast weight beside them.
    macro_rules! tile_kernel {
        ($name:ident: $($j:literal => $a:ident, $b:ident);+) => {
            /// # Safety
            /// AVX2 and FMA must be available; `panel` must point to `cin` rows of 16
            /// values, `row` apart, and `output` hold `cout × pixels`; `p + n <=
            /// pixels`, `t < tiles`.
            #[target_feature(enable = "avx2,fma")]
            pub(super) unsafe fn $name(
                conv: &PointwiseConv,
                panel: *const f32,
                row: usize,
                output: *mut f32,
                t: usize,
                p: usize,
                n: usize,
            ) {
                let (cin, hw) = (conv.shape.cin, conv.pixels);
                let z = _mm256_setzero_ps();
                $( let mut $a = z; let mut $b = z; )+
                let mut w = conv.packed.as_ptr().add(t * cin * MR);
                let mut x = panel;
                for _ in 0..cin {
                    let x0 = _mm256_loadu_ps(x);
                    let x1 = _mm256_loadu_ps(x.add(LANES));
                    $(
                        let wj = _mm256_broadcast_ss(&*w.add($j));
                        $a = _mm256_fmadd_ps(wj, x0, $a);
                        $b = _mm256_fmadd_ps(wj, x1, $b);
                    )+
                    x = x.add(row);
                    w = w.add(MR);
                }
                let acc = [$([$a, $b]),+];
                let rows = acc.len().min(conv.shape.cout - t * MR);
                if rows == acc.len() && n == 2 * LANES {
                    // The whole tile: one straight block, so that the SiLUs of all its
                    // vectors are scheduled together.
                    let mut dst = output.add(t * MR * hw + p);
                    $(
                        let o = t * MR + $j;
                        let r0 = finish(conv, $a, o);
                        let r1 = finish(conv, $b, o);
                        _mm256_storeu_ps(dst, r0);
                        _mm256_storeu_ps(dst.add(LANES), r1);
                        #[allow(unused_assignments)]
                        { dst = dst.add(hw); }
                    )+
                    return;
                }
                for (j, row) in acc.iter().enumerate().take(rows) {
                    let o = t * MR + j;
                    let dst = output.add(o * hw + p);
                    for (i, a) in row.iter().enumerate() {
                        let start = i * LANES;
                        if start + LANES <= n {
                            _mm256_storeu_ps(dst.add(start), finish(conv, *a, o));
                        } else if start < n {
                            let mask = _mm256_cmpgt_epi32(
                                _mm256_set1_epi32((n - start) as i32),
                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                            );
                            _mm256_maskstore_ps(dst.add(start), mask, finish(conv, *a, o));
                        }
                    }
                }
            }
        };
    }

    tile_kernel!(tile6: 0 => a0, b0; 1 => a1, b1; 2 => a2, b2; 3 => a3, b3; 4 => a4, b4; 5 => a5, b5);
    tile_kernel!(tile4: 0 => a0, b0; 1 => a1, b1; 2 => a2, b2; 3 => a3, b3);
    tile_kernel!(tile2: 0 => a0, b0; 1 => a1, b1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::team::Team;
    use crate::test_support::values;

    /// The definition, in f64.
    fn reference(
        s: ConvShape,
        input: &[f32],
        weights: &[f32],
        bias: &[f32],
        silu_on: bool,
    ) -> Vec<f32> {
        let hw = s.h * s.w;
        let mut out = vec![0f32; s.cout * hw];
        for o in 0..s.cout {
            for p in 0..hw {
                let mut acc = f64::from(bias[o]);
                for c in 0..s.cin {
                    acc += f64::from(weights[o * s.cin + c]) * f64::from(input[c * hw + p]);
                }
                out[o * hw + p] = if silu_on {
                    acc / (1.0 + (-acc).exp())
                } else {
                    acc
                } as f32;
            }
        }
        out
    }

    fn close(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= tolerance * (1.0 + b.abs()),
                "{what}: value {i}: {a} vs {b}"
            );
        }
    }

    #[test]
    fn matches_the_definition_single_and_multi_threaded() {
        let teams: Vec<Team> = [2, 3]
            .iter()
            .map(|&n| Team::new(n, "test").expect("team"))
            .collect();
        for s in [
            // YOLO-like: channel counts of 16..64, planes of 20×20 and 10×10 (not whole
            // 64-pixel blocks: 400 = 6·64 + 16, 100 = 64 + 2·16 + 4).
            ConvShape::pointwise(48, 64, 20, 20),
            ConvShape::pointwise(64, 32, 10, 10),
            // Output channels not a multiple of 4, planes smaller than a vector or a strip.
            ConvShape::pointwise(12, 6, 7, 9),
            ConvShape::pointwise(3, 5, 1, 1),
            ConvShape::pointwise(1, 1, 5, 5),
            ConvShape::pointwise(7, 13, 2, 12),
            ConvShape::pointwise(256, 8, 3, 8),
        ] {
            let hw = s.h * s.w;
            let input = values(s.cin * hw, 1);
            let weights = values(s.cout * s.cin, 2);
            let bias = values(s.cout, 3);
            let tolerance = 2e-6 * s.cin as f32;
            for silu_on in [false, true] {
                let conv = PointwiseConv::new(s, &weights, &bias, silu_on).expect("plan");
                assert_eq!(conv.macs(), s.cout * s.cin * hw);
                let want = reference(s, &input, &weights, &bias, silu_on);
                let what = format!("{s:?} silu {silu_on}");
                // A panel left over from a larger run, poisoned: every value a block's
                // tiles read must be packed by this run.
                PANEL.with(|p| *p.borrow_mut() = vec![f32::NAN; 1 << 14]);
                // NaN where a run fails to write shows in the comparison.
                let mut one = vec![f32::NAN; s.cout * hw];
                conv.run(&input, &mut one).expect("run");
                close(&one, &want, tolerance, &what);
                for team in &teams {
                    let mut many = vec![f32::NAN; s.cout * hw];
                    team.run(|t| conv.run_in(&input, &mut many, Some(t.expect("team free"))))
                        .expect("run");
                    assert_eq!(one, many, "{what} on {} threads", team.threads());
                }
                // The scalar path over every tile computes the same.
                let mut scalar = vec![f32::NAN; s.cout * hw];
                let out = OutPtr(scalar.as_mut_ptr());
                for t in 0..conv.tiles {
                    conv.tile_scalar(&[&input], out, t, 0..hw);
                }
                close(&scalar, &one, 1e-5, &format!("{what}: scalar vs SIMD"));
            }
        }
    }

    #[test]
    fn an_input_in_parts_gives_what_the_whole_input_gives() {
        let team = Team::new(2, "test").expect("team");
        let s = ConvShape::pointwise(12, 10, 5, 7);
        let hw = 35;
        let input = values(12 * hw, 4);
        let conv = PointwiseConv::new(s, &values(120, 5), &values(10, 6), true).expect("plan");
        let mut whole = vec![f32::NAN; 10 * hw];
        conv.run(&input, &mut whole).expect("run");
        // Parts of 2, 3 and 7 channels (a concatenation of three inputs), and an empty one.
        let (a, rest) = input.split_at(2 * hw);
        let (b, c) = rest.split_at(3 * hw);
        for on_team in [false, true] {
            let mut parted = vec![f32::NAN; 10 * hw];
            team.run(|t| {
                let t = t.expect("team free");
                conv.run_parts(&[a, &[], b, c], None, &mut parted, on_team.then_some(t))
            })
            .expect("run");
            assert_eq!(parted, whole);
        }
        // Parts that are not whole planes, or not `cin` of them, are refused.
        let mut out = vec![0.0; 10 * hw];
        assert!(conv
            .run_parts(&[&input[..hw + 1], &input[hw + 1..]], None, &mut out, None)
            .is_err());
        assert!(conv.run_parts(&[a, b], None, &mut out, None).is_err());
        assert!(conv
            .run_parts(&[a, b, c], None, &mut out[1..], None)
            .is_err());
    }

    #[test]
    fn other_shapes_and_wrong_sizes_are_refused() {
        let s = ConvShape::pointwise(4, 2, 3, 3);
        let (w, b) = (vec![0.5; 8], vec![0.0; 2]);
        assert!(PointwiseConv::new(s, &w, &b, false).is_ok());
        for other in [
            ConvShape { kh: 3, kw: 3, ..s },
            ConvShape { stride: 2, ..s },
            ConvShape { pad: [1; 4], ..s },
            ConvShape { h: 1 << 62, ..s },
            ConvShape { w: 0, ..s },
        ] {
            assert!(
                PointwiseConv::new(other, &w, &b, false).is_err(),
                "{other:?}"
            );
        }
        assert!(PointwiseConv::new(s, &w[..7], &b, false).is_err());
        assert!(PointwiseConv::new(s, &w, &b[..1], false).is_err());
        let conv = PointwiseConv::new(s, &w, &b, false).expect("plan");
        let mut out = vec![0.0; 18];
        assert!(conv.run(&[0.0; 35], &mut out).is_err());
        assert!(conv.run(&[0.0; 36], &mut out[..17]).is_err());
        conv.run(&[1.0; 36], &mut out).expect("run");
        assert_eq!(out, vec![2.0; 18]);
    }

    /// This plan against [`super::super::DirectConv`] on YOLO11n's 1x1 shapes at 320
    /// (`cargo test -p opti-vision --lib pointwise_vs_direct -- --ignored --nocapture`).
    #[test]
    #[ignore = "measuring tool"]
    fn pointwise_vs_direct() {
        use super::super::DirectConv;
        let team = Team::new(2, "test").expect("team");
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
        for (cin, cout, size) in [
            (48, 64, 80),
            (32, 32, 80),
            (64, 64, 40),
            (128, 128, 20),
            (256, 256, 10),
            (128, 64, 40),
            (384, 128, 20),
        ] {
            let s = ConvShape::square(cin, cout, size, 1, 1);
            let weights = values(cout * cin, 1);
            let bias = values(cout, 2);
            let input = values(cin * size * size, 3);
            let mut out = vec![0f32; cout * size * size];
            for silu_on in [true, false] {
                let pw = PointwiseConv::new(s, &weights, &bias, silu_on).expect("plan");
                let dc = DirectConv::new(s, &weights, &bias, silu_on).expect("plan");
                let a = time(&mut || pw.run(&input, &mut out).expect("run"));
                let b = time(&mut || dc.run(&input, &mut out).expect("run"));
                let (a2, b2) = team.run(|t| {
                    (
                        time(&mut || pw.run_in(&input, &mut out, t).expect("run")),
                        time(&mut || dc.run_in(&input, &mut out, t).expect("run")),
                    )
                });
                let gmacs = |ms: f64| pw.macs() as f64 / ms / 1e6;
                println!(
                    "{cin}->{cout} @ {size} silu {silu_on}: pointwise {a:.4} ms ({:.1} GMAC/s), \
                     direct {b:.4} ms ({:.1}); 2 threads: pointwise {a2:.4} ({:.2}×), direct \
                     {b2:.4} ({:.2}×)",
                    gmacs(a),
                    gmacs(b),
                    a / a2,
                    b / b2
                );
            }
        }
    }
}
