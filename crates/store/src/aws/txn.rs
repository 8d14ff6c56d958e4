//! Atomic multi-item writes (`TransactWriteItems`): a record change together with its
//! audit events (and, for retraining jobs, the running-job lock), all or nothing.
//!
//! Audit events keep their append-if-absent rule inside a transaction: each event is a
//! conditional put, and when the only refusals are events already stored (a retried
//! request), the transaction is sent again without them, so the first copy stays and
//! the record change still happens. A refusal because another transaction holds an item
//! (`TransactionConflict`) is retried a few times with backoff; other refusals come
//! back to the caller per operation, in the order the operations were given.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{
    ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use opti_core::{ports::StoreError, AuditEvent};

use super::{backend, keys, s, AwsStore, Item};

/// Attribute-name placeholders the conditions of this adapter use.
const NAMES: [(&str, &str); 2] = [("#pk", keys::PK), ("#job", "job")];

/// The placeholders of [`NAMES`] that `condition` uses.
fn names_in(condition: &str) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    NAMES.into_iter().filter(|(p, _)| condition.contains(p))
}

/// DynamoDB's limit on the operations of one transaction.
const MAX_OPS: usize = 100;
/// Tries of a transaction that other transactions keep getting in the way of.
const CONFLICT_TRIES: u32 = 5;

/// One operation of a transaction.
pub(crate) struct Op {
    write: TransactWriteItem,
    /// An audit-event append: a refusal means the event is already stored.
    audit: bool,
}

/// Why one operation of a cancelled transaction was refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// The operation was fine (another one cancelled the transaction).
    None,
    /// Its condition failed; the item as stored when DynamoDB returned it.
    Condition(Option<Item>),
    /// Anything else (validation, throughput, a conflict that outlasted the retries).
    Other(String),
}

/// The outcome of a transaction that DynamoDB refused: one [`Refusal`] per operation.
pub(crate) type Refusals = Vec<Refusal>;

fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("building a transaction: {e}"))
}

