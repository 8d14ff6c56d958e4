//! The single configuration record in DynamoDB, versioned (put-if-version).

use async_trait::async_trait;
use opti_core::ports::{ConfigStore, StoreError};
use opti_core::{Config, StoredConfig};

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
        let version = expected_version
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("config version overflow".into()))?;
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(PK));
        item.insert(keys::VER.into(), n(version));
        item.insert(keys::BODY.into(), s(encode(ENTITY, config)?));
        let refused = if expected_version == 0 {
            self.conditional_put(item, "attribute_not_exists(#pk)", vec![])
                .await?
        } else {
            self.conditional_put(
                item,
                "ver = :expected",
                vec![(":expected", n(expected_version))],
            )
            .await?
        };
        match refused {
            Ok(()) => Ok(StoredConfig {
                value: config.clone(),
                version,
            }),
            Err(current) => {
                let current = match current {
                    Some(item) => stored_of(&item)?,
                    None => StoredConfig {
                        value: Config::default(),
                        version: 0,
                    },
                };
                let current = serde_json::to_value(&current)
                    .map_err(|e| StoreError::Backend(format!("config: {e}")))?;
                Err(StoreError::Conflict {
                    entity: ENTITY,
                    current: Box::new(current),
                })
            }
        }
    }
}
