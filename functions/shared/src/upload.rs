//! The upload function: an S3 `ObjectCreated` event for `raw/{camera}/…` becomes exactly
//! one inspection per object version. The key is URL-decoded (S3 events carry it
//! form-encoded), checked against the camera layout and the blob key rules, its size
//! checked before any byte is read, then the image is judged by the active model and
//! routed by the current config. The record is created if absent under an id derived
//! from bucket + key + ETag, so duplicated, retried and reordered events make one
//! record. A file that is not an intact image is recorded as `rejected` (a retry would
//! fail the same way); only transient failures (storage, model loading) return an error,
//! for Lambda's bounded retries and the on-failure destination.

use aws_lambda_events::event::s3::S3Event;
use opti_api::ingest::{
    new_record, record, run_model, sanitize_filename, validate_camera_id, with_judgement,
    with_rejection,
};
use opti_api::{AppState, InspectFailure};
use opti_core::{inspection_id, Status};
use opti_store::blob_key::validate_key;

use crate::models::{ActiveModel, ModelError};

/// What happened to one event record (the function's response, as JSON:
/// `{"outcome": "created", "id": ..., "status": ...}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A new inspection was recorded (possibly `rejected`).
    Created { id: String, status: Status },
    /// The object version was already recorded; nothing changed.
    Duplicate { id: String },
    /// Not an upload this function handles (other bucket, prefix, bad key, deleted);
    /// the reason is logged.
    Ignored { key: String, reason: String },
}

/// A transient failure: the event should be retried.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{0}")]
    Service(String),
}

impl From<opti_api::ApiError> for UploadError {
    fn from(e: opti_api::ApiError) -> Self {
        UploadError::Service(e.to_string())
    }
}

impl From<opti_core::ports::StoreError> for UploadError {
    fn from(e: opti_core::ports::StoreError) -> Self {
        UploadError::Service(e.to_string())
    }
}

/// The state of the upload function, built once per container.
pub struct Uploader {
    pub state: AppState,
    pub model: ActiveModel,
    /// The bucket whose events this function handles.
    pub bucket: String,
}

/// Decodes an S3 event key (`application/x-www-form-urlencoded`: `+` is a space, `%XX`
/// a byte); `None` for a malformed escape or bytes that are not UTF-8.
pub fn decode_event_key(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The camera of a key `raw/{camera}/{name…}`, if the key has that layout, a valid
/// camera id, and passes the blob key rules.
pub fn camera_of(key: &str) -> Result<String, String> {
    validate_key(key).map_err(|e| e.to_string())?;
    let mut parts = key.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("raw"), Some(camera), Some(rest)) if !rest.is_empty() => {
            validate_camera_id(camera).map_err(|e| e.to_string())?;
            Ok(camera.to_owned())
        }
        _ => Err(format!("{key:?} is not under raw/{{camera}}/")),
    }
}

/// The idempotency key of one object version.
pub fn ingest_key(bucket: &str, key: &str, etag: &str) -> String {
    format!("s3:{bucket}/{key}#{etag}")
}

impl Uploader {
    /// The upload function's state from the environment (see [`crate::state_from_env`]
    /// and [`crate::models::SEED_MODEL_ENV`]).
    pub async fn from_env() -> anyhow::Result<Self> {
        let (store, state, slot) = crate::state_from_env().await?;
        let seed = std::env::var(crate::models::SEED_MODEL_ENV).ok();
        Ok(Uploader {
            state,
            model: ActiveModel::new(slot, seed),
            bucket: store.bucket().to_owned(),
        })
    }

