//! Synthetic production line: deterministic product images with defects and exact ground truth.
