//! The model registry in SQLite: versions with optimistic updates, and the active
//! pointer moved by compare-and-set.

use async_trait::async_trait;
use opti_core::ports::{ModelRegistry, StoreError};
use opti_core::ModelRecord;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::error::LocalError;
use super::{decode, decode_value, encode, from_sql_u64, nanos, to_sql_u64, LocalStore};

const ENTITY: &str = "model";
const POINTER: &str = "active_model";

fn register(conn: &Connection, model: &ModelRecord) -> Result<(), LocalError> {
    let body = encode(ENTITY, model)?;
    let inserted = conn.execute(
        "INSERT INTO models (version, created_at, record_version, body)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (version) DO NOTHING",
        params![
            model.version,
            nanos(model.created_at)?,
            to_sql_u64("model record_version", model.record_version)?,
            body
        ],
    )?;
    if inserted == 0 {
        return Err(LocalError::AlreadyExists {
            entity: ENTITY,
            id: model.version.clone(),
        });
    }
    Ok(())
}

fn load_body(conn: &Connection, version: &str) -> Result<Option<(i64, String)>, LocalError> {
    Ok(conn
        .query_row(
            "SELECT record_version, body FROM models WHERE version = ?1",
            [version],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

fn not_found(version: &str) -> LocalError {
    LocalError::NotFound {
        entity: ENTITY,
        id: version.to_owned(),
    }
}

fn get(conn: &Connection, version: &str) -> Result<ModelRecord, LocalError> {
    let (_, body) = load_body(conn, version)?.ok_or_else(|| not_found(version))?;
    decode(ENTITY, version, &body)
}

fn list(conn: &Connection) -> Result<Vec<ModelRecord>, LocalError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, body FROM models ORDER BY created_at DESC, version DESC",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut models = Vec::new();
    for row in rows {
        let (version, body) = row?;
        models.push(decode(ENTITY, &version, &body)?);
    }
    Ok(models)
}

fn update(
    conn: &mut Connection,
    next: &ModelRecord,
    expected_version: u64,
) -> Result<ModelRecord, LocalError> {
    let mut stored = next.clone();
    stored.record_version = expected_version
        .checked_add(1)
        .ok_or_else(|| LocalError::Unstorable("model record_version overflow".into()))?;
    let body = encode(ENTITY, &stored)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (current_version, current_body) =
        load_body(&tx, &next.version)?.ok_or_else(|| not_found(&next.version))?;
    if from_sql_u64("model record_version", current_version)? != expected_version {
        return Err(LocalError::Conflict {
            entity: ENTITY,
            current: decode_value(ENTITY, &next.version, &current_body)?,
        });
    }
    tx.execute(
        "UPDATE models SET created_at = ?2, record_version = ?3, body = ?4 WHERE version = ?1",
        params![
            stored.version,
            nanos(stored.created_at)?,
            to_sql_u64("model record_version", stored.record_version)?,
            body
        ],
    )?;
    tx.commit()?;
    Ok(stored)
}

fn active(conn: &Connection) -> Result<Option<String>, LocalError> {
    Ok(conn
        .query_row(
            "SELECT value FROM registry_pointers WHERE name = ?1",
            [POINTER],
            |r| r.get(0),
        )
        .optional()?)
}

fn set_active(
    conn: &mut Connection,
    version: &str,
    expected: Option<&str>,
) -> Result<(), LocalError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if load_body(&tx, version)?.is_none() {
        return Err(not_found(version));
    }
    let current = active(&tx)?;
    if current.as_deref() != expected {
        return Err(LocalError::Conflict {
            entity: POINTER,
            current: current.map_or(serde_json::Value::Null, serde_json::Value::String),
        });
    }
    tx.execute(
        "INSERT INTO registry_pointers (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![POINTER, version],
    )?;
    tx.commit()?;
    Ok(())
}

#[async_trait]
impl ModelRegistry for LocalStore {
    async fn register_model(&self, model: &ModelRecord) -> Result<(), StoreError> {
        let model = model.clone();
        self.with_conn(move |c| register(c, &model)).await
    }

    async fn get_model(&self, version: &str) -> Result<ModelRecord, StoreError> {
        let version = version.to_owned();
        self.with_conn(move |c| get(c, &version)).await
    }

    async fn list_models(&self) -> Result<Vec<ModelRecord>, StoreError> {
        self.with_conn(|c| list(c)).await
    }

    async fn update_model(
        &self,
        next: &ModelRecord,
        expected_version: u64,
    ) -> Result<ModelRecord, StoreError> {
        let next = next.clone();
        self.with_conn(move |c| update(c, &next, expected_version))
            .await
    }

    async fn active_model(&self) -> Result<Option<String>, StoreError> {
        self.with_conn(|c| active(c)).await
    }

    /// `NotFound` if `version` is not registered; `Conflict` with the pointer as it is
    /// now (a JSON string, or `null` when unset) if it moved since it was read.
    async fn set_active_model(
        &self,
        version: &str,
        expected: Option<&str>,
    ) -> Result<(), StoreError> {
        let version = version.to_owned();
        let expected = expected.map(str::to_owned);
        self.with_conn(move |c| set_active(c, &version, expected.as_deref()))
            .await
    }
}
