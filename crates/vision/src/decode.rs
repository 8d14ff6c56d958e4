//! Hardened image input: PNG and JPEG only, recognised by their magic bytes; the byte
//! count, the header's dimensions and the pixel count are checked against limits before
//! any pixel buffer is allocated; a decoder panic becomes a typed error. Whatever a
//! camera or a user uploads, the result is an RGB image or a [`DecodeError`] that says
//! why — never a crash, never an unbounded allocation.

use std::fs::File;
use std::io::{Cursor, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

/// The two formats the inspection pipeline accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    Png,
    Jpeg,
}

impl ImageKind {
    /// Lower-case name, as used in messages and reports (`png`, `jpeg`).
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Png => "png",
            ImageKind::Jpeg => "jpeg",
        }
    }

    fn format(self) -> ImageFormat {
        match self {
            ImageKind::Png => ImageFormat::Png,
            ImageKind::Jpeg => ImageFormat::Jpeg,
        }
    }
}

impl std::fmt::Display for ImageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bounds on what the decoder accepts. The defaults suit line cameras: 20 MB files,
/// at most 8192 pixels a side and 40 megapixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest file accepted, in bytes; reading stops one byte past it.
    pub max_bytes: u64,
    /// Largest width accepted, in pixels.
    pub max_width: u32,
    /// Largest height accepted, in pixels.
    pub max_height: u32,
    /// Largest `width × height` accepted.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_bytes: 20 * 1024 * 1024,
            max_width: 8192,
            max_height: 8192,
            max_pixels: 40_000_000,
        }
    }
}

impl DecodeLimits {
    /// Upper bound on what the decoder may allocate: the RGBA16 output of the largest
    /// accepted image, plus slack for the decoder's own working buffers.
    fn max_alloc(&self) -> u64 {
        self.max_pixels.saturating_mul(8).saturating_add(64 << 20)
    }
}

/// Why a file could not be turned into pixels.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be read at all.
    #[error("cannot read image: {0}")]
    Io(#[from] std::io::Error),
    /// Zero bytes.
    #[error("empty file")]
    Empty,
    /// More bytes than [`DecodeLimits::max_bytes`].
    #[error("file too large: more than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },
    /// Not a PNG or JPEG (by magic bytes); `detected` names what it looks like.
    #[error("unsupported image format ({detected}); only PNG and JPEG are accepted")]
    Unsupported {
        /// What the magic bytes suggest (`tiff`, `gif`, `unknown`, …).
        detected: &'static str,
    },
    /// The header declares dimensions beyond the limits; nothing was allocated.
    #[error("image dimensions {width}x{height} exceed the limit ({reason})")]
    DimensionsTooLarge {
        width: u32,
        height: u32,
        /// Which limit: `max 8192x8192`, `max 40000000 pixels`.
        reason: String,
    },
    /// The header declares an image with no pixels.
    #[error("image has zero width or height")]
    ZeroSize,
    /// The decoder refused the data (corrupt, truncated, unsupported variant).
    #[error("corrupt {kind} image: {message}")]
    Corrupt { kind: ImageKind, message: String },
    /// The decoder panicked; the panic was contained.
    #[error("{kind} decoder failed unexpectedly: {message}")]
    DecoderPanic { kind: ImageKind, message: String },
}

impl DecodeError {
    /// A short machine-friendly tag for reports and metrics (`too_large`, `corrupt`, …).
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Io(_) => "io",
            DecodeError::Empty => "empty",
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Unsupported { .. } => "unsupported_format",
            DecodeError::DimensionsTooLarge { .. } => "dimensions_too_large",
            DecodeError::ZeroSize => "zero_size",
            DecodeError::Corrupt { .. } => "corrupt",
            DecodeError::DecoderPanic { .. } => "decoder_panic",
        }
    }
}

/// A decoded image: 8-bit RGB pixels (EXIF orientation applied) and the source format.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    pub rgb: RgbImage,
    pub kind: ImageKind,
}

impl DecodedImage {
    pub fn width(&self) -> u32 {
        self.rgb.width()
    }

    pub fn height(&self) -> u32 {
        self.rgb.height()
    }
}

/// What the first bytes of a file say it is: an accepted kind, or the name of the
/// format it looks like (for the error message).
pub fn sniff(bytes: &[u8]) -> Result<ImageKind, &'static str> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) {
        return Ok(ImageKind::Png);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(ImageKind::Jpeg);
    }
    let detected = if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        "tiff"
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        "gif"
    } else if bytes.starts_with(b"BM") {
        "bmp"
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "webp"
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        "heif/avif/mp4"
    } else if bytes.starts_with(b"%PDF") {
        "pdf"
    } else if bytes.starts_with(&[0x00, 0x00, 0x01, 0x00]) {
        "ico"
    } else {
        "unknown"
    };
    Err(detected)
}

/// True when the bytes start like a PNG or a JPEG (used to pick images out of folders).
pub fn looks_like_image(bytes: &[u8]) -> bool {
    sniff(bytes).is_ok()
}

