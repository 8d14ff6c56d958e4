//! Drawing primitives for the simulator: a floating-point RGB canvas, value noise for
//! textures, and anti-aliased shapes given as signed distances (so edges stay smooth
//! and ground-truth extents are exact).

use image::{Rgb, Rgb32FImage, RgbImage};

/// An RGB colour with channels in `[0, 1]`.
pub type Colour = [f32; 3];

/// Linear blend of two colours: `a` at `t = 0`, `b` at `t = 1`.
pub fn mix(a: Colour, b: Colour, t: f32) -> Colour {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// A floating-point RGB image being drawn on.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub px: Vec<Colour>,
}

/// A pixel-space rectangle `[x0, y0, x1, y1)` clipped to a canvas.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

impl Canvas {
    /// A canvas filled with one colour.
    pub fn new(width: usize, height: usize, fill: Colour) -> Self {
        Self {
            width,
            height,
            px: vec![fill; width * height],
        }
    }

    /// The pixels covering `[x0, x1] × [y0, y1]` (floating point, may lie outside).
    pub fn window(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> Window {
        let cx = |v: f32| v.floor().clamp(0.0, self.width as f32) as usize;
        let cy = |v: f32| v.floor().clamp(0.0, self.height as f32) as usize;
        Window {
            x0: cx(x0),
            y0: cy(y0),
            x1: cx(x1 + 1.0),
            y1: cy(y1 + 1.0),
        }
    }

    /// Calls `f(x, y, &mut pixel)` for every pixel of `w`, with pixel-centre coordinates.
    pub fn each(&mut self, w: Window, mut f: impl FnMut(f32, f32, &mut Colour)) {
        for y in w.y0..w.y1 {
            let row = y * self.width;
            for x in w.x0..w.x1 {
                f(x as f32 + 0.5, y as f32 + 0.5, &mut self.px[row + x]);
            }
        }
    }

    /// Blends `colour(x, y)` over the canvas with opacity `alpha(x, y)` inside `w`, and
    /// returns the pixel box `[x0, y0, x1, y1]` where the opacity reached `visible`
    /// (None if nowhere).
    pub fn paint(
        &mut self,
        w: Window,
        visible: f32,
        mut alpha: impl FnMut(f32, f32) -> f32,
        mut colour: impl FnMut(f32, f32, Colour) -> Colour,
    ) -> Option<[f32; 4]> {
        let mut ext = Extent::default();
        self.each(w, |x, y, p| {
            let a = alpha(x, y).clamp(0.0, 1.0);
            if a <= 0.0 {
                return;
            }
            if a >= visible {
                ext.add(x, y);
            }
            *p = mix(*p, colour(x, y, *p), a);
        });
        ext.bbox()
    }

    /// The canvas as an `image` float buffer.
    pub fn to_rgb32f(&self) -> Rgb32FImage {
        let mut img = Rgb32FImage::new(self.width as u32, self.height as u32);
        for (dst, src) in img.pixels_mut().zip(&self.px) {
            *dst = Rgb(*src);
        }
        img
    }

    /// Replaces the pixels from an `image` float buffer of the same size.
    pub fn set_from_rgb32f(&mut self, img: &Rgb32FImage) {
        for (dst, src) in self.px.iter_mut().zip(img.pixels()) {
            *dst = src.0;
        }
    }

    /// Quantises to 8-bit RGB (values clip to `[0, 1]`).
    pub fn to_rgb8(&self) -> RgbImage {
        let mut img = RgbImage::new(self.width as u32, self.height as u32);
        for (dst, src) in img.pixels_mut().zip(&self.px) {
            *dst = Rgb(src.map(|v| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8));
        }
        img
    }
}

/// Running bounding box of pixel centres.
#[derive(Debug, Clone, Copy)]
pub struct Extent {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
}

impl Default for Extent {
    fn default() -> Self {
        Self {
            x0: f32::MAX,
            y0: f32::MAX,
            x1: f32::MIN,
            y1: f32::MIN,
        }
    }
}

impl Extent {
    /// Adds the pixel whose centre is `(x, y)`.
    pub fn add(&mut self, x: f32, y: f32) {
        self.x0 = self.x0.min(x - 0.5);
        self.y0 = self.y0.min(y - 0.5);
        self.x1 = self.x1.max(x + 0.5);
        self.y1 = self.y1.max(y + 0.5);
    }

    /// The box covering every added pixel, if any.
    pub fn bbox(&self) -> Option<[f32; 4]> {
        (self.x1 > self.x0).then_some([self.x0, self.y0, self.x1, self.y1])
    }
}

/// Anti-aliased coverage of a shape from its signed distance (negative inside), in
/// pixels.
pub fn coverage(signed_distance: f32) -> f32 {
    (0.5 - signed_distance).clamp(0.0, 1.0)
}

/// Distance from `p` to the segment `a`–`b`, and the position along it in `[0, 1]`.
pub fn segment_distance(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> (f32, f32) {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ex, ey) = (p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy));
    ((ex * ex + ey * ey).sqrt(), t)
}

