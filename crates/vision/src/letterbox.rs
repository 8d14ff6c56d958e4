//! Letterbox exactly as Ultralytics' `LetterBox` (ultralytics/data/augment.py, 8.4):
//! scale to fit keeping the aspect ratio, centre, pad with grey 114. The resize is a
//! bit-exact port of OpenCV's `cv2.resize(..., INTER_LINEAR)` for 8-bit images (11-bit
//! fixed-point weights, half-pixel centres, edge clamping, the 2× fast path), and the
//! rounding of sizes and padding follows Python's `round` (ties to even), so the model
//! sees the same tensor as under Ultralytics' own predict.

use image::RgbImage;

/// Grey value of the padding, as Ultralytics uses.
pub const PAD_VALUE: u8 = 114;

/// Where the original image sits inside the model input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LetterboxGeometry {
    /// Original image size.
    pub src_width: u32,
    pub src_height: u32,
    /// Model input size.
    pub dst_width: u32,
    pub dst_height: u32,
    /// Size of the resized image inside the padding.
    pub new_width: u32,
    pub new_height: u32,
    /// Padding on the left and top, in model-input pixels.
    pub left: u32,
    pub top: u32,
}

/// Python 3 `round()` of a non-negative float: halves go to the even neighbour.
fn py_round(x: f64) -> i64 {
    x.round_ties_even() as i64
}

impl LetterboxGeometry {
    /// The geometry `LetterBox(new_shape=(dst_h, dst_w), auto=False, center=True,
    /// scaleup=True)` computes for a `src_w × src_h` image.
    pub fn new(src_width: u32, src_height: u32, dst_width: u32, dst_height: u32) -> Self {
        let (sw, sh) = (f64::from(src_width), f64::from(src_height));
        let (dw, dh) = (f64::from(dst_width), f64::from(dst_height));
        let r = (dh / sh).min(dw / sw);
        let new_width = py_round(sw * r).max(1) as u32;
        let new_height = py_round(sh * r).max(1) as u32;
        let pad_w = (f64::from(dst_width) - f64::from(new_width)) / 2.0;
        let pad_h = (f64::from(dst_height) - f64::from(new_height)) / 2.0;
        let left = py_round(pad_w - 0.1).max(0) as u32;
        let top = py_round(pad_h - 0.1).max(0) as u32;
        Self {
            src_width,
            src_height,
            dst_width,
            dst_height,
            new_width,
            new_height,
            left,
            top,
        }
    }

    /// Horizontal scale from original to model-input pixels (`new_width / src_width`).
    pub fn gain_x(&self) -> f64 {
        f64::from(self.new_width) / f64::from(self.src_width)
    }

    /// Vertical scale from original to model-input pixels.
    pub fn gain_y(&self) -> f64 {
        f64::from(self.new_height) / f64::from(self.src_height)
    }

    /// Maps a box `[x1, y1, x2, y2]` in model-input pixels to the original image,
    /// normalised to `[0, 1]` and clipped (what Ultralytics' `scale_boxes` + `clip_boxes`
    /// do, then divided by the original size).
    pub fn to_original_normalised(&self, b: [f32; 4]) -> [f32; 4] {
        let (gx, gy) = (self.gain_x(), self.gain_y());
        let (l, t) = (f64::from(self.left), f64::from(self.top));
        let (w, h) = (f64::from(self.src_width), f64::from(self.src_height));
        let x = |v: f32| (((f64::from(v) - l) / gx).clamp(0.0, w) / w) as f32;
        let y = |v: f32| (((f64::from(v) - t) / gy).clamp(0.0, h) / h) as f32;
        [x(b[0]), y(b[1]), x(b[2]), y(b[3])]
    }
}

