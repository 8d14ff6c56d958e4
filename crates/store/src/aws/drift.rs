//! The drift history in DynamoDB: create-if-absent by record id, newest-first keyset
//! pages on the `DRIFT` partition of gsi1 (sorted by evaluation time, then id).

use async_trait::async_trait;
use opti_core::drift::DriftRecord;
use opti_core::ports::{DriftHistory, DriftQuery, StoreError};
use opti_core::Page;

use super::keys::{self, time_id_key, GSI1};
use super::query::{tighter, Cursor, Filter, KeysetQuery};
use super::{encode, s, AwsStore, Item};

const ENTITY: &str = "drift record";
/// Cursor tag of the drift listing (a cursor of another listing is `BadCursor`).
const ORDER: &str = "d";

fn item_of(record: &DriftRecord) -> Result<Item, StoreError> {
    let mut item = Item::new();
    item.insert(keys::PK.into(), s(format!("DRIFT#{}", record.id)));
    item.insert(GSI1.pk.into(), s("DRIFT"));
    item.insert(
        GSI1.sk.into(),
        s(time_id_key(record.evaluated_at, &record.id)?),
    );
    item.insert(keys::BODY.into(), s(encode(ENTITY, record)?));
    Ok(item)
}

#[async_trait]
impl DriftHistory for AwsStore {
    async fn put_drift_record(&self, record: &DriftRecord) -> Result<bool, StoreError> {
        let created = self
            .conditional_put(item_of(record)?, "attribute_not_exists(#pk)", vec![])
            .await?;
        Ok(created.is_ok())
    }

    async fn list_drift_records(
        &self,
        query: &DriftQuery,
    ) -> Result<Page<DriftRecord>, StoreError> {
        let cursor = match &query.cursor {
            Some(c) => Some(Cursor::decode(c, ORDER)?),
            None => None,
        };
        self.keyset_page(
            KeysetQuery {
                index: GSI1,
                partition: "DRIFT".into(),
                lo: None,
                hi: tighter(None, cursor.as_deref(), false),
                forward: false,
                skip: cursor,
                filter: Filter::default(),
                want: crate::page_size(query.limit) as usize,
            },
            ORDER,
            ENTITY,
        )
        .await
    }
}
