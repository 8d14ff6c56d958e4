//! Retraining jobs in SQLite: a create that refuses a second running job, update-if-
//! version, newest-first listing; each change and its audit event in one transaction.

use async_trait::async_trait;
use opti_core::ports::{RetrainJobStore, StoreError};
use opti_core::retrain::{JobStatus, RetrainJob};
use opti_core::AuditEvent;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::error::LocalError;
use super::{decode, decode_value, encode, from_sql_u64, nanos, to_sql_u64, LocalStore};

const ENTITY: &str = "retrain job";

fn create(conn: &mut Connection, job: &RetrainJob, event: &AuditEvent) -> Result<(), LocalError> {
    let body = encode(ENTITY, job)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let running: Option<(String, String)> = tx
        .query_row(
            "SELECT id, body FROM retrain_jobs WHERE status = ?1 LIMIT 1",
            [JobStatus::Running.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((id, body)) = running {
        return Err(LocalError::Conflict {
            entity: ENTITY,
            current: decode_value(ENTITY, &id, &body)?,
        });
    }
    let inserted = tx.execute(
        "INSERT INTO retrain_jobs (id, status, created_at, version, body)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
        params![
            job.id,
            job.status.as_str(),
            nanos(job.created_at)?,
            to_sql_u64("job version", job.version)?,
            body
        ],
    )?;
    if inserted == 0 {
        return Err(LocalError::AlreadyExists {
            entity: ENTITY,
            id: job.id.clone(),
        });
    }
    super::audit::append(&tx, event)?;
    tx.commit()?;
    Ok(())
}

fn load(conn: &Connection, id: &str) -> Result<Option<(i64, String)>, LocalError> {
    Ok(conn
        .query_row(
            "SELECT version, body FROM retrain_jobs WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

fn get(conn: &Connection, id: &str) -> Result<RetrainJob, LocalError> {
    match load(conn, id)? {
        Some((_, body)) => decode(ENTITY, id, &body),
        None => Err(LocalError::NotFound {
            entity: ENTITY,
            id: id.to_owned(),
        }),
    }
}

fn list(conn: &Connection, limit: u32) -> Result<Vec<RetrainJob>, LocalError> {
    let limit = crate::page_size(limit);
    let mut stmt = conn.prepare_cached(
        "SELECT id, body FROM retrain_jobs ORDER BY created_at DESC, id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([i64::from(limit)], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut jobs = Vec::new();
    for row in rows {
        let (id, body) = row?;
        jobs.push(decode(ENTITY, &id, &body)?);
    }
    Ok(jobs)
}

fn update(
    conn: &mut Connection,
    next: &RetrainJob,
    expected_version: u64,
    event: Option<&AuditEvent>,
) -> Result<RetrainJob, LocalError> {
    let mut stored = next.clone();
    stored.version = expected_version
        .checked_add(1)
        .ok_or_else(|| LocalError::Unstorable("job version overflow".into()))?;
    let body = encode(ENTITY, &stored)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some((current_version, current_body)) = load(&tx, &next.id)? else {
        return Err(LocalError::NotFound {
            entity: ENTITY,
            id: next.id.clone(),
        });
    };
    if from_sql_u64("job version", current_version)? != expected_version {
        return Err(LocalError::Conflict {
            entity: ENTITY,
            current: decode_value(ENTITY, &next.id, &current_body)?,
        });
    }
    tx.execute(
        "UPDATE retrain_jobs SET status = ?2, version = ?3, body = ?4 WHERE id = ?1",
        params![
            stored.id,
            stored.status.as_str(),
            to_sql_u64("job version", stored.version)?,
            body
        ],
    )?;
    if let Some(event) = event {
        super::audit::append(&tx, event)?;
    }
    tx.commit()?;
    Ok(stored)
}

#[async_trait]
impl RetrainJobStore for LocalStore {
    async fn create_job(&self, job: &RetrainJob, event: &AuditEvent) -> Result<(), StoreError> {
        let job = job.clone();
        let event = event.clone();
        self.with_conn(move |c| create(c, &job, &event)).await
    }

    async fn get_job(&self, id: &str) -> Result<RetrainJob, StoreError> {
        let id = id.to_owned();
        self.with_conn(move |c| get(c, &id)).await
    }

    async fn list_jobs(&self, limit: u32) -> Result<Vec<RetrainJob>, StoreError> {
        self.with_conn(move |c| list(c, limit)).await
    }

    async fn update_job(
        &self,
        next: &RetrainJob,
        expected_version: u64,
        event: Option<&AuditEvent>,
    ) -> Result<RetrainJob, StoreError> {
        let next = next.clone();
        let event = event.cloned();
        self.with_conn(move |c| update(c, &next, expected_version, event.as_ref()))
            .await
    }
}
