//! Image statistics for drift analytics, computed on the decoded pixels the detector
//! sees: mean brightness and contrast (mean and standard deviation of luma), and
//! sharpness as the variance of the Laplacian of luma — the usual focus measure (what
//! `cv2.Laplacian(gray, cv2.CV_64F).var()` gives on luma scaled to [0, 1]). A camera
//! that drifts out of focus shows a falling sharpness before the detector's accuracy drops.

use image::RgbImage;
use opti_core::ImageStats;

/// Rec. 601 luma in [0, 1] (the weights of OpenCV's `COLOR_RGB2GRAY`).
#[inline]
fn luma(px: &[u8]) -> f64 {
    (0.299 * f64::from(px[0]) + 0.587 * f64::from(px[1]) + 0.114 * f64::from(px[2])) / 255.0
}

/// Brightness, contrast and sharpness of an RGB image. The Laplacian uses the 4-neighbour
/// kernel with reflected borders (OpenCV's default `BORDER_REFLECT_101`); memory use is
/// three rows of luma whatever the image size.
pub fn image_stats(image: &RgbImage) -> ImageStats {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let raw = image.as_raw();
    let row_luma = |y: usize, out: &mut Vec<f64>| {
        out.clear();
        out.extend(raw[y * w * 3..(y + 1) * w * 3].chunks_exact(3).map(luma));
    };
    // Reflect-101: index -1 maps to 1, index n maps to n - 2 (a single row/column maps to itself).
    let reflect = |i: isize, n: usize| -> usize {
        if n == 1 {
            0
        } else if i < 0 {
            (-i) as usize
        } else if i as usize >= n {
            2 * n - 2 - i as usize
        } else {
            i as usize
        }
    };

    let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
    let (mut lap_sum, mut lap_sq) = (0.0f64, 0.0f64);
    let mut rows: [Vec<f64>; 3] = [
        Vec::with_capacity(w),
        Vec::with_capacity(w),
        Vec::with_capacity(w),
    ];
    for y in 0..h {
        if y == 0 {
            row_luma(reflect(-1, h), &mut rows[0]);
            row_luma(0, &mut rows[1]);
        }
        row_luma(reflect(y as isize + 1, h), &mut rows[2]);
        let (up, mid, down) = (&rows[0], &rows[1], &rows[2]);
        for x in 0..w {
            let c = mid[x];
            sum += c;
            sum_sq += c * c;
            let l = mid[reflect(x as isize - 1, w)];
            let r = mid[reflect(x as isize + 1, w)];
            let lap = up[x] + down[x] + l + r - 4.0 * c;
            lap_sum += lap;
            lap_sq += lap * lap;
        }
        // Slide the window: the middle row becomes the one above, the one below the middle.
        rows.swap(0, 1);
        rows.swap(1, 2);
    }
    let n = (w * h).max(1) as f64;
    let mean = sum / n;
    let var = (sum_sq / n - mean * mean).max(0.0);
    let lap_mean = lap_sum / n;
    let lap_var = (lap_sq / n - lap_mean * lap_mean).max(0.0);
    ImageStats {
        width: image.width(),
        height: image.height(),
        brightness: mean as f32,
        contrast: var.sqrt() as f32,
        sharpness: lap_var as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn checkerboard(w: u32, h: u32, cell: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            if (x / cell + y / cell).is_multiple_of(2) {
                Rgb([230, 230, 230])
            } else {
                Rgb([20, 20, 20])
            }
        })
    }

    /// A 5-tap box blur, horizontal then vertical.
    fn blur(img: &RgbImage) -> RgbImage {
        let (w, h) = img.dimensions();
        let pass = |src: &RgbImage, dx: i64, dy: i64| {
            RgbImage::from_fn(w, h, |x, y| {
                let mut acc = [0u32; 3];
                for k in -2i64..=2 {
                    let sx = (x as i64 + k * dx).clamp(0, w as i64 - 1) as u32;
                    let sy = (y as i64 + k * dy).clamp(0, h as i64 - 1) as u32;
                    let p = src.get_pixel(sx, sy);
                    for c in 0..3 {
                        acc[c] += u32::from(p[c]);
                    }
                }
                Rgb(acc.map(|a| (a / 5) as u8))
            })
        };
        pass(&pass(img, 1, 0), 0, 1)
    }

    #[test]
    fn flat_image_has_zero_contrast_and_zero_sharpness() {
        let img = RgbImage::from_pixel(50, 30, Rgb([128, 128, 128]));
        let s = image_stats(&img);
        assert_eq!((s.width, s.height), (50, 30));
        assert!((s.brightness - 128.0 / 255.0).abs() < 1e-5, "{s:?}");
        assert!(s.contrast.abs() < 1e-6, "{s:?}");
        assert!(s.sharpness.abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn brightness_is_mean_luma_and_white_is_one() {
        let s = image_stats(&RgbImage::from_pixel(4, 4, Rgb([255, 255, 255])));
        assert!((s.brightness - 1.0).abs() < 1e-6);
        let s = image_stats(&RgbImage::from_pixel(4, 4, Rgb([255, 0, 0])));
        assert!((s.brightness - 0.299).abs() < 1e-6);
    }

    #[test]
    fn half_black_half_white_has_contrast_one_half() {
        let img = RgbImage::from_fn(
            10,
            10,
            |x, _| if x < 5 { Rgb([0; 3]) } else { Rgb([255; 3]) },
        );
        let s = image_stats(&img);
        assert!((s.brightness - 0.5).abs() < 1e-6);
        assert!((s.contrast - 0.5).abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn blurred_image_is_less_sharp_than_the_original() {
        let sharp = checkerboard(64, 48, 4);
        let soft = blur(&sharp);
        let (a, b) = (image_stats(&sharp), image_stats(&soft));
        assert!(b.sharpness < a.sharpness * 0.5, "sharp {a:?} blurred {b:?}");
        assert!(b.contrast < a.contrast, "blur also lowers contrast");
    }

    #[test]
    fn single_pixel_and_single_row_images_do_not_panic() {
        let s = image_stats(&RgbImage::from_pixel(1, 1, Rgb([9, 9, 9])));
        assert_eq!(s.sharpness, 0.0);
        let s = image_stats(&RgbImage::from_fn(7, 1, |x, _| Rgb([(x * 30) as u8; 3])));
        assert!(s.sharpness >= 0.0 && s.contrast > 0.0);
    }
}
