//! Time-limited URLs for blobs: presigned uploads for cameras and image URLs for the UI.
//! Local mode signs with HMAC-SHA256 and serves the URLs itself; AWS mode presigns S3.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use time::OffsetDateTime;

/// What a camera needs for a direct upload.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PresignedPut {
    pub url: String,
    pub method: String,
    /// Headers the PUT must carry exactly as given (they are part of the signature).
    pub headers: std::collections::BTreeMap<String, String>,
    pub key: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Makes time-limited URLs for blobs.
pub trait BlobUrls: Send + Sync {
    /// A URL that reads `key` until `expires_at`.
    fn get_url(&self, key: &str, expires_at: OffsetDateTime) -> String;
    /// A URL that writes `key` once with this content type and at most `max_bytes`.
    fn put_url(
        &self,
        key: &str,
        content_type: &str,
        max_bytes: usize,
        expires_at: OffsetDateTime,
    ) -> PresignedPut;
}

/// Shortest signing key accepted; a shorter one signs nothing and verifies nothing.
pub const MIN_SECRET_BYTES: usize = 32;

/// HMAC-signed URLs served by the local service itself (`GET /blobs/…`, `PUT /uploads/put/…`).
pub struct HmacBlobUrls {
    secret: Vec<u8>,
    /// Prefix of absolute URLs for cameras (e.g. `http://line-pc:8080`); image URLs for
    /// the UI are relative.
    public_base_url: String,
}

impl HmacBlobUrls {
    pub fn new(secret: Vec<u8>, public_base_url: impl Into<String>) -> Self {
        Self {
            secret,
            public_base_url: public_base_url.into().trim_end_matches('/').to_string(),
        }
    }

    fn mac(&self, message: &str) -> Option<Hmac<Sha256>> {
        if self.secret.len() < MIN_SECRET_BYTES {
            return None;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).ok()?;
        mac.update(message.as_bytes());
        Some(mac)
    }

    fn sign(&self, message: &str) -> String {
        self.mac(message)
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// Constant-time check of a hex signature; fails closed (bad hex, short key).
    fn verify(&self, message: &str, sig: &str) -> bool {
        match (self.mac(message), hex::decode(sig)) {
            (Some(mac), Ok(bytes)) => mac.verify_slice(&bytes).is_ok(),
            _ => false,
        }
    }

    fn get_message(key: &str, exp: i64) -> String {
        format!("GET\n{key}\n{exp}")
    }

    fn put_message(key: &str, content_type: &str, max_bytes: usize, exp: i64) -> String {
        format!("PUT\n{key}\n{content_type}\n{max_bytes}\n{exp}")
    }

    /// Checks a signed GET: right signature and not expired.
    pub fn verify_get(&self, key: &str, exp: i64, sig: &str, now: OffsetDateTime) -> bool {
        now.unix_timestamp() <= exp && self.verify(&Self::get_message(key, exp), sig)
    }

    /// Checks a signed PUT: right signature for this key, content type and size cap, not expired.
    pub fn verify_put(
        &self,
        key: &str,
        content_type: &str,
        max_bytes: usize,
        exp: i64,
        sig: &str,
        now: OffsetDateTime,
    ) -> bool {
        now.unix_timestamp() <= exp
            && constant_eq(
                &self.sign(&Self::put_message(key, content_type, max_bytes, exp)),
                sig,
            )
    }
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl BlobUrls for HmacBlobUrls {
    fn get_url(&self, key: &str, expires_at: OffsetDateTime) -> String {
        let exp = expires_at.unix_timestamp();
        let sig = self.sign(&Self::get_message(key, exp));
        format!("/blobs/{key}?exp={exp}&sig={sig}")
    }

    fn put_url(
        &self,
        key: &str,
        content_type: &str,
        max_bytes: usize,
        expires_at: OffsetDateTime,
    ) -> PresignedPut {
        let exp = expires_at.unix_timestamp();
        let sig = self.sign(&Self::put_message(key, content_type, max_bytes, exp));
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("content-type".to_string(), content_type.to_string());
        PresignedPut {
            url: format!(
                "{}/uploads/put/{key}?exp={exp}&max={max_bytes}&sig={sig}",
                self.public_base_url
            ),
            method: "PUT".into(),
            headers,
            key: key.to_string(),
            expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn urls() -> HmacBlobUrls {
        HmacBlobUrls::new(vec![7u8; 32], "http://localhost:8080/")
    }

    #[test]
    fn signed_put_verifies_only_for_its_key_type_size_and_time() {
        let now = OffsetDateTime::now_utc();
        let u = urls();
        let p = u.put_url(
            "raw/cam-1/a.jpg",
            "image/jpeg",
            1000,
            now + Duration::minutes(15),
        );
        let sig = p.url.rsplit("sig=").next().unwrap_or_default().to_string();
        let exp = p.expires_at.unix_timestamp();
        assert!(p
            .url
            .starts_with("http://localhost:8080/uploads/put/raw/cam-1/a.jpg?"));
        assert!(u.verify_put("raw/cam-1/a.jpg", "image/jpeg", 1000, exp, &sig, now));
        assert!(!u.verify_put("raw/cam-2/a.jpg", "image/jpeg", 1000, exp, &sig, now));
        assert!(!u.verify_put("raw/cam-1/a.jpg", "image/png", 1000, exp, &sig, now));
        assert!(!u.verify_put("raw/cam-1/a.jpg", "image/jpeg", 2000, exp, &sig, now));
        assert!(!u.verify_put(
            "raw/cam-1/a.jpg",
            "image/jpeg",
            1000,
            exp,
            &sig,
            now + Duration::minutes(16)
        ));
    }

    #[test]
    fn a_short_key_signs_nothing_and_verifies_nothing() {
        let now = OffsetDateTime::now_utc();
        let weak = HmacBlobUrls::new(Vec::new(), "http://x");
        let url = weak.get_url("raw/c/x.png", now + Duration::seconds(60));
        let exp = (now + Duration::seconds(60)).unix_timestamp();
        assert!(url.ends_with("sig="));
        assert!(!weak.verify_get("raw/c/x.png", exp, "", now));
    }

    #[test]
    fn signed_get_expires() {
        let now = OffsetDateTime::now_utc();
        let u = urls();
        let url = u.get_url("raw/c/x.png", now + Duration::seconds(60));
        let sig = url.rsplit("sig=").next().unwrap_or_default();
        let exp = (now + Duration::seconds(60)).unix_timestamp();
        assert!(u.verify_get("raw/c/x.png", exp, sig, now));
        assert!(!u.verify_get("raw/c/x.png", exp, sig, now + Duration::seconds(61)));
        assert!(!u.verify_get("raw/c/y.png", exp, sig, now));
    }
}
