//! Inspections in DynamoDB: create-if-absent, update-if-version, and keyset listings on
//! the index that fits the query (see [`super::keys`]).

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use opti_core::ports::{InspectionOrder, InspectionQuery, InspectionStore, StoreError};
use opti_core::{AuditEvent, Inspection, Page, Status, StatusCounts};

use super::keys::{self, time_id_key, time_key, GSI1, GSI2, GSI3, GSI4, QUEUE};
use super::query::{tighter, Cursor, Filter, KeysetQuery};
use super::txn::{refused, Op, Refusal};
use super::{backend, decode, encode, get_s, n, s, AwsStore, Item};

const ENTITY: &str = "inspection";

fn pk(id: &str) -> String {
    format!("INSP#{id}")
}

/// The item of an inspection: key, index keys, filter attributes, body.
fn item_of(inspection: &Inspection) -> Result<Item, StoreError> {
    let id = &inspection.id;
    let tkey = time_id_key(inspection.created_at, id)?;
    let qkey = keys::queue_key(inspection.confidence, inspection.created_at, id)?;
    let mut item = Item::new();
    item.insert(keys::PK.into(), s(pk(id)));
    item.insert(GSI1.pk.into(), s("INSP"));
    item.insert(GSI1.sk.into(), s(tkey.clone()));
    item.insert(GSI2.pk.into(), s(format!("CAM#{}", inspection.camera_id)));
    item.insert(GSI2.sk.into(), s(tkey.clone()));
    item.insert(GSI3.pk.into(), s(format!("ST#{}", inspection.status)));
    item.insert(GSI3.sk.into(), s(tkey));
    item.insert(GSI4.pk.into(), s("INSP"));
    item.insert(GSI4.sk.into(), s(qkey.clone()));
    if inspection.status == Status::PendingReview {
        item.insert(QUEUE.pk.into(), s("QUEUE"));
        item.insert(QUEUE.sk.into(), s(qkey));
    }
    item.insert("status".into(), s(inspection.status.as_str()));
    item.insert("camera".into(), s(inspection.camera_id.clone()));
    item.insert(
        "sample".into(),
        AttributeValue::Bool(inspection.audit_sample),
    );
    item.insert("created".into(), s(time_key(inspection.created_at)?));
    item.insert(keys::VER.into(), n(inspection.version));
    item.insert(keys::BODY.into(), s(encode(ENTITY, inspection)?));
    Ok(item)
}

/// What a conditional put found when its condition failed: the stored item, if the
/// error carried it.
fn refused_item(e: &SdkError<PutItemError, impl std::fmt::Debug>) -> Option<Option<Item>> {
    match e.as_service_error() {
        Some(PutItemError::ConditionalCheckFailedException(ex)) => Some(ex.item().cloned()),
        _ => None,
    }
}

impl AwsStore {
    /// A conditional PutItem that returns, on a failed condition, the item as stored
    /// (`Err(Ok(item))`, `None` when there is none) and any other failure as `Err(Err)`.
    pub(crate) async fn conditional_put(
        &self,
        item: Item,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Result<(), Option<Item>>, StoreError> {
        let pk = get_s(&item, keys::PK).unwrap_or_default().to_owned();
        let mut req = self
            .ddb()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if condition.contains("#pk") {
            req = req.expression_attribute_names("#pk", keys::PK);
        }
        for (name, value) in values {
            req = req.expression_attribute_values(name, value);
        }
        match req.send().await {
            Ok(_) => Ok(Ok(())),
            Err(e) => match refused_item(&e) {
                Some(Some(current)) => Ok(Err(Some(current))),
                // An emulator that does not return the item: read it.
                Some(None) => Ok(Err(self.get_item(&pk).await?)),
                None => Err(backend("PutItem", e)),
            },
        }
    }
}

fn order_tag(order: InspectionOrder) -> &'static str {
    match order {
        InspectionOrder::Newest => "n",
        InspectionOrder::Oldest => "o",
        InspectionOrder::MostUncertain => "u",
    }
}

#[async_trait]
impl InspectionStore for AwsStore {
    async fn create_inspection(
        &self,
        inspection: &Inspection,
    ) -> Result<(Inspection, bool), StoreError> {
        let item = item_of(inspection)?;
        match self
            .conditional_put(item, "attribute_not_exists(#pk)", vec![])
            .await?
        {
            Ok(()) => Ok((inspection.clone(), true)),
            Err(Some(current)) => Ok((decode(ENTITY, &current)?, false)),
            Err(None) => Err(StoreError::Backend(format!(
                "create of {} was refused but no record is stored",
                inspection.id
            ))),
        }
    }

    async fn get_inspection(&self, id: &str) -> Result<Inspection, StoreError> {
        match self.get_item(&pk(id)).await? {
            Some(item) => decode(ENTITY, &item),
            None => Err(StoreError::NotFound {
                entity: ENTITY,
                id: id.to_owned(),
            }),
        }
    }

