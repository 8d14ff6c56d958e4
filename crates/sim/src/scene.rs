//! One inspection image as the fixed line camera sees it: a product on the conveyor,
//! its nominal features and components, zero or more defects with their exact boxes,
//! then lighting, optics and sensor noise. A sample is a pure function of
//! `(seed, index, params)`.

use image::RgbImage;
use opti_core::yolo::YoloLabel;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::params::{ProductKind, SimParams};
use crate::render::{
    bounds, coverage, mix, polygon_distance, rect_distance, segment_distance, Canvas, Colour,
    ValueNoise,
};

/// Class ids, in the order of `opti_core::ClassNames::default_line()`.
pub mod class {
    /// Scratches, pits (holes), dents and edge chips.
    pub const DEFECT: usize = 0;
    /// Thin branching cracks.
    pub const FRACTURE: usize = 1;
    /// Soft-edged discolouration.
    pub const STAIN: usize = 2;
    /// A component shifted or rotated off its printed outline.
    pub const MISALIGNMENT: usize = 3;
    /// Number of classes.
    pub const COUNT: usize = 4;
}

/// One defect placed in a sample, with its box in pixels of the output image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefectRecord {
    /// Class id (see [`class`]).
    pub class_id: usize,
    /// What it looks like: `scratch`, `pit`, `dent`, `chip`, `crack`, `stain`,
    /// `shifted_component`, `rotated_component`.
    pub kind: String,
    /// `[x1, y1, x2, y2]` in pixels, clipped to the image.
    pub bbox_px: [f32; 4],
}

/// One generated inspection image and its ground truth.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Position in the stream or dataset.
    pub index: u64,
    /// What product the camera saw.
    pub product: ProductKind,
    /// The 8-bit RGB image.
    pub image: RgbImage,
    /// Ground-truth boxes in YOLO form (empty for a clean part).
    pub labels: Vec<YoloLabel>,
    /// The same boxes with their defect kind and pixel coordinates.
    pub defects: Vec<DefectRecord>,
}

