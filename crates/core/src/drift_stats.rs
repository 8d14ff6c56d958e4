//! The two-sample statistics behind drift signals, as pure functions on `f64` slices.
//! Definitions follow scipy where scipy has one (`ks_2samp`'s statistic,
//! `wasserstein_distance`, `chi2_contingency`'s statistic); PSI and the noise floors are
//! defined here and reproduced by `crates/core/tests/fixtures/make_drift_fixture.py`.
//!
//! Every function takes finite values only (callers filter) and answers `None` where the
//! statistic is undefined (an empty sample, zero spread).

/// Number of quantile bins PSI uses on a continuous feature.
pub const PSI_BINS: usize = 10;

/// Additive smoothing of bin counts (Jeffreys-style), so an empty bin gives a finite PSI.
pub const PSI_SMOOTHING: f64 = 0.5;

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Arithmetic mean, `None` when empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Population standard deviation (divides by n, like numpy's default), `None` when empty.
pub fn std_dev(values: &[f64]) -> Option<f64> {
    let m = mean(values)?;
    Some((values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / values.len() as f64).sqrt())
}

/// Number of values in `sorted` that are `<= x`.
fn count_le(sorted: &[f64], x: f64) -> usize {
    sorted.partition_point(|v| *v <= x)
}

/// Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two empirical
/// CDFs (scipy `ks_2samp(a, b).statistic`).
pub fn ks_statistic(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (sa, sb) = (sorted(a), sorted(b));
    let (na, nb) = (sa.len() as f64, sb.len() as f64);
    let mut d: f64 = 0.0;
    for x in sa.iter().chain(sb.iter()) {
        let gap = (count_le(&sa, *x) as f64 / na - count_le(&sb, *x) as f64 / nb).abs();
        d = d.max(gap);
    }
    Some(d)
}

/// Asymptotic p-value of a two-sample KS statistic `d` (Kolmogorov's limiting
/// distribution at `sqrt(n·m/(n+m))·d`, with Stephens' small-sample correction). Reported
/// for information only: drift is decided on distances, never on p-values.
pub fn ks_p_value(d: f64, n: usize, m: usize) -> Option<f64> {
    if n == 0 || m == 0 || !d.is_finite() {
        return None;
    }
    let en = ((n * m) as f64 / (n + m) as f64).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    if lambda < 1e-3 {
        return Some(1.0);
    }
    let mut sum = 0.0;
    for j in 1..=100 {
        let j = f64::from(j);
        let term = 2.0 * (-1f64).powf(j - 1.0) * (-2.0 * j * j * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
    }
    Some(sum.clamp(0.0, 1.0))
}

/// First Wasserstein (earth mover's) distance between two samples: the area between their
/// empirical CDFs (scipy `wasserstein_distance(a, b)`), in the unit of the values.
pub fn wasserstein(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (sa, sb) = (sorted(a), sorted(b));
    let mut all: Vec<f64> = sa.iter().chain(sb.iter()).copied().collect();
    all.sort_by(f64::total_cmp);
    let (na, nb) = (sa.len() as f64, sb.len() as f64);
    let mut area = 0.0;
    for w in all.windows(2) {
        let (x, next) = (w[0], w[1]);
        let gap = (count_le(&sa, x) as f64 / na - count_le(&sb, x) as f64 / nb).abs();
        area += gap * (next - x);
    }
    Some(area)
}

/// Bin edges for PSI: the baseline's `k/bins` quantiles (numpy's default linear
/// interpolation), `k = 1..bins-1`, duplicates removed. A value `x` falls in bin
/// `#{edges <= x}` (numpy `searchsorted(edges, x, side="right")`).
pub fn quantile_edges(baseline: &[f64], bins: usize) -> Vec<f64> {
    let s = sorted(baseline);
    if s.is_empty() || bins < 2 {
        return Vec::new();
    }
    let last = (s.len() - 1) as f64;
    let mut edges: Vec<f64> = (1..bins)
        .map(|k| {
            let pos = last * k as f64 / bins as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
        })
        .collect();
    edges.dedup_by(|a, b| a == b);
    edges
}

/// Counts of `values` in the bins that `edges` delimit (`edges.len() + 1` bins).
pub fn bin_counts(values: &[f64], edges: &[f64]) -> Vec<f64> {
    let mut counts = vec![0.0; edges.len() + 1];
    for v in values {
        counts[count_le(edges, *v)] += 1.0;
    }
    counts
}

/// Population stability index of two count vectors over the same categories:
/// `Σ (r_i − b_i) · ln(r_i / b_i)` on shares smoothed by [`PSI_SMOOTHING`]. `None` when a
/// side is empty or there are fewer than two categories.
pub fn psi_from_counts(baseline: &[f64], recent: &[f64]) -> Option<f64> {
    let k = baseline.len();
    if k < 2 || recent.len() != k {
        return None;
    }
    let (nb, nr): (f64, f64) = (baseline.iter().sum(), recent.iter().sum());
    if nb <= 0.0 || nr <= 0.0 {
        return None;
    }
    let kf = k as f64;
    let share = |c: f64, n: f64| (c + PSI_SMOOTHING) / (n + PSI_SMOOTHING * kf);
    Some(
        baseline
            .iter()
            .zip(recent)
            .map(|(&b, &r)| {
                let (pb, pr) = (share(b, nb), share(r, nr));
                (pr - pb) * (pr / pb).ln()
            })
            .sum(),
    )
}

/// PSI of a continuous feature on [`PSI_BINS`] baseline-quantile bins. Returns the PSI
/// and the number of bins used (fewer when the baseline has ties at the edges).
pub fn psi(baseline: &[f64], recent: &[f64]) -> Option<(f64, usize)> {
    let edges = quantile_edges(baseline, PSI_BINS);
    let (cb, cr) = (bin_counts(baseline, &edges), bin_counts(recent, &edges));
    psi_from_counts(&cb, &cr).map(|p| (p, cb.len()))
}

/// Pearson chi-square statistic of the 2×k table `[baseline; recent]` (scipy
/// `chi2_contingency(table, correction=False)[0]`); categories empty on both sides are
/// dropped. Returns the statistic and the number of categories kept.
pub fn chi_square(baseline: &[f64], recent: &[f64]) -> Option<(f64, usize)> {
    let kept: Vec<(f64, f64)> = baseline
        .iter()
        .zip(recent)
        .map(|(&b, &r)| (b, r))
        .filter(|(b, r)| b + r > 0.0)
        .collect();
    let (nb, nr): (f64, f64) = kept
        .iter()
        .fold((0.0, 0.0), |(x, y), (b, r)| (x + b, y + r));
    let n = nb + nr;
    if kept.len() < 2 || nb <= 0.0 || nr <= 0.0 {
        return None;
    }
    let mut chi2 = 0.0;
    for (b, r) in &kept {
        let col = b + r;
        for (obs, row) in [(*b, nb), (*r, nr)] {
            let expected = row * col / n;
            chi2 += (obs - expected).powi(2) / expected;
        }
    }
    Some((chi2, kept.len()))
}

/// Cramér's V of the 2×k table `[baseline; recent]`: `sqrt(χ² / n)` — a distance in
/// [0, 1] between two categorical mixes that does not grow with the sample size (scipy
/// `contingency.association(table, method="cramer")`).
pub fn cramers_v(baseline: &[f64], recent: &[f64]) -> Option<(f64, usize)> {
    let (chi2, k) = chi_square(baseline, recent)?;
    let n: f64 = baseline.iter().chain(recent).sum();
    Some(((chi2 / n).sqrt(), k))
}

/// Effective sample size of a two-sample comparison, `n·m / (n + m)`.
pub fn effective_n(n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 {
        0.0
    } else {
        (n * m) as f64 / (n + m) as f64
    }
}

/// PSI that two samples of the same distribution reach by chance, `z` null standard
/// deviations above its null mean: under "no change" `n_eff·PSI` is close to a χ² with
/// `bins − 1` degrees of freedom (mean `bins − 1`, variance `2(bins − 1)`).
pub fn psi_noise_floor(bins: usize, n: usize, m: usize, z: f64) -> f64 {
    let ne = effective_n(n, m);
    if ne == 0.0 || bins < 2 {
        return f64::INFINITY;
    }
    let df = (bins - 1) as f64;
    (df + z * (2.0 * df).sqrt()) / ne
}

/// Wasserstein distance, in units of the baseline's standard deviation, that two samples
/// of the same distribution reach by chance at about `z` null standard deviations: the
/// null distance scales as `σ / sqrt(n_eff)` (mean ≈ 0.72 σ/√n_eff for a normal feature,
/// spread ≈ 0.4 of that), so the floor is `0.72 · (1 + 0.4 z) / sqrt(n_eff)`.
pub fn wasserstein_noise_floor_sd(n: usize, m: usize, z: f64) -> f64 {
    let ne = effective_n(n, m);
    if ne == 0.0 {
        return f64::INFINITY;
    }
    0.72 * (1.0 + 0.4 * z) / ne.sqrt()
}

/// Difference of two rates reached by chance at `z` standard errors (pooled two-proportion
/// test): `z · sqrt(p̄(1 − p̄)(1/n + 1/m))`, with `p̄` kept off 0 so that a rate of zero in
/// a small baseline does not make every single miss look like drift.
pub fn rate_noise_floor(pooled: f64, n: usize, m: usize, z: f64) -> f64 {
    if n == 0 || m == 0 {
        return f64::INFINITY;
    }
    let p = pooled.clamp(0.02, 0.98);
    z * (p * (1.0 - p) * (1.0 / n as f64 + 1.0 / m as f64)).sqrt()
}

/// Cramér's V reached by chance on a 2×k table of `n` items at `z` null standard
/// deviations of the χ² (`k − 1` degrees of freedom): `sqrt((k−1 + z·sqrt(2(k−1))) / n)`.
pub fn cramers_v_noise_floor(k: usize, n: usize, z: f64) -> f64 {
    if n == 0 || k < 2 {
        return f64::INFINITY;
    }
    let df = (k - 1) as f64;
    ((df + z * (2.0 * df).sqrt()) / n as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn identical_samples_have_zero_distance() {
        let a = [0.1, 0.5, 0.9, 0.3];
        assert_eq!(ks_statistic(&a, &a), Some(0.0));
        assert_eq!(wasserstein(&a, &a), Some(0.0));
        let (p, _) = psi(&a, &a).expect("psi");
        assert!(p.abs() < 1e-12);
    }

    #[test]
    fn shifted_sample_moves_wasserstein_by_the_shift() {
        let a: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 0.25).collect();
        assert!(close(wasserstein(&a, &b).expect("w"), 0.25));
        // 25 of the 100 grid points lie beyond the other sample (± one for rounding).
        assert!((ks_statistic(&a, &b).expect("ks") - 0.25).abs() <= 0.01 + 1e-9);
    }

    #[test]
    fn empty_inputs_are_undefined_not_zero() {
        assert_eq!(ks_statistic(&[], &[1.0]), None);
        assert_eq!(wasserstein(&[1.0], &[]), None);
        assert_eq!(psi(&[], &[1.0]), None);
        assert_eq!(cramers_v(&[0.0, 0.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn chi_square_of_a_known_table() {
        // [[10, 20], [20, 10]]: expected 15 everywhere, χ² = 4·25/15 = 6.666…
        let (c, k) = chi_square(&[10.0, 20.0], &[20.0, 10.0]).expect("chi2");
        assert!(close(c, 20.0 / 3.0));
        assert_eq!(k, 2);
        let (v, _) = cramers_v(&[10.0, 20.0], &[20.0, 10.0]).expect("v");
        assert!(close(v, (20.0 / 3.0 / 60.0f64).sqrt()));
    }

    #[test]
    fn noise_floors_shrink_with_more_data() {
        assert!(psi_noise_floor(10, 200, 50, 4.0) > psi_noise_floor(10, 2000, 500, 4.0));
        assert!(
            wasserstein_noise_floor_sd(200, 50, 4.0) > wasserstein_noise_floor_sd(2000, 500, 4.0)
        );
        assert!(psi_noise_floor(10, 0, 50, 4.0).is_infinite());
    }

    #[test]
    fn ks_p_value_is_one_for_no_gap_and_small_for_a_large_one() {
        assert_eq!(ks_p_value(0.0, 100, 100), Some(1.0));
        assert!(ks_p_value(0.5, 100, 100).expect("p") < 1e-6);
    }
}
