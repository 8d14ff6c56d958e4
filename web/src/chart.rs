//! Scales for the dashboard's SVG charts: values to pixels, "nice" axis maxima and ticks,
//! and polyline point lists. Pure, so the charts' geometry is tested natively.

/// A linear map from a value domain onto a pixel range (either may be reversed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearScale {
    pub domain: (f64, f64),
    pub range: (f64, f64),
}

impl LinearScale {
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Self {
        Self { domain, range }
    }

    /// The pixel of `v`; a flat domain maps everything to the range's start.
    pub fn map(&self, v: f64) -> f64 {
        let (d0, d1) = self.domain;
        let (r0, r1) = self.range;
        if (d1 - d0).abs() < f64::EPSILON || !v.is_finite() {
            return r0;
        }
        r0 + (v - d0) / (d1 - d0) * (r1 - r0)
    }
}

/// The smallest "nice" number (1, 2, 2.5 or 5 times a power of ten) at or above `v`;
/// 1 for zero, negative or non-finite input, so an empty chart still has an axis.
pub fn nice_max(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let exp = v.log10().floor();
    let base = 10f64.powf(exp);
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * base >= v - 1e-12 {
            return m * base;
        }
    }
    10.0 * base
}

/// `n + 1` evenly spaced ticks from 0 to `max`.
pub fn ticks(max: f64, n: usize) -> Vec<f64> {
    let n = n.max(1);
    (0..=n).map(|i| max * i as f64 / n as f64).collect()
}

/// The `points` attribute of an SVG polyline through `values`, spread evenly across `x`
/// and scaled by `y`.
pub fn polyline(values: &[f64], x: (f64, f64), y: &LinearScale) -> String {
    let step = if values.len() > 1 {
        (x.1 - x.0) / (values.len() - 1) as f64
    } else {
        0.0
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", x.0 + step * i as f64, y.map(*v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Left edges and width of `n` bars filling `(x0, x1)` with `gap` pixels between them.
pub fn bar_slots(n: usize, x: (f64, f64), gap: f64) -> (Vec<f64>, f64) {
    if n == 0 {
        return (Vec::new(), 0.0);
    }
    let width = ((x.1 - x.0) - gap * (n as f64 - 1.0)) / n as f64;
    let width = width.max(1.0);
    (
        (0..n).map(|i| x.0 + i as f64 * (width + gap)).collect(),
        width,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_map_onto_an_inverted_pixel_axis() {
        let y = LinearScale::new((0.0, 10.0), (200.0, 0.0));
        assert_eq!(y.map(0.0), 200.0);
        assert_eq!(y.map(10.0), 0.0);
        assert_eq!(y.map(2.5), 150.0);
        assert_eq!(LinearScale::new((3.0, 3.0), (5.0, 9.0)).map(3.0), 5.0);
    }

    #[test]
    fn axis_maxima_are_round_numbers_above_the_data() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(13.0), 20.0);
        assert_eq!(nice_max(0.22), 0.25);
        assert_eq!(nice_max(500.0), 500.0);
        assert_eq!(ticks(20.0, 4), vec![0.0, 5.0, 10.0, 15.0, 20.0]);
    }

    #[test]
    fn polylines_and_bars_span_the_plot_area() {
        let y = LinearScale::new((0.0, 1.0), (100.0, 0.0));
        assert_eq!(
            polyline(&[0.0, 0.5, 1.0], (0.0, 100.0), &y),
            "0.0,100.0 50.0,50.0 100.0,0.0"
        );
        let (xs, w) = bar_slots(4, (0.0, 100.0), 4.0);
        assert_eq!(w, 22.0);
        assert_eq!(xs, vec![0.0, 26.0, 52.0, 78.0]);
        assert_eq!(bar_slots(0, (0.0, 1.0), 1.0).0.len(), 0);
    }
}
