//! The ingest path shared by every door: `POST /upload/`, the local presigned PUT, crash
//! recovery at start, and the S3-triggered Lambda. An object under `raw/` becomes exactly
//! one inspection, keyed by its blob key, so retries and duplicated events are harmless.

use opti_core::routing::RoutingPolicy;
use opti_core::types::{inspection_id, AuditAction, ImageStats, Inspection, ModelOutput, Status};
use opti_core::Config;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::AppState;

/// What the model made of one image.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub output: ModelOutput,
    pub stats: ImageStats,
    /// The model version that judged it (captured with the result: models hot-swap).
    pub model_version: String,
}

/// Why an image could not be inspected.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InspectFailure {
    /// The file is not a supported, intact image: a client error, recorded as `rejected`.
    #[error("{0}")]
    BadImage(String),
    /// The model failed (no model loaded, runtime error): a server error, retryable.
    #[error("model failure: {0}")]
    Model(String),
}

/// Runs the active model on image bytes. Implemented over tract by [`crate::model::ModelSlot`].
pub trait Inspector: Send + Sync {
    fn inspect(&self, bytes: &[u8]) -> Result<Inspected, InspectFailure>;
    /// Class names of the active model.
    fn class_names(&self) -> opti_core::ClassNames;
    /// Version of the active model.
    fn model_version(&self) -> String;
    /// Loads `onnx` as `version` without using it yet; the active model is untouched.
    fn prepare(&self, version: &str, onnx: &[u8]) -> Result<PreparedModel, InspectFailure>;
    /// Makes a prepared model the active one (a pointer swap).
    fn install(&self, prepared: PreparedModel);
}

/// A model loaded by [`Inspector::prepare`], ready to be installed.
pub struct PreparedModel(pub Box<dyn std::any::Any + Send>);

/// The idempotency key of the object stored at `blob_key`.
pub fn ingest_key(blob_key: &str) -> String {
    format!("blob:{blob_key}")
}

/// Blob key of a direct upload: content-addressed per camera, so a retried upload of the
/// same bytes by the same camera lands on the same key (and the same inspection).
pub fn upload_blob_key(camera_id: &str, bytes: &[u8], extension: &str) -> String {
    let digest = hex::encode(Sha256::digest(bytes));
    format!("raw/{camera_id}/{}.{extension}", &digest[..32])
}

/// Camera ids become blob-key segments: letters, digits, `-`, `_`, `.`; 1–64 characters.
pub fn validate_camera_id(camera_id: &str) -> Result<(), ApiError> {
    let ok = !camera_id.is_empty()
        && camera_id.len() <= 64
        && !camera_id.starts_with('.')
        && camera_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "camera_id {camera_id:?} must be 1-64 characters of letters, digits, - _ ."
        )))
    }
}

/// Keeps a client file name for traceability without letting it carry paths or control
/// characters: the last path segment, printable characters only, at most 128 of them.
pub fn sanitize_filename(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect::<String>()
        .trim()
        .to_string();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        None
    } else {
        Some(cleaned)
    }
}

/// The image kinds we accept, told by magic bytes (never by name or declared type).
pub fn sniff_image(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(("png", "image/png"))
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("jpg", "image/jpeg"))
    } else {
        None
    }
}

/// An image to ingest.
pub struct NewObject<'a> {
    pub blob_key: String,
    pub bytes: &'a [u8],
    pub camera_id: String,
    pub filename: Option<String>,
    /// Who brought it (audit actor).
    pub actor: String,
}

/// Runs the model on a blocking thread (inference is CPU-bound).
pub async fn run_model(state: &AppState, bytes: Vec<u8>) -> Result<Inspected, InspectFailure> {
    let _permit = state
        .inference
        .acquire()
        .await
        .map_err(|_| InspectFailure::Model("the service is shutting down".into()))?;
    let inspector = state.inspector.clone();
    tokio::task::spawn_blocking(move || inspector.inspect(&bytes))
        .await
        .unwrap_or_else(|e| Err(InspectFailure::Model(format!("inference task failed: {e}"))))
}

/// A new record before judgement: identity (from `ingest_key`), provenance and times,
/// nothing judged yet (status `rejected` until [`with_judgement`] or [`with_rejection`]).
pub fn new_record(
    ingest_key: String,
    image_key: String,
    camera_id: String,
    filename: Option<String>,
    now: OffsetDateTime,
) -> Inspection {
    Inspection {
        id: inspection_id(&ingest_key),
        ingest_key,
        image_key,
        camera_id,
        filename,
        captured_at: None,
        created_at: now,
        updated_at: now,
        model_version: String::new(),
        detections: Vec::new(),
        decision: None,
        confidence: 0.0,
        threshold_used: 0.0,
        status: Status::Rejected,
        audit_sample: false,
        claim: None,
        review: None,
        rejection_reason: None,
        image_stats: None,
        version: 1,
    }
}

/// `base` judged by the model and routed under `config`.
pub fn with_judgement(config: &Config, base: Inspection, inspected: Inspected) -> Inspection {
    let routed = RoutingPolicy::new(config).route(&base.id, &inspected.output);
    Inspection {
        model_version: inspected.model_version,
        detections: inspected.output.detections,
        decision: Some(routed.decision),
        confidence: routed.confidence,
        threshold_used: routed.threshold_used,
        status: routed.status,
        audit_sample: routed.audit_sample,
        image_stats: Some(inspected.stats),
        ..base
    }
}

/// `base` as a file that could not be inspected, and why.
pub fn with_rejection(base: Inspection, reason: String) -> Inspection {
    Inspection {
        status: Status::Rejected,
        rejection_reason: Some(reason),
        ..base
    }
}

