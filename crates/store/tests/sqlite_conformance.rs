//! The conformance suite against the embedded adapter: each check on a fresh
//! `LocalStore` (a real SQLite file in a temp dir), one test per check so a failure
//! names its behaviour; and the whole list on one shared store, twice, as the AWS
//! adapter runs it against reused tables.

use opti_store::conformance::{self, Ports};
use opti_store::LocalStore;

fn fresh_store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("open store");
    (dir, store)
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (_dir, store) = fresh_store();
                conformance::$check(&Ports::of(&store)).await.unwrap();
            }
        )*

        #[test]
        fn every_conformance_check_has_its_own_test() {
            let here: &[&str] = &[$(stringify!($check)),*];
            assert_eq!(here, conformance::CHECKS);
        }
    };
}

conformance_tests![
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_passes_twice_on_one_shared_store_like_reused_aws_tables() {
    let (_dir, store) = fresh_store();
    let ports = Ports::of(&store);
    conformance::run_all(&ports).await.unwrap();
    conformance::run_all(&ports).await.unwrap();
}

macro_rules! drift_conformance_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (_dir, store) = fresh_store();
                conformance::$check(&store).await.unwrap();
            }
        )*

        #[test]
        fn every_drift_history_check_has_its_own_test() {
            let here: &[&str] = &[$(stringify!($check)),*];
            assert_eq!(here, conformance::DRIFT_CHECKS);
        }
    };
}

drift_conformance_tests![
    drift_record_put_is_create_if_absent_and_round_trips,
    drift_history_lists_newest_first_with_stable_pages,
    garbage_drift_cursor_is_bad_cursor,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_checks_pass_twice_on_one_shared_store() {
    let (_dir, store) = fresh_store();
    conformance::run_drift_all(&store).await.unwrap();
    conformance::run_drift_all(&store).await.unwrap();
}
