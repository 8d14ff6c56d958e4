//! Local-mode users in DynamoDB, unique by name and by token hash: one item per name
//! and one per token, written together in a transaction.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use opti_core::ports::{StoreError, UserStore};
use opti_core::User;

use super::keys::{self, GSI1};
use super::query::{Filter, KeysetQuery};
use super::{backend, decode, encode, s, AwsStore, Item};

const ENTITY: &str = "user";

fn put_if_absent(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", keys::PK)
        .build()
        .map_err(|e| StoreError::Backend(format!("building a put: {e}")))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

#[async_trait]
impl UserStore for AwsStore {
    async fn add_user(&self, user: &User) -> Result<(), StoreError> {
        let body = encode(ENTITY, user)?;
        let name_pk = format!("USER#{}", user.name);
        let mut by_name = Item::new();
        by_name.insert(keys::PK.into(), s(name_pk.clone()));
        by_name.insert(GSI1.pk.into(), s("USER"));
        by_name.insert(GSI1.sk.into(), s(user.name.clone()));
        by_name.insert(keys::BODY.into(), s(body.clone()));
        let mut by_token = Item::new();
        by_token.insert(keys::PK.into(), s(format!("TOKEN#{}", user.token_sha256)));
        by_token.insert(keys::BODY.into(), s(body));
        let result = self
            .ddb()
            .transact_write_items()
            .transact_items(put_if_absent(self.table(), by_name)?)
            .transact_items(put_if_absent(self.table(), by_token)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(_)) => {
                    // Which one was taken: the name, or else the token.
                    if self.get_item(&name_pk).await?.is_some() {
                        Err(StoreError::AlreadyExists {
                            entity: ENTITY,
                            id: user.name.clone(),
                        })
                    } else {
                        // Never echo the hash: a short prefix is enough to find the clash.
                        let shown: String = user.token_sha256.chars().take(8).collect();
                        Err(StoreError::AlreadyExists {
                            entity: "user token",
                            id: format!("{shown}…"),
                        })
                    }
                }
                _ => Err(backend("TransactWriteItems", e)),
            },
        }
    }

    async fn user_by_token_hash(&self, token_sha256: &str) -> Result<Option<User>, StoreError> {
        self.get_item(&format!("TOKEN#{token_sha256}"))
            .await?
            .map(|item| decode(ENTITY, &item))
            .transpose()
    }

    /// Sorted by name.
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let (items, _) = self
            .keyset_query(KeysetQuery {
                index: GSI1,
                partition: "USER".into(),
                lo: None,
                hi: None,
                forward: true,
                skip: None,
                filter: Filter::default(),
                want: usize::MAX,
            })
            .await?;
        items.iter().map(|item| decode(ENTITY, item)).collect()
    }
}
