//! The simulator's promises: reproducible samples, sound ground truth, balanced classes,
//! and drift knobs that move the image statistics the way their names say.

use opti_sim::{class, generate, Drift, ProductKind, Sample, SimParams};

fn params_with(drift: Drift) -> SimParams {
    SimParams {
        drift,
        ..SimParams::default()
    }
}

fn luma(s: &Sample) -> Vec<f32> {
    s.image
        .pixels()
        .map(|p| (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0)
        .collect()
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

/// Variance of the 4-neighbour Laplacian of luma: the sharpness measure of `ImageStats`.
fn laplacian_variance(s: &Sample) -> f32 {
    let (w, h) = (s.image.width() as usize, s.image.height() as usize);
    let l = luma(s);
    let mut vals = Vec::with_capacity(w * h);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = l[y * w + x];
            vals.push(
                l[y * w + x - 1] + l[y * w + x + 1] + l[(y - 1) * w + x] + l[(y + 1) * w + x]
                    - 4.0 * c,
            );
        }
    }
    let m = mean(&vals);
    vals.iter().map(|v| (v - m).powi(2)).sum::<f32>() / vals.len() as f32
}

#[test]
fn same_seed_and_index_give_identical_bytes_in_any_order() {
    let p = SimParams::default();
    let forward: Vec<Sample> = (0..4).map(|i| generate(42, i, &p)).collect();
    for i in (0..4).rev() {
        let again = generate(42, i, &p);
        assert_eq!(again.image.as_raw(), forward[i as usize].image.as_raw());
        assert_eq!(again.labels, forward[i as usize].labels);
    }
}

#[test]
fn different_seeds_or_indices_give_different_images() {
    let p = SimParams::default();
    let a = generate(1, 0, &p);
    assert_ne!(a.image.as_raw(), generate(2, 0, &p).image.as_raw());
    assert_ne!(a.image.as_raw(), generate(1, 1, &p).image.as_raw());
}

#[test]
fn every_box_is_inside_the_image_and_not_degenerate() {
    let p = SimParams {
        clean_fraction: 0.0,
        ..SimParams::default()
    };
    for i in 0..60 {
        let s = generate(3, i, &p);
        assert!(!s.labels.is_empty(), "sample {i} should be defective");
        assert_eq!(s.labels.len(), s.defects.len());
        for l in &s.labels {
            let [x1, y1, x2, y2] = l.to_xyxy();
            assert!(
                (0.0..=1.0).contains(&x1) && (0.0..=1.0).contains(&y2),
                "{l:?}"
            );
            assert!(
                l.cx - l.w / 2.0 >= -1e-6 && l.cx + l.w / 2.0 <= 1.0 + 1e-6,
                "{l:?}"
            );
            assert!(
                l.cy - l.h / 2.0 >= -1e-6 && l.cy + l.h / 2.0 <= 1.0 + 1e-6,
                "{l:?}"
            );
            // At least 4 px at 640, so at least 2 px after the 640 -> 320 downscale.
            assert!(
                (x2 - x1) * 640.0 >= 4.0 && (y2 - y1) * 640.0 >= 4.0,
                "tiny box {l:?}"
            );
            assert!(l.class_id < class::COUNT);
        }
    }
}

#[test]
fn classes_are_balanced_and_clean_share_matches_the_parameter() {
    let p = SimParams::default();
    let n = 300;
    let mut per_class = [0usize; class::COUNT];
    let mut clean = 0;
    let mut products = std::collections::HashMap::new();
    for i in 0..n {
        let s = generate(11, i, &p);
        clean += usize::from(s.is_clean());
        *products.entry(s.product).or_insert(0) += 1;
        for l in &s.labels {
            per_class[l.class_id] += 1;
        }
    }
    let clean_share = clean as f32 / n as f32;
    assert!(
        (clean_share - 0.4).abs() < 0.08,
        "clean share {clean_share}"
    );
    let total: usize = per_class.iter().sum();
    for (c, &k) in per_class.iter().enumerate() {
        let share = k as f32 / total as f32;
        assert!(
            (share - 0.25).abs() < 0.07,
            "class {c} share {share} of {per_class:?}"
        );
    }
    for kind in ProductKind::ALL {
        assert!(
            products.get(&kind).copied().unwrap_or(0) > n as usize / 6,
            "{products:?}"
        );
    }
}

