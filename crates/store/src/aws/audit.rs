//! The audit trail in DynamoDB: append-if-absent by event id, newest-first keyset
//! listings on the index that fits the filter (entity, entity kind, actor, or all).

use async_trait::async_trait;
use opti_core::ports::{AuditLog, AuditQuery, StoreError};
use opti_core::{AuditEvent, Page};

use super::keys::{self, time_id_key, GSI1, GSI2, GSI3, GSI4};
use super::query::{tighter, Cursor, Filter, KeysetQuery};
use super::{encode, s, AwsStore, Item};

const ENTITY: &str = "audit event";
const ORDER: &str = "a";

/// The kind of an entity (`inspection` of `inspection/insp_…`), if it has one.
fn kind(entity: &str) -> Option<&str> {
    entity.split_once('/').map(|(kind, _)| kind)
}

/// The item of an audit event (also written inside transactions, see [`super::txn`]).
pub(crate) fn item_of(event: &AuditEvent) -> Result<Item, StoreError> {
    let tkey = time_id_key(event.at, &event.id)?;
    let mut item = Item::new();
    item.insert(keys::PK.into(), s(format!("AUDIT#{}", event.id)));
    item.insert(GSI1.pk.into(), s("AUDIT"));
    item.insert(GSI1.sk.into(), s(tkey.clone()));
    item.insert(GSI2.pk.into(), s(format!("ACTOR#{}", event.actor)));
    item.insert(GSI2.sk.into(), s(tkey.clone()));
    item.insert(GSI3.pk.into(), s(format!("ENT#{}", event.entity)));
    item.insert(GSI3.sk.into(), s(tkey.clone()));
    if let Some(kind) = kind(&event.entity) {
        item.insert(GSI4.pk.into(), s(format!("KIND#{kind}")));
        item.insert(GSI4.sk.into(), s(tkey));
    }
    item.insert("actor".into(), s(event.actor.clone()));
    item.insert("action".into(), s(event.action.as_str()));
    item.insert("entity".into(), s(event.entity.clone()));
    item.insert(keys::BODY.into(), s(encode(ENTITY, event)?));
    Ok(item)
}

#[async_trait]
impl AuditLog for AwsStore {
    /// A retried append (same id) keeps the first copy.
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let item = item_of(event)?;
        // Refused means the id is taken: the first copy stays, as the port requires.
        let _kept = self
            .conditional_put(item, "attribute_not_exists(#pk)", vec![])
            .await?;
        Ok(())
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditEvent>, StoreError> {
        let cursor = match &query.cursor {
            Some(c) => Some(Cursor::decode(c, ORDER)?),
            None => None,
        };
        let mut filter = Filter::default();
        if let Some(actor) = &query.actor {
            filter.cmp("actor", "=", s(actor.clone()));
        }
        if let Some(action) = query.action {
            filter.cmp("action", "=", s(action.as_str()));
        }
        let (index, partition) = match query.entity.as_deref() {
            Some(prefix) if prefix.ends_with('/') => {
                filter.begins_with("entity", prefix);
                match prefix.strip_suffix('/').filter(|k| !k.contains('/')) {
                    // `kind/`: exactly the kind partition.
                    Some(kind) => (GSI4, format!("KIND#{kind}")),
                    None => match &query.actor {
                        Some(actor) => (GSI2, format!("ACTOR#{actor}")),
                        None => (GSI1, "AUDIT".to_owned()),
                    },
                }
            }
            Some(entity) => (GSI3, format!("ENT#{entity}")),
            None => match &query.actor {
                Some(actor) => (GSI2, format!("ACTOR#{actor}")),
                None => (GSI1, "AUDIT".to_owned()),
            },
        };
        let limit = crate::page_size(query.limit) as usize;
        self.keyset_page(
            KeysetQuery {
                index,
                partition,
                lo: None,
                hi: tighter(None, cursor.as_deref(), false),
                forward: false,
                skip: cursor,
                filter,
                want: limit,
            },
            ORDER,
            ENTITY,
        )
        .await
    }
}
