//! Schema migrations of the SQLite file, tracked in `PRAGMA user_version`.
//!
//! Migration `i` (0-based) takes the database from version `i` to `i + 1`. At open, the
//! missing ones are applied in order inside one immediate transaction, so concurrent
//! openers cannot apply a step twice and a failed step leaves the file as it was. A
//! file from a newer build is refused rather than misread.
//!
//! Each table keeps the full record as JSON in `body` plus the columns the queries
//! filter and sort on. Times are UTC nanoseconds since the Unix epoch (`INTEGER`).

use rusqlite::{Connection, TransactionBehavior};

use super::error::LocalError;

/// The schema steps, oldest first. Append only; never edit a released step.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "
    CREATE TABLE inspections (
        id           TEXT    NOT NULL PRIMARY KEY,
        status       TEXT    NOT NULL,
        camera_id    TEXT    NOT NULL,
        confidence   REAL    NOT NULL,
        created_at   INTEGER NOT NULL,
        audit_sample INTEGER NOT NULL,
        version      INTEGER NOT NULL,
        body         TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX inspections_by_created ON inspections (created_at, id);
    CREATE INDEX inspections_by_uncertainty ON inspections (confidence, created_at, id);
    CREATE INDEX inspections_by_status_created ON inspections (status, created_at, id);
    CREATE INDEX inspections_by_status_uncertainty
        ON inspections (status, confidence, created_at, id);
    CREATE INDEX inspections_by_camera_created ON inspections (camera_id, created_at, id);

    CREATE TABLE audit_events (
        id     TEXT    NOT NULL PRIMARY KEY,
        at     INTEGER NOT NULL,
        actor  TEXT    NOT NULL,
        action TEXT    NOT NULL,
        entity TEXT    NOT NULL,
        body   TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX audit_by_at ON audit_events (at, id);
    CREATE INDEX audit_by_actor ON audit_events (actor, at, id);
    CREATE INDEX audit_by_entity ON audit_events (entity, at, id);

    CREATE TABLE config (
        id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        body    TEXT    NOT NULL
    ) STRICT;

    CREATE TABLE models (
        version        TEXT    NOT NULL PRIMARY KEY,
        created_at     INTEGER NOT NULL,
        record_version INTEGER NOT NULL,
        body           TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX models_by_created ON models (created_at, version);

    CREATE TABLE registry_pointers (
        name  TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;

    CREATE TABLE users (
        name         TEXT    NOT NULL PRIMARY KEY,
        token_sha256 TEXT    NOT NULL UNIQUE,
        created_at   INTEGER NOT NULL,
        body         TEXT    NOT NULL
    ) STRICT;
    ",
    // 2: retraining jobs.
    "
    CREATE TABLE retrain_jobs (
        id         TEXT    NOT NULL PRIMARY KEY,
        status     TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        version    INTEGER NOT NULL,
        body       TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX retrain_jobs_by_created ON retrain_jobs (created_at, id);
    CREATE INDEX retrain_jobs_by_status ON retrain_jobs (status);
    ",
    // 3: the drift history (one record per evaluated window).
    "
    CREATE TABLE drift_records (
        id           TEXT    NOT NULL PRIMARY KEY,
        evaluated_at INTEGER NOT NULL,
        body         TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX drift_records_by_evaluated ON drift_records (evaluated_at, id);
    ",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database at `path` up to [`SCHEMA_VERSION`]; returns the version it had.
pub(crate) fn migrate(conn: &mut Connection, path: &str) -> Result<u32, LocalError> {
    let found = user_version(conn)?;
    check_not_newer(found, path)?;
    if found == SCHEMA_VERSION {
        return Ok(found);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated between our read and our lock.
    let current = user_version(&tx)?;
    check_not_newer(current, path)?;
    for step in MIGRATIONS.iter().skip(current as usize) {
        tx.execute_batch(step)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(found)
}

fn user_version(conn: &Connection) -> Result<u32, LocalError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

fn check_not_newer(found: u32, path: &str) -> Result<(), LocalError> {
    if found > SCHEMA_VERSION {
        return Err(LocalError::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}
