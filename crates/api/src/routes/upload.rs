//! Getting images in: `POST /upload/` (multipart), presigned direct uploads, and — in
//! local mode — the signed PUT and GET endpoints that stand in for S3.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opti_core::types::{Detection, Inspection, Role, Status};
use serde::{Deserialize, Serialize};
use time::Duration;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::ingest::{
    ingest_stored, ingest_upload, sanitize_filename, sniff_image, upload_blob_key,
    validate_camera_id, NewObject,
};
use crate::signing::PresignedPut;
use crate::AppState;

/// The seed-compatible answer to an upload, plus the detections and model version.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UploadResponse {
    pub id: String,
    pub status: Status,
    pub confidence: f32,
    pub threshold_used: f32,
    /// `defective` or `clean`; absent for a rejected file.
    pub decision: Option<opti_core::types::Decision>,
    pub detections: Vec<Detection>,
    pub model_version: String,
    pub camera_id: String,
    pub filename: Option<String>,
    pub audit_sample: bool,
    /// False when this upload repeated one already inspected (same bytes, same camera).
    pub created: bool,
}

impl UploadResponse {
    fn from_record(r: &Inspection, created: bool) -> Self {
        Self {
            id: r.id.clone(),
            status: r.status,
            confidence: r.confidence,
            threshold_used: r.threshold_used,
            decision: r.decision,
            detections: r.detections.clone(),
            model_version: r.model_version.clone(),
            camera_id: r.camera_id.clone(),
            filename: r.filename.clone(),
            audit_sample: r.audit_sample,
            created,
        }
    }
}

/// Inspect an image now. Multipart with a `file` part (PNG or JPEG) and an optional
/// `camera_id` (cameras default to their own name).
#[utoipa::path(post, path = "/upload/", tag = "upload",
    request_body(content_type = "multipart/form-data", description = "`file` (PNG/JPEG), optional `camera_id`"),
    responses(
        (status = 201, description = "Inspected", body = UploadResponse),
        (status = 200, description = "Same image from the same camera was already inspected", body = UploadResponse),
        (status = 400, description = "Bad form"), (status = 401), (status = 403),
        (status = 413, description = "Too large"), (status = 415, description = "Not a PNG/JPEG"),
        (status = 422, description = "Corrupt image")),
    security(("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Response> {
    caller.require(&[Role::Camera], "upload images")?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "expected multipart/form-data with a `file` part, got {:?}",
            if content_type.is_empty() {
                "no content type"
            } else {
                content_type
            }
        )));
    }
    let mut multipart = multipart.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut file: Option<(Bytes, Option<String>, Option<String>)> = None;
    let mut camera_id: Option<String> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e, state.settings.max_upload_bytes)),
        };
        match field.name() {
            Some("file") => {
                let filename = field.file_name().map(str::to_string);
                let declared = field.content_type().map(str::to_string);
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| multipart_error(e, state.settings.max_upload_bytes))?;
                file = Some((bytes, filename, declared));
            }
            Some("camera_id") => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| multipart_error(e, state.settings.max_upload_bytes))?;
                camera_id = Some(text.trim().to_string());
            }
            _ => {}
        }
    }
    let (bytes, filename, declared) =
        file.ok_or_else(|| ApiError::BadRequest("missing multipart part `file`".into()))?;
    if bytes.len() > state.settings.max_upload_bytes {
        return Err(too_large(state.settings.max_upload_bytes));
    }
    if bytes.is_empty() {
        return Err(ApiError::Unprocessable("the file is empty".into()));
    }
    if let Some(declared) = declared.as_deref() {
        let generic = declared == "application/octet-stream";
        if !generic && !declared.starts_with("image/") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "file part has content type {declared:?}; send image/png or image/jpeg"
            )));
        }
    }
    let (ext, _) = sniff_image(&bytes).ok_or_else(|| {
        ApiError::UnsupportedMediaType(
            "the file is neither PNG nor JPEG (checked by its bytes)".into(),
        )
    })?;
    let camera_id = camera_id
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| caller.name.clone());
    validate_camera_id(&camera_id)?;
    let object = NewObject {
        blob_key: upload_blob_key(&camera_id, &bytes, ext),
        bytes: &bytes,
        camera_id,
        filename: filename.as_deref().and_then(sanitize_filename),
        actor: caller.actor(),
    };
    let (record, created) = ingest_upload(&state, object).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(UploadResponse::from_record(&record, created))).into_response())
}

