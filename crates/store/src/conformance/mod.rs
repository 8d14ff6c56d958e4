//! The conformance suite: what every storage adapter must do, written once against the
//! port traits. The embedded adapter's tests and the AWS adapter's tests (against moto)
//! run the same checks, so the two backends behave the same for the service.
//!
//! Each check is a `pub async fn(&Ports) -> CheckResult` that returns a readable
//! [`CheckFailure`] instead of panicking. Checks are backend-agnostic and safe on
//! reused tables and buckets: every id, camera, actor, entity kind and blob key carries
//! a fresh random run tag, and listings are scoped by those. Two checks observe global
//! state and assume no other writer meanwhile: `count_by_status_counts_each_status`
//! (counts are store-wide) and `config_puts_with_expected_version_and_stale_put_conflicts`
//! (one config record; it restores the value it found). Run [`run_all`] sequentially
//! on a shared backend; run single checks in parallel only on separate stores.
//!
//! Conventions the checks pin down, beyond the trait docs:
//! - `Conflict.current` is the stored record as JSON: an `Inspection`, a `ModelRecord`,
//!   a `StoredConfig`, or for the active pointer the pointer (a string, or `null`).
//! - Page sizes: `limit` is an upper bound; a page may be shorter, the listing ends
//!   when `next_cursor` is `None`.
//! - Appending an audit event whose id is already stored keeps the first copy.
//! - `set_active_model` to an unregistered version is `NotFound`.
//! - Deleting a missing blob succeeds; blob keys follow [`crate::blob_key`].
//! - The `*_audited` writes and every retrain-job change store the record and its audit
//!   event in one transaction; a refused change (conflict) stores neither.
//! - `retrain_jobs_run_one_at_a_time_with_audited_changes` assumes no other job runs
//!   meanwhile and leaves none running.
//!
//! The drift history ([`opti_core::ports::DriftHistory`]) has its own list,
//! [`DRIFT_CHECKS`] / [`run_drift_all`], taking the port alone.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use opti_core::ports::{
    AuditLog, BlobStore, ConfigStore, InspectionQuery, InspectionStore, ModelRegistry,
    RetrainJobStore, StoreError, UserStore,
};
use opti_core::Inspection;
use thiserror::Error;
use time::OffsetDateTime;

/// Fails the check with a formatted message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err($crate::conformance::CheckFailure::new(format!($($fmt)+)));
        }
    };
}

/// Fails the check unless `actual == expected`, showing both.
macro_rules! ensure_eq {
    ($actual:expr, $expected:expr, $($fmt:tt)+) => {
        match (&$actual, &$expected) {
            (actual, expected) => {
                if actual != expected {
                    return Err($crate::conformance::CheckFailure::new(format!(
                        "{}:\n  expected {:?}\n  got      {:?}",
                        format!($($fmt)+),
                        expected,
                        actual
                    )));
                }
            }
        }
    };
}

mod atomic;
mod audit;
mod blobs;
mod config;
mod drift;
mod fixtures;
mod inspections;
mod models;
mod users;

pub use atomic::*;
pub use audit::*;
pub use blobs::*;
pub use config::*;
pub use drift::*;
pub use inspections::*;
pub use models::*;
pub use users::*;

/// The ports under test. Fill it by hand when an adapter is split across types (a
/// DynamoDB store and an S3 blob store), or with [`Ports::of`] when one type does all.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    /// Inspections.
    pub inspections: &'a dyn InspectionStore,
    /// The audit trail.
    pub audit: &'a dyn AuditLog,
    /// The configuration record.
    pub config: &'a dyn ConfigStore,
    /// The model registry.
    pub models: &'a dyn ModelRegistry,
    /// Local-mode users.
    pub users: &'a dyn UserStore,
    /// Image and artifact bytes.
    pub blobs: &'a dyn BlobStore,
    /// Retraining jobs.
    pub jobs: &'a dyn RetrainJobStore,
}

impl<'a> Ports<'a> {
    /// All ports served by one store.
    pub fn of<S>(store: &'a S) -> Self
    where
        S: InspectionStore
            + AuditLog
            + ConfigStore
            + ModelRegistry
            + UserStore
            + BlobStore
            + RetrainJobStore,
    {
        Ports {
            inspections: store,
            audit: store,
            config: store,
            models: store,
            users: store,
            blobs: store,
            jobs: store,
        }
    }
}

/// Why a check failed, in words.
#[derive(Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct CheckFailure {
    /// What was expected and what happened.
    pub message: String,
}

impl CheckFailure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        CheckFailure {
            message: message.into(),
        }
    }
}

// Debug prints the message as is, so that `.unwrap()` in a test shows it readably.
impl fmt::Debug for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What one check returns.
pub type CheckResult = Result<(), CheckFailure>;

