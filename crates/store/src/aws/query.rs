//! Keyset-paged queries on one index partition, and the opaque cursors they hand out.
//!
//! A cursor is the sort key of the last item of a page (hex of a small JSON object
//! tagged with the listing order). The next page asks DynamoDB for keys strictly after
//! it, so records inserted meanwhile never shift what follows.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use opti_core::ports::StoreError;
use serde::{Deserialize, Serialize};

use super::keys::Index;
use super::{backend, get_s, s, AwsStore, Item};

/// Where a listing stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// Which listing: `n`ewest, `o`ldest, `u`ncertain, `a`udit.
    pub o: String,
    /// The sort key of the last item handed out.
    pub k: String,
}

impl Cursor {
    pub(crate) fn encode(order: &str, key: &str) -> Result<String, StoreError> {
        let json = serde_json::to_vec(&Cursor {
            o: order.to_owned(),
            k: key.to_owned(),
        })
        .map_err(|e| StoreError::Backend(format!("cursor: {e}")))?;
        Ok(hex::encode(json))
    }

    /// The sort key of a cursor of listing `order`; anything else is `BadCursor`.
    pub(crate) fn decode(s: &str, order: &str) -> Result<String, StoreError> {
        let bytes = hex::decode(s).map_err(|_| StoreError::BadCursor)?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
        if cursor.o != order || cursor.k.is_empty() {
            return Err(StoreError::BadCursor);
        }
        Ok(cursor.k)
    }
}

/// One keyset query: a partition of an index, inclusive sort-key bounds, a direction, a
/// filter, and how many matching items are wanted.
pub(crate) struct KeysetQuery {
    pub index: Index,
    pub partition: String,
    /// Inclusive lower bound of the sort key.
    pub lo: Option<String>,
    /// Inclusive upper bound of the sort key.
    pub hi: Option<String>,
    /// Ascending sort-key order.
    pub forward: bool,
    /// Sort key to leave out (the cursor item, which inclusive bounds would repeat).
    pub skip: Option<String>,
    /// Filter expression over plain attributes, with its names and values.
    pub filter: Filter,
    /// Matching items wanted.
    pub want: usize,
}

/// A filter expression being built: `AND`-ed conditions with placeholders.
#[derive(Default)]
pub(crate) struct Filter {
    conditions: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Filter {
    /// Adds `attr OP value`.
    pub(crate) fn cmp(&mut self, attr: &str, op: &str, value: AttributeValue) {
        let i = self.conditions.len();
        self.conditions.push(format!("#f{i} {op} :f{i}"));
        self.names.insert(format!("#f{i}"), attr.to_owned());
        self.values.insert(format!(":f{i}"), value);
    }

    /// Adds `begins_with(attr, prefix)`.
    pub(crate) fn begins_with(&mut self, attr: &str, prefix: &str) {
        let i = self.conditions.len();
        self.conditions.push(format!("begins_with(#f{i}, :f{i})"));
        self.names.insert(format!("#f{i}"), attr.to_owned());
        self.values.insert(format!(":f{i}"), s(prefix));
    }
}

/// The later (for a forward listing) of an optional bound and the cursor.
pub(crate) fn tighter(bound: Option<String>, cursor: Option<&str>, lower: bool) -> Option<String> {
    match (bound, cursor) {
        (None, c) => c.map(str::to_owned),
        (b, None) => b,
        (Some(b), Some(c)) => Some(if (c > b.as_str()) == lower {
            c.to_owned()
        } else {
            b
        }),
    }
}

impl AwsStore {
    /// One page of `what` records: runs `q` and makes the next cursor (tagged `order`)
    /// from the last item's index sort key when more may follow.
    pub(crate) async fn keyset_page<T: serde::de::DeserializeOwned>(
        &self,
        q: KeysetQuery,
        order: &str,
        what: &str,
    ) -> Result<opti_core::Page<T>, StoreError> {
        let sk = q.index.sk;
        let (items, more) = self.keyset_query(q).await?;
        let next_cursor = match items.last() {
            Some(last) if more => {
                let key = get_s(last, sk).ok_or_else(|| {
                    StoreError::Corrupt(format!("{what} item without its index key"))
                })?;
                Some(Cursor::encode(order, key)?)
            }
            _ => None,
        };
        let items = items
            .iter()
            .map(|item| super::decode(what, item))
            .collect::<Result<Vec<T>, _>>()?;
        Ok(opti_core::Page { items, next_cursor })
    }

