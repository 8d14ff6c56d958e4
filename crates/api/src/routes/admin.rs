//! Admin routes: configuration, audit trail, model registry (promote, roll back).

use axum::extract::{Path, Query, State};
use axum::Json;
use opti_core::ports::AuditQuery;
use opti_core::types::{AuditAction, AuditEvent, ModelRecord, ModelStatus, Role, StoredConfig};
use opti_core::Config;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::upload::json_error;
use crate::AppState;

/// The current configuration and its version.
#[utoipa::path(get, path = "/config", tag = "admin",
    responses((status = 200, body = StoredConfig), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn get_config(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<StoredConfig>> {
    caller.require(&[Role::Reviewer], "read the configuration")?;
    Ok(Json(state.ports.config.get_config().await?))
}

/// Changed settings: any subset of the configuration's fields (the rest keep their
/// values; `drift` may also be partial), and optionally the `version` you read, which
/// guards against overwriting a concurrent change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PutConfig {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub changes: serde_json::Map<String, serde_json::Value>,
    pub version: Option<u64>,
}

/// Applies `changes` onto `current`: only known fields, `drift` merged field by field.
fn merge_config(
    current: &Config,
    changes: serde_json::Map<String, serde_json::Value>,
) -> ApiResult<Config> {
    let mut merged = crate::json_value(current);
    let target = merged
        .as_object_mut()
        .ok_or_else(|| ApiError::Internal("configuration is not an object".into()))?;
    for (key, value) in changes {
        match (target.get_mut(&key), value) {
            (None, _) => {
                return Err(ApiError::BadRequest(format!(
                    "unknown configuration field {key:?}"
                )))
            }
            (Some(serde_json::Value::Object(inner)), serde_json::Value::Object(patch))
                if key == "drift" =>
            {
                for (k, v) in patch {
                    if !inner.contains_key(&k) {
                        return Err(ApiError::BadRequest(format!(
                            "unknown configuration field \"drift.{k}\""
                        )));
                    }
                    inner.insert(k, v);
                }
            }
            (Some(slot), value) => *slot = value,
        }
    }
    serde_json::from_value(merged)
        .map_err(|e| ApiError::BadRequest(format!("invalid configuration: {e}")))
}

/// Change settings (validated, audited). New uploads use them at once.
#[utoipa::path(put, path = "/config", tag = "admin", request_body = PutConfig,
    responses((status = 200, body = StoredConfig), (status = 400, description = "Out of range or unknown field"),
        (status = 401), (status = 403), (status = 409, description = "Stale version")),
    security(("bearer" = [])))]