fn object_record(object: &NewObject<'_>, now: OffsetDateTime) -> Inspection {
    new_record(
        ingest_key(&object.blob_key),
        object.blob_key.clone(),
        object.camera_id.clone(),
        object.filename.clone(),
        now,
    )
}

/// Builds the inspection record for a judged image under the current config.
pub async fn judged_record(
    state: &AppState,
    object: &NewObject<'_>,
    inspected: Inspected,
    now: OffsetDateTime,
) -> Result<Inspection, ApiError> {
    let config = state.ports.config.get_config().await?.value;
    Ok(with_judgement(
        &config,
        object_record(object, now),
        inspected,
    ))
}

/// The record of a file that could not be inspected.
pub fn rejected_record(object: &NewObject<'_>, reason: &str, now: OffsetDateTime) -> Inspection {
    with_rejection(object_record(object, now), reason.to_string())
}

/// Stores the record if absent and audits its creation. Returns the stored record and
/// whether this call created it.
pub async fn record(
    state: &AppState,
    inspection: Inspection,
    actor: &str,
) -> Result<(Inspection, bool), ApiError> {
    // The record and its audit events are stored in one transaction: both or neither.
    let entity = format!("inspection/{}", inspection.id);
    let action = if inspection.status == Status::Rejected {
        AuditAction::InspectionRejected
    } else {
        AuditAction::InspectionCreated
    };
    let mut events = vec![state.audit_event(
        actor,
        action,
        &entity,
        None,
        Some(crate::routes::inspections::audit_view(&inspection)),
    )];
    if inspection.audit_sample {
        events.push(state.audit_event(
            "system",
            AuditAction::AuditSampled,
            &entity,
            None,
            Some(crate::json_value(
                &serde_json::json!({ "status": inspection.status }),
            )),
        ));
    }
    let (stored, created) = state
        .ports
        .inspections
        .create_inspection_audited(&inspection, &events)
        .await?;
    Ok((stored, created))
}

/// Ingests an object whose bytes are already in the blob store (presigned PUT, crash
/// recovery, S3 trigger). A file the model cannot read becomes a `rejected` record, not
/// an error, so that the trigger does not retry it forever.
pub async fn ingest_stored(
    state: &AppState,
    object: NewObject<'_>,
) -> Result<(Inspection, bool), ApiError> {
    let id = inspection_id(&ingest_key(&object.blob_key));
    if let Ok(existing) = state.ports.inspections.get_inspection(&id).await {
        return Ok((existing, false));
    }
    let now = state.now();
    let record_to_store = match run_model(state, object.bytes.to_vec()).await {
        Ok(inspected) => judged_record(state, &object, inspected, now).await?,
        Err(InspectFailure::BadImage(reason)) => rejected_record(&object, &reason, now),
        Err(e @ InspectFailure::Model(_)) => return Err(ApiError::Unavailable(e.to_string())),
    };
    record(state, record_to_store, &object.actor).await
}

/// Ingests a direct upload: the image is judged first (a corrupt file is refused with a
/// 4xx and nothing is stored), then the blob is written, then the record. A crash between
/// the last two leaves a blob without a record, which [`recover_unrecorded`] repairs.
pub async fn ingest_upload(
    state: &AppState,
    object: NewObject<'_>,
) -> Result<(Inspection, bool), ApiError> {
    let id = inspection_id(&ingest_key(&object.blob_key));
    if let Ok(existing) = state.ports.inspections.get_inspection(&id).await {
        return Ok((existing, false));
    }
    let inspected = match run_model(state, object.bytes.to_vec()).await {
        Ok(i) => i,
        Err(InspectFailure::BadImage(reason)) => return Err(ApiError::Unprocessable(reason)),
        Err(e @ InspectFailure::Model(_)) => return Err(ApiError::Unavailable(e.to_string())),
    };
    let content_type = sniff_image(object.bytes).map_or("application/octet-stream", |s| s.1);
    state
        .ports
        .blobs
        .put_blob(&object.blob_key, object.bytes, content_type)
        .await?;
    let now = state.now();
    let inspection = judged_record(state, &object, inspected, now).await?;
    record(state, inspection, &object.actor).await
}

/// Finds images under `raw/` that were stored but never recorded (a crash between the
/// blob write and the record write) and inspects them. Returns how many were recovered.
pub async fn recover_unrecorded(state: &AppState) -> Result<usize, ApiError> {
    let keys = state.ports.blobs.list_blobs("raw/").await?;
    let mut recovered = 0;
    for key in keys {
        let id = inspection_id(&ingest_key(&key));
        match state.ports.inspections.get_inspection(&id).await {
            Ok(_) => continue,
            Err(opti_core::error::StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let camera_id = key.split('/').nth(1).unwrap_or("unknown").to_string();
        let bytes = match state.ports.blobs.get_blob(&key).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(key, error = %e, "cannot read an unrecorded upload; skipped");
                continue;
            }
        };
        let outcome = ingest_stored(
            state,
            NewObject {
                blob_key: key.clone(),
                bytes: &bytes,
                camera_id,
                filename: None,
                actor: "system:recovery".into(),
            },
        )
        .await;
        match outcome {
            Ok((_, true)) => {
                recovered += 1;
                tracing::info!(key, "recovered an unrecorded upload");
            }
            Ok((_, false)) => {}
            // One bad object must not keep the service from starting.
            Err(e) => tracing::warn!(key, error = %e, "cannot recover an upload; skipped"),
        }
    }
    Ok(recovered)
}
