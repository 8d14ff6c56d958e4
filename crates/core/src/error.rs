//! Errors of the domain and of the storage ports. Adapters convert their private errors
//! into [`StoreError`], keeping the distinctions callers act on.

use thiserror::Error;

/// A rule of the domain was broken by the caller's input or request.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DomainError {
    /// Input out of range or malformed; the message says which field and why.
    #[error("{0}")]
    Invalid(String),
    /// The transition is not allowed from the record's current state.
    #[error("cannot {action} an inspection that is {from}")]
    IllegalTransition {
        action: &'static str,
        from: crate::types::Status,
    },
    /// Another reviewer holds an unexpired lease.
    #[error("inspection is claimed by {by} until {until}")]
    ClaimedByOther { by: String, until: String },
    /// The caller read an older version of the record.
    #[error("stale version {given}: the record is at version {current}")]
    StaleVersion { given: u64, current: u64 },
}

/// What a storage adapter can report.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    /// Update-if-version failed; `current` is the record as stored now (JSON).
    #[error("version conflict on {entity}")]
    Conflict {
        entity: &'static str,
        current: Box<serde_json::Value>,
    },
    /// Create of something that must be new (a user name, a model version) found it taken.
    #[error("{entity} {id} already exists")]
    AlreadyExists { entity: &'static str, id: String },
    /// A cursor that this store did not hand out.
    #[error("invalid cursor")]
    BadCursor,
    /// Stored data could not be read back (schema mismatch, corrupt row).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The backend failed (I/O, network, throttling). Usually worth a retry.
    #[error("storage backend: {0}")]
    Backend(String),
}
