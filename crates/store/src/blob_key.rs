//! Blob key rules shared by every adapter. A key is a `/`-separated path of plain names
//! (`raw/cam-1/insp_ab12.jpg`): it can never climb out of the blob root, address a
//! hidden or temporary file, or mean different things on different backends.

use opti_core::ports::StoreError;
use thiserror::Error;

/// Longest key accepted, in bytes (S3's limit).
pub const MAX_KEY_LEN: usize = 1024;

/// Longest single segment accepted, in bytes (common filesystem name limit).
pub const MAX_SEGMENT_LEN: usize = 255;

/// Why a blob key or prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid blob key {key:?}: {reason}")]
pub struct InvalidBlobKey {
    /// The refused key (or prefix).
    pub key: String,
    /// Which rule it broke.
    pub reason: &'static str,
}

impl From<InvalidBlobKey> for StoreError {
    fn from(e: InvalidBlobKey) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// Checks a full key: non-empty, at most [`MAX_KEY_LEN`] bytes, segments separated by
/// single `/` (none leading or trailing), each segment of ASCII letters, digits and
/// `-_.=+@,`, not starting with `.` (so no `.`/`..`, no hidden or temp files).
pub fn validate_key(key: &str) -> Result<(), InvalidBlobKey> {
    let refuse = |reason| {
        Err(InvalidBlobKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return refuse("empty");
    }
    if key.len() > MAX_KEY_LEN {
        return refuse("longer than 1024 bytes");
    }
    for segment in key.split('/') {
        if let Err(reason) = check_segment(segment) {
            return refuse(reason);
        }
    }
    Ok(())
}

/// Checks a listing prefix: empty, or every complete segment valid as in
/// [`validate_key`], and the trailing partial segment (possibly empty after a `/`)
/// made of the same characters and not starting with `.`.
pub fn validate_prefix(prefix: &str) -> Result<(), InvalidBlobKey> {
    let refuse = |reason| {
        Err(InvalidBlobKey {
            key: prefix.to_owned(),
            reason,
        })
    };
    if prefix.len() > MAX_KEY_LEN {
        return refuse("longer than 1024 bytes");
    }
    if prefix.is_empty() {
        return Ok(());
    }
    let (dirs, last) = match prefix.rsplit_once('/') {
        Some((dirs, last)) => (Some(dirs), last),
        None => (None, prefix),
    };
    if let Some(dirs) = dirs {
        for segment in dirs.split('/') {
            if let Err(reason) = check_segment(segment) {
                return refuse(reason);
            }
        }
    }
    if !last.is_empty() {
        if let Err(reason) = check_segment(last) {
            return refuse(reason);
        }
    }
    Ok(())
}

/// The directory part of a prefix: everything before its last `/` (empty when none).
pub(crate) fn prefix_dir(prefix: &str) -> &str {
    prefix.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn check_segment(segment: &str) -> Result<(), &'static str> {
    if segment.is_empty() {
        return Err("empty segment (leading, trailing or doubled '/')");
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err("segment longer than 255 bytes");
    }
    if segment.starts_with('.') {
        return Err("segment starts with '.'");
    }
    if !segment.bytes().all(is_key_byte) {
        return Err("only ASCII letters, digits, '/' and -_.=+@, are allowed");
    }
    Ok(())
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=' | b'+' | b'@' | b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_keys_are_accepted() {
        for key in [
            "raw/cam-1/abc.jpg",
            "models/v3/model.onnx",
            "snapshots/2024-01-01_a=b+c@d,e.tar",
            "a",
        ] {
            assert_eq!(validate_key(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn keys_that_could_escape_or_hide_are_refused() {
        for key in [
            "",
            "/abs/path",
            "raw/../etc/passwd",
            "..",
            "raw/./x",
            "raw//x",
            "raw/x/",
            "raw/.tmp-1",
            "raw\\x",
            "raw/x\0y",
            "raw/späte.jpg",
            "raw/with space.jpg",
            "C:/x",
        ] {
            assert!(validate_key(key).is_err(), "{key:?} should be refused");
        }
        let long = "a".repeat(MAX_KEY_LEN + 1);
        assert!(validate_key(&long).is_err());
        let long_segment = format!("raw/{}", "b".repeat(MAX_SEGMENT_LEN + 1));
        assert!(validate_key(&long_segment).is_err());
    }

    #[test]
    fn prefixes_may_end_mid_segment_or_after_a_slash() {
        for prefix in ["", "raw/", "raw/ca", "raw/cam-1/", "r"] {
            assert_eq!(validate_prefix(prefix), Ok(()), "{prefix}");
        }
        for prefix in ["/", "/raw", "../", "raw/../", "raw//", "raw/.t", "a b"] {
            assert!(
                validate_prefix(prefix).is_err(),
                "{prefix:?} should be refused"
            );
        }
    }

    #[test]
    fn prefix_dir_is_the_part_before_the_last_slash() {
        assert_eq!(prefix_dir(""), "");
        assert_eq!(prefix_dir("raw"), "");
        assert_eq!(prefix_dir("raw/"), "raw");
        assert_eq!(prefix_dir("raw/cam-1/ab"), "raw/cam-1");
    }

    #[test]
    fn invalid_key_becomes_a_backend_error_naming_the_key() {
        let err: StoreError = validate_key("../x").unwrap_err().into();
        assert!(matches!(&err, StoreError::Backend(m) if m.contains("../x")));
    }
}
