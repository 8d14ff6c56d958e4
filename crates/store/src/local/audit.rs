//! The audit trail in SQLite: append-only (idempotent by event id), listed newest first
//! with keyset pages and filters on actor, action and entity (exact or `kind/` prefix).

use async_trait::async_trait;
use opti_core::ports::{AuditLog, AuditQuery, StoreError};
use opti_core::{AuditEvent, Page};
use rusqlite::types::Value;
use rusqlite::{params, Connection};

use super::cursor::Cursor;
use super::error::LocalError;
use super::{encode, keyset_page, nanos, LocalStore};

const ENTITY: &str = "audit event";

/// Appends `event` on `conn` (a transaction, when the caller writes a record with it).
pub(crate) fn append(conn: &Connection, event: &AuditEvent) -> Result<(), LocalError> {
    let body = encode(ENTITY, event)?;
    // A retried append (same id) keeps the first copy: the trail has each event once.
    conn.execute(
        "INSERT INTO audit_events (id, at, actor, action, entity, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO NOTHING",
        params![
            event.id,
            nanos(event.at)?,
            event.actor,
            event.action.as_str(),
            event.entity,
            body
        ],
    )?;
    Ok(())
}

fn list(conn: &Connection, query: &AuditQuery) -> Result<Page<AuditEvent>, LocalError> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(actor) = &query.actor {
        clauses.push("actor = ?");
        args.push(Value::Text(actor.clone()));
    }
    if let Some(action) = query.action {
        clauses.push("action = ?");
        args.push(Value::Text(action.as_str()));
    }
    if let Some(entity) = &query.entity {
        match entity.strip_suffix('/') {
            // `kind/` matches every `kind/…`: the range [kind/, kind0), '0' being the
            // byte after '/', so the entity index serves it.
            Some(kind) => {
                clauses.push("entity >= ? AND entity < ?");
                args.push(Value::Text(entity.clone()));
                args.push(Value::Text(format!("{kind}0")));
            }
            None => {
                clauses.push("entity = ?");
                args.push(Value::Text(entity.clone()));
            }
        }
    }
    if let Some(cursor) = &query.cursor {
        let Cursor::Audit { t, id } = Cursor::decode(cursor)? else {
            return Err(LocalError::BadCursor);
        };
        clauses.push("(at, id) < (?, ?)");
        args.extend([Value::Integer(t), Value::Text(id)]);
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let limit = crate::page_size(query.limit);
    let sql =
        format!("SELECT id, body FROM audit_events {filter} ORDER BY at DESC, id DESC LIMIT ?");
    keyset_page(conn, ENTITY, &sql, args, limit, |last: &AuditEvent| {
        Ok(Cursor::Audit {
            t: nanos(last.at)?,
            id: last.id.clone(),
        })
    })
}

#[async_trait]
impl AuditLog for LocalStore {
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let event = event.clone();
        self.with_conn(move |c| append(c, &event)).await
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditEvent>, StoreError> {
        let query = query.clone();
        self.with_conn(move |c| list(c, &query)).await
    }
}