impl Sample {
    /// True when the part has no defect.
    pub fn is_clean(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Independent random streams, so that drift knobs that add noise never change the
/// scene, and the same index shows the same part under every drift.
const STREAM_SCENE: u64 = 0;
const STREAM_SENSOR: u64 = 1;

fn rng_for(seed: u64, index: u64, stream: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    key[16..24].copy_from_slice(b"opti-sim");
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stream);
    rng
}

/// A boxes that must not overlap another placed thing: `[x0, y0, x1, y1]` in pixels.
type Rect = [f32; 4];

fn overlaps(a: &Rect, b: &Rect) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

fn grow(r: &Rect, m: f32) -> Rect {
    [r[0] - m, r[1] - m, r[2] + m, r[3] + m]
}

fn translate(points: &[[f32; 2]], d: [f32; 2]) -> Vec<[f32; 2]> {
    points.iter().map(|p| [p[0] + d[0], p[1] + d[1]]).collect()
}

/// The product's appearance for this sample, after material drift.
struct Material {
    base: Colour,
    texture_amp: f32,
    texture_scale: f32,
    outline: Colour,
}

fn material(kind: ProductKind, shift: f32, r: &mut ChaCha8Rng) -> Material {
    let jitter = |r: &mut ChaCha8Rng| r.random_range(-0.025..0.025f32);
    let (usual, new, outline): (Colour, Colour, Colour) = match kind {
        ProductKind::Plate => ([0.66, 0.67, 0.69], [0.30, 0.42, 0.62], [0.22, 0.22, 0.24]),
        ProductKind::Tile => ([0.86, 0.82, 0.74], [0.55, 0.55, 0.56], [0.32, 0.28, 0.24]),
        ProductKind::Board => ([0.12, 0.42, 0.22], [0.10, 0.22, 0.50], [0.92, 0.92, 0.88]),
    };
    let j = jitter(r);
    let base = mix(usual, new, shift).map(|c| (c + j).clamp(0.0, 1.0));
    Material {
        base,
        texture_amp: 1.0 + 0.8 * shift,
        texture_scale: 1.0 + 1.5 * shift,
        outline,
    }
}

/// Visual styles of the placed components.
#[derive(Debug, Clone, Copy)]
enum ComponentStyle {
    Label,
    Block,
    Logo,
    Chip,
    Connector,
}

/// A component slot: its printed nominal outline and the component placed on it.
struct Slot {
    style: ComponentStyle,
    centre: [f32; 2],
    half: [f32; 2],
    seed: u32,
}

/// Planned defect geometry, relative to its own origin until placed.
enum Shape {
    Scratch {
        points: Vec<[f32; 2]>,
        width: f32,
        strength: f32,
    },
    Pit {
        poly: Vec<[f32; 2]>,
    },
    Dent {
        rx: f32,
        ry: f32,
        angle: f32,
        depth: f32,
    },
    Crack {
        paths: Vec<Vec<[f32; 2]>>,
        width: f32,
    },
    Stain {
        lobes: Vec<([f32; 2], f32)>,
        peak: f32,
        tint: Colour,
        seed: u32,
    },
}

impl Shape {
    /// Bounds relative to the origin, with the stroke widths included.
    fn bounds(&self) -> Rect {
        match self {
            Shape::Scratch { points, width, .. } => bounds(points, width / 2.0 + 1.0),
            Shape::Pit { poly } => bounds(poly, 3.0),
            Shape::Dent { rx, ry, angle, .. } => {
                let (s, c) = angle.sin_cos();
                let hx = ((rx * c).powi(2) + (ry * s).powi(2)).sqrt();
                let hy = ((rx * s).powi(2) + (ry * c).powi(2)).sqrt();
                [-hx, -hy, hx, hy]
            }
            Shape::Crack { paths, width } => {
                let all: Vec<[f32; 2]> = paths.iter().flatten().copied().collect();
                bounds(&all, width / 2.0 + 1.0)
            }
            Shape::Stain { lobes, .. } => {
                let mut b = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
                for (c, sigma) in lobes {
                    let r = sigma * 1.6;
                    b = [
                        b[0].min(c[0] - r),
                        b[1].min(c[1] - r),
                        b[2].max(c[0] + r),
                        b[3].max(c[1] + r),
                    ];
                }
                b
            }
        }
    }
}

/// Generates sample `index` of the stream fixed by `seed` and `params`.
///
/// `params` should be valid (see [`SimParams::validate`]); out-of-range knobs are
/// clamped rather than refused here.
pub fn generate(seed: u64, index: u64, params: &SimParams) -> Sample {
    let mut r = rng_for(seed, index, STREAM_SCENE);
    let (w, h) = (params.width as usize, params.height as usize);
    let (wf, hf) = (w as f32, h as f32);
    let s = wf.min(hf) / 640.0;
    let drift = &params.drift;
    let defect_shift = drift.defect_shift.clamp(0.0, 1.0);

    let kind = if params.products.is_empty() {
        ProductKind::Plate
    } else {
        params.products[r.random_range(0..params.products.len())]
    };
    let clean = r.random::<f32>() < params.clean_fraction;
    let mat = material(kind, drift.material_shift.clamp(0.0, 1.0), &mut r);

    // Conveyor belt background.
    let belt_noise = ValueNoise::new(r.random());
    let belt: Colour = {
        let g = r.random_range(0.13..0.21f32);
        [g, g + 0.01, g + 0.02]
    };
    let mut canvas = Canvas::new(w, h, belt);
    let all = canvas.window(0.0, 0.0, wf, hf);
    canvas.each(all, |x, y, p| {
        let n = belt_noise.fbm(x, y, [3.0 * s, 3.0 * s], 2) * 0.025
            + belt_noise.fbm(x + 1000.0, y, [90.0 * s, 8.0 * s], 2) * 0.02;
        *p = p.map(|c| c + n);
    });

    // The product, held by the fixture, seen through a camera that may have moved.
    let (pw, ph) = match kind {
        ProductKind::Tile => {
            let side = r.random_range(0.70..0.78f32);
            (
                side * wf.min(hf),
                side * wf.min(hf) * r.random_range(0.96..1.04f32),
            )
        }
        _ => (
            r.random_range(0.74..0.84f32) * wf,
            r.random_range(0.64..0.76f32) * hf,
        ),
    };
    let pc = [
        wf / 2.0 + r.random_range(-0.015..0.015f32) * wf + drift.camera_offset_x * wf,
        hf / 2.0 + r.random_range(-0.015..0.015f32) * hf + drift.camera_offset_y * hf,
    ];
    let phalf = [pw / 2.0, ph / 2.0];
    let prect: Rect = [
        pc[0] - phalf[0],
        pc[1] - phalf[1],
        pc[0] + phalf[0],
        pc[1] + phalf[1],
    ];
    let radius = match kind {
        ProductKind::Tile => 4.0 * s,
        _ => r.random_range(6.0..14.0f32) * s,
    };

    // Drop shadow.
    let sc = [pc[0] + 5.0 * s, pc[1] + 7.0 * s];
    let win = canvas.window(
        prect[0] - 20.0,
        prect[1] - 20.0,
        prect[2] + 30.0,
        prect[3] + 30.0,
    );
    canvas.paint(
        win,
        2.0,
        |x, y| {
            let d = rect_distance([x, y], sc, phalf, 0.0, radius);
            0.55 * (1.0 - (d / (14.0 * s)).clamp(0.0, 1.0))
        },
        |_, _, p| p.map(|c| c * 0.35),
    );

    // Body with texture and a bevelled rim.
    let tex = ValueNoise::new(r.random());
    let ts = mat.texture_scale;
    let ta = mat.texture_amp;
    let base = mat.base;
    let win = canvas.window(
        prect[0] - 2.0,
        prect[1] - 2.0,
        prect[2] + 2.0,
        prect[3] + 2.0,
    );
    canvas.paint(
        win,
        2.0,
        |x, y| coverage(rect_distance([x, y], pc, phalf, 0.0, radius)),
        |x, y, _| {
            let t = match kind {
                ProductKind::Plate => {
                    tex.fbm(x, y, [160.0 * s * ts, 1.2 * s * ts], 3) * 0.035
                        + tex.fbm(x + 500.0, y, [120.0 * s * ts, 120.0 * s * ts], 2) * 0.03
                }
                ProductKind::Tile => {
                    tex.fbm(x, y, [2.0 * s * ts, 2.0 * s * ts], 2) * 0.03
                        + tex.fbm(x + 500.0, y, [70.0 * s * ts, 70.0 * s * ts], 3) * 0.035
                }
                ProductKind::Board => tex.fbm(x, y, [40.0 * s * ts, 40.0 * s * ts], 3) * 0.025,
            } * ta;
            let d = -rect_distance([x, y], pc, phalf, 0.0, radius);
            // Rim: lit from the top-left, so the top/left edges are bright, the others dark.
            let rim = if d < 3.0 * s {
                let lx = if (x - pc[0]) < 0.0 { 1.0 } else { -1.0 };
                let ly = if (y - pc[1]) < 0.0 { 1.0 } else { -1.0 };
                let side = if (x - pc[0]).abs() / phalf[0] > (y - pc[1]).abs() / phalf[1] {
                    lx
                } else {
                    ly
                };
                0.08 * side * (1.0 - d / (3.0 * s))
            } else {
                0.0
            };
            base.map(|c| c + t + rim)
        },
    );

    let mut occupied: Vec<Rect> = Vec::new();
    let inset = 18.0 * s;
    let inner: Rect = [
        prect[0] + inset,
        prect[1] + inset,
        prect[2] - inset,
        prect[3] - inset,
    ];

    // Nominal features that are not defects.
    match kind {
        ProductKind::Plate => {
            let hr = r.random_range(9.0..11.0f32) * s;
            let m = 26.0 * s;
            for (fx, fy) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
                let c = [
                    prect[0] + m + fx * (pw - 2.0 * m),
                    prect[1] + m + fy * (ph - 2.0 * m),
                ];
                draw_mounting_hole(&mut canvas, c, hr, s, belt);
                occupied.push(grow(
                    &[c[0] - hr, c[1] - hr, c[0] + hr, c[1] + hr],
                    10.0 * s,
                ));
            }
        }
        ProductKind::Board => {
            draw_traces(&mut canvas, &mut r, inner, s, mat.base);
        }
        ProductKind::Tile => {}
    }
    // Harmless dust specks.
    for _ in 0..r.random_range(0..6) {
        let c = [
            r.random_range(inner[0]..inner[2]),
            r.random_range(inner[1]..inner[3]),
        ];
        let rad = r.random_range(0.6..1.3f32) * s;
        let g = r.random_range(0.3..0.8f32);
        let win = canvas.window(c[0] - 3.0, c[1] - 3.0, c[0] + 3.0, c[1] + 3.0);
        canvas.paint(
            win,
            2.0,
            |x, y| 0.6 * coverage(((x - c[0]).powi(2) + (y - c[1]).powi(2)).sqrt() - rad),
            |_, _, _| [g; 3],
        );
    }

