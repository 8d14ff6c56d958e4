//! The AWS adapter: one DynamoDB table (single-table design, see [`keys`]) for the
//! records and one S3 bucket for the blobs, behind every storage port.
//!
//! Endpoints come from the usual SDK configuration, so `AWS_ENDPOINT_URL` (or
//! `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_S3`) points the adapter at moto or
//! LocalStack; S3 then uses path-style addressing, which emulators need. The HTTP client
//! is hyper 1 with rustls on *ring*: no aws-lc or cmake in the build.
//!
//! Every conditional write uses `ReturnValuesOnConditionCheckFailure = ALL_OLD`, so a
//! refused write reports the item as stored in the same round trip
//! ([`StoreError::Conflict`]`{current}`). A record written together with its audit
//! events (the `*_audited` writes, retraining jobs) goes in one `TransactWriteItems`;
//! a refused transaction reports the stored item when DynamoDB returns it and is read
//! back when it does not (moto 5.2 returns it), so `Conflict.current` is the same either way.

mod audit;
mod blobs;
mod config;
mod drift;
mod inspections;
mod jobs;
pub mod keys;
mod models;
mod query;
mod schema;
mod txn;
mod users;

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use opti_core::ports::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use schema::TableSpec;

/// A DynamoDB item as the SDK hands it over.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// Environment variable naming the table (set by the SAM template for each function).
pub const TABLE_ENV: &str = "OPTI_TABLE";
/// Environment variable naming the bucket.
pub const BUCKET_ENV: &str = "OPTI_BUCKET";

/// The DynamoDB + S3 store. Cheap to clone (the SDK clients are shared).
#[derive(Clone)]
pub struct AwsStore {
    inner: Arc<Inner>,
}

struct Inner {
    ddb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    table: String,
    bucket: String,
}

impl std::fmt::Debug for AwsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsStore")
            .field("table", &self.inner.table)
            .field("bucket", &self.inner.bucket)
            .finish_non_exhaustive()
    }
}

/// The SDK's HTTPS client: hyper 1 + rustls with the *ring* provider.
pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Loads the SDK configuration from the environment (region, credentials, endpoint
/// overrides such as `AWS_ENDPOINT_URL`) with [`http_client`].
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .load()
        .await
}

/// True when an endpoint override is set: an emulator, which needs path-style S3.
fn endpoint_overridden() -> bool {
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
}

impl AwsStore {
    /// A store on `table` and `bucket` with clients built from `sdk`.
    pub fn new(sdk: &SdkConfig, table: impl Into<String>, bucket: impl Into<String>) -> Self {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let s3_conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(endpoint_overridden())
            .build();
        AwsStore {
            inner: Arc::new(Inner {
                ddb,
                s3: aws_sdk_s3::Client::from_conf(s3_conf),
                table: table.into(),
                bucket: bucket.into(),
            }),
        }
    }

    /// A store configured from the environment: table from `OPTI_TABLE`, bucket from
    /// `OPTI_BUCKET`, SDK settings as [`load_sdk_config`].
    pub async fn from_env() -> Result<Self, StoreError> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    StoreError::Backend(format!("environment variable {name} is not set"))
                })
        };
        let (table, bucket) = (var(TABLE_ENV)?, var(BUCKET_ENV)?);
        Ok(Self::new(&load_sdk_config().await, table, bucket))
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.inner.table
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// The DynamoDB client (for callers that need more than the ports, such as tests).
    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.inner.ddb
    }

    /// The S3 client.
    pub fn s3(&self) -> &aws_sdk_s3::Client {
        &self.inner.s3
    }

    fn ddb(&self) -> &aws_sdk_dynamodb::Client {
        &self.inner.ddb
    }

    /// Reads one item by partition key, strongly consistent.
    async fn get_item(&self, pk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .ddb()
            .get_item()
            .table_name(self.table())
            .key(keys::PK, s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", e))?;
        Ok(out.item)
    }
}

/// A string attribute.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A string attribute of an item.
pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// Serialises `value` for a `body` attribute, refusing what would not read back
/// (serde_json writes a NaN as `null`).
pub(crate) fn encode<T: Serialize + DeserializeOwned>(
    what: &str,
    value: &T,
) -> Result<String, StoreError> {
    let body = serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("refusing to store {what}: {e}")))?;
    serde_json::from_str::<T>(&body).map_err(|e| {
        StoreError::Backend(format!(
            "refusing to store {what}: it would not read back ({e}); are all numbers finite?"
        ))
    })?;
    Ok(body)
}

/// The `body` attribute of an item, parsed.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, item: &Item) -> Result<T, StoreError> {
    let body = get_s(item, keys::BODY)
        .ok_or_else(|| StoreError::Corrupt(format!("{what} item without a body")))?;
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A failed SDK call as a backend error that names the operation and the cause.
pub(crate) fn backend<E, R>(op: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use std::error::Error as _;
    let mut message = format!("{op}: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    StoreError::Backend(message)
}