    async fn update_inspection(
        &self,
        next: &Inspection,
        expected_version: u64,
    ) -> Result<Inspection, StoreError> {
        let mut stored = next.clone();
        stored.version = expected_version
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("inspection version overflow".into()))?;
        let item = item_of(&stored)?;
        match self
            .conditional_put(
                item,
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
                id: next.id.clone(),
            }),
        }
    }

    async fn list_inspections(
        &self,
        query: &InspectionQuery,
    ) -> Result<Page<Inspection>, StoreError> {
        let tag = order_tag(query.order);
        let cursor = match &query.cursor {
            Some(c) => Some(Cursor::decode(c, tag)?),
            None => None,
        };
        let mut filter = Filter::default();
        if let Some(status) = query.status {
            filter.cmp("status", "=", s(status.as_str()));
        }
        if let Some(camera) = &query.camera_id {
            filter.cmp("camera", "=", s(camera.clone()));
        }
        if let Some(sample) = query.audit_sample {
            filter.cmp("sample", "=", AttributeValue::Bool(sample));
        }
        let from = query.created_from.map(time_key).transpose()?;
        let before = query.created_before.map(time_key).transpose()?;
        let (index, partition, lo, hi, forward) = match query.order {
            InspectionOrder::MostUncertain => {
                // Times are not in these sort keys: the range is a filter.
                if let Some(from) = &from {
                    filter.cmp("created", ">=", s(from.clone()));
                }
                if let Some(before) = &before {
                    filter.cmp("created", "<", s(before.clone()));
                }
                let (index, partition) = if query.status == Some(Status::PendingReview) {
                    (QUEUE, "QUEUE".to_owned())
                } else {
                    (GSI4, "INSP".to_owned())
                };
                let lo = cursor.clone();
                (index, partition, lo, None, true)
            }
            order => {
                let (index, partition) = if let Some(camera) = &query.camera_id {
                    (GSI2, format!("CAM#{camera}"))
                } else if let Some(status) = query.status {
                    (GSI3, format!("ST#{status}"))
                } else {
                    (GSI1, "INSP".to_owned())
                };
                let forward = order == InspectionOrder::Oldest;
                let (lo, hi) = if forward {
                    (tighter(from, cursor.as_deref(), true), before)
                } else {
                    (from, tighter(before, cursor.as_deref(), false))
                };
                (index, partition, lo, hi, forward)
            }
        };
        let limit = crate::page_size(query.limit) as usize;
        self.keyset_page(
            KeysetQuery {
                index,
                partition,
                lo,
                hi,
                forward,
                skip: cursor,
                filter,
                want: limit,
            },
            tag,
            ENTITY,
        )
        .await
    }

    /// One `Select = COUNT` query per status partition of gsi3: it reads (and is billed
    /// for) every record, so callers use it for dashboards, not per request.
    async fn count_by_status(&self) -> Result<StatusCounts, StoreError> {
        let mut counts = StatusCounts::new();
        for status in Status::ALL {
            let n = self.count_partition(GSI3, &format!("ST#{status}")).await?;
            counts.insert(status, n);
        }
        Ok(counts)
    }

    /// One transaction: the conditional put of the record and the appends of `events`.
    async fn create_inspection_audited(
        &self,
        inspection: &Inspection,
        events: &[AuditEvent],
    ) -> Result<(Inspection, bool), StoreError> {
        let mut ops = vec![Op::put(
            self.table(),
            item_of(inspection)?,
            Some("attribute_not_exists(#pk)"),
            vec![],
        )?];
        ops.extend(Op::audits(self.table(), events)?);
        match self.transact(ops).await? {
            Ok(()) => Ok((inspection.clone(), true)),
            Err(refusals) => match &refusals[0] {
                Refusal::Condition(current) => {
                    let current = match current {
                        Some(item) => Some(item.clone()),
                        None => self.get_item(&pk(&inspection.id)).await?,
                    };
                    match current {
                        Some(item) => Ok((decode(ENTITY, &item)?, false)),
                        None => Err(refused("audited create", &refusals)),
                    }
                }
                _ => Err(refused("audited create", &refusals)),
            },
        }
    }

    /// One transaction: the version-conditional put of the record and the append of
    /// `event`.
    async fn update_inspection_audited(
        &self,
        next: &Inspection,
        expected_version: u64,
        event: &AuditEvent,
    ) -> Result<Inspection, StoreError> {
        let mut stored = next.clone();
        stored.version = expected_version
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("inspection version overflow".into()))?;
        let ops = vec![
            Op::put(
                self.table(),
                item_of(&stored)?,
                Some("attribute_exists(#pk) AND ver = :expected"),
                vec![(":expected", n(expected_version))],
            )?,
            Op::audit(self.table(), event)?,
        ];
        match self.transact(ops).await? {
            Ok(()) => Ok(stored),
            Err(refusals) => match &refusals[0] {
                Refusal::Condition(current) => {
                    let current = match current {
                        Some(item) => Some(item.clone()),
                        None => self.get_item(&pk(&next.id)).await?,
                    };
                    match current {
                        Some(item) => Err(StoreError::Conflict {
                            entity: ENTITY,
                            current: Box::new(decode(ENTITY, &item)?),
                        }),
                        None => Err(StoreError::NotFound {
                            entity: ENTITY,
                            id: next.id.clone(),
                        }),
                    }
                }
                _ => Err(refused("audited update", &refusals)),
            },
        }
    }
}
