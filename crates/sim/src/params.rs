//! What the simulated line looks like: image size, product kinds, share of clean parts,
//! and the drift knobs that make the camera or the product change over time.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A product kind the line makes; each has its own material, texture and components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    /// Brushed aluminium plate with four countersunk mounting holes and a label sticker.
    Plate,
    /// Glazed ceramic tile with a printed logo plate and rubber feet.
    Tile,
    /// Green circuit board with traces, pads, IC packages and a connector.
    Board,
}

impl ProductKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ProductKind; 3] = [ProductKind::Plate, ProductKind::Tile, ProductKind::Board];

    /// The lowercase name used on the command line and in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            ProductKind::Plate => "plate",
            ProductKind::Tile => "tile",
            ProductKind::Board => "board",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How the camera and the product drift away from the training conditions. Every knob's
/// default is neutral (no drift); a dataset made with defaults is the "clean" line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Drift {
    /// Exposure change as a fraction: `0.3` is 30 % more light, `-0.3` 30 % less.
    /// Raises (or lowers) mean brightness; highlights clip. Range `[-0.9, 2.0]`.
    pub illumination_shift: f32,
    /// Extra Gaussian blur sigma in pixels of the output image (camera wear, lost
    /// focus), on top of the optics' own slight softness. Range `[0, 10]`.
    pub blur_sigma: f32,
    /// Extra sensor noise: standard deviation on the 0..1 intensity scale (e.g. `0.03`
    /// for a noisy, high-gain sensor). Range `[0, 0.5]`.
    pub noise_sigma: f32,
    /// Move from the usual material towards a new supplier's: `0` usual, `1` fully new
    /// colour (anodised blue plate, grey stoneware tile, blue solder mask) and coarser
    /// texture. Range `[0, 1]`.
    pub material_shift: f32,
    /// Move from the usual defect appearance towards a new one: `0` usual, `1` cracks
    /// and scratches half as wide and fainter, stains of another colour, smaller pits.
    /// Range `[0, 1]`.
    pub defect_shift: f32,
    /// Camera moved sideways: the product appears shifted by this fraction of the image
    /// width (positive is right). Range `[-0.3, 0.3]`.
    pub camera_offset_x: f32,
    /// Camera moved vertically: shift as a fraction of the image height (positive is
    /// down). Range `[-0.3, 0.3]`.
    pub camera_offset_y: f32,
}

impl Default for Drift {
    fn default() -> Self {
        Self {
            illumination_shift: 0.0,
            blur_sigma: 0.0,
            noise_sigma: 0.0,
            material_shift: 0.0,
            defect_shift: 0.0,
            camera_offset_x: 0.0,
            camera_offset_y: 0.0,
        }
    }
}

impl Drift {
    /// True when every knob is at its neutral value.
    pub fn is_neutral(&self) -> bool {
        *self == Self::default()
    }
}

/// Everything that, together with a seed and an index, fixes one generated sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimParams {
    /// Output image width in pixels.
    pub width: u32,
    /// Output image height in pixels.
    pub height: u32,
    /// Share of parts without any defect, in `[0, 1]`.
    pub clean_fraction: f32,
    /// Most defects on one defective part (at least 1).
    pub max_defects: u32,
    /// Product kinds the line makes; each sample picks one uniformly.
    pub products: Vec<ProductKind>,
    /// Camera and product drift.
    pub drift: Drift,
}

impl Default for SimParams {
    /// A training-set line: 640×640 images, 40 % clean parts, every product kind.
    fn default() -> Self {
        Self {
            width: 640,
            height: 640,
            clean_fraction: 0.4,
            max_defects: 3,
            products: ProductKind::ALL.to_vec(),
            drift: Drift::default(),
        }
    }
}

/// Share of clean parts in a production stream: most parts are good.
pub const STREAM_CLEAN_FRACTION: f32 = 0.85;

/// Why parameters were refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ParamsError {
    /// A value is outside its documented range (or not a number).
    #[error("{name} = {value} is outside [{min}, {max}]")]
    OutOfRange {
        name: &'static str,
        value: f64,
        min: f64,
        max: f64,
    },
    /// No product kind to choose from.
    #[error("at least one product kind is needed")]
    NoProducts,
}

fn check(name: &'static str, value: f64, min: f64, max: f64) -> Result<(), ParamsError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ParamsError::OutOfRange {
            name,
            value,
            min,
            max,
        })
    }
}

impl SimParams {
    /// Checks every value against its documented range.
    pub fn validate(&self) -> Result<(), ParamsError> {
        check("width", self.width as f64, 64.0, 4096.0)?;
        check("height", self.height as f64, 64.0, 4096.0)?;
        check("clean_fraction", self.clean_fraction as f64, 0.0, 1.0)?;
        check("max_defects", self.max_defects as f64, 1.0, 8.0)?;
        if self.products.is_empty() {
            return Err(ParamsError::NoProducts);
        }
        let d = &self.drift;
        check("illumination_shift", d.illumination_shift as f64, -0.9, 2.0)?;
        check("blur_sigma", d.blur_sigma as f64, 0.0, 10.0)?;
        check("noise_sigma", d.noise_sigma as f64, 0.0, 0.5)?;
        check("material_shift", d.material_shift as f64, 0.0, 1.0)?;
        check("defect_shift", d.defect_shift as f64, 0.0, 1.0)?;
        check("camera_offset_x", d.camera_offset_x as f64, -0.3, 0.3)?;
        check("camera_offset_y", d.camera_offset_y as f64, -0.3, 0.3)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_neutral() {
        let p = SimParams::default();
        assert!(p.validate().is_ok());
        assert!(p.drift.is_neutral());
    }

    #[test]
    fn out_of_range_knob_is_named() {
        let mut p = SimParams::default();
        p.drift.blur_sigma = -1.0;
        let err = p.validate().unwrap_err();
        assert!(err.to_string().contains("blur_sigma"), "{err}");
        p.drift.blur_sigma = f32::NAN;
        assert!(p.validate().is_err());
    }
}