/// Signed distance to a rectangle centred at `c` with half sizes `half`, rotated by
/// `angle` radians, with corner radius `radius`.
pub fn rect_distance(p: [f32; 2], c: [f32; 2], half: [f32; 2], angle: f32, radius: f32) -> f32 {
    let (s, co) = angle.sin_cos();
    let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
    let lx = (dx * co + dy * s).abs() - (half[0] - radius);
    let ly = (-dx * s + dy * co).abs() - (half[1] - radius);
    let outside = (lx.max(0.0).powi(2) + ly.max(0.0).powi(2)).sqrt();
    outside + lx.max(ly).min(0.0) - radius
}

/// Signed distance to a closed polygon (negative inside).
pub fn polygon_distance(p: [f32; 2], poly: &[[f32; 2]]) -> f32 {
    let mut d = f32::MAX;
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let a = poly[i];
        let b = poly[(i + 1) % n];
        d = d.min(segment_distance(p, a, b).0);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0]);
            if p[0] < x {
                inside = !inside;
            }
        }
    }
    if inside {
        -d
    } else {
        d
    }
}

/// Axis-aligned bounds `[x0, y0, x1, y1]` of points, grown by `margin`.
pub fn bounds(points: &[[f32; 2]], margin: f32) -> [f32; 4] {
    let mut b = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for p in points {
        b[0] = b[0].min(p[0]);
        b[1] = b[1].min(p[1]);
        b[2] = b[2].max(p[0]);
        b[3] = b[3].max(p[1]);
    }
    [b[0] - margin, b[1] - margin, b[2] + margin, b[3] + margin]
}

/// Smooth 2-D value noise with a per-texture seed, returning values in about `[-1, 1]`.
#[derive(Debug, Clone, Copy)]
pub struct ValueNoise {
    seed: u32,
}

impl ValueNoise {
    /// Noise whose lattice is fixed by `seed`.
    pub fn new(seed: u32) -> Self {
        Self { seed }
    }

    fn lattice(&self, x: i32, y: i32) -> f32 {
        let mut h = (x as u32).wrapping_mul(0x27d4_eb2d)
            ^ (y as u32).wrapping_mul(0x1656_67b1)
            ^ self.seed.wrapping_mul(0x9e37_79b9);
        h ^= h >> 15;
        h = h.wrapping_mul(0x2c1b_3c6d);
        h ^= h >> 12;
        h = h.wrapping_mul(0x297a_2d39);
        h ^= h >> 15;
        (h & 0xffff) as f32 / 32767.5 - 1.0
    }

    /// Noise at `(x, y)` in lattice units.
    pub fn at(&self, x: f32, y: f32) -> f32 {
        let (fx, fy) = (x.floor(), y.floor());
        let (ix, iy) = (fx as i32, fy as i32);
        let (tx, ty) = (x - fx, y - fy);
        let sx = tx * tx * (3.0 - 2.0 * tx);
        let sy = ty * ty * (3.0 - 2.0 * ty);
        let a = self.lattice(ix, iy);
        let b = self.lattice(ix + 1, iy);
        let c = self.lattice(ix, iy + 1);
        let d = self.lattice(ix + 1, iy + 1);
        let top = a + (b - a) * sx;
        let bottom = c + (d - c) * sx;
        top + (bottom - top) * sy
    }

    /// Fractal sum of `octaves` layers, the first at `scale` pixels per lattice cell
    /// (separately for x and y, for anisotropic textures such as brushed metal).
    pub fn fbm(&self, x: f32, y: f32, scale: [f32; 2], octaves: u32) -> f32 {
        let (mut fx, mut fy) = (x / scale[0], y / scale[1]);
        let (mut amp, mut sum, mut norm) = (1.0, 0.0, 0.0);
        for _ in 0..octaves {
            sum += amp * self.at(fx, fy);
            norm += amp;
            amp *= 0.5;
            fx *= 2.03;
            fy *= 2.03;
        }
        sum / norm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangle_distance_is_negative_inside_and_rotates() {
        assert!(rect_distance([10.0, 10.0], [10.0, 10.0], [5.0, 2.0], 0.0, 0.0) < 0.0);
        assert!(rect_distance([14.0, 10.0], [10.0, 10.0], [5.0, 2.0], 0.0, 0.0) < 0.0);
        let rotated = rect_distance(
            [10.0, 14.0],
            [10.0, 10.0],
            [5.0, 2.0],
            std::f32::consts::FRAC_PI_2,
            0.0,
        );
        assert!(rotated < 0.0);
    }

    #[test]
    fn polygon_distance_signs_inside_and_outside() {
        let square = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        assert!((polygon_distance([5.0, 5.0], &square) + 5.0).abs() < 1e-5);
        assert!((polygon_distance([12.0, 5.0], &square) - 2.0).abs() < 1e-5);
    }

    #[test]
    fn paint_reports_the_visible_extent() {
        let mut c = Canvas::new(20, 20, [0.0; 3]);
        let w = c.window(0.0, 0.0, 20.0, 20.0);
        let bbox = c
            .paint(
                w,
                0.5,
                |x, y| coverage(rect_distance([x, y], [10.0, 10.0], [3.0, 2.0], 0.0, 0.0)),
                |_, _, _| [1.0; 3],
            )
            .unwrap();
        assert_eq!(bbox, [7.0, 8.0, 13.0, 12.0]);
    }
}
