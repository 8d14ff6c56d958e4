//! Storage ports: the narrow traits that the service needs, implemented by the embedded
//! adapter (SQLite + files) and the AWS adapter (DynamoDB + S3). One conformance suite
//! (in `opti-store`) holds every adapter to the same behaviour.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::drift::DriftRecord;
pub use crate::error::StoreError;
use crate::retrain::RetrainJob;
use crate::types::{
    AuditAction, AuditEvent, Inspection, ModelRecord, Page, Status, StatusCounts, StoredConfig,
    User,
};
use crate::Config;

/// Which inspections to list, and in what order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InspectionQuery {
    pub status: Option<Status>,
    pub camera_id: Option<String>,
    /// Only audit samples (`Some(true)`) or only non-samples (`Some(false)`).
    pub audit_sample: Option<bool>,
    /// Created at or after this time.
    pub created_from: Option<OffsetDateTime>,
    /// Created strictly before this time.
    pub created_before: Option<OffsetDateTime>,
    pub order: InspectionOrder,
    /// Page size; adapters cap it at [`MAX_PAGE`].
    pub limit: u32,
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// The largest page an adapter returns.
pub const MAX_PAGE: u32 = 500;

/// List order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InspectionOrder {
    /// Newest first (by `created_at`, ties by id).
    #[default]
    Newest,
    /// Oldest first (by `created_at`, ties by id).
    Oldest,
    /// Most uncertain first: lowest decision confidence, ties oldest first. The queue.
    MostUncertain,
}

/// Inspections by id, with idempotent create and optimistic update.
#[async_trait]
pub trait InspectionStore: Send + Sync {
    /// Create-if-absent by `inspection.id`: stores it and returns `(it, true)`, or returns
    /// the record already stored under that id and `false` (nothing is overwritten).
    async fn create_inspection(
        &self,
        inspection: &Inspection,
    ) -> Result<(Inspection, bool), StoreError>;

    async fn get_inspection(&self, id: &str) -> Result<Inspection, StoreError>;

    /// Update-if-version: stores `next` (with `version = expected_version + 1`) only if the
    /// stored record is at `expected_version`; otherwise `Conflict` with the stored record.
    async fn update_inspection(
        &self,
        next: &Inspection,
        expected_version: u64,
    ) -> Result<Inspection, StoreError>;

    /// One page of inspections matching `query`. Pages are stable: a record appears at
    /// most once across the pages of one listing, even while new records arrive.
    async fn list_inspections(
        &self,
        query: &InspectionQuery,
    ) -> Result<Page<Inspection>, StoreError>;

    /// How many inspections are in each status.
    async fn count_by_status(&self) -> Result<StatusCounts, StoreError>;

    /// [`InspectionStore::create_inspection`] and, only if the record was created, the
    /// `events` appended to the audit trail in the same transaction: both happen or
    /// neither does.
    async fn create_inspection_audited(
        &self,
        inspection: &Inspection,
        events: &[AuditEvent],
    ) -> Result<(Inspection, bool), StoreError>;

    /// [`InspectionStore::update_inspection`] and the audit `event` in one transaction:
    /// a conflict or a failure stores neither, success stores both.
    async fn update_inspection_audited(
        &self,
        next: &Inspection,
        expected_version: u64,
        event: &AuditEvent,
    ) -> Result<Inspection, StoreError>;
}

/// Which audit events to list (newest first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<AuditAction>,
    /// Exact entity (`inspection/insp_…`) or a prefix ending in `/` (`inspection/`).
    pub entity: Option<String>,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// The append-only audit trail.
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// Newest first.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditEvent>, StoreError>;
}

/// The single configuration record, versioned.
#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// The stored config, or the default at version 0 when none was ever stored.
    async fn get_config(&self) -> Result<StoredConfig, StoreError>;
    /// Stores `config` if the stored version is `expected_version`; returns the new version.
    async fn put_config(
        &self,
        config: &Config,
        expected_version: u64,
    ) -> Result<StoredConfig, StoreError>;
    /// [`ConfigStore::put_config`] and the audit `event` in one transaction.
    async fn put_config_audited(
        &self,
        config: &Config,
        expected_version: u64,
        event: &AuditEvent,
    ) -> Result<StoredConfig, StoreError>;
}