pub async fn put_config(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<StoredConfig>> {
    caller.require(&[], "change the configuration")?;
    let Json(raw) = body.map_err(json_error)?;
    let req: PutConfig = serde_json::from_value(raw)
        .map_err(|e| ApiError::BadRequest(format!("invalid configuration: {e}")))?;
    let before = state.ports.config.get_config().await?;
    if let Some(v) = req.version {
        if v != before.version {
            return Err(ApiError::Conflict {
                message: format!(
                    "stale version {v}: the configuration is at version {}",
                    before.version
                ),
                current: Some(crate::json_value(&before)),
            });
        }
    }
    let config = merge_config(&before.value, req.changes)?;
    config.validate()?;
    let will_store = StoredConfig {
        value: config.clone(),
        version: before.version + 1,
    };
    // The change and its audit event are stored in one transaction: both or neither.
    let event = state.audit_event(
        &caller.actor(),
        AuditAction::ConfigChanged,
        "config",
        Some(crate::json_value(&before)),
        Some(crate::json_value(&will_store)),
    );
    let stored = state
        .ports
        .config
        .put_config_audited(&config, before.version, &event)
        .await?;
    Ok(Json(stored))
}

/// Query of `GET /audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    pub actor: Option<String>,
    /// e.g. `reviewed`, `config_changed`.
    pub action: Option<String>,
    /// Exact entity (`inspection/insp_…`) or a prefix ending in `/`.
    pub entity: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A page of audit events, newest first.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

/// The audit trail, newest first.
#[utoipa::path(get, path = "/audit", tag = "admin", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    caller.require(&[], "read the audit trail")?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let action = match p.action.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(
            serde_json::from_value::<AuditAction>(serde_json::Value::String(a.to_string()))
                .map_err(|_| ApiError::BadRequest(format!("unknown audit action {a:?}")))?,
        ),
    };
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > opti_core::ports::MAX_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit must be in 1..={}",
            opti_core::ports::MAX_PAGE
        )));
    }
    let page = state
        .ports
        .audit
        .list_audit(&AuditQuery {
            actor: p.actor.filter(|a| !a.is_empty()),
            action,
            entity: p.entity.filter(|e| !e.is_empty()),
            limit,
            cursor: p.cursor.filter(|c| !c.is_empty()),
        })
        .await?;
    Ok(Json(AuditPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// The registry: every version, newest first, and the active one.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelList {
    pub items: Vec<ModelRecord>,
    pub active: Option<String>,
}

/// Model versions with metrics and lineage.
#[utoipa::path(get, path = "/models", tag = "admin",
    responses((status = 200, body = ModelList), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list_models(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ModelList>> {
    caller.require(&[], "read the model registry")?;
    Ok(Json(ModelList {
        items: state.ports.models.list_models().await?,
        active: state.ports.models.active_model().await?,
    }))
}

/// Makes `target` the active model: loads it (a model that does not load is refused
/// and nothing changes), moves the registry pointer, retires the previous one, audits.
pub async fn activate(
    state: &AppState,
    target: &str,
    actor: &str,
    action: AuditAction,
) -> ApiResult<ModelRecord> {
    let record = state.ports.models.get_model(target).await?;
    if record.status == ModelStatus::Rejected && action == AuditAction::ModelPromoted {
        return Err(ApiError::Conflict {
            message: format!("model {target} was rejected by the gate; it cannot be promoted"),
            current: serde_json::to_value(&record).ok(),
        });
    }
    // One activation at a time in this process, so the model in memory and the registry
    // pointer cannot end up naming different versions.
    let _guard = state.activation.lock().await;
    let previous = state.ports.models.active_model().await?;
    if previous.as_deref() == Some(target) {
        return Ok(record);
    }
    let bytes = state.ports.blobs.get_blob(&record.artifact_key).await?;
    let inspector = state.inspector.clone();
    let version = record.version.clone();
    let prepared = tokio::task::spawn_blocking(move || inspector.prepare(&version, &bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("model load task failed: {e}")))?
        .map_err(|e| ApiError::Unprocessable(format!("model {target} does not load: {e}")))?;
    // The registry first: if another door moved the pointer meanwhile, nothing changes here.
    state
        .ports
        .models
        .set_active_model(target, previous.as_deref())
        .await?;
    state.inspector.install(prepared);
    if let Some(prev) = &previous {
        if let Ok(mut old) = state.ports.models.get_model(prev).await {
            let expected = old.record_version;
            old.status = ModelStatus::Retired;
            old.record_version += 1;
            state.ports.models.update_model(&old, expected).await?;
        }
    }
    let mut next = record.clone();
    next.status = ModelStatus::Active;
    next.record_version += 1;
    let stored = state
        .ports
        .models
        .update_model(&next, record.record_version)
        .await?;
    state
        .audit(
            actor,
            action,
            &format!("model/{target}"),
            Some(serde_json::json!({ "active": previous })),
            Some(serde_json::json!({ "active": target })),
        )
        .await?;
    Ok(stored)
}

/// Make this version the active model (hot-swapped; no restart).
#[utoipa::path(post, path = "/models/{version}/promote", tag = "admin",
    params(("version" = String, Path, description = "model version")),
    responses((status = 200, body = ModelRecord), (status = 404), (status = 409), (status = 422, description = "Model does not load")),
    security(("bearer" = [])))]
pub async fn promote(
    State(state): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> ApiResult<Json<ModelRecord>> {
    caller.require(&[], "promote models")?;
    Ok(Json(
        activate(
            &state,
            &version,
            &caller.actor(),
            AuditAction::ModelPromoted,
        )
        .await?,
    ))
}

/// Roll back the active `version`: the model it replaced (its parent, else the most
/// recently retired one) becomes active again.
#[utoipa::path(post, path = "/models/{version}/rollback", tag = "admin",
    params(("version" = String, Path, description = "the active model version to roll back")),
    responses((status = 200, body = ModelRecord, description = "The model now active"), (status = 404),
        (status = 409, description = "Not the active version, or nothing to roll back to")),
    security(("bearer" = [])))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> ApiResult<Json<ModelRecord>> {
    caller.require(&[], "roll back models")?;
    let record = state.ports.models.get_model(&version).await?;
    let active = state.ports.models.active_model().await?;
    if active.as_deref() != Some(version.as_str()) {
        return Err(ApiError::Conflict {
            message: format!(
                "model {version} is not the active model; only the active one can be rolled back"
            ),
            current: Some(serde_json::json!({ "active": active })),
        });
    }
    let models = state.ports.models.list_models().await?;
    let usable = |v: &str| {
        models
            .iter()
            .any(|m| m.version == v && m.status != ModelStatus::Rejected)
    };
    let target = record
        .parent
        .clone()
        .filter(|p| usable(p))
        .or_else(|| {
            models
                .iter()
                .find(|m| m.status == ModelStatus::Retired && m.version != version)
                .map(|m| m.version.clone())
        })
        .ok_or_else(|| ApiError::Conflict {
            message: format!("model {version} has no earlier model to roll back to"),
            current: None,
        })?;
    Ok(Json(
        activate(
            &state,
            &target,
            &caller.actor(),
            AuditAction::ModelRolledBack,
        )
        .await?,
    ))
}
