//! The drift statistics against reference values computed by scipy/numpy
//! (`fixtures/make_drift_fixture.py` wrote `fixtures/drift_fixture.json`).

use opti_core::drift_stats as st;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    continuous: Vec<Continuous>,
    categorical: Vec<Categorical>,
}

#[derive(Deserialize)]
struct Continuous {
    name: String,
    baseline: Vec<f64>,
    recent: Vec<f64>,
    ks: f64,
    ks_p_asymptotic: f64,
    wasserstein: f64,
    psi: f64,
    psi_bins: usize,
    baseline_mean: f64,
    baseline_std: f64,
}

#[derive(Deserialize)]
struct Categorical {
    name: String,
    baseline: Vec<f64>,
    recent: Vec<f64>,
    chi_square: f64,
    categories: usize,
    cramers_v: f64,
    psi: f64,
}

fn fixture() -> Fixture {
    let text = include_str!("fixtures/drift_fixture.json");
    serde_json::from_str(text).expect("drift_fixture.json parses")
}

fn assert_close(what: &str, case: &str, got: f64, want: f64) {
    let tol = 1e-9 * want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tol,
        "{case}: {what} = {got}, scipy/numpy says {want}"
    );
}

#[test]
fn ks_wasserstein_and_psi_match_scipy_and_numpy() {
    let f = fixture();
    assert!(f.continuous.len() >= 9);
    for c in &f.continuous {
        let ks = st::ks_statistic(&c.baseline, &c.recent).expect("ks");
        assert_close("KS statistic", &c.name, ks, c.ks);
        let p = st::ks_p_value(ks, c.baseline.len(), c.recent.len()).expect("p");
        assert!(
            (p - c.ks_p_asymptotic).abs() < 1e-8,
            "{}: KS p {p} vs {}",
            c.name,
            c.ks_p_asymptotic
        );
        let w = st::wasserstein(&c.baseline, &c.recent).expect("w");
        assert_close("Wasserstein", &c.name, w, c.wasserstein);
        let (psi, bins) = st::psi(&c.baseline, &c.recent).expect("psi");
        assert_eq!(bins, c.psi_bins, "{}: PSI bins", c.name);
        assert_close("PSI", &c.name, psi, c.psi);
        assert_close(
            "mean",
            &c.name,
            st::mean(&c.baseline).expect("mean"),
            c.baseline_mean,
        );
        assert_close(
            "std",
            &c.name,
            st::std_dev(&c.baseline).expect("std"),
            c.baseline_std,
        );
    }
}

#[test]
fn chi_square_cramers_v_and_categorical_psi_match_scipy() {
    for c in &fixture().categorical {
        let (chi2, k) = st::chi_square(&c.baseline, &c.recent).expect("chi2");
        assert_eq!(k, c.categories, "{}", c.name);
        assert_close("chi-square", &c.name, chi2, c.chi_square);
        let (v, _) = st::cramers_v(&c.baseline, &c.recent).expect("v");
        assert_close("Cramér's V", &c.name, v, c.cramers_v);
        let psi = st::psi_from_counts(&c.baseline, &c.recent).expect("psi");
        assert_close("PSI", &c.name, psi, c.psi);
    }
}

#[test]
fn a_trivial_shift_in_a_large_sample_is_significant_but_below_every_distance_threshold() {
    // 4000 vs 4000 values, means 0.03 SD apart: a p-value test would call it drift.
    let f = fixture();
    let c = f
        .continuous
        .iter()
        .find(|c| c.name.starts_with("large_trivial_shift"))
        .expect("large case");
    let cfg = opti_core::config::DriftConfig::default();
    let sd = st::std_dev(&c.baseline).expect("sd");
    let w_sd = st::wasserstein(&c.baseline, &c.recent).expect("w") / sd;
    let (psi, _) = st::psi(&c.baseline, &c.recent).expect("psi");
    assert!(w_sd < f64::from(cfg.image_shift_sd), "W = {w_sd} SD");
    assert!(psi < f64::from(cfg.psi_threshold), "PSI = {psi}");
}
