//! The single configuration record in DynamoDB, versioned (put-if-version).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use opti_core::ports::{ConfigStore, StoreError};
use opti_core::{AuditEvent, Config, StoredConfig};

use super::txn::{refused, Op, Refusal};
use super::{decode, encode, keys, n, s, AwsStore, Item};

const ENTITY: &str = "config";
const PK: &str = "CONFIG";

fn stored_of(item: &Item) -> Result<StoredConfig, StoreError> {
    let value: Config = decode(ENTITY, item)?;
    let version = item
        .get(keys::VER)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| StoreError::Corrupt("config item without a version".into()))?;
    Ok(StoredConfig { value, version })
}

/// A put of the config record, conditional on the version it replaces.
struct VersionedPut {
    item: Item,
    version: u64,
    condition: &'static str,
    values: Vec<(&'static str, AttributeValue)>,
}

/// The item of `config` stored at `expected_version + 1`, and the condition (with its
/// values) that the stored record is at `expected_version` (0: none is stored).
fn versioned_put(config: &Config, expected_version: u64) -> Result<VersionedPut, StoreError> {
    let version = expected_version
        .checked_add(1)
        .ok_or_else(|| StoreError::Backend("config version overflow".into()))?;
    let mut item = Item::new();
    item.insert(keys::PK.into(), s(PK));
    item.insert(keys::VER.into(), n(version));
    item.insert(keys::BODY.into(), s(encode(ENTITY, config)?));
    let (condition, values) = if expected_version == 0 {
        ("attribute_not_exists(#pk)", vec![])
    } else {
        ("ver = :expected", vec![(":expected", n(expected_version))])
    };
    Ok(VersionedPut {
        item,
        version,
        condition,
        values,
    })
}

/// The `Conflict` of a refused put, given the record as stored (`None`: none is).
fn conflict(current: Option<Item>) -> StoreError {
    let current = match current {
        Some(item) => match stored_of(&item) {
            Ok(stored) => stored,
            Err(e) => return e,
        },
        None => StoredConfig {
            value: Config::default(),
            version: 0,
        },
    };
    match serde_json::to_value(&current) {
        Ok(current) => StoreError::Conflict {
            entity: ENTITY,
            current: Box::new(current),
        },
        Err(e) => StoreError::Backend(format!("config: {e}")),
    }
}

#[async_trait]
impl ConfigStore for AwsStore {
    async fn get_config(&self) -> Result<StoredConfig, StoreError> {
        match self.get_item(PK).await? {
            Some(item) => stored_of(&item),
            None => Ok(StoredConfig {
                value: Config::default(),
                version: 0,
            }),
        }
    }

    async fn put_config(
        &self,
        config: &Config,
        expected_version: u64,
    ) -> Result<StoredConfig, StoreError> {
        let VersionedPut {
            item,
            version,
            condition,
            values,
        } = versioned_put(config, expected_version)?;
        match self.conditional_put(item, condition, values).await? {
            Ok(()) => Ok(StoredConfig {
                value: config.clone(),
                version,
            }),
            Err(current) => Err(conflict(current)),
        }
    }

    /// One transaction: the version-conditional put and the append of `event`.
    async fn put_config_audited(
        &self,
        config: &Config,
        expected_version: u64,
        event: &AuditEvent,
    ) -> Result<StoredConfig, StoreError> {
        let VersionedPut {
            item,
            version,
            condition,
            values,
        } = versioned_put(config, expected_version)?;
        let ops = vec![
            Op::put(self.table(), item, Some(condition), values)?,
            Op::audit(self.table(), event)?,
        ];
        match self.transact(ops).await? {
            Ok(()) => Ok(StoredConfig {
                value: config.clone(),
                version,
            }),
            Err(refusals) => match &refusals[0] {
                Refusal::Condition(Some(item)) => Err(conflict(Some(item.clone()))),
                // The emulator did not return the item: read it.
                Refusal::Condition(None) => Err(conflict(self.get_item(PK).await?)),
                _ => Err(refused("audited config put", &refusals)),
            },
        }
    }
}