impl Op {
    /// A put of `item`, with an optional condition (`#pk` names the key attribute) and
    /// its values; a failed condition reports the stored item.
    pub(crate) fn put(
        table: &str,
        item: Item,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Op, StoreError> {
        let mut put = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(condition) = condition {
            put = put.condition_expression(condition);
            for (placeholder, name) in names_in(condition) {
                put = put.expression_attribute_names(placeholder, name);
            }
        }
        for (name, value) in values {
            put = put.expression_attribute_values(name, value);
        }
        Ok(Op {
            write: TransactWriteItem::builder()
                .put(put.build().map_err(build_err)?)
                .build(),
            audit: false,
        })
    }

    /// A delete of the item `pk` if `condition` holds.
    pub(crate) fn delete(
        table: &str,
        pk: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Op, StoreError> {
        let mut delete = Delete::builder()
            .table_name(table)
            .key(keys::PK, s(pk))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (placeholder, name) in names_in(condition) {
            delete = delete.expression_attribute_names(placeholder, name);
        }
        for (name, value) in values {
            delete = delete.expression_attribute_values(name, value);
        }
        Ok(Op {
            write: TransactWriteItem::builder()
                .delete(delete.build().map_err(build_err)?)
                .build(),
            audit: false,
        })
    }

    /// A condition on the item `pk` that writes nothing.
    pub(crate) fn check(table: &str, pk: &str, condition: &str) -> Result<Op, StoreError> {
        let mut check = ConditionCheck::builder()
            .table_name(table)
            .key(keys::PK, s(pk))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (placeholder, name) in names_in(condition) {
            check = check.expression_attribute_names(placeholder, name);
        }
        Ok(Op {
            write: TransactWriteItem::builder()
                .condition_check(check.build().map_err(build_err)?)
                .build(),
            audit: false,
        })
    }

    /// The append of `event` if its id is not stored yet.
    pub(crate) fn audit(table: &str, event: &AuditEvent) -> Result<Op, StoreError> {
        let item = super::audit::item_of(event)?;
        let mut op = Op::put(table, item, Some("attribute_not_exists(#pk)"), vec![])?;
        op.audit = true;
        Ok(op)
    }

    /// The appends of `events`, each id once (the first occurrence), as one transaction
    /// cannot write an item twice.
    pub(crate) fn audits<'a>(
        table: &str,
        events: impl IntoIterator<Item = &'a AuditEvent>,
    ) -> Result<Vec<Op>, StoreError> {
        let mut seen = HashSet::new();
        events
            .into_iter()
            .filter(|e| seen.insert(e.id.clone()))
            .map(|e| Op::audit(table, e))
            .collect()
    }
}

/// The refusals DynamoDB gave for the operations still in the transaction.
fn refusals_of(e: &TransactWriteItemsError, sent: usize) -> Option<Refusals> {
    let TransactWriteItemsError::TransactionCanceledException(ex) = e else {
        return None;
    };
    let mut out: Refusals = ex
        .cancellation_reasons()
        .iter()
        .map(|r| match r.code() {
            None | Some("None") => Refusal::None,
            Some("ConditionalCheckFailed") => Refusal::Condition(r.item().cloned()),
            Some(code) => Refusal::Other(match r.message() {
                Some(m) => format!("{code}: {m}"),
                None => code.to_owned(),
            }),
        })
        .collect();
    // Without per-operation reasons, say so for each operation.
    if out.len() != sent {
        out = vec![Refusal::Other(format!("transaction cancelled: {ex}")); sent];
    }
    Some(out)
}

fn is_conflict(r: &Refusal) -> bool {
    matches!(r, Refusal::Other(code) if code.starts_with("TransactionConflict"))
}

impl AwsStore {
    /// Runs `ops` as one transaction: `Ok(Ok(()))` when it was stored, `Ok(Err(refusals))`
    /// when DynamoDB refused it (one entry per op of `ops`, in order), `Err` on any
    /// other failure.
    pub(crate) async fn transact(&self, ops: Vec<Op>) -> Result<Result<(), Refusals>, StoreError> {
        if ops.len() > MAX_OPS {
            return Err(StoreError::Backend(format!(
                "a transaction of {} writes exceeds DynamoDB's {MAX_OPS}",
                ops.len()
            )));
        }
        // Positions in `ops` of the operations still sent.
        let mut live: Vec<usize> = (0..ops.len()).collect();
        let mut conflicts = 0;
        loop {
            let items: Vec<TransactWriteItem> =
                live.iter().map(|&i| ops[i].write.clone()).collect();
            let err = match self
                .ddb()
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => return Ok(Ok(())),
                Err(e) => e,
            };
            let Some(refusals) = err
                .as_service_error()
                .and_then(|service| refusals_of(service, live.len()))
            else {
                return Err(backend("TransactWriteItems", err));
            };
            let refused: Vec<(usize, &Refusal)> = live
                .iter()
                .zip(&refusals)
                .filter(|(_, r)| **r != Refusal::None)
                .map(|(&i, r)| (i, r))
                .collect();
            let only_stored_events = !refused.is_empty()
                && refused
                    .iter()
                    .all(|(i, r)| ops[*i].audit && matches!(r, Refusal::Condition(_)));
            if only_stored_events {
                // Those events are stored already: keep the first copies, write the rest.
                let stored: HashSet<usize> = refused.iter().map(|(i, _)| *i).collect();
                live.retain(|i| !stored.contains(i));
                if live.is_empty() {
                    return Ok(Ok(()));
                }
                continue;
            }
            let only_conflicts = refused.iter().all(|(_, r)| is_conflict(r));
            if only_conflicts && conflicts + 1 < CONFLICT_TRIES {
                conflicts += 1;
                tokio::time::sleep(Duration::from_millis(20 << conflicts)).await;
                continue;
            }
            let mut out = vec![Refusal::None; ops.len()];
            for (&i, r) in live.iter().zip(refusals) {
                out[i] = r;
            }
            return Ok(Err(out));
        }
    }
}

/// A refused transaction as a backend error naming each refusal.
pub(crate) fn refused(what: &str, refusals: &Refusals) -> StoreError {
    let reasons: Vec<String> = refusals
        .iter()
        .enumerate()
        .filter(|(_, r)| **r != Refusal::None)
        .map(|(i, r)| match r {
            Refusal::Condition(_) => format!("write {i}: condition failed"),
            Refusal::Other(m) => format!("write {i}: {m}"),
            Refusal::None => String::new(),
        })
        .collect();
    StoreError::Backend(format!("{what} was refused: {}", reasons.join("; ")))
}
