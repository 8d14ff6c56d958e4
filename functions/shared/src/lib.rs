//! What the AWS Lambda functions do, as library functions over their events, so tests
//! can drive them against moto without the Lambda runtime. Each function's `main.rs`
//! builds its state once per container and hands events to these.
//!
//! - [`upload`]: S3 `ObjectCreated` under `raw/{camera}/` → one inspection per object
//!   version (bucket + key + ETag), corrupt files recorded as `rejected`.
//! - [`review`]: the HTTP API Router of `opti-api` behind API Gateway, callers taken
//!   from the Cognito JWT claims API Gateway already validated ([`cognito`]).
//! - [`drift`]: `GET /drift/` and the scheduled evaluation shared with `opti serve`
//!   (DynamoDB drift history, one record per window), alerts to SNS once per episode.
//! - [`retrain`]: `POST /retrain`, `GET /retrain[/{job}]` and the schedule that starts
//!   a retraining by itself: content-hash snapshot in S3, SageMaker training job named
//!   after the snapshot, one at a time; [`completion`] for a finished training job.
//! - [`models`]: the active model, loaded once per container from the registry and
//!   reloaded when the registry's pointer moves.
//! - [`urls`]: S3-presigned URLs for uploads and images.

pub mod cognito;
pub mod completion;
pub mod drift;
pub mod models;
pub mod retrain;
pub mod review;
pub mod upload;
pub mod urls;

use std::sync::Arc;

use opti_api::model::ModelSlot;
use opti_api::{AppState, Ports, Settings, TokenAuthenticator};
use opti_store::AwsStore;

/// The service state of a function: the ports on DynamoDB + S3, S3-presigned URLs, the
/// model slot (loaded lazily by [`models::ActiveModel`]).
pub fn aws_state(store: &AwsStore, slot: Arc<ModelSlot>) -> AppState {
    let shared = Arc::new(store.clone());
    let ports = Ports {
        inspections: shared.clone(),
        audit: shared.clone(),
        config: shared.clone(),
        models: shared.clone(),
        users: shared.clone(),
        blobs: shared.clone(),
        drift: shared,
    };
    let auth = Arc::new(TokenAuthenticator::new(ports.users.clone()));
    let urls = Arc::new(urls::S3Urls::new(store.s3().clone(), store.bucket()));
    AppState::new(
        ports,
        auth,
        slot,
        urls,
        None,
        Settings::default(),
        Arc::new(time::OffsetDateTime::now_utc),
    )
}

/// The service state from the environment (`OPTI_TABLE`, `OPTI_BUCKET`, SDK settings),
/// with an empty model slot that keeps load-optimised model copies in the container's
/// temporary folder ([`models::container_slot`]).
pub async fn state_from_env() -> anyhow::Result<(AwsStore, AppState, Arc<ModelSlot>)> {
    let store = AwsStore::from_env().await?;
    let slot = Arc::new(models::container_slot());
    let state = aws_state(&store, slot.clone());
    Ok((store, state, slot))
}

/// The SDK configuration the store uses (endpoint overrides, region, credentials from
/// the environment; the rustls + ring HTTPS client), for the SageMaker and SNS clients.
pub async fn sdk_config() -> aws_config::SdkConfig {
    opti_store::aws::load_sdk_config().await
}

/// Logs to stdout for CloudWatch (which adds the time), level from `RUST_LOG`
/// (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .try_init();
}