#[test]
fn illumination_shift_raises_mean_brightness() {
    let base = generate(5, 0, &SimParams::default());
    let bright = generate(
        5,
        0,
        &params_with(Drift {
            illumination_shift: 0.3,
            ..Drift::default()
        }),
    );
    let dark = generate(
        5,
        0,
        &params_with(Drift {
            illumination_shift: -0.3,
            ..Drift::default()
        }),
    );
    let (b, m, d) = (mean(&luma(&bright)), mean(&luma(&base)), mean(&luma(&dark)));
    assert!(b > m + 0.05 && m > d + 0.05, "bright {b} base {m} dark {d}");
    assert_eq!(
        bright.labels, base.labels,
        "drift must not move the ground truth"
    );
}

#[test]
fn blur_lowers_sharpness_and_noise_raises_it() {
    let base = generate(6, 2, &SimParams::default());
    let blurred = generate(
        6,
        2,
        &params_with(Drift {
            blur_sigma: 2.0,
            ..Drift::default()
        }),
    );
    let noisy = generate(
        6,
        2,
        &params_with(Drift {
            noise_sigma: 0.04,
            ..Drift::default()
        }),
    );
    let (sb, s0, sn) = (
        laplacian_variance(&blurred),
        laplacian_variance(&base),
        laplacian_variance(&noisy),
    );
    // Sensor noise is added after the optics, so blur cannot remove all of the high frequencies.
    assert!(sb < 0.75 * s0, "blurred {sb} vs base {s0}");
    assert!(sn > 2.0 * s0, "noisy {sn} vs base {s0}");
}

#[test]
fn material_shift_turns_the_plate_blue() {
    let plates = SimParams {
        products: vec![ProductKind::Plate],
        ..SimParams::default()
    };
    let shifted = SimParams {
        drift: Drift {
            material_shift: 1.0,
            ..Drift::default()
        },
        ..plates.clone()
    };
    let blueness = |s: &Sample| {
        let (w, h) = (s.image.width(), s.image.height());
        let p = s.image.get_pixel(w / 2 - 5, h / 2 + 60);
        p[2] as f32 - p[0] as f32
    };
    // Average over a few parts so a component under the probe does not decide it.
    let mut delta = 0.0;
    for i in 0..6 {
        delta += blueness(&generate(8, i, &shifted)) - blueness(&generate(8, i, &plates));
    }
    assert!(delta / 6.0 > 30.0, "blue minus red grew by {}", delta / 6.0);
}

#[test]
fn camera_offset_moves_the_boxes_with_the_product() {
    let p = SimParams {
        clean_fraction: 0.0,
        ..SimParams::default()
    };
    let moved = SimParams {
        drift: Drift {
            camera_offset_x: 0.05,
            ..Drift::default()
        },
        ..p.clone()
    };
    let mut checked = 0;
    for i in 0..10 {
        let (a, b) = (generate(9, i, &p), generate(9, i, &moved));
        if a.labels.len() != b.labels.len() {
            continue; // a box clipped away at the edge
        }
        for (la, lb) in a.labels.iter().zip(&b.labels) {
            if la.cx + la.w / 2.0 < 0.9 {
                assert!((lb.cx - la.cx - 0.05).abs() < 0.01, "{la:?} -> {lb:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 5);
}

#[test]
fn defect_shift_makes_cracks_thinner() {
    let cracks = |shift: f32| {
        let p = SimParams {
            clean_fraction: 0.0,
            drift: Drift {
                defect_shift: shift,
                ..Drift::default()
            },
            ..SimParams::default()
        };
        let mut dark = 0usize;
        let mut found = 0;
        for i in 0..40 {
            let s = generate(10, i, &p);
            for d in s.defects.iter().filter(|d| d.class_id == class::FRACTURE) {
                found += 1;
                let [x1, y1, x2, y2] = d.bbox_px.map(|v| v as u32);
                for y in y1..y2.min(s.image.height()) {
                    for x in x1..x2.min(s.image.width()) {
                        dark += usize::from(s.image.get_pixel(x, y)[1] < 50);
                    }
                }
            }
        }
        assert!(found > 3);
        dark
    };
    let (usual, thin) = (cracks(0.0), cracks(1.0));
    assert!(
        (thin as f32) < 0.75 * usual as f32,
        "dark crack pixels {usual} -> {thin}"
    );
}

#[test]
fn stream_share_of_clean_parts_is_high() {
    let p = SimParams {
        clean_fraction: opti_sim::STREAM_CLEAN_FRACTION,
        ..SimParams::default()
    };
    let clean = (0..100).filter(|&i| generate(12, i, &p).is_clean()).count();
    assert!(clean > 75, "{clean} clean of 100");
}
