//! Helpers shared by the unit tests of the kernels and rewrites.

/// `n` values in [-1, 1), spread and different for each `seed`: inputs, weights and
/// biases for comparing a kernel with its definition.
pub(crate) fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 2003.0 - 0.5) * 2.0)
        .collect()
}