/// Reads at most `limits.max_bytes` of a file; a larger file is refused without reading
/// the rest.
pub fn read_limited(path: &Path, limits: &DecodeLimits) -> Result<Vec<u8>, DecodeError> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limits.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    Ok(bytes)
}

/// Reads and decodes a file (see [`decode_bytes`]).
pub fn decode_file(path: &Path, limits: &DecodeLimits) -> Result<DecodedImage, DecodeError> {
    let bytes = read_limited(path, limits)?;
    decode_bytes(&bytes, limits)
}

/// Whether a JPEG's last bytes hold the EOI marker (`FF D9`), allowing trailing padding.
fn has_jpeg_end(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Decodes PNG or JPEG bytes to RGB8: format by magic bytes, byte cap, header
/// dimensions checked before pixel buffers exist, decoder panics contained.
pub fn decode_bytes(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() as u64 > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let kind = sniff(bytes).map_err(|detected| DecodeError::Unsupported { detected })?;
    let corrupt = |e: image::ImageError| DecodeError::Corrupt {
        kind,
        message: e.to_string(),
    };
    // The JPEG decoder fills a file cut short (an upload interrupted mid-transfer) with
    // grey instead of failing; such a part must not be judged. A whole JPEG ends with the
    // EOI marker, perhaps followed by a little padding.
    if kind == ImageKind::Jpeg && !has_jpeg_end(bytes) {
        return Err(DecodeError::Corrupt {
            kind,
            message: "truncated JPEG: no end-of-image marker".into(),
        });
    }

    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<RgbImage, DecodeError> {
        // Header only: no pixel buffer yet.
        let (width, height) = ImageReader::with_format(Cursor::new(bytes), kind.format())
            .into_dimensions()
            .map_err(corrupt)?;
        check_dimensions(width, height, limits)?;

        let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.format());
        let mut decoder_limits = Limits::default();
        decoder_limits.max_image_width = Some(limits.max_width);
        decoder_limits.max_image_height = Some(limits.max_height);
        decoder_limits.max_alloc = Some(limits.max_alloc());
        reader.limits(decoder_limits);
        let mut decoder = reader.into_decoder().map_err(corrupt)?;
        // What OpenCV's imread (and so Ultralytics) does: honour the EXIF orientation.
        let orientation = decoder.orientation().ok();
        let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
        if let Some(o) = orientation {
            image.apply_orientation(o);
        }
        Ok(match image {
            DynamicImage::ImageRgb8(rgb) => rgb,
            other => other.to_rgb8(),
        })
    }));
    match outcome {
        Ok(result) => result.map(|rgb| DecodedImage { rgb, kind }),
        Err(payload) => Err(DecodeError::DecoderPanic {
            kind,
            message: panic_message(payload.as_ref()),
        }),
    }
}

