//! S3-presigned URLs behind the service's [`BlobUrls`] port: image reads for the UI and
//! camera uploads whose key and content type are part of the signature. (A presigned
//! PUT can only sign an exact length, not a maximum; the upload function checks the
//! object's size before it reads it.)

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use opti_api::{BlobUrls, PresignedPut};
use time::OffsetDateTime;

/// Longest lifetime of a presigned URL (15 minutes).
pub const MAX_TTL: Duration = Duration::from_secs(900);

/// Presigns S3 requests on one bucket.
pub struct S3Urls {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Urls {
    /// Presigner for `bucket`.
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str) -> Self {
        S3Urls {
            s3,
            bucket: bucket.to_owned(),
        }
    }

    fn config(expires_at: OffsetDateTime) -> Option<PresigningConfig> {
        let left = (expires_at - OffsetDateTime::now_utc())
            .whole_seconds()
            .max(1);
        let ttl = Duration::from_secs(u64::try_from(left).unwrap_or(1)).min(MAX_TTL);
        PresigningConfig::expires_in(ttl).ok()
    }
}

/// Runs the SDK's presigning future (it does no I/O with static or environment
/// credentials) from the synchronous port; `None` if no runtime could run it.
fn block_on<F>(f: F) -> Option<F::Output>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread => {
            Some(tokio::task::block_in_place(|| handle.block_on(f)))
        }
        // No runtime, or a single-threaded one that cannot block in place: a private one.
        _ => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()
                        .map(|rt| rt.block_on(f))
                })
                .join()
                .ok()
                .flatten()
        }),
    }
}

impl BlobUrls for S3Urls {
    fn get_url(&self, key: &str, expires_at: OffsetDateTime) -> String {
        let Some(config) = Self::config(expires_at) else {
            return String::new();
        };
        let req = self.s3.get_object().bucket(&self.bucket).key(key);
        match block_on(req.presigned(config)) {
            Some(Ok(signed)) => signed.uri().to_owned(),
            Some(Err(e)) => {
                tracing::warn!(key, error = %e, "cannot presign an S3 GET");
                String::new()
            }
            None => String::new(),
        }
    }

    fn put_url(
        &self,
        key: &str,
        content_type: &str,
        max_bytes: usize,
        expires_at: OffsetDateTime,
    ) -> PresignedPut {
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("content-type".to_owned(), content_type.to_owned());
        let _ = max_bytes; // enforced by the upload function (see the module doc)
        let url = Self::config(expires_at)
            .and_then(|config| {
                let req = self
                    .s3
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type(content_type);
                match block_on(req.presigned(config)) {
                    Some(Ok(signed)) => Some(signed.uri().to_owned()),
                    Some(Err(e)) => {
                        tracing::warn!(key, error = %e, "cannot presign an S3 PUT");
                        None
                    }
                    None => None,
                }
            })
            .unwrap_or_default();
        PresignedPut {
            url,
            method: "PUT".into(),
            headers,
            key: key.to_owned(),
            expires_at,
        }
    }
}