    /// Runs `q`, following DynamoDB's pages until `q.want` matching items are found or
    /// the partition ends. Returns the items in index order and whether more may follow.
    pub(crate) async fn keyset_query(
        &self,
        q: KeysetQuery,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let mut names = q.filter.names.clone();
        let mut values = q.filter.values.clone();
        names.insert("#pk".into(), q.index.pk.into());
        values.insert(":pk".into(), s(q.partition.clone()));
        let mut key_condition = "#pk = :pk".to_owned();
        if q.lo.is_some() || q.hi.is_some() {
            names.insert("#sk".into(), q.index.sk.into());
        }
        match (&q.lo, &q.hi) {
            (Some(lo), Some(hi)) => {
                if lo > hi {
                    return Ok((Vec::new(), false));
                }
                key_condition.push_str(" AND #sk BETWEEN :lo AND :hi");
                values.insert(":lo".into(), s(lo.clone()));
                values.insert(":hi".into(), s(hi.clone()));
            }
            (Some(lo), None) => {
                key_condition.push_str(" AND #sk >= :lo");
                values.insert(":lo".into(), s(lo.clone()));
            }
            (None, Some(hi)) => {
                key_condition.push_str(" AND #sk <= :hi");
                values.insert(":hi".into(), s(hi.clone()));
            }
            (None, None) => {}
        }
        let filter = (!q.filter.conditions.is_empty()).then(|| q.filter.conditions.join(" AND "));
        // DynamoDB's Limit counts items read before the filter: read a little more than
        // wanted, and keep going while the filter drops items.
        let batch = i32::try_from(q.want.clamp(1, 999) + 1).unwrap_or(1000);
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .ddb()
                .query()
                .table_name(self.table())
                .index_name(q.index.name)
                .key_condition_expression(&key_condition)
                .set_filter_expression(filter.clone())
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(q.forward)
                .limit(batch)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Query", e))?;
            for item in out.items.unwrap_or_default() {
                if q.skip.is_some() && get_s(&item, q.index.sk) == q.skip.as_deref() {
                    continue;
                }
                if items.len() == q.want {
                    // One more match exists beyond the page.
                    return Ok((items, true));
                }
                items.push(item);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok((items, false)),
            }
        }
    }

    /// Counts the items of one index partition (following pages).
    pub(crate) async fn count_partition(
        &self,
        index: Index,
        partition: &str,
    ) -> Result<u64, StoreError> {
        let mut total = 0u64;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .ddb()
                .query()
                .table_name(self.table())
                .index_name(index.name)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", index.pk)
                .expression_attribute_values(":pk", s(partition))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Query (count)", e))?;
            total += u64::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(total),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_listings_and_garbage() {
        let c = Cursor::encode("u", "3f800000#0001#insp_x").unwrap();
        assert!(c.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(Cursor::decode(&c, "u").unwrap(), "3f800000#0001#insp_x");
        assert!(matches!(
            Cursor::decode(&c, "n"),
            Err(StoreError::BadCursor)
        ));
        for garbage in ["", "zz", "not a cursor", "0123456789abcdef"] {
            assert!(matches!(
                Cursor::decode(garbage, "n"),
                Err(StoreError::BadCursor)
            ));
        }
    }

    #[test]
    fn tighter_bound_takes_the_cursor_when_it_is_inside_the_range() {
        let b = Some("b".to_owned());
        assert_eq!(tighter(b.clone(), Some("c"), true).as_deref(), Some("c"));
        assert_eq!(tighter(b.clone(), Some("a"), true).as_deref(), Some("b"));
        assert_eq!(tighter(b.clone(), Some("a"), false).as_deref(), Some("a"));
        assert_eq!(tighter(b.clone(), Some("c"), false).as_deref(), Some("b"));
        assert_eq!(tighter(None, Some("c"), false).as_deref(), Some("c"));
        assert_eq!(tighter(b, None, false).as_deref(), Some("b"));
    }
}