    /// Handles every record of an S3 event in order. Returns what happened to each, or
    /// the first transient failure.
    pub async fn handle(&self, event: &S3Event) -> Result<Vec<Outcome>, UploadError> {
        let mut outcomes = Vec::with_capacity(event.records.len());
        for rec in &event.records {
            let bucket = rec.s3.bucket.name.clone().unwrap_or_default();
            let raw_key = rec.s3.object.key.clone().unwrap_or_default();
            let etag = rec
                .s3
                .object
                .e_tag
                .clone()
                .unwrap_or_default()
                .trim_matches('"')
                .to_owned();
            let outcome = self.handle_one(&bucket, &raw_key, &etag).await?;
            if let Outcome::Ignored { key, reason } = &outcome {
                tracing::warn!(key, reason, "ignored an S3 event record");
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// One object: `raw_key` as the event carries it (URL-encoded).
    pub async fn handle_one(
        &self,
        bucket: &str,
        raw_key: &str,
        etag: &str,
    ) -> Result<Outcome, UploadError> {
        let ignore = |key: &str, reason: String| {
            Ok(Outcome::Ignored {
                key: key.to_owned(),
                reason,
            })
        };
        if bucket != self.bucket {
            return ignore(
                raw_key,
                format!("event for bucket {bucket:?}, not {:?}", self.bucket),
            );
        }
        let Some(key) = decode_event_key(raw_key) else {
            return ignore(raw_key, "malformed URL encoding".into());
        };
        let camera = match camera_of(&key) {
            Ok(camera) => camera,
            Err(reason) => return ignore(&key, reason),
        };
        if etag.is_empty() {
            return ignore(&key, "event without an ETag".into());
        }
        let ingest = ingest_key(bucket, &key, etag);
        let id = inspection_id(&ingest);
        match self.state.ports.inspections.get_inspection(&id).await {
            Ok(_) => return Ok(Outcome::Duplicate { id }),
            Err(opti_core::ports::StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        // Size first (HEAD): an oversized object is never read into memory.
        let Some(size) = self.state.ports.blobs.blob_size(&key).await? else {
            return ignore(&key, "the object no longer exists".into());
        };
        let now = self.state.now();
        let base = new_record(
            ingest,
            key.clone(),
            camera.clone(),
            key.rsplit('/').next().and_then(sanitize_filename),
            now,
        );
        let max = self.state.settings.max_upload_bytes as u64;
        let inspection = if size > max {
            with_rejection(
                base,
                format!("file too large: {size} bytes, the limit is {max}"),
            )
        } else {
            let bytes = self.state.ports.blobs.get_blob(&key).await?;
            self.model.ensure_current(&self.state.ports).await?;
            match run_model(&self.state, bytes).await {
                Ok(inspected) => {
                    let config = self.state.ports.config.get_config().await?.value;
                    with_judgement(&config, base, inspected)
                }
                Err(InspectFailure::BadImage(reason)) => with_rejection(base, reason),
                Err(e @ InspectFailure::Model(_)) => {
                    return Err(UploadError::Service(e.to_string()))
                }
            }
        };
        let (stored, created) =
            record(&self.state, inspection, &format!("camera:{camera}")).await?;
        Ok(if created {
            Outcome::Created {
                id: stored.id,
                status: stored.status,
            }
        } else {
            Outcome::Duplicate { id: stored.id }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_decode_like_s3_encodes_them() {
        assert_eq!(
            decode_event_key("raw/cam-1/part%3D7+b.jpg").as_deref(),
            Some("raw/cam-1/part=7 b.jpg")
        );
        assert_eq!(
            decode_event_key("raw/c/%E2%82%AC.jpg").as_deref(),
            Some("raw/c/€.jpg")
        );
        assert_eq!(decode_event_key("raw/c/%2"), None);
        assert_eq!(decode_event_key("raw/c/%zz.jpg"), None);
        assert_eq!(decode_event_key("raw/c/%FF.jpg"), None);
    }

    #[test]
    fn only_raw_camera_keys_are_uploads() {
        assert_eq!(camera_of("raw/cam-1/a.jpg").as_deref(), Ok("cam-1"));
        assert_eq!(camera_of("raw/cam-1/sub/a.jpg").as_deref(), Ok("cam-1"));
        for bad in [
            "models/v1/model.onnx",
            "raw/a.jpg",
            "raw/cam-1/",
            "raw/../x.jpg",
            "raw/cam 1/a.jpg",
            "raw/.hidden/a.jpg",
        ] {
            assert!(camera_of(bad).is_err(), "{bad}");
        }
    }
}