/// Letterboxes an RGB image to `dst_width × dst_height` (interleaved RGB8 out).
pub fn letterbox(src: &RgbImage, dst_width: u32, dst_height: u32) -> (RgbImage, LetterboxGeometry) {
    let geo = LetterboxGeometry::new(src.width(), src.height(), dst_width, dst_height);
    let resized;
    let inner: &RgbImage = if (src.width(), src.height()) == (geo.new_width, geo.new_height) {
        src
    } else {
        resized = resize_linear(src, geo.new_width, geo.new_height);
        &resized
    };
    let mut out = RgbImage::from_pixel(dst_width, dst_height, image::Rgb([PAD_VALUE; 3]));
    let row_bytes = geo.new_width as usize * 3;
    let out_stride = dst_width as usize * 3;
    let dst_raw: &mut [u8] = &mut out;
    for (y, src_row) in inner.as_raw().chunks_exact(row_bytes).enumerate() {
        let start = (geo.top as usize + y) * out_stride + geo.left as usize * 3;
        dst_raw[start..start + row_bytes].copy_from_slice(src_row);
    }
    (out, geo)
}

/// `v / 255.0` in f32 for every byte `v`, computed once at compile time (IEEE division,
/// the same quotients as at run time).
const SCALED: [f32; 256] = {
    let mut table = [0f32; 256];
    let mut v = 0;
    while v < 256 {
        table[v] = v as f32 / 255.0;
        v += 1;
    }
    table
};

/// Writes a letterboxed RGB8 image as an NCHW float tensor in `[0, 1]` (`out` must hold
/// `3 × width × height` values): each byte `v` becomes `v / 255.0` in f32, as
/// Ultralytics' `img / 255` computes it (looked up in [`SCALED`] rather than divided,
/// one value at a time).
pub fn to_nchw(image: &RgbImage, out: &mut [f32]) {
    let plane = image.width() as usize * image.height() as usize;
    assert_eq!(out.len(), 3 * plane, "tensor buffer has the wrong size");
    let scaled = &SCALED;
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    let pixels = image.as_raw().chunks_exact(3);
    for (((px, r), g), b) in pixels.zip(r).zip(g).zip(b) {
        *r = scaled[usize::from(px[0])];
        *g = scaled[usize::from(px[1])];
        *b = scaled[usize::from(px[2])];
    }
}

