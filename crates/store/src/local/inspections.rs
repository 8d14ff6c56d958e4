//! Inspections in SQLite: idempotent create, update-if-version, keyset-paged listings.

use async_trait::async_trait;
use opti_core::ports::{InspectionOrder, InspectionQuery, InspectionStore, StoreError};
use opti_core::{AuditEvent, Inspection, Page, Status, StatusCounts};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::cursor::Cursor;
use super::error::LocalError;
use super::{
    decode, decode_value, encode, from_sql_u64, keyset_page, nanos, to_sql_u64, LocalStore,
};

const ENTITY: &str = "inspection";

/// The columns stored next to the JSON body.
struct Row {
    status: &'static str,
    confidence: f64,
    created_at: i64,
    audit_sample: bool,
    version: i64,
    body: String,
}

impl Row {
    fn of(inspection: &Inspection) -> Result<Row, LocalError> {
        if !inspection.confidence.is_finite() {
            return Err(LocalError::Unstorable(format!(
                "inspection {}: confidence {} is not a finite number",
                inspection.id, inspection.confidence
            )));
        }
        Ok(Row {
            status: inspection.status.as_str(),
            confidence: f64::from(inspection.confidence),
            created_at: nanos(inspection.created_at)?,
            audit_sample: inspection.audit_sample,
            version: to_sql_u64("inspection version", inspection.version)?,
            body: encode("inspection", inspection)?,
        })
    }
}

