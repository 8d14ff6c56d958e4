//! The embedded adapter's private error, converted into [`StoreError`] at the port
//! boundary with the distinctions callers act on kept (NotFound, Conflict, AlreadyExists,
//! BadCursor, Corrupt); everything else is a backend failure with a readable message.

use std::io;

use opti_core::ports::StoreError;
use thiserror::Error;

use crate::blob_key::InvalidBlobKey;

#[derive(Debug, Error)]
pub(crate) enum LocalError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    #[error("version conflict on {entity}")]
    Conflict {
        entity: &'static str,
        current: serde_json::Value,
    },
    #[error("{entity} {id} already exists")]
    AlreadyExists { entity: &'static str, id: String },
    #[error("invalid cursor")]
    BadCursor,
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// A value this store refuses to write because it could not be read back as written.
    #[error("refusing to store {0}")]
    Unstorable(String),
    #[error(transparent)]
    InvalidKey(#[from] InvalidBlobKey),
    #[error(
        "database {path} has schema version {found}, newer than this build supports \
         ({supported}); run a newer opti, or point --data-dir at another directory"
    )]
    SchemaTooNew {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("database {path} is not in WAL mode (journal_mode is {mode})")]
    NotWal { path: String, mode: String },
    #[error("storage task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl LocalError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        LocalError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl ToString) -> Self {
        LocalError::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

impl From<LocalError> for StoreError {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::NotFound { entity, id } => StoreError::NotFound { entity, id },
            LocalError::Conflict { entity, current } => StoreError::Conflict {
                entity,
                current: Box::new(current),
            },
            LocalError::AlreadyExists { entity, id } => StoreError::AlreadyExists { entity, id },
            LocalError::BadCursor => StoreError::BadCursor,
            LocalError::Corrupt { .. } => StoreError::Corrupt(e.to_string()),
            LocalError::Sqlite(ref inner) if is_corruption(inner) => {
                StoreError::Corrupt(e.to_string())
            }
            LocalError::InvalidKey(key) => key.into(),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}
