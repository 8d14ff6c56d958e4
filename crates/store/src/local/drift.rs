//! The drift history in SQLite: create-if-absent by record id, listed newest first with
//! keyset pages on `(evaluated_at, id)`.

use async_trait::async_trait;
use opti_core::drift::DriftRecord;
use opti_core::ports::{DriftHistory, DriftQuery, StoreError};
use opti_core::Page;
use rusqlite::types::Value;
use rusqlite::{params, Connection};

use super::cursor::Cursor;
use super::error::LocalError;
use super::{encode, keyset_page, nanos, LocalStore};

const ENTITY: &str = "drift record";

fn put(conn: &Connection, record: &DriftRecord) -> Result<bool, LocalError> {
    let body = encode(ENTITY, record)?;
    let inserted = conn.execute(
        "INSERT INTO drift_records (id, evaluated_at, body) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO NOTHING",
        params![record.id, nanos(record.evaluated_at)?, body],
    )?;
    Ok(inserted == 1)
}

fn list(conn: &Connection, query: &DriftQuery) -> Result<Page<DriftRecord>, LocalError> {
    let mut args: Vec<Value> = Vec::new();
    let filter = match &query.cursor {
        Some(cursor) => {
            let Cursor::Drift { t, id } = Cursor::decode(cursor)? else {
                return Err(LocalError::BadCursor);
            };
            args.extend([Value::Integer(t), Value::Text(id)]);
            "WHERE (evaluated_at, id) < (?, ?)"
        }
        None => "",
    };
    let limit = crate::page_size(query.limit);
    let sql = format!(
        "SELECT id, body FROM drift_records {filter} ORDER BY evaluated_at DESC, id DESC LIMIT ?"
    );
    keyset_page(conn, ENTITY, &sql, args, limit, |last: &DriftRecord| {
        Ok(Cursor::Drift {
            t: nanos(last.evaluated_at)?,
            id: last.id.clone(),
        })
    })
}

#[async_trait]
impl DriftHistory for LocalStore {
    async fn put_drift_record(&self, record: &DriftRecord) -> Result<bool, StoreError> {
        let record = record.clone();
        self.with_conn(move |c| put(c, &record)).await
    }

    async fn list_drift_records(
        &self,
        query: &DriftQuery,
    ) -> Result<Page<DriftRecord>, StoreError> {
        let query = query.clone();
        self.with_conn(move |c| list(c, &query)).await
    }
}