/// The failed checks of a [`run_all`], by name.
#[derive(Clone, PartialEq, Eq, Error)]
pub struct ConformanceFailures {
    /// `(check name, failure)` in the order the checks ran.
    pub failures: Vec<(&'static str, CheckFailure)>,
}

impl fmt::Display for ConformanceFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} conformance check(s) failed", self.failures.len())?;
        for (name, failure) in &self.failures {
            write!(f, "\n- {name}: {failure}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ConformanceFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Turns an unexpected store error into a failure that says what was being done.
trait Context<T> {
    fn ctx(self, doing: &str) -> Result<T, CheckFailure>;
}

impl<T> Context<T> for Result<T, StoreError> {
    fn ctx(self, doing: &str) -> Result<T, CheckFailure> {
        self.map_err(|e| CheckFailure::new(format!("{doing}: unexpected error: {e}")))
    }
}

/// The error of a call that had to fail.
fn expect_err<T: fmt::Debug>(
    result: Result<T, StoreError>,
    doing: &str,
) -> Result<StoreError, CheckFailure> {
    match result {
        Ok(value) => Err(CheckFailure::new(format!(
            "{doing}: expected an error, got Ok({value:?})"
        ))),
        Err(e) => Ok(e),
    }
}

/// A fresh random tag (12 hex digits) that keeps one run's records apart from others'.
pub fn run_tag() -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from the OS once per process and varies per instance.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(RUNS.fetch_add(1, Ordering::Relaxed));
    hasher.write_i128(OffsetDateTime::now_utc().unix_timestamp_nanos());
    format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

/// Every page of a listing, checking that each page respects `limit` and that the
/// listing ends.
async fn list_all(
    store: &dyn InspectionStore,
    mut query: InspectionQuery,
) -> Result<Vec<Inspection>, CheckFailure> {
    let mut items = Vec::new();
    for _ in 0..10_000 {
        let page = store
            .list_inspections(&query)
            .await
            .ctx("listing inspections")?;
        if query.limit > 0 {
            ensure!(
                page.items.len() <= query.limit as usize,
                "a page held {} items for limit {}",
                page.items.len(),
                query.limit
            );
        }
        items.extend(page.items);
        match page.next_cursor {
            None => return Ok(items),
            Some(next) => {
                ensure!(
                    query.cursor.as_deref() != Some(next.as_str()),
                    "next_cursor repeated the cursor it was given"
                );
                query.cursor = Some(next);
            }
        }
    }
    Err(CheckFailure::new("listing did not end after 10000 pages"))
}

/// Fails with the duplicated id if any id occurs twice.
fn ensure_unique_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> CheckResult {
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        ensure!(seen.insert(id), "{id} appeared twice in one listing");
    }
    Ok(())
}

/// Declares the list of checks once: their names and [`run_all`].
macro_rules! checks {
    ($($check:ident),* $(,)?) => {
        /// Names of every check, in the order [`run_all`] runs them.
        pub const CHECKS: &[&str] = &[$(stringify!($check)),*];

        /// Runs every check in order, one after the other, and reports all failures
        /// (it does not stop at the first).
        pub async fn run_all(ports: &Ports<'_>) -> Result<(), ConformanceFailures> {
            let mut failures = Vec::new();
            $(
                if let Err(failure) = $check(ports).await {
                    failures.push((stringify!($check), failure));
                }
            )*
            if failures.is_empty() {
                Ok(())
            } else {
                Err(ConformanceFailures { failures })
            }
        }
    };
}

checks![
    inspection_round_trips_every_field,
    duplicate_create_returns_existing_record_unchanged,
    missing_inspection_is_not_found,
    update_stores_expected_version_plus_one,
    stale_update_gets_conflict_with_current_record,
    concurrent_stale_writers_one_wins_other_gets_conflict_with_winner,
    queue_orders_most_uncertain_first_ties_oldest_then_id,
    newest_and_oldest_orders_break_ties_by_id,
    pagination_is_stable_under_concurrent_inserts,
    filters_select_by_status_camera_audit_sample_and_created_range,
    garbage_inspection_cursor_is_bad_cursor,
    count_by_status_counts_each_status,
    blob_without_record_is_invisible_and_listed_for_recovery,
    audit_lists_newest_first_with_stable_pages,
    audit_filters_by_actor_action_and_entity,
    audit_append_is_idempotent_by_event_id,
    garbage_audit_cursor_is_bad_cursor,
    config_puts_with_expected_version_and_stale_put_conflicts,
    model_registry_registers_lists_newest_first_and_refuses_duplicates,
    model_update_is_conditional_on_record_version,
    active_model_pointer_moves_by_compare_and_set,
    users_are_found_by_token_hash_and_names_are_unique,
    blobs_put_get_overwrite_size_and_delete,
    missing_blob_is_not_found_and_delete_is_idempotent,
    blob_listing_is_sorted_and_scoped_by_prefix,
    unsafe_blob_keys_are_refused,
    audited_create_appends_events_only_when_created,
    audited_update_stores_both_and_stale_update_stores_neither,
    audited_config_put_stores_both_and_stale_put_stores_neither,
    retrain_jobs_run_one_at_a_time_with_audited_changes,
];
