//! The model registry in DynamoDB: register-if-absent, update-if-version, newest-first
//! listing, and the active pointer moved by compare-and-set.

use async_trait::async_trait;
use opti_core::ports::{ModelRegistry, StoreError};
use opti_core::ModelRecord;

use super::keys::{self, time_id_key, GSI1};
use super::query::{Filter, KeysetQuery};
use super::{decode, encode, get_s, n, s, AwsStore, Item};

const ENTITY: &str = "model";
const POINTER: &str = "ACTIVE_MODEL";

fn pk(version: &str) -> String {
    format!("MODEL#{version}")
}

fn item_of(model: &ModelRecord) -> Result<Item, StoreError> {
    let mut item = Item::new();
    item.insert(keys::PK.into(), s(pk(&model.version)));
    item.insert(GSI1.pk.into(), s("MODEL"));
    item.insert(
        GSI1.sk.into(),
        s(time_id_key(model.created_at, &model.version)?),
    );
    item.insert(keys::VER.into(), n(model.record_version));
    item.insert(keys::BODY.into(), s(encode(ENTITY, model)?));
    Ok(item)
}

#[async_trait]
impl ModelRegistry for AwsStore {
    async fn register_model(&self, model: &ModelRecord) -> Result<(), StoreError> {
        match self
            .conditional_put(item_of(model)?, "attribute_not_exists(#pk)", vec![])
            .await?
        {
            Ok(()) => Ok(()),
            Err(_) => Err(StoreError::AlreadyExists {
                entity: ENTITY,
                id: model.version.clone(),
            }),
        }
    }

    async fn get_model(&self, version: &str) -> Result<ModelRecord, StoreError> {
        match self.get_item(&pk(version)).await? {
            Some(item) => decode(ENTITY, &item),
            None => Err(StoreError::NotFound {
                entity: ENTITY,
                id: version.to_owned(),
            }),
        }
    }

    async fn list_models(&self) -> Result<Vec<ModelRecord>, StoreError> {
        let (items, _) = self
            .keyset_query(KeysetQuery {
                index: GSI1,
                partition: "MODEL".into(),
                lo: None,
                hi: None,
                forward: false,
                skip: None,
                filter: Filter::default(),
                want: usize::MAX,
            })
            .await?;
        items.iter().map(|item| decode(ENTITY, item)).collect()
    }

    async fn update_model(
        &self,
        next: &ModelRecord,
        expected_version: u64,
    ) -> Result<ModelRecord, StoreError> {
        let mut stored = next.clone();
        stored.record_version = expected_version
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("model record version overflow".into()))?;
        match self
            .conditional_put(
                item_of(&stored)?,
                "attribute_exists(#pk) AND ver = :expected",
                vec![(":expected", n(expected_version))],
            )
            .await?
        {
            Ok(()) => Ok(stored),
            Err(Some(current)) => Err(StoreError::Conflict {
                entity: ENTITY,
                current: Box::new(decode(ENTITY, &current)?),
            }),
            Err(None) => Err(StoreError::NotFound {
                entity: ENTITY,
                id: next.version.clone(),
            }),
        }
    }

    async fn active_model(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .get_item(POINTER)
            .await?
            .and_then(|item| get_s(&item, "active").map(str::to_owned)))
    }

    async fn set_active_model(
        &self,
        version: &str,
        expected: Option<&str>,
    ) -> Result<(), StoreError> {
        // Versions are never deleted, so checking first cannot race with a removal.
        if self.get_item(&pk(version)).await?.is_none() {
            return Err(StoreError::NotFound {
                entity: ENTITY,
                id: version.to_owned(),
            });
        }
        let mut item = Item::new();
        item.insert(keys::PK.into(), s(POINTER));
        item.insert("active".into(), s(version));
        let refused = match expected {
            None => {
                self.conditional_put(item, "attribute_not_exists(#pk)", vec![])
                    .await?
            }
            Some(expected) => {
                self.conditional_put(item, "active = :expected", vec![(":expected", s(expected))])
                    .await?
            }
        };
        match refused {
            Ok(()) => Ok(()),
            Err(current) => {
                let pointer = current
                    .as_ref()
                    .and_then(|item| get_s(item, "active"))
                    .map_or(serde_json::Value::Null, |v| {
                        serde_json::Value::String(v.to_owned())
                    });
                Err(StoreError::Conflict {
                    entity: "active model pointer",
                    current: Box::new(pointer),
                })
            }
        }
    }
}
