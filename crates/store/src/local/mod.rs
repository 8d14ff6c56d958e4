//! The embedded adapter: one SQLite file in WAL mode plus a directory of blobs, behind
//! every storage port. Used by `opti serve`, the CLI, demos and CI.
//!
//! Layout of a data directory:
//! - `opti.sqlite3` (and its `-wal`/`-shm` companions): records, see [`schema`];
//! - `blobs/`: one file per blob key, written atomically (temp file, fsync, rename).
//!
//! rusqlite is synchronous, so the connection sits behind a mutex and every query runs
//! on tokio's blocking pool; async callers are never blocked. Writes take an immediate
//! transaction and the connection waits up to [`BUSY_TIMEOUT`] for a lock, so several
//! processes (the server and `opti users add`) can share one file.

mod audit;
mod blobs;
mod config;
mod cursor;
mod drift;
mod error;
mod inspections;
mod jobs;
mod models;
mod schema;
mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opti_core::ports::StoreError;
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use error::LocalError;
pub use schema::SCHEMA_VERSION;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "opti.sqlite3";

/// Directory of the blobs inside the data directory.
pub const BLOB_DIR: &str = "blobs";

/// How long a statement waits for another connection's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The embedded store. Cheap to clone; clones share one connection and blob root.
#[derive(Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    data_dir: PathBuf,
    blob_root: PathBuf,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("data_dir", &self.inner.data_dir)
            .finish_non_exhaustive()
    }
}

impl LocalStore {
    /// Opens (creating if needed) the store in `data_dir`: the directory, the blob root,
    /// the database in WAL mode, and the schema migrated to [`SCHEMA_VERSION`]. A
    /// database written by a newer build is refused with an error that says so.
    ///
    /// This does blocking file I/O; call it once at start-up (or inside
    /// `spawn_blocking`).
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self::open_inner(data_dir.as_ref())?)
    }

    fn open_inner(data_dir: &Path) -> Result<Self, LocalError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| LocalError::io(format!("creating data dir {}", data_dir.display()), e))?;
        let blob_root = data_dir.join(BLOB_DIR);
        std::fs::create_dir_all(&blob_root)
            .map_err(|e| LocalError::io(format!("creating blob dir {}", blob_root.display()), e))?;
        let db_path = data_dir.join(DB_FILE);
        let shown = db_path.display().to_string();
        let mut conn = Connection::open(&db_path)?;
        // Before anything that takes a lock, so start-up waits for other processes too.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LocalError::NotWal { path: shown, mode });
        }
        // FULL: a committed review survives a power cut, not only a crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        schema::migrate(&mut conn, &shown)?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                data_dir: data_dir.to_path_buf(),
                blob_root,
            }),
        })
    }

    /// The data directory this store was opened on.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The directory holding the blobs.
    pub fn blob_root(&self) -> &Path {
        &self.inner.blob_root
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, LocalError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let result = tokio::task::spawn_blocking(move || {
            // A panic mid-transaction rolled that transaction back when it unwound, so
            // the connection behind a poisoned lock is still sound.
            let mut conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(LocalError::from)
        .and_then(|r| r);
        Ok(result?)
    }

    /// Runs blob file work `f` on the blocking pool (without the database lock).
    async fn with_blobs<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T, LocalError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let result = tokio::task::spawn_blocking(move || f(&inner.blob_root))
            .await
            .map_err(LocalError::from)
            .and_then(|r| r);
        Ok(result?)
    }
}

/// Serialises `value` for a `body` column, refusing what would not read back (serde_json
/// writes a NaN as `null`, which a later read could not parse).
fn encode<T: Serialize + DeserializeOwned>(what: &str, value: &T) -> Result<String, LocalError> {
    let body =
        serde_json::to_string(value).map_err(|e| LocalError::Unstorable(format!("{what}: {e}")))?;
    serde_json::from_str::<T>(&body).map_err(|e| {
        LocalError::Unstorable(format!(
            "{what}: it would not read back ({e}); are all numbers finite?"
        ))
    })?;
    Ok(body)
}

/// Parses a `body` column.
fn decode<T: DeserializeOwned>(what: &str, id: &str, body: &str) -> Result<T, LocalError> {
    serde_json::from_str(body).map_err(|e| LocalError::corrupt(format!("{what} {id}"), e))
}

/// One keyset page: runs `sql` (which selects `id, body`, ordered, ending in `LIMIT ?`)
/// with `args` plus the limit + 1 (the extra row tells whether another page follows, so
/// the last page has no cursor), decodes the bodies, and makes the next cursor from the
/// last item kept.
fn keyset_page<T: DeserializeOwned>(
    conn: &Connection,
    what: &str,
    sql: &str,
    mut args: Vec<rusqlite::types::Value>,
    limit: u32,
    cursor_after: impl Fn(&T) -> Result<cursor::Cursor, LocalError>,
) -> Result<opti_core::Page<T>, LocalError> {
    args.push(rusqlite::types::Value::Integer(i64::from(limit) + 1));
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut items = Vec::new();
    for row in rows {
        let (id, body) = row?;
        items.push(decode::<T>(what, &id, &body)?);
    }
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        match items.last() {
            Some(last) => Some(cursor_after(last)?.encode()?),
            None => None,
        }
    } else {
        None
    };
    Ok(opti_core::Page { items, next_cursor })
}

/// A `body` column as loose JSON (the `current` of a conflict).
fn decode_value(what: &str, id: &str, body: &str) -> Result<serde_json::Value, LocalError> {
    decode(what, id, body)
}

/// A time as the integer the schema stores: UTC nanoseconds since the epoch.
fn nanos(t: OffsetDateTime) -> Result<i64, LocalError> {
    i64::try_from(t.unix_timestamp_nanos())
        .map_err(|_| LocalError::Unstorable(format!("time {t} is outside 1678..2262")))
}

/// A version number as SQLite's signed integer.
fn to_sql_u64(what: &str, v: u64) -> Result<i64, LocalError> {
    i64::try_from(v).map_err(|_| LocalError::Unstorable(format!("{what} {v} is too large")))
}

/// A stored version number back as `u64`.
fn from_sql_u64(what: &str, v: i64) -> Result<u64, LocalError> {
    u64::try_from(v).map_err(|_| LocalError::corrupt(what.to_owned(), format!("negative {v}")))
}
