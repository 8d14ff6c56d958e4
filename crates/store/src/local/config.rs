//! The single configuration record in SQLite, versioned for optimistic updates.

use async_trait::async_trait;
use opti_core::ports::{ConfigStore, StoreError};
use opti_core::{AuditEvent, Config, StoredConfig};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::error::LocalError;
use super::{decode, encode, from_sql_u64, to_sql_u64, LocalStore};

const ENTITY: &str = "config";

fn get(conn: &Connection) -> Result<StoredConfig, LocalError> {
    let row: Option<(i64, String)> = conn
        .query_row("SELECT version, body FROM config WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match row {
        Some((version, body)) => Ok(StoredConfig {
            value: decode(ENTITY, "", &body)?,
            version: from_sql_u64("config version", version)?,
        }),
        None => Ok(StoredConfig {
            value: Config::default(),
            version: 0,
        }),
    }
}

fn put(
    conn: &mut Connection,
    config: &Config,
    expected_version: u64,
    event: Option<&AuditEvent>,
) -> Result<StoredConfig, LocalError> {
    let body = encode(ENTITY, config)?;
    let next_version = expected_version
        .checked_add(1)
        .ok_or_else(|| LocalError::Unstorable("config version overflow".into()))?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = get(&tx)?;
    if current.version != expected_version {
        return Err(LocalError::Conflict {
            entity: ENTITY,
            current: serde_json::to_value(&current).map_err(|e| LocalError::corrupt(ENTITY, e))?,
        });
    }
    tx.execute(
        "INSERT INTO config (id, version, body) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, body = excluded.body",
        params![to_sql_u64("config version", next_version)?, body],
    )?;
    if let Some(event) = event {
        super::audit::append(&tx, event)?;
    }
    tx.commit()?;
    Ok(StoredConfig {
        value: config.clone(),
        version: next_version,
    })
}

#[async_trait]
impl ConfigStore for LocalStore {
    async fn get_config(&self) -> Result<StoredConfig, StoreError> {
        self.with_conn(|c| get(c)).await
    }

    async fn put_config(
        &self,
        config: &Config,
        expected_version: u64,
    ) -> Result<StoredConfig, StoreError> {
        let config = config.clone();
        self.with_conn(move |c| put(c, &config, expected_version, None))
            .await
    }

    async fn put_config_audited(
        &self,
        config: &Config,
        expected_version: u64,
        event: &AuditEvent,
    ) -> Result<StoredConfig, StoreError> {
        let config = config.clone();
        let event = event.clone();
        self.with_conn(move |c| put(c, &config, expected_version, Some(&event)))
            .await
    }
}
