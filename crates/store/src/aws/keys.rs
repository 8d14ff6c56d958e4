//! The single-table layout: one DynamoDB table with a string partition key `pk` and
//! five overloaded global secondary indexes, each with a string partition and sort key.
//!
//! | item        | `pk`              | gsi1 (kind, time)       | gsi2              | gsi3               | gsi4                   | queue (sparse)        |
//! |-------------|-------------------|-------------------------|-------------------|--------------------|------------------------|-----------------------|
//! | inspection  | `INSP#{id}`       | `INSP`, time#id         | `CAM#{camera}`, time#id | `ST#{status}`, time#id | `INSP`, conf#time#id | `QUEUE`, conf#time#id — only while `pending_review` |
//! | audit event | `AUDIT#{id}`      | `AUDIT`, time#id        | `ACTOR#{actor}`, time#id | `ENT#{entity}`, time#id | `KIND#{kind}`, time#id | —               |
//! | model       | `MODEL#{version}` | `MODEL`, time#version   | —                 | —                  | —                      | —                     |
//! | active ptr  | `ACTIVE_MODEL`    | —                       | —                 | —                  | —                      | —                     |
//! | config      | `CONFIG`          | —                       | —                 | —                  | —                      | —                     |
//! | user        | `USER#{name}`     | `USER`, name            | —                 | —                  | —                      | —                     |
//! | token       | `TOKEN#{sha256}`  | —                       | —                 | —                  | —                      | —                     |
//! | retrain job | `JOB#{id}`        | `JOB`, created#id       | —                 | —                  | —                      | —                     |
//! | retrain lock| `RETRAIN_LOCK`    | —                       | —                 | —                  | —                      | —                     |
//! | drift record| `DRIFT#{id}`      | `DRIFT`, evaluated#id   | —                 | —                  | —                      | —                     |
//!
//! Every record keeps its JSON in `body` and its optimistic-locking version in `ver`
//! (drift records have none: they are written once); inspections and audit events also
//! carry plain attributes for filter expressions (`status`, `camera`, `sample`,
//! `created`; `actor`, `action`, `entity`), retrain jobs their `status`.
//!
//! Retrain jobs list newest first on gsi1 (`JOB`). The lock item `RETRAIN_LOCK` exists
//! exactly while a job runs and names it in `job`: `create_job` writes it (condition:
//! absent) in one `TransactWriteItems` with the job (condition: absent) and its audit
//! event; the `update_job` that moves the job out of `running` deletes it (condition:
//! `job` is this job) in the transaction that stores the job (condition: `ver`) and its
//! event. An update that keeps a job running re-puts the lock (condition: absent or
//! this job's), so a second running job cannot appear through an update either.
//!
//! The audited writes (`create_inspection_audited`, `update_inspection_audited`,
//! `put_config_audited`, every job change) are one `TransactWriteItems` of the
//! conditional record put and the audit puts (condition: id absent); see `aws/txn.rs`
//! for how refusals map to `Conflict` / `AlreadyExists` / `NotFound`.
//!
//! Drift records list newest first by `(evaluated_at, id)` on gsi1 (`DRIFT`); a put is
//! conditional on the id being absent (create-if-absent).
//!
//! Sort keys are strings whose byte order is the listing order: a time is its UTC
//! nanoseconds shifted to unsigned and zero-padded to 20 digits, a confidence its
//! `f32` bits mapped to an order-preserving `u32` in 8 hex digits, and the id ends
//! every key so that keys are unique and ties break by id.

use opti_core::ports::StoreError;
use time::OffsetDateTime;

/// Partition key of the table.
pub const PK: &str = "pk";
/// JSON of the record.
pub const BODY: &str = "body";
/// Optimistic-locking version of the record.
pub const VER: &str = "ver";

/// A secondary index: its name and key attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
}