    // Component slots with their printed outlines.
    let styles: &[ComponentStyle] = match kind {
        ProductKind::Plate => &[ComponentStyle::Label, ComponentStyle::Block],
        ProductKind::Tile => &[ComponentStyle::Logo, ComponentStyle::Label],
        ProductKind::Board => &[
            ComponentStyle::Chip,
            ComponentStyle::Chip,
            ComponentStyle::Connector,
        ],
    };
    let n_slots = r.random_range(1..=styles.len());
    let mut slots: Vec<Slot> = Vec::new();
    for &style in styles.iter().take(n_slots) {
        let half = match style {
            ComponentStyle::Label => [r.random_range(50.0..72.0f32), r.random_range(24.0..34.0)],
            ComponentStyle::Block => [r.random_range(30.0..44.0f32), r.random_range(16.0..22.0)],
            ComponentStyle::Logo => [r.random_range(40.0..60.0f32), r.random_range(18.0..26.0)],
            ComponentStyle::Chip => [r.random_range(26.0..44.0f32), r.random_range(18.0..26.0)],
            ComponentStyle::Connector => {
                [r.random_range(44.0..64.0f32), r.random_range(12.0..16.0)]
            }
        }
        .map(|v| v * s);
        // Keep room around the slot so a misplaced component stays on the product.
        let margin = 40.0 * s;
        for _ in 0..40 {
            let c = [
                r.random_range(
                    (inner[0] + half[0] + margin).min(pc[0])
                        ..=(inner[2] - half[0] - margin).max(pc[0]),
                ),
                r.random_range(
                    (inner[1] + half[1] + margin).min(pc[1])
                        ..=(inner[3] - half[1] - margin).max(pc[1]),
                ),
            ];
            let rect = grow(
                &[
                    c[0] - half[0],
                    c[1] - half[1],
                    c[0] + half[0],
                    c[1] + half[1],
                ],
                30.0 * s,
            );
            if occupied.iter().all(|o| !overlaps(o, &rect)) {
                occupied.push(rect);
                slots.push(Slot {
                    style,
                    centre: c,
                    half,
                    seed: r.random(),
                });
                break;
            }
        }
    }
    for slot in &slots {
        draw_outline(&mut canvas, slot, s, mat.outline);
    }