const COEF_BITS: i32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// Per-output-pixel source index and fixed-point weights along one axis, as OpenCV's
/// `resize` computes them for `INTER_LINEAR`.
fn linear_taps(src_len: u32, dst_len: u32) -> Vec<(usize, i16, i16)> {
    let scale = 1.0 / (f64::from(dst_len) / f64::from(src_len));
    (0..dst_len)
        .map(|d| {
            // OpenCV computes the position in double, then stores it as float.
            let f = ((f64::from(d) + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if s < 0 {
                s = 0;
                frac = 0.0;
            }
            if s >= i64::from(src_len) - 1 {
                s = i64::from(src_len) - 1;
                frac = 0.0;
            }
            // saturate_cast<short>(float) rounds half to even, like lrintf.
            let w0 = ((1.0 - frac) * COEF_SCALE).round_ties_even() as i16;
            let w1 = (frac * COEF_SCALE).round_ties_even() as i16;
            (s as usize, w0, w1)
        })
        .collect()
}

/// Vertical taps keep OpenCV's quirk: the row index is clamped when the pair of rows is
/// fetched, but the weights are not reset at the borders.
fn vertical_taps(src_len: u32, dst_len: u32) -> Vec<(usize, usize, i32, i32)> {
    let scale = 1.0 / (f64::from(dst_len) / f64::from(src_len));
    let last = i64::from(src_len) - 1;
    (0..dst_len)
        .map(|d| {
            let f = ((f64::from(d) + 0.5) * scale - 0.5) as f32;
            let s = f.floor() as i64;
            let frac = f - s as f32;
            let w0 = ((1.0 - frac) * COEF_SCALE).round_ties_even() as i32;
            let w1 = (frac * COEF_SCALE).round_ties_even() as i32;
            (
                s.clamp(0, last) as usize,
                (s + 1).clamp(0, last) as usize,
                w0,
                w1,
            )
        })
        .collect()
}

/// OpenCV `INTER_LINEAR` resize of an RGB8 image, bit-exact for the paths OpenCV takes
/// on x86 (generic fixed-point linear, and `INTER_AREA` for an exact 2× reduction).
pub fn resize_linear(src: &RgbImage, dst_width: u32, dst_height: u32) -> RgbImage {
    let (sw, sh) = (src.width(), src.height());
    if sw == dst_width * 2 && sh == dst_height * 2 {
        return halve_area(src, dst_width, dst_height);
    }
    let xtaps = linear_taps(sw, dst_width);
    let ytaps = vertical_taps(sh, dst_height);
    let src_raw = src.as_raw();
    let src_stride = sw as usize * 3;
    let dw = dst_width as usize;

    // Horizontal pass, one source row at a time, cached for the two rows a line needs.
    let hrow = |y: usize, buf: &mut Vec<i32>| {
        let row = &src_raw[y * src_stride..(y + 1) * src_stride];
        buf.clear();
        for &(sx, w0, w1) in &xtaps {
            let (w0, w1) = (i32::from(w0), i32::from(w1));
            let p = sx * 3;
            let q = if sx + 1 < sw as usize { p + 3 } else { p };
            for c in 0..3 {
                buf.push(i32::from(row[p + c]) * w0 + i32::from(row[q + c]) * w1);
            }
        }
    };
    let mut out = RgbImage::new(dst_width, dst_height);
    let out_raw: &mut [u8] = &mut out;
    let mut cache: [(usize, Vec<i32>); 2] = [
        (usize::MAX, Vec::with_capacity(dw * 3)),
        (usize::MAX, Vec::with_capacity(dw * 3)),
    ];
    for (dy, &(y0, y1, b0, b1)) in ytaps.iter().enumerate() {
        for (slot, y) in [(0usize, y0), (1usize, y1)] {
            if cache[slot].0 != y {
                let other = 1 - slot;
                if cache[other].0 == y {
                    let v = cache[other].1.clone();
                    cache[slot] = (y, v);
                } else {
                    let mut v = std::mem::take(&mut cache[slot].1);
                    hrow(y, &mut v);
                    cache[slot] = (y, v);
                }
            }
        }
        let (s0, s1) = (&cache[0].1, &cache[1].1);
        let line = &mut out_raw[dy * dw * 3..(dy + 1) * dw * 3];
        for i in 0..dw * 3 {
            // VResizeLinear<uchar, int, short>: two products of 2^22-scaled values.
            let v = ((b0 * (s0[i] >> 4)) >> 16) + ((b1 * (s1[i] >> 4)) >> 16) + 2;
            line[i] = (v >> 2).clamp(0, 255) as u8;
        }
    }
    out
}

/// OpenCV switches `INTER_LINEAR` to its fast `INTER_AREA` path for an exact 2× reduction:
/// the rounded mean of each 2×2 block.
fn halve_area(src: &RgbImage, dst_width: u32, dst_height: u32) -> RgbImage {
    let raw = src.as_raw();
    let stride = src.width() as usize * 3;
    let mut out = RgbImage::new(dst_width, dst_height);
    let out_raw: &mut [u8] = &mut out;
    let dw = dst_width as usize;
    for (dy, line) in out_raw.chunks_exact_mut(dw * 3).enumerate() {
        let r0 = &raw[2 * dy * stride..2 * dy * stride + dw * 6];
        let r1 = &raw[(2 * dy + 1) * stride..(2 * dy + 1) * stride + dw * 6];
        // Each output pixel from a 6-byte run (two pixels) of each of the two rows.
        for ((d, a), b) in line
            .chunks_exact_mut(3)
            .zip(r0.chunks_exact(6))
            .zip(r1.chunks_exact(6))
        {
            for c in 0..3 {
                let sum =
                    u16::from(a[c]) + u16::from(a[c + 3]) + u16::from(b[c]) + u16::from(b[c + 3]);
                d[c] = ((sum + 2) >> 2) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn geometry_matches_ultralytics_for_landscape_and_portrait() {
        // 640x480 -> 320x320: r = 0.5, new 320x240, dh = 40 split 40/40.
        let g = LetterboxGeometry::new(640, 480, 320, 320);
        assert_eq!(
            (g.new_width, g.new_height, g.left, g.top),
            (320, 240, 0, 40)
        );
        // 641x479: r = 320/641, new_h = round(239.126) = 239, dh = 81 -> top round(40.4) = 40.
        let g = LetterboxGeometry::new(641, 479, 320, 320);
        assert_eq!(
            (g.new_width, g.new_height, g.left, g.top),
            (320, 239, 0, 40)
        );
        let g = LetterboxGeometry::new(250, 1000, 320, 320);
        assert_eq!(
            (g.new_width, g.new_height, g.left, g.top),
            (80, 320, 120, 0)
        );
    }

    #[test]
    fn python_round_sends_halves_to_even() {
        assert_eq!(py_round(2.5), 2);
        assert_eq!(py_round(3.5), 4);
        assert_eq!(py_round(40.4), 40);
    }

    #[test]
    fn letterbox_pads_with_grey_and_centres_the_image() {
        let src = RgbImage::from_pixel(640, 320, Rgb([10, 20, 30]));
        let (out, g) = letterbox(&src, 320, 320);
        assert_eq!((g.new_width, g.new_height, g.top), (320, 160, 80));
        assert_eq!(out.get_pixel(5, 5), &Rgb([114, 114, 114]));
        assert_eq!(out.get_pixel(160, 160), &Rgb([10, 20, 30]));
        assert_eq!(out.get_pixel(160, 79), &Rgb([114, 114, 114]));
        assert_eq!(out.get_pixel(160, 80), &Rgb([10, 20, 30]));
    }

    #[test]
    fn a_flat_image_stays_flat_through_any_resize() {
        let src = RgbImage::from_pixel(97, 61, Rgb([200, 3, 77]));
        for (w, h) in [(320, 201), (40, 25), (48, 30)] {
            let out = resize_linear(&src, w, h);
            assert!(out.pixels().all(|p| p == &Rgb([200, 3, 77])), "{w}x{h}");
        }
    }

    #[test]
    fn boxes_map_back_to_normalised_original_coordinates() {
        let g = LetterboxGeometry::new(640, 480, 320, 320);
        // The whole resized image spans x 0..320, y 40..280.
        let b = g.to_original_normalised([0.0, 40.0, 320.0, 280.0]);
        for (v, e) in b.iter().zip([0.0, 0.0, 1.0, 1.0]) {
            assert!((v - e).abs() < 1e-6, "{b:?}");
        }
        // Outside the image is clipped.
        let b = g.to_original_normalised([-10.0, 0.0, 400.0, 300.0]);
        assert_eq!(b, [0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn halving_is_the_rounded_mean_of_each_block_and_nchw_divides_by_255() {
        // Every byte value at every position of the 2×2 blocks, odd width of output.
        let (w, h) = (2 * 37, 2 * 11);
        let src = RgbImage::from_fn(w, h, |x, y| {
            let v = |c: u32| ((x * 7 + y * 131 + c * 59) % 256) as u8;
            Rgb([v(0), v(1), v(2)])
        });
        let out = resize_linear(&src, w / 2, h / 2);
        for (x, y, p) in out.enumerate_pixels() {
            for c in 0..3 {
                let sum: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                    .iter()
                    .map(|(dx, dy)| u32::from(src.get_pixel(2 * x + dx, 2 * y + dy)[c]))
                    .sum();
                assert_eq!(u32::from(p[c]), (sum + 2) / 4, "({x}, {y}) channel {c}");
            }
        }
        let mut tensor = vec![f32::NAN; 3 * (w * h) as usize];
        to_nchw(&src, &mut tensor);
        let plane = (w * h) as usize;
        for (i, p) in src.pixels().enumerate() {
            for c in 0..3 {
                assert_eq!(tensor[c * plane + i], f32::from(p[c]) / 255.0);
            }
        }
    }
}