/// Kind partitions by time: all inspections, all audit events, models, users.
pub const GSI1: Index = Index {
    name: "gsi1",
    pk: "g1pk",
    sk: "g1sk",
};
/// Inspections by camera; audit events by actor.
pub const GSI2: Index = Index {
    name: "gsi2",
    pk: "g2pk",
    sk: "g2sk",
};
/// Inspections by status; audit events by exact entity.
pub const GSI3: Index = Index {
    name: "gsi3",
    pk: "g3pk",
    sk: "g3sk",
};
/// Inspections by uncertainty (every status); audit events by entity kind.
pub const GSI4: Index = Index {
    name: "gsi4",
    pk: "g4pk",
    sk: "g4sk",
};
/// The review queue: only `pending_review` inspections carry these attributes, so the
/// index holds exactly the queue, most uncertain first; an item leaves it when claimed
/// or reviewed because its next version has no `qpk`.
pub const QUEUE: Index = Index {
    name: "queue",
    pk: "qpk",
    sk: "qsk",
};

/// Every index, in the order the table declares them.
pub const INDEXES: [Index; 5] = [GSI1, GSI2, GSI3, GSI4, QUEUE];

/// A time as 20 digits whose string order is time order.
pub fn time_key(t: OffsetDateTime) -> Result<String, StoreError> {
    let nanos = i64::try_from(t.unix_timestamp_nanos()).map_err(|_| {
        StoreError::Backend(format!("refusing to store time {t}: outside 1678..2262"))
    })?;
    // Flipping the sign bit maps i64 order onto u64 order.
    Ok(format!("{:020}", (nanos as u64) ^ (1 << 63)))
}

/// `time_key#id`: newest/oldest listings, ties by id.
pub fn time_id_key(t: OffsetDateTime, id: &str) -> Result<String, StoreError> {
    Ok(format!("{}#{id}", time_key(t)?))
}

/// A finite `f32` as 8 hex digits whose string order is numeric order.
pub fn confidence_key(c: f32) -> Result<String, StoreError> {
    if !c.is_finite() {
        return Err(StoreError::Backend(format!(
            "refusing to store confidence {c}: not a finite number"
        )));
    }
    // -0.0 sorts with 0.0.
    let bits = if c == 0.0 {
        0.0f32.to_bits()
    } else {
        c.to_bits()
    };
    let ordered = if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    Ok(format!("{ordered:08x}"))
}

/// `confidence#time#id`: the queue order.
pub fn queue_key(c: f32, t: OffsetDateTime, id: &str) -> Result<String, StoreError> {
    Ok(format!("{}#{}", confidence_key(c)?, time_id_key(t, id)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn time_keys_sort_like_times_across_the_epoch() {
        let epoch = OffsetDateTime::UNIX_EPOCH;
        let times = [
            epoch - Duration::days(20_000),
            epoch - Duration::nanoseconds(1),
            epoch,
            epoch + Duration::nanoseconds(1),
            epoch + Duration::days(20_000),
        ];
        let keys: Vec<String> = times.iter().map(|t| time_key(*t).unwrap()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(keys.iter().all(|k| k.len() == 20));
    }

    #[test]
    fn confidence_keys_sort_like_numbers_and_refuse_nan() {
        let values = [-1.5f32, -0.0, 0.0, 1e-9, 0.1, 0.100_000_01, 0.5, 1.0, 3.0];
        let keys: Vec<String> = values.iter().map(|c| confidence_key(*c).unwrap()).collect();
        for pair in keys.windows(2) {
            assert!(pair[0] <= pair[1], "{pair:?}");
        }
        assert_eq!(keys[1], keys[2], "-0 and 0 are the same confidence");
        assert!(confidence_key(f32::NAN).is_err());
        assert!(confidence_key(f32::INFINITY).is_err());
    }

    #[test]
    fn time_bounds_exclude_and_include_as_the_range_says() {
        let t = OffsetDateTime::UNIX_EPOCH + Duration::seconds(5);
        let at_t = time_id_key(t, "insp_a").unwrap();
        let bound = time_key(t).unwrap();
        let before = time_id_key(t - Duration::nanoseconds(1), "insp_z").unwrap();
        // [bound ... : includes items at t; ... bound] excludes them.
        assert!(at_t.as_str() > bound.as_str());
        assert!(before.as_str() < bound.as_str());
    }
}