fn too_large(max: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!("upload exceeds the limit of {max} bytes"))
}

fn multipart_error(e: axum::extract::multipart::MultipartError, max: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(max)
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// Request for a direct-upload URL.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PresignRequest {
    pub camera_id: Option<String>,
    pub content_type: String,
    /// Original file name, kept for traceability.
    #[serde(default)]
    pub filename: Option<String>,
}

/// A presigned PUT for one image, under a key the server chooses (`raw/{camera}/…`).
#[utoipa::path(post, path = "/uploads/presign", tag = "upload", request_body = PresignRequest,
    responses((status = 200, body = PresignedPut), (status = 400), (status = 401), (status = 403), (status = 415)),
    security(("bearer" = [])))]
pub async fn presign(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<PresignRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<PresignedPut>> {
    caller.require(&[Role::Camera], "request upload URLs")?;
    let Json(req) = body.map_err(json_error)?;
    let ext = match req.content_type.as_str() {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "content_type {other:?} is not image/png or image/jpeg"
            )))
        }
    };
    let camera_id = req
        .camera_id
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| caller.name.clone());
    validate_camera_id(&camera_id)?;
    let mut nonce = [0u8; 12];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let now = state.now();
    let key = format!(
        "raw/{camera_id}/{}-{}.{ext}",
        now.unix_timestamp(),
        hex::encode(nonce)
    );
    let ttl = state.settings.url_ttl_seconds.clamp(1, 900);
    let presigned = state.urls.put_url(
        &key,
        &req.content_type,
        state.settings.max_upload_bytes,
        now + Duration::seconds(ttl),
    );
    Ok(Json(presigned))
}

/// Turns a JSON body rejection into a 400 (or 415 for a wrong content type).
pub fn json_error(e: axum::extract::rejection::JsonRejection) -> ApiError {
    if e.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
    } else {
        ApiError::BadRequest(format!("invalid JSON body: {}", e.body_text()))
    }
}

/// Local mode's stand-in for an S3 PUT to a presigned URL: checks the signature before
/// reading the body, reads at most the signed size, refuses a second write to the same
/// key (a URL uploads one image), stores the bytes, then inspects them like the S3
/// trigger would.
pub async fn put_presigned(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    let signer = state
        .local_urls
        .clone()
        .ok_or_else(|| ApiError::NotFound("no such route".into()))?;
    let exp: i64 = q.get("exp").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = q.get("max").and_then(|v| v.parse().ok()).unwrap_or(0);
    let sig = q.get("sig").map(String::as_str).unwrap_or("");
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !signer.verify_put(&key, content_type, max, exp, sig, state.now()) {
        return Err(ApiError::Forbidden {
            role: "anonymous",
            what: "upload with an invalid, expired or mismatched signature",
        });
    }
    if state.ports.blobs.blob_size(&key).await?.is_some() {
        return Err(ApiError::Conflict {
            message: "this upload URL was already used; ask for a new one".into(),
            current: None,
        });
    }
    let body = axum::body::to_bytes(body, max.min(state.settings.max_upload_bytes))
        .await
        .map_err(|_| too_large(max))?;
    let camera_id = key.split('/').nth(1).unwrap_or("unknown").to_string();
    state
        .ports
        .blobs
        .put_blob(&key, &body, content_type)
        .await?;
    let (record, created) = ingest_stored(
        &state,
        NewObject {
            blob_key: key,
            bytes: &body,
            camera_id: camera_id.clone(),
            filename: None,
            actor: format!("camera:{camera_id}"),
        },
    )
    .await?;
    Ok((
        StatusCode::OK,
        Json(UploadResponse::from_record(&record, created)),
    )
        .into_response())
}

/// Local mode's stand-in for an S3 presigned GET (images in the UI).
pub async fn get_blob(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let signer = state
        .local_urls
        .clone()
        .ok_or_else(|| ApiError::NotFound("no such route".into()))?;
    let exp: i64 = q.get("exp").and_then(|v| v.parse().ok()).unwrap_or(0);
    let sig = q.get("sig").map(String::as_str).unwrap_or("");
    if !signer.verify_get(&key, exp, sig, state.now()) {
        return Err(ApiError::Forbidden {
            role: "anonymous",
            what: "read a blob with an invalid or expired signature",
        });
    }
    let bytes = state.ports.blobs.get_blob(&key).await?;
    let content_type = sniff_image(&bytes).map_or("application/octet-stream", |s| s.1);
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=600"),
        ],
        bytes,
    )
        .into_response())
}
