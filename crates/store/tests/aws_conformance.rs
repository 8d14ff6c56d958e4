//! The conformance suite against the AWS adapter on an emulator (moto server, started
//! and stopped by `scripts/test-aws.sh`, which sets `AWS_ENDPOINT_URL`; without it the
//! tests skip, `make test-aws` is where they run): each check on
//! a fresh table and bucket, one test per check so a failure names its behaviour; and
//! the whole list twice on one shared table, as a deployed stack reuses its table.

use opti_store::aws::{load_sdk_config, AwsStore};
use opti_store::conformance::{self, run_tag, Ports};

/// A store on a new table and bucket of the emulator; `None` (the test is skipped, and
/// says so) when no emulator is configured, as in a plain `cargo test --workspace`.
async fn fresh_store() -> Option<AwsStore> {
    if std::env::var("AWS_ENDPOINT_URL")
        .unwrap_or_default()
        .is_empty()
    {
        eprintln!("skipped: AWS_ENDPOINT_URL is not set; `make test-aws` runs this against moto");
        return None;
    }
    let tag = run_tag();
    let sdk = load_sdk_config().await;
    let store = AwsStore::new(&sdk, format!("opti-{tag}"), format!("opti-{tag}"));
    store.create_table_if_missing().await.expect("create table");
    store
        .create_bucket_if_missing()
        .await
        .expect("create bucket");
    Some(store)
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let Some(store) = fresh_store().await else {
        return;
    };
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
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_passes_twice_on_one_shared_table_and_bucket() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let ports = Ports::of(&store);
    conformance::run_all(&ports).await.unwrap();
    conformance::run_all(&ports).await.unwrap();
}

/// The queue index is sparse: a record leaves it when it is claimed or reviewed, so
/// the queue never reads finished work.
#[tokio::test]
async fn queue_index_holds_only_pending_records() {
    use opti_core::ports::InspectionStore;
    let Some(store) = fresh_store().await else {
        return;
    };
    let camera = format!("cam-{}", run_tag());
    let now = time::OffsetDateTime::now_utc();
    let mut record = opti_core::Inspection {
        id: opti_core::inspection_id(&camera),
        ingest_key: camera.clone(),
        image_key: format!("raw/{camera}/a.jpg"),
        camera_id: camera.clone(),
        filename: None,
        captured_at: None,
        created_at: now,
        updated_at: now,
        model_version: "v1".into(),
        detections: vec![],
        decision: Some(opti_core::Decision::Clean),
        confidence: 0.4,
        threshold_used: 0.6,
        status: opti_core::Status::PendingReview,
        audit_sample: false,
        claim: None,
        review: None,
        rejection_reason: None,
        image_stats: None,
        version: 1,
    };
    store.create_inspection(&record).await.expect("create");
    let queue_size = || async {
        store
            .dynamodb()
            .scan()
            .table_name(store.table())
            .index_name("queue")
            .send()
            .await
            .expect("scan queue index")
            .count
    };
    assert_eq!(
        queue_size().await,
        1,
        "a pending record is in the queue index"
    );
    record.status = opti_core::Status::Reviewed;
    store.update_inspection(&record, 1).await.expect("review");
    assert_eq!(
        queue_size().await,
        0,
        "a reviewed record left the queue index"
    );
}

/// A refused conditional write reports the stored item in the same round trip
/// (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), which is how `Conflict.current`
/// is filled without a second read.
#[tokio::test]
async fn refused_conditional_put_returns_the_stored_item() {
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
    let Some(store) = fresh_store().await else {
        return;
    };
    let put = |body: &str| {
        store
            .dynamodb()
            .put_item()
            .table_name(store.table())
            .item("pk", AttributeValue::S("CONFIG".into()))
            .item("body", AttributeValue::S(body.into()))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
    };
    put("first").await.expect("first put");
    let err = put("second").await.expect_err("second put is refused");
    let Some(PutItemError::ConditionalCheckFailedException(ex)) = err.as_service_error() else {
        panic!("expected ConditionalCheckFailed, got {err:?}");
    };
    let item = ex
        .item()
        .expect("the stored item comes back with the refusal");
    assert_eq!(item.get("body"), Some(&AttributeValue::S("first".into())));
}
