//! Opaque keyset cursors: the sort key of the last item of a page, as hex of a small
//! JSON object tagged with the listing it belongs to. The next page starts strictly
//! after that key, so records inserted meanwhile never shift what follows (no OFFSET).

use serde::{Deserialize, Serialize};

use super::error::LocalError;

/// Where a listing stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k")]
pub(crate) enum Cursor {
    /// Inspections, newest first: `(created_at, id)` descending.
    #[serde(rename = "in")]
    InspectionsNewest { t: i64, id: String },
    /// Inspections, oldest first: `(created_at, id)` ascending.
    #[serde(rename = "io")]
    InspectionsOldest { t: i64, id: String },
    /// Inspections, most uncertain first: `(confidence, created_at, id)` ascending.
    #[serde(rename = "iu")]
    InspectionsUncertain { c: f64, t: i64, id: String },
    /// Audit events, newest first: `(at, id)` descending.
    #[serde(rename = "a")]
    Audit { t: i64, id: String },
    /// Drift records, newest first: `(evaluated_at, id)` descending.
    #[serde(rename = "d")]
    Drift { t: i64, id: String },
}

impl Cursor {
    pub(crate) fn encode(&self) -> Result<String, LocalError> {
        let json =
            serde_json::to_vec(self).map_err(|e| LocalError::Unstorable(format!("cursor: {e}")))?;
        Ok(hex::encode(json))
    }

    /// Any string this store did not hand out is `BadCursor`.
    pub(crate) fn decode(s: &str) -> Result<Cursor, LocalError> {
        let bytes = hex::decode(s).map_err(|_| LocalError::BadCursor)?;
        serde_json::from_slice(&bytes).map_err(|_| LocalError::BadCursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_exact_confidence() {
        let c = Cursor::InspectionsUncertain {
            c: f64::from(0.1f32),
            t: -5,
            id: "insp_x".into(),
        };
        let s = c.encode().expect("encode");
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(Cursor::decode(&s).expect("decode"), c);
    }

    #[test]
    fn garbage_is_a_bad_cursor() {
        for s in ["", "zz", "not a cursor", &hex::encode(b"{\"k\":\"nope\"}")] {
            assert!(
                matches!(Cursor::decode(s), Err(LocalError::BadCursor)),
                "{s}"
            );
        }
    }
}
