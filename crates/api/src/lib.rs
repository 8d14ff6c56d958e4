//! The HTTP API of Opti-Quality: one axum [`Router`] over the storage ports, mounted by
//! `opti serve` (embedded storage) and by the Lambda functions (DynamoDB + S3). The
//! contract is the table in shared/DESIGN.md; `/openapi.json` is generated from this code.

pub mod auth;
pub mod drift;
pub mod error;
pub mod ingest;
pub mod learning;
pub mod model;
pub mod openapi;
pub mod routes;
pub mod signing;

use std::sync::Arc;

use axum::Router;
use opti_core::ports::{
    AuditLog, BlobStore, ConfigStore, DriftHistory, InspectionStore, ModelRegistry, UserStore,
};
use opti_core::types::{AuditAction, AuditEvent};
use time::OffsetDateTime;

pub use auth::{Authenticator, Caller, TokenAuthenticator};
pub use error::{ApiError, ApiResult};
pub use ingest::{InspectFailure, Inspected, Inspector, PreparedModel};
pub use signing::{BlobUrls, HmacBlobUrls, PresignedPut};

/// The storage ports the service uses; adapters are picked by the door (`opti serve`, Lambda).
#[derive(Clone)]
pub struct Ports {
    pub inspections: Arc<dyn InspectionStore>,
    pub audit: Arc<dyn AuditLog>,
    pub config: Arc<dyn ConfigStore>,
    pub models: Arc<dyn ModelRegistry>,
    pub users: Arc<dyn UserStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Stored drift evaluations (`GET /drift/history`, the scheduled evaluation).
    pub drift: Arc<dyn DriftHistory>,
}

/// The current time; tests swap in a clock they control (lease expiry).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// Limits and switches of the service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest accepted upload body, in bytes.
    pub max_upload_bytes: usize,
    /// Lifetime of presigned upload URLs and signed image URLs, in seconds (≤ 900).
    pub url_ttl_seconds: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_upload_bytes: 20 * 1024 * 1024,
            url_ttl_seconds: 900,
        }
    }
}

/// Everything a handler needs, built once by the door and shared.
#[derive(Clone)]
pub struct AppState {
    pub ports: Ports,
    pub auth: Arc<dyn Authenticator>,
    pub inspector: Arc<dyn Inspector>,
    pub urls: Arc<dyn BlobUrls>,
    /// Local mode: the HMAC signer whose URLs this service serves itself
    /// (`GET /blobs/…`, `PUT /uploads/put/…`). `None` in AWS mode (S3 serves them).
    pub local_urls: Option<Arc<HmacBlobUrls>>,
    pub settings: Settings,
    pub clock: Clock,
    /// Serialises model activations (promote, rollback) within this process.
    pub activation: Arc<tokio::sync::Mutex<()>>,
    /// Bounds concurrent inferences (memory: each decoded image and tract state).
    pub inference: Arc<tokio::sync::Semaphore>,
    /// Retraining (jobs, trainer); `None` where this door does not retrain (503).
    pub learning: Option<Arc<learning::Learning>>,
}

impl AppState {
    /// State with the default limits: one inference per core at a time.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ports: Ports,
        auth: Arc<dyn Authenticator>,
        inspector: Arc<dyn Inspector>,
        urls: Arc<dyn BlobUrls>,
        local_urls: Option<Arc<HmacBlobUrls>>,
        settings: Settings,
        clock: Clock,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            ports,
            auth,
            inspector,
            urls,
            local_urls,
            settings,
            clock,
            activation: Arc::new(tokio::sync::Mutex::new(())),
            inference: Arc::new(tokio::sync::Semaphore::new(cores)),
            learning: None,
        }
    }

    /// The same state with retraining wired in (`POST /retrain` and the loop).
    pub fn with_learning(mut self, learning: Arc<learning::Learning>) -> Self {
        self.learning = Some(learning);
        self
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// Appends one audit event (who, what, before → after) at the current time.
    pub async fn audit(
        &self,
        actor: &str,
        action: AuditAction,
        entity: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), ApiError> {
        let event = self.audit_event(actor, action, entity, before, after);
        self.ports.audit.append_audit(&event).await?;
        Ok(())
    }

    /// An audit event at the current time, for a store call that writes it together
    /// with the record change (`*_audited`).
    pub fn audit_event(
        &self,
        actor: &str,
        action: AuditAction,
        entity: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> AuditEvent {
        let at = self.now();
        AuditEvent {
            id: audit_event_id(at, entity, action),
            actor: actor.to_string(),
            action,
            entity: entity.to_string(),
            before,
            after,
            at,
        }
    }
}

/// Audit ids sort by time and stay unique within a process (a counter breaks ties).
fn audit_event_id(at: OffsetDateTime, entity: &str, action: AuditAction) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut rand = [0u8; 4];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut rand);
    let _ = (entity, action);
    format!(
        "evt_{:020}_{:08x}_{}",
        at.unix_timestamp_nanos().max(0),
        n,
        hex::encode(rand)
    )
}

/// A JSON value of `v` with `f32` fields as they print (0.8, not 0.800000011920929):
/// `serde_json::to_value` widens `f32` to `f64`, which the audit trail would show.
pub fn json_value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_string(v)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}