/// Model versions and the pointer to the active one.
#[async_trait]
pub trait ModelRegistry: Send + Sync {
    /// Registers a new version; `AlreadyExists` if the version is taken.
    async fn register_model(&self, model: &ModelRecord) -> Result<(), StoreError>;
    async fn get_model(&self, version: &str) -> Result<ModelRecord, StoreError>;
    /// All versions, newest first.
    async fn list_models(&self) -> Result<Vec<ModelRecord>, StoreError>;
    /// Update-if-version on `record_version`, like [`InspectionStore::update_inspection`].
    async fn update_model(
        &self,
        next: &ModelRecord,
        expected_version: u64,
    ) -> Result<ModelRecord, StoreError>;
    /// The active version's name, if any model was ever activated.
    async fn active_model(&self) -> Result<Option<String>, StoreError>;
    /// Points the registry at `version` if the pointer is still at `expected` (None: unset).
    async fn set_active_model(
        &self,
        version: &str,
        expected: Option<&str>,
    ) -> Result<(), StoreError>;
}

/// Retraining jobs, at most one running at a time. Every method that changes a job
/// takes the audit event of that change and stores both in one transaction (or neither).
///
/// An adapter needs: a record per job (id, status, created_at, body), a listing newest
/// first, update-if-version, and a conditional create that sees a running job (SQLite:
/// one immediate transaction; DynamoDB: a lock item `retrain-lock` written with a
/// condition in the same `TransactWriteItems` as the job and its audit event).
#[async_trait]
pub trait RetrainJobStore: Send + Sync {
    /// Stores a new job (status `running`) unless another job is running: then
    /// `Conflict` with that job as `current`. `AlreadyExists` if the id is taken.
    async fn create_job(&self, job: &RetrainJob, event: &AuditEvent) -> Result<(), StoreError>;
    async fn get_job(&self, id: &str) -> Result<RetrainJob, StoreError>;
    /// The newest `limit` jobs (capped at [`MAX_PAGE`]), newest first.
    async fn list_jobs(&self, limit: u32) -> Result<Vec<RetrainJob>, StoreError>;
    /// Stores `next` (with `version = expected_version + 1`) if the stored job is at
    /// `expected_version`, else `Conflict` with the stored job; appends `event` (if any)
    /// in the same transaction.
    async fn update_job(
        &self,
        next: &RetrainJob,
        expected_version: u64,
        event: Option<&AuditEvent>,
    ) -> Result<RetrainJob, StoreError>;
}

/// Local-mode users, found by the SHA-256 of their bearer token.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// `AlreadyExists` if the name is taken.
    async fn add_user(&self, user: &User) -> Result<(), StoreError>;
    async fn user_by_token_hash(&self, token_sha256: &str) -> Result<Option<User>, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
}

/// Image and artifact bytes by key (`raw/{camera}/…`, `models/…`, `snapshots/…`).
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Writes atomically: readers see the old bytes or the new, never a part.
    async fn put_blob(&self, key: &str, bytes: &[u8], content_type: &str)
        -> Result<(), StoreError>;
    async fn get_blob(&self, key: &str) -> Result<Vec<u8>, StoreError>;
    /// Size in bytes, or `None` when absent (no body is read).
    async fn blob_size(&self, key: &str) -> Result<Option<u64>, StoreError>;
    async fn delete_blob(&self, key: &str) -> Result<(), StoreError>;
    /// Keys under `prefix`, sorted.
    async fn list_blobs(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// Which drift records to list (newest first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriftQuery {
    /// Page size; adapters cap it at [`MAX_PAGE`] (0: their default).
    pub limit: u32,
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// The history of drift evaluations: one [`DriftRecord`] per evaluated window, written
/// by the scheduled evaluation (a timer in `opti serve`, EventBridge in AWS) and read by
/// `GET /drift/history`. The latest record also carries the open alarm episodes, so the
/// next evaluation knows which alarms were already raised.
///
/// An adapter needs one table/partition keyed by `id`, sorted by `(evaluated_at, id)`.
#[async_trait]
pub trait DriftHistory: Send + Sync {
    /// Create-if-absent by `record.id`: stores it and returns `true`, or returns `false`
    /// and keeps the record already stored under that id unchanged (a second evaluator
    /// of the same window, a retried Lambda).
    async fn put_drift_record(&self, record: &DriftRecord) -> Result<bool, StoreError>;
    /// Newest first by `evaluated_at`, ties by `id` descending; keyset pages that stay
    /// stable while records are added. A cursor this store did not hand out is `BadCursor`.
    async fn list_drift_records(&self, query: &DriftQuery)
        -> Result<Page<DriftRecord>, StoreError>;
}