fn check_dimensions(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::ZeroSize);
    }
    if width > limits.max_width || height > limits.max_height {
        return Err(DecodeError::DimensionsTooLarge {
            width,
            height,
            reason: format!("max {}x{}", limits.max_width, limits.max_height),
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DecodeError::DimensionsTooLarge {
            width,
            height,
            reason: format!("max {} pixels", limits.max_pixels),
        });
    }
    Ok(())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic without message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb};

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x * 7) as u8, (y * 3) as u8, 90]));
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .expect("encode png");
        out
    }

    fn jpeg_bytes(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x * 5) as u8, (y * 2) as u8, 40]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .expect("encode jpeg");
        out
    }

    /// Rewrites the IHDR of a valid PNG to claim other dimensions (CRC fixed up, so the
    /// decoder believes the header).
    fn png_with_header_dims(w: u32, h: u32) -> Vec<u8> {
        let mut bytes = png_bytes(4, 4);
        // Signature (8) + chunk length (4) + "IHDR" (4), then width and height.
        bytes[16..20].copy_from_slice(&w.to_be_bytes());
        bytes[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn png_and_jpeg_decode_to_rgb_of_their_size() {
        let limits = DecodeLimits::default();
        let png = decode_bytes(&png_bytes(33, 17), &limits).expect("png");
        assert_eq!(
            (png.width(), png.height(), png.kind),
            (33, 17, ImageKind::Png)
        );
        assert_eq!(png.rgb.get_pixel(2, 1), &Rgb([14, 3, 90]));
        let jpg = decode_bytes(&jpeg_bytes(40, 24), &limits).expect("jpeg");
        assert_eq!(
            (jpg.width(), jpg.height(), jpg.kind),
            (40, 24, ImageKind::Jpeg)
        );
    }

    #[test]
    fn zero_byte_file_is_empty_error() {
        let err = decode_bytes(&[], &DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, DecodeError::Empty), "{err}");
    }

    #[test]
    fn renamed_tiff_is_refused_by_magic_bytes_and_named() {
        // A TIFF header, whatever the file is called.
        let tiff = b"II*\0\x08\0\0\0\x00\x00 rest of a tiff".to_vec();
        let err = decode_bytes(&tiff, &DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(err, DecodeError::Unsupported { detected: "tiff" }),
            "{err}"
        );
        assert!(err.to_string().contains("only PNG and JPEG"));
    }

    #[test]
    fn other_formats_and_garbage_are_unsupported() {
        for (bytes, detected) in [
            (b"GIF89a\x01\0\x01\0".to_vec(), "gif"),
            (b"BM\0\0\0\0".to_vec(), "bmp"),
            (b"RIFF\0\0\0\0WEBPVP8 ".to_vec(), "webp"),
            (b"hello, I am a text file".to_vec(), "unknown"),
        ] {
            let err = decode_bytes(&bytes, &DecodeLimits::default()).unwrap_err();
            assert!(
                matches!(err, DecodeError::Unsupported { detected: d } if d == detected),
                "{err}"
            );
        }
    }

    #[test]
    fn header_claiming_20000_by_20000_is_refused_before_allocating() {
        let bytes = png_with_header_dims(20_000, 20_000);
        let err = decode_bytes(&bytes, &DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::DimensionsTooLarge {
                    width: 20_000,
                    height: 20_000,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn jpeg_header_claiming_20000_by_20000_is_refused_before_allocating() {
        let mut bytes = jpeg_bytes(16, 16);
        // Baseline SOF0 segment: FF C0, length (2), precision (1), height (2), width (2).
        let sof = bytes
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("SOF0 marker");
        bytes[sof + 5..sof + 7].copy_from_slice(&20_000u16.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&20_000u16.to_be_bytes());
        let err = decode_bytes(&bytes, &DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::DimensionsTooLarge {
                    width: 20_000,
                    height: 20_000,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn renamed_tiff_and_zero_byte_files_on_disk_get_typed_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tiff = dir.path().join("part_0001.png");
        std::fs::write(&tiff, b"MM\0*\0\0\0\x08 a big-endian tiff").expect("write");
        let empty = dir.path().join("part_0002.jpg");
        std::fs::write(&empty, b"").expect("write");
        let limits = DecodeLimits::default();
        assert!(matches!(
            decode_file(&tiff, &limits),
            Err(DecodeError::Unsupported { detected: "tiff" })
        ));
        assert!(matches!(
            decode_file(&empty, &limits),
            Err(DecodeError::Empty)
        ));
    }

    #[test]
    fn png_signature_followed_by_garbage_is_corrupt() {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend(std::iter::repeat_n(0xAB, 500));
        let err = decode_bytes(&bytes, &DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Corrupt {
                    kind: ImageKind::Png,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn pixel_count_cap_applies_even_within_side_limits() {
        let bytes = png_with_header_dims(8000, 8000);
        let err = decode_bytes(&bytes, &DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(err, DecodeError::DimensionsTooLarge { ref reason, .. } if reason.contains("pixels")),
            "{err}"
        );
    }

    #[test]
    fn truncated_png_and_jpeg_are_corrupt_not_a_crash() {
        let limits = DecodeLimits::default();
        let png = png_bytes(64, 64);
        for cut in [9, 20, 40, png.len() / 2, png.len() - 5] {
            let err = decode_bytes(&png[..cut], &limits).unwrap_err();
            assert!(
                matches!(
                    err,
                    DecodeError::Corrupt { .. } | DecodeError::DecoderPanic { .. }
                ),
                "cut {cut}: {err}"
            );
        }
        let jpg = jpeg_bytes(64, 64);
        for cut in [3, 10, 100, jpg.len() / 2, jpg.len() - 2] {
            let err = decode_bytes(&jpg[..cut], &limits).unwrap_err();
            assert!(
                matches!(
                    err,
                    DecodeError::Corrupt { .. } | DecodeError::DecoderPanic { .. }
                ),
                "cut {cut}: {err}"
            );
        }
    }

    #[test]
    fn jpeg_cut_short_mid_scan_is_corrupt_not_grey_filled() {
        // Large enough that the cut lands inside the entropy-coded scan.
        let jpg = jpeg_bytes(256, 192);
        let cut = &jpg[..jpg.len() * 7 / 10];
        let err = decode_bytes(cut, &DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Corrupt {
                    kind: ImageKind::Jpeg,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn corrupt_bytes_after_a_valid_signature_never_panic() {
        let limits = DecodeLimits::default();
        let mut state = 0x1234_5678u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for base in [png_bytes(32, 32), jpeg_bytes(32, 32)] {
            for _ in 0..200 {
                let mut bytes = base.clone();
                for _ in 0..8 {
                    let i = 3 + (next() as usize) % (bytes.len() - 3);
                    bytes[i] = next() as u8;
                }
                // Any outcome but a panic or hang is fine: decoded, or a typed error.
                let _ = decode_bytes(&bytes, &limits);
            }
        }
    }

    #[test]
    fn file_over_the_byte_cap_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.png");
        let mut bytes = png_bytes(8, 8);
        bytes.resize(4096, 0);
        std::fs::write(&path, &bytes).expect("write");
        let limits = DecodeLimits {
            max_bytes: 1000,
            ..DecodeLimits::default()
        };
        let err = decode_file(&path, &limits).unwrap_err();
        assert!(
            matches!(err, DecodeError::TooLarge { limit: 1000 }),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let err =
            decode_file(Path::new("/nonexistent/x.png"), &DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, DecodeError::Io(_)), "{err}");
        assert_eq!(err.code(), "io");
    }
}