fn create(
    conn: &mut Connection,
    inspection: &Inspection,
    events: &[AuditEvent],
) -> Result<(Inspection, bool), LocalError> {
    let row = Row::of(inspection)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let inserted = tx.execute(
        "INSERT INTO inspections
            (id, status, camera_id, confidence, created_at, audit_sample, version, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO NOTHING",
        params![
            inspection.id,
            row.status,
            inspection.camera_id,
            row.confidence,
            row.created_at,
            row.audit_sample,
            row.version,
            row.body
        ],
    )?;
    let result = if inserted == 1 {
        for event in events {
            super::audit::append(&tx, event)?;
        }
        (inspection.clone(), true)
    } else {
        (get(&tx, &inspection.id)?, false)
    };
    tx.commit()?;
    Ok(result)
}

fn load_body(conn: &Connection, id: &str) -> Result<Option<(i64, String)>, LocalError> {
    Ok(conn
        .query_row(
            "SELECT version, body FROM inspections WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

fn get(conn: &Connection, id: &str) -> Result<Inspection, LocalError> {
    match load_body(conn, id)? {
        Some((_, body)) => decode(ENTITY, id, &body),
        None => Err(LocalError::NotFound {
            entity: ENTITY,
            id: id.to_owned(),
        }),
    }
}

fn update(
    conn: &mut Connection,
    next: &Inspection,
    expected_version: u64,
    event: Option<&AuditEvent>,
) -> Result<Inspection, LocalError> {
    let mut stored = next.clone();
    stored.version = expected_version
        .checked_add(1)
        .ok_or_else(|| LocalError::Unstorable("inspection version overflow".into()))?;
    let row = Row::of(&stored)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some((current_version, current_body)) = load_body(&tx, &next.id)? else {
        return Err(LocalError::NotFound {
            entity: ENTITY,
            id: next.id.clone(),
        });
    };
    if from_sql_u64("inspection version", current_version)? != expected_version {
        return Err(LocalError::Conflict {
            entity: ENTITY,
            current: decode_value(ENTITY, &next.id, &current_body)?,
        });
    }
    tx.execute(
        "UPDATE inspections
            SET status = ?2, camera_id = ?3, confidence = ?4, created_at = ?5,
                audit_sample = ?6, version = ?7, body = ?8
          WHERE id = ?1",
        params![
            stored.id,
            row.status,
            stored.camera_id,
            row.confidence,
            row.created_at,
            row.audit_sample,
            row.version,
            row.body
        ],
    )?;
    if let Some(event) = event {
        super::audit::append(&tx, event)?;
    }
    tx.commit()?;
    Ok(stored)
}

/// The cursor after `item` in a listing of `order`.
fn cursor_after(order: InspectionOrder, item: &Inspection) -> Result<Cursor, LocalError> {
    let t = nanos(item.created_at)?;
    let id = item.id.clone();
    Ok(match order {
        InspectionOrder::Newest => Cursor::InspectionsNewest { t, id },
        InspectionOrder::Oldest => Cursor::InspectionsOldest { t, id },
        InspectionOrder::MostUncertain => Cursor::InspectionsUncertain {
            c: f64::from(item.confidence),
            t,
            id,
        },
    })
}

fn list(conn: &Connection, query: &InspectionQuery) -> Result<Page<Inspection>, LocalError> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(status) = query.status {
        clauses.push("status = ?");
        args.push(Value::Text(status.as_str().to_owned()));
    }
    if let Some(camera) = &query.camera_id {
        clauses.push("camera_id = ?");
        args.push(Value::Text(camera.clone()));
    }
    if let Some(sample) = query.audit_sample {
        clauses.push("audit_sample = ?");
        args.push(Value::Integer(i64::from(sample)));
    }
    if let Some(from) = query.created_from {
        clauses.push("created_at >= ?");
        args.push(Value::Integer(nanos(from)?));
    }
    if let Some(before) = query.created_before {
        clauses.push("created_at < ?");
        args.push(Value::Integer(nanos(before)?));
    }
    if let Some(cursor) = &query.cursor {
        match (query.order, Cursor::decode(cursor)?) {
            (InspectionOrder::Newest, Cursor::InspectionsNewest { t, id }) => {
                clauses.push("(created_at, id) < (?, ?)");
                args.extend([Value::Integer(t), Value::Text(id)]);
            }
            (InspectionOrder::Oldest, Cursor::InspectionsOldest { t, id }) => {
                clauses.push("(created_at, id) > (?, ?)");
                args.extend([Value::Integer(t), Value::Text(id)]);
            }
            (InspectionOrder::MostUncertain, Cursor::InspectionsUncertain { c, t, id }) => {
                clauses.push("(confidence, created_at, id) > (?, ?, ?)");
                args.extend([Value::Real(c), Value::Integer(t), Value::Text(id)]);
            }
            // A cursor of another listing: the caller changed the order mid-way.
            _ => return Err(LocalError::BadCursor),
        }
    }
    let order_by = match query.order {
        InspectionOrder::Newest => "created_at DESC, id DESC",
        InspectionOrder::Oldest => "created_at ASC, id ASC",
        InspectionOrder::MostUncertain => "confidence ASC, created_at ASC, id ASC",
    };
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let limit = crate::page_size(query.limit);
    let sql = format!("SELECT id, body FROM inspections {filter} ORDER BY {order_by} LIMIT ?");
    keyset_page(conn, ENTITY, &sql, args, limit, |last: &Inspection| {
        cursor_after(query.order, last)
    })
}

fn count_by_status(conn: &Connection) -> Result<StatusCounts, LocalError> {
    let mut counts: StatusCounts = Status::ALL.into_iter().map(|s| (s, 0)).collect();
    let mut stmt =
        conn.prepare_cached("SELECT status, COUNT(*) FROM inspections GROUP BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (name, n) = row?;
        let status = Status::parse(&name)
            .ok_or_else(|| LocalError::corrupt("inspection status", format!("{name:?}")))?;
        counts.insert(status, from_sql_u64("count", n)?);
    }
    Ok(counts)
}

#[async_trait]
impl InspectionStore for LocalStore {
    async fn create_inspection(
        &self,
        inspection: &Inspection,
    ) -> Result<(Inspection, bool), StoreError> {
        let inspection = inspection.clone();
        self.with_conn(move |c| create(c, &inspection, &[])).await
    }

    async fn get_inspection(&self, id: &str) -> Result<Inspection, StoreError> {
        let id = id.to_owned();
        self.with_conn(move |c| get(c, &id)).await
    }

    async fn update_inspection(
        &self,
        next: &Inspection,
        expected_version: u64,
    ) -> Result<Inspection, StoreError> {
        let next = next.clone();
        self.with_conn(move |c| update(c, &next, expected_version, None))
            .await
    }

    async fn list_inspections(
        &self,
        query: &InspectionQuery,
    ) -> Result<Page<Inspection>, StoreError> {
        let query = query.clone();
        self.with_conn(move |c| list(c, &query)).await
    }

    async fn count_by_status(&self) -> Result<StatusCounts, StoreError> {
        self.with_conn(|c| count_by_status(c)).await
    }

    async fn create_inspection_audited(
        &self,
        inspection: &Inspection,
        events: &[AuditEvent],
    ) -> Result<(Inspection, bool), StoreError> {
        let inspection = inspection.clone();
        let events = events.to_vec();
        self.with_conn(move |c| create(c, &inspection, &events))
            .await
    }

    async fn update_inspection_audited(
        &self,
        next: &Inspection,
        expected_version: u64,
        event: &AuditEvent,
    ) -> Result<Inspection, StoreError> {
        let next = next.clone();
        let event = event.clone();
        self.with_conn(move |c| update(c, &next, expected_version, Some(&event)))
            .await
    }
}