    // Decide the defects before drawing components, since misalignment moves one.
    let mut defects: Vec<DefectRecord> = Vec::new();
    let mut planned: Vec<(usize, &'static str, Shape, [f32; 2])> = Vec::new();
    let mut misplaced: Vec<Option<([f32; 2], f32)>> = vec![None; slots.len()];
    let mut chips: Vec<Vec<[f32; 2]>> = Vec::new();
    if !clean {
        let roll = r.random::<f32>();
        let max = params.max_defects.max(1) as usize;
        let n = if roll < 0.6 || max == 1 {
            1
        } else if roll < 0.9 || max == 2 {
            2
        } else {
            r.random_range(3..=max)
        };
        for _ in 0..n {
            let mut cls = r.random_range(0..class::COUNT);
            if cls == class::MISALIGNMENT && misplaced.iter().all(Option::is_some) {
                cls = r.random_range(0..class::MISALIGNMENT);
            }
            match cls {
                class::MISALIGNMENT => {
                    let free: Vec<usize> = (0..slots.len())
                        .filter(|&i| misplaced[i].is_none())
                        .collect();
                    let i = free[r.random_range(0..free.len())];
                    let mode = r.random::<f32>();
                    let (mut off, mut angle) = ([0.0f32, 0.0], 0.0f32);
                    if mode < 0.7 {
                        let mag = r.random_range(14.0..34.0f32) * s;
                        let dir = r.random_range(0.0..std::f32::consts::TAU);
                        off = [mag * dir.cos(), mag * dir.sin()];
                    }
                    if mode > 0.4 {
                        angle = r.random_range(9.0..24.0f32).to_radians()
                            * if r.random_bool(0.5) { 1.0 } else { -1.0 };
                    }
                    misplaced[i] = Some((off, angle));
                }
                class::DEFECT if r.random::<f32>() < 0.2 => {
                    if let Some(poly) = plan_chip(&mut r, prect, pc, s, &occupied) {
                        occupied.push(grow(&bounds(&poly, 0.0), 6.0 * s));
                        chips.push(poly);
                    }
                }
                _ => {
                    let (kind_name, shape) =
                        plan_surface_defect(&mut r, cls, s, defect_shift, kind);
                    let b = shape.bounds();
                    for _ in 0..40 {
                        let (bw, bh) = (b[2] - b[0], b[3] - b[1]);
                        if bw >= inner[2] - inner[0] || bh >= inner[3] - inner[1] {
                            break;
                        }
                        let x0 = r.random_range(inner[0]..inner[2] - bw);
                        let y0 = r.random_range(inner[1]..inner[3] - bh);
                        let at = [x0 - b[0], y0 - b[1]];
                        let placed = [x0, y0, x0 + bw, y0 + bh];
                        if occupied.iter().all(|o| !overlaps(o, &placed)) {
                            occupied.push(grow(&placed, 6.0 * s));
                            planned.push((cls, kind_name, shape, at));
                            break;
                        }
                    }
                }
            }
        }
    }

    // Stains lie under components and marks; draw them first.
    for (cls, name, shape, at) in planned.iter().filter(|p| p.0 == class::STAIN) {
        if let Some(b) = draw_shape(&mut canvas, shape, *at, kind) {
            defects.push(record(*cls, name, b));
        }
    }
    for (i, slot) in slots.iter().enumerate() {
        let jitter = [
            r.random_range(-0.8..0.8f32) * s,
            r.random_range(-0.8..0.8f32) * s,
        ];
        let (off, angle) = match misplaced[i] {
            Some(m) => m,
            None => (jitter, r.random_range(-0.4..0.4f32).to_radians()),
        };
        let b = draw_component(&mut canvas, slot, off, angle, s);
        if let (Some((off, angle)), Some(b)) = (misplaced[i], b) {
            let name = if off == [0.0, 0.0] {
                "rotated_component"
            } else if angle == 0.0 {
                "shifted_component"
            } else {
                "shifted_rotated_component"
            };
            defects.push(record(class::MISALIGNMENT, name, b));
        }
    }
    for (cls, name, shape, at) in planned.iter().filter(|p| p.0 != class::STAIN) {
        if let Some(b) = draw_shape(&mut canvas, shape, *at, kind) {
            defects.push(record(*cls, name, b));
        }
    }
    for poly in &chips {
        if let Some(b) = draw_chip(&mut canvas, poly, prect, s, belt) {
            defects.push(record(class::DEFECT, "chip", b));
        }
    }

    // Lighting: exposure, a gradient across the field and lens vignetting.
    let gain = (1.0 + drift.illumination_shift).max(0.05);
    let grad_amp = r.random_range(0.06..0.18f32);
    let grad_dir = r.random_range(0.0..std::f32::consts::TAU);
    let (gs, gc) = grad_dir.sin_cos();
    let diag2 = (wf * wf + hf * hf) / 4.0;
    canvas.each(all, |x, y, p| {
        let (dx, dy) = (x - wf / 2.0, y - hf / 2.0);
        let g = 1.0 + grad_amp * (dx * gc + dy * gs) / wf;
        let v = 1.0 - 0.22 * (dx * dx + dy * dy) / diag2;
        let k = gain * g * v;
        *p = p.map(|c| c * k);
    });

    // Optics: a slight softness always, more when the camera is worn or out of focus.
    let sigma = 0.55 * s + drift.blur_sigma.max(0.0);
    let blurred = imageproc::filter::gaussian_blur_f32(&canvas.to_rgb32f(), sigma);
    canvas.set_from_rgb32f(&blurred);

    // Sensor: read noise plus shot noise, from its own random stream.
    let mut nr = rng_for(seed, index, STREAM_SENSOR);
    let read = 0.008 + drift.noise_sigma.max(0.0);
    canvas.each(all, |_, _, p| {
        let shot = 0.012;
        let luma: f32 = StandardNormal.sample(&mut nr);
        for c in p.iter_mut() {
            let chroma: f32 = StandardNormal.sample(&mut nr);
            *c += read * (0.8 * luma + 0.6 * chroma) + shot * c.max(0.0).sqrt() * luma;
        }
    });

    // Ground truth: clip to the image and drop boxes that are mostly outside it.
    let mut kept = Vec::new();
    for d in defects {
        let b = d.bbox_px;
        let clipped = [b[0].max(0.0), b[1].max(0.0), b[2].min(wf), b[3].min(hf)];
        let area = |r: &Rect| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
        if area(&clipped) < 0.4 * area(&b)
            || clipped[2] - clipped[0] < 2.0
            || clipped[3] - clipped[1] < 2.0
        {
            continue;
        }
        kept.push(DefectRecord {
            bbox_px: clipped,
            ..d
        });
    }
    let labels = kept
        .iter()
        .map(|d| {
            let b = d.bbox_px;
            YoloLabel::from_xyxy(d.class_id, [b[0] / wf, b[1] / hf, b[2] / wf, b[3] / hf])
        })
        .collect();

    Sample {
        index,
        product: kind,
        image: canvas.to_rgb8(),
        labels,
        defects: kept,
    }
}

fn record(class_id: usize, kind: &str, bbox_px: Rect) -> DefectRecord {
    DefectRecord {
        class_id,
        kind: kind.to_owned(),
        bbox_px,
    }
}

fn draw_mounting_hole(canvas: &mut Canvas, c: [f32; 2], r: f32, s: f32, belt: Colour) {
    let win = canvas.window(
        c[0] - r - 6.0 * s,
        c[1] - r - 6.0 * s,
        c[0] + r + 6.0 * s,
        c[1] + r + 6.0 * s,
    );
    let chamfer = 4.0 * s;
    canvas.paint(
        win,
        2.0,
        |x, y| coverage(((x - c[0]).powi(2) + (y - c[1]).powi(2)).sqrt() - r - chamfer),
        |x, y, p| {
            let d = ((x - c[0]).powi(2) + (y - c[1]).powi(2)).sqrt();
            if d < r {
                belt.map(|v| v * 0.5)
            } else {
                // Countersink: a bright conical ring lit from the top-left.
                let lit = ((c[0] - x) + (c[1] - y)) / (d * 1.414);
                p.map(|v| v + 0.12 + 0.1 * lit)
            }
        },
    );
}

fn draw_traces(canvas: &mut Canvas, r: &mut ChaCha8Rng, inner: Rect, s: f32, base: Colour) {
    let trace: Colour = mix(base, [0.35, 0.75, 0.35], 0.35);
    for _ in 0..r.random_range(6..14) {
        let mut p = [
            r.random_range(inner[0]..inner[2]),
            r.random_range(inner[1]..inner[3]),
        ];
        let mut pts = vec![p];
        let mut horizontal = r.random_bool(0.5);
        for _ in 0..r.random_range(1..4) {
            let len =
                r.random_range(30.0..160.0f32) * s * if r.random_bool(0.5) { 1.0 } else { -1.0 };
            if horizontal {
                p[0] = (p[0] + len).clamp(inner[0], inner[2]);
            } else {
                p[1] = (p[1] + len).clamp(inner[1], inner[3]);
            }
            horizontal = !horizontal;
            pts.push(p);
        }
        let half = r.random_range(1.0..2.0f32) * s;
        let b = bounds(&pts, half + 5.0 * s);
        let win = canvas.window(b[0], b[1], b[2], b[3]);
        canvas.paint(
            win,
            2.0,
            |x, y| {
                let mut d = f32::MAX;
                for seg in pts.windows(2) {
                    d = d.min(segment_distance([x, y], seg[0], seg[1]).0);
                }
                for end in [pts[0], pts[pts.len() - 1]] {
                    // Round pads at both ends of a trace.
                    d = d.min(segment_distance([x, y], end, end).0 - 3.0 * s + half);
                }
                coverage(d - half)
            },
            |_, _, _| trace,
        );
    }
}

fn draw_outline(canvas: &mut Canvas, slot: &Slot, s: f32, colour: Colour) {
    let m = 5.0 * s;
    let half = [slot.half[0] + m, slot.half[1] + m];
    let c = slot.centre;
    let stroke = 1.2 * s;
    let win = canvas.window(
        c[0] - half[0] - 4.0,
        c[1] - half[1] - 4.0,
        c[0] + half[0] + 4.0,
        c[1] + half[1] + 4.0,
    );
    canvas.paint(
        win,
        2.0,
        |x, y| coverage(rect_distance([x, y], c, half, 0.0, 0.0).abs() - stroke),
        |_, _, _| colour,
    );
}

/// Draws a component at its slot moved by `off` and turned by `angle`; returns the box
/// of its visible body.
fn draw_component(
    canvas: &mut Canvas,
    slot: &Slot,
    off: [f32; 2],
    angle: f32,
    s: f32,
) -> Option<Rect> {
    let c = [slot.centre[0] + off[0], slot.centre[1] + off[1]];
    let [hw, hh] = slot.half;
    let pin = 5.0 * s;
    let ext = (hw * hw + (hh + pin) * (hh + pin)).sqrt() + 2.0;
    let win = canvas.window(c[0] - ext, c[1] - ext, c[0] + ext, c[1] + ext);
    let (sn, cs) = angle.sin_cos();
    let local = |x: f32, y: f32| {
        let (dx, dy) = (x - c[0], y - c[1]);
        (dx * cs + dy * sn, -dx * sn + dy * cs)
    };
    let style = slot.style;
    let n = ValueNoise::new(slot.seed);
    canvas.paint(
        win,
        0.5,
        |x, y| {
            let body = coverage(rect_distance([x, y], c, [hw, hh], angle, 2.0 * s));
            match style {
                ComponentStyle::Chip => {
                    let (u, v) = local(x, y);
                    let pitch = 7.0 * s;
                    let on_pin = v.abs() < hh + pin
                        && u.abs() < hw - 3.0 * s
                        && ((u + hw) / pitch).fract() < 0.5;
                    body.max(if on_pin { 1.0 } else { 0.0 })
                }
                _ => body,
            }
        },
        |x, y, _| {
            let (u, v) = local(x, y);
            let inside = u.abs() <= hw && v.abs() <= hh;
            match style {
                ComponentStyle::Label => {
                    let fu = (u + hw) / (2.0 * hw);
                    let fv = (v + hh) / (2.0 * hh);
                    let bar = fu > 0.08
                        && fu < 0.55
                        && fv > 0.15
                        && fv < 0.85
                        && n.at(u / (1.6 * s), 0.5) > 0.0;
                    let text = fu > 0.62
                        && fu < 0.92
                        && ((fv * 5.0).fract() < 0.35)
                        && fv > 0.15
                        && fv < 0.85;
                    if bar || text {
                        [0.08, 0.08, 0.1]
                    } else {
                        [0.93, 0.93, 0.9]
                    }
                }
                ComponentStyle::Block => {
                    let screw = ((u.abs() - (hw - 9.0 * s)).powi(2) + v * v).sqrt() < 5.0 * s;
                    if screw {
                        [0.7, 0.7, 0.72]
                    } else {
                        [0.1, 0.1, 0.12]
                    }
                }
                ComponentStyle::Logo => {
                    let fu = (u + hw) / (2.0 * hw);
                    let fv = (v + hh) / (2.0 * hh);
                    let mark = fu > 0.1
                        && fu < 0.9
                        && fv > 0.3
                        && fv < 0.7
                        && n.at(u / (5.0 * s), 3.0) > -0.2;
                    if mark {
                        [0.85, 0.8, 0.55]
                    } else {
                        [0.18, 0.2, 0.3]
                    }
                }
                ComponentStyle::Chip => {
                    if !inside {
                        [0.78, 0.78, 0.8]
                    } else if ((u + hw - 7.0 * s).powi(2) + (v + hh - 7.0 * s).powi(2)).sqrt()
                        < 2.5 * s
                    {
                        [0.3, 0.3, 0.32]
                    } else {
                        [0.08, 0.08, 0.09]
                    }
                }
                ComponentStyle::Connector => {
                    let pitch = 10.0 * s;
                    let hole = v.abs() < 3.0 * s
                        && u.abs() < hw - 5.0 * s
                        && ((u + hw) / pitch).fract() > 0.3
                        && ((u + hw) / pitch).fract() < 0.7;
                    if hole {
                        [0.12, 0.1, 0.08]
                    } else {
                        [0.86, 0.8, 0.64]
                    }
                }
            }
        },
    )
}

fn plan_surface_defect(
    r: &mut ChaCha8Rng,
    cls: usize,
    s: f32,
    shift: f32,
    kind: ProductKind,
) -> (&'static str, Shape) {
    let thin = 1.0 - 0.5 * shift;
    match cls {
        class::FRACTURE => {
            let width = r.random_range(2.8..4.5f32) * s * thin;
            let len = r.random_range(90.0..240.0f32) * s;
            let dir = r.random_range(0.0..std::f32::consts::TAU);
            let main = random_walk(r, [0.0, 0.0], dir, len, s);
            let mut paths = vec![main.clone()];
            for _ in 0..r.random_range(1..=3) {
                let k =
                    r.random_range(main.len() / 5..(main.len() * 4 / 5).max(main.len() / 5 + 1));
                let start = main[k.min(main.len() - 1)];
                let side = if r.random_bool(0.5) { 1.0 } else { -1.0 };
                let bdir = dir + side * r.random_range(0.5..1.1f32);
                let blen = len * r.random_range(0.25..0.45f32);
                paths.push(random_walk(r, start, bdir, blen, s));
            }
            ("crack", Shape::Crack { paths, width })
        }
        class::STAIN => {
            let radius = r.random_range(24.0..60.0f32) * s;
            let lobes = (0..r.random_range(2..=4))
                .map(|_| {
                    let a = r.random_range(0.0..std::f32::consts::TAU);
                    let d = r.random_range(0.0..0.6f32) * radius;
                    (
                        [d * a.cos(), d * a.sin()],
                        r.random_range(0.45..0.8f32) * radius,
                    )
                })
                .collect();
            let usual: Colour = match kind {
                ProductKind::Board => [0.75, 0.62, 0.2],
                _ => {
                    if r.random_bool(0.5) {
                        [0.36, 0.22, 0.1]
                    } else {
                        [0.22, 0.22, 0.2]
                    }
                }
            };
            let tint = mix(usual, [0.2, 0.38, 0.6], shift);
            (
                "stain",
                Shape::Stain {
                    lobes,
                    peak: r.random_range(0.5..0.75f32),
                    tint,
                    seed: r.random(),
                },
            )
        }
        _ => {
            let roll = r.random::<f32>();
            if roll < 0.45 {
                let len = r.random_range(70.0..220.0f32) * s;
                let dir = r.random_range(0.0..std::f32::consts::TAU);
                let bend = r.random_range(-0.12..0.12f32) * len;
                let (dy, dx) = dir.sin_cos();
                let points = (0..=8)
                    .map(|i| {
                        let t = i as f32 / 8.0;
                        let off = bend * 4.0 * t * (1.0 - t);
                        [dx * len * t - dy * off, dy * len * t + dx * off]
                    })
                    .collect();
                (
                    "scratch",
                    Shape::Scratch {
                        points,
                        width: r.random_range(3.0..5.0f32) * s * thin,
                        strength: r.random_range(0.75..0.95f32) * (1.0 - 0.4 * shift),
                    },
                )
            } else if roll < 0.75 {
                let radius = r.random_range(7.0..16.0f32) * s * (1.0 - 0.3 * shift);
                let n = 11;
                let poly = (0..n)
                    .map(|i| {
                        let a = i as f32 / n as f32 * std::f32::consts::TAU;
                        let rr = radius * r.random_range(0.7..1.25f32);
                        [rr * a.cos(), rr * a.sin()]
                    })
                    .collect();
                ("pit", Shape::Pit { poly })
            } else {
                let rx = r.random_range(16.0..32.0f32) * s;
                (
                    "dent",
                    Shape::Dent {
                        rx,
                        ry: rx * r.random_range(0.6..1.0f32),
                        angle: r.random_range(0.0..std::f32::consts::PI),
                        depth: r.random_range(0.4..0.6f32) * (1.0 - 0.3 * shift),
                    },
                )
            }
        }
    }
}

fn random_walk(r: &mut ChaCha8Rng, start: [f32; 2], dir: f32, len: f32, s: f32) -> Vec<[f32; 2]> {
    let mut pts = vec![start];
    let mut p = start;
    let mut a = dir;
    let mut walked = 0.0;
    while walked < len {
        let step = r.random_range(5.0..10.0f32) * s;
        let n: f32 = StandardNormal.sample(r);
        // Jagged but keeping its general direction.
        a += 0.4 * n + 0.3 * (dir - a);
        p = [p[0] + step * a.cos(), p[1] + step * a.sin()];
        pts.push(p);
        walked += step;
    }
    pts
}

/// Draws a planned shape with its origin at `at`; returns the visible extent.
fn draw_shape(canvas: &mut Canvas, shape: &Shape, at: [f32; 2], kind: ProductKind) -> Option<Rect> {
    let b = shape.bounds();
    let win = canvas.window(
        b[0] + at[0] - 2.0,
        b[1] + at[1] - 2.0,
        b[2] + at[0] + 2.0,
        b[3] + at[1] + 2.0,
    );
    match shape {
        Shape::Scratch {
            points,
            width,
            strength,
        } => {
            let pts = translate(points, at);
            let colour: Colour = match kind {
                ProductKind::Plate => [0.97, 0.97, 0.98],
                ProductKind::Tile => [0.3, 0.29, 0.28],
                ProductKind::Board => [0.9, 0.88, 0.7],
            };
            canvas.paint(
                win,
                0.3,
                |x, y| {
                    let d = pts
                        .windows(2)
                        .map(|seg| segment_distance([x, y], seg[0], seg[1]).0)
                        .fold(f32::MAX, f32::min);
                    strength * coverage(d - width / 2.0)
                },
                |_, _, _| colour,
            )
        }
        Shape::Pit { poly } => {
            let poly = translate(poly, at);
            let c = [at[0], at[1]];
            canvas.paint(
                win,
                0.5,
                |x, y| coverage(polygon_distance([x, y], &poly) - 2.0),
                |x, y, p| {
                    let d = polygon_distance([x, y], &poly);
                    if d < -0.5 {
                        [0.05, 0.045, 0.04]
                    } else {
                        // Raised burr lit from the top-left around the pit.
                        let lit = ((c[0] - x) + (c[1] - y)).signum();
                        p.map(|v| v + 0.18 * lit)
                    }
                },
            )
        }
        Shape::Dent {
            rx,
            ry,
            angle,
            depth,
        } => {
            let (sn, cs) = angle.sin_cos();
            let c = at;
            let ext = canvas.paint(
                win,
                0.5,
                |x, y| {
                    let (dx, dy) = (x - c[0], y - c[1]);
                    let (u, v) = (dx * cs + dy * sn, -dx * sn + dy * cs);
                    let rr = ((u / rx).powi(2) + (v / ry).powi(2)).sqrt();
                    coverage((rr - 1.0) * rx.min(*ry))
                },
                |x, y, p| {
                    let (dx, dy) = (x - c[0], y - c[1]);
                    let (u, v) = (dx * cs + dy * sn, -dx * sn + dy * cs);
                    let rr2 = ((u / rx).powi(2) + (v / ry).powi(2)).min(1.0);
                    // A bowl lit from the top-left: the far wall catches the light.
                    let slope = (dx / rx + dy / ry) * 0.707;
                    let k = 1.0 + depth * slope * (1.0 - rr2).sqrt() - 0.2 * depth * (1.0 - rr2);
                    p.map(|v| v * k)
                },
            );
            ext.map(|_| {
                let b = shape.bounds();
                [b[0] + at[0], b[1] + at[1], b[2] + at[0], b[3] + at[1]]
            })
        }
        Shape::Crack { paths, width } => {
            let paths: Vec<Vec<[f32; 2]>> = paths.iter().map(|p| translate(p, at)).collect();
            let w0 = *width;
            canvas.paint(
                win,
                0.4,
                |x, y| {
                    let mut a: f32 = 0.0;
                    for (k, path) in paths.iter().enumerate() {
                        let n = (path.len() - 1).max(1) as f32;
                        let start_w = if k == 0 { w0 } else { 0.75 * w0 };
                        for (i, seg) in path.windows(2).enumerate() {
                            let (d, t) = segment_distance([x, y], seg[0], seg[1]);
                            if d > w0 + 2.0 {
                                continue;
                            }
                            let along = (i as f32 + t) / n;
                            let half = 0.5 * start_w * (1.0 - 0.55 * along);
                            a = a.max(coverage(d - half));
                        }
                    }
                    a
                },
                |_, _, _| [0.04, 0.035, 0.03],
            )
        }
        Shape::Stain {
            lobes,
            peak,
            tint,
            seed,
        } => {
            let n = ValueNoise::new(*seed);
            let lobes: Vec<([f32; 2], f32)> = lobes
                .iter()
                .map(|(c, s)| ([c[0] + at[0], c[1] + at[1]], *s))
                .collect();
            let alpha = |x: f32, y: f32| {
                let mut f: f32 = 0.0;
                for (c, sigma) in &lobes {
                    let d2 = (x - c[0]).powi(2) + (y - c[1]).powi(2);
                    f = f.max((-d2 / (2.0 * sigma * sigma)).exp());
                }
                let f = f + 0.18 * n.fbm(x, y, [14.0, 14.0], 2);
                let t = ((f - 0.2) / 0.45).clamp(0.0, 1.0);
                peak * t * t * (3.0 - 2.0 * t)
            };
            canvas.paint(win, 0.3 * peak, alpha, |_, _, p| {
                [
                    p[0] * 0.3 + tint[0] * 0.7,
                    p[1] * 0.3 + tint[1] * 0.7,
                    p[2] * 0.3 + tint[2] * 0.7,
                ]
            })
        }
    }
}

fn plan_chip(
    r: &mut ChaCha8Rng,
    prect: Rect,
    pc: [f32; 2],
    s: f32,
    occupied: &[Rect],
) -> Option<Vec<[f32; 2]>> {
    for _ in 0..20 {
        let side = r.random_range(0..4);
        let width = r.random_range(22.0..50.0f32) * s;
        let depth = r.random_range(12.0..26.0f32) * s;
        let corner = 40.0 * s;
        // Local frame: t along the edge, n inwards.
        let (origin, along, inward): ([f32; 2], [f32; 2], [f32; 2]) = match side {
            0 => (
                [
                    r.random_range(prect[0] + corner..prect[2] - corner - width),
                    prect[1],
                ],
                [1.0, 0.0],
                [0.0, 1.0],
            ),
            1 => (
                [
                    r.random_range(prect[0] + corner..prect[2] - corner - width),
                    prect[3],
                ],
                [1.0, 0.0],
                [0.0, -1.0],
            ),
            2 => (
                [
                    prect[0],
                    r.random_range(prect[1] + corner..prect[3] - corner - width),
                ],
                [0.0, 1.0],
                [1.0, 0.0],
            ),
            _ => (
                [
                    prect[2],
                    r.random_range(prect[1] + corner..prect[3] - corner - width),
                ],
                [0.0, 1.0],
                [-1.0, 0.0],
            ),
        };
        let at = |t: f32, n: f32| {
            [
                origin[0] + along[0] * t + inward[0] * n,
                origin[1] + along[1] * t + inward[1] * n,
            ]
        };
        let mut poly = vec![at(0.0, -4.0 * s)];
        let k = 5;
        for i in 0..=k {
            let t = i as f32 / k as f32;
            let n =
                depth * (std::f32::consts::PI * t).sin().powf(0.7) * r.random_range(0.75..1.15f32);
            poly.push(at(width * t, n.max(0.0)));
        }
        poly.push(at(width, -4.0 * s));
        let b = bounds(&poly, 0.0);
        if occupied.iter().all(|o| !overlaps(o, &b)) {
            let _ = pc;
            return Some(poly);
        }
    }
    None
}

fn draw_chip(
    canvas: &mut Canvas,
    poly: &[[f32; 2]],
    prect: Rect,
    s: f32,
    belt: Colour,
) -> Option<Rect> {
    let b = bounds(poly, 3.0);
    let win = canvas.window(b[0], b[1], b[2], b[3]);
    let ext = canvas.paint(
        win,
        0.5,
        |x, y| coverage(polygon_distance([x, y], poly)),
        |x, y, _| {
            let d = -polygon_distance([x, y], poly);
            if d < 2.5 * s {
                // The fractured face catches light.
                [0.8, 0.8, 0.78]
            } else {
                belt.map(|v| v * 0.8)
            }
        },
    )?;
    // Only the part that was product counts as the chip.
    Some([
        ext[0].max(prect[0]),
        ext[1].max(prect[1]),
        ext[2].min(prect[2]),
        ext[3].min(prect[3]),
    ])
}
