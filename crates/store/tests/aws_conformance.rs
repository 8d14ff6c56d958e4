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
    audited_create_appends_events_only_when_created,
    audited_update_stores_both_and_stale_update_stores_neither,
    audited_config_put_stores_both_and_stale_put_stores_neither,
    retrain_jobs_run_one_at_a_time_with_audited_changes,
];

macro_rules! drift_conformance_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let Some(store) = fresh_store().await else {
                    return;
                };
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
async fn run_all_passes_twice_on_one_shared_table_and_bucket() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let ports = Ports::of(&store);
    conformance::run_all(&ports).await.unwrap();
    conformance::run_all(&ports).await.unwrap();
    conformance::run_drift_all(&store).await.unwrap();
    conformance::run_drift_all(&store).await.unwrap();
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

fn event(id: &str, entity: &str, after: &str) -> opti_core::AuditEvent {
    opti_core::AuditEvent {
        id: id.to_owned(),
        actor: "admin:a".into(),
        action: opti_core::AuditAction::RetrainStarted,
        entity: entity.to_owned(),
        before: None,
        after: Some(serde_json::json!({ "note": after })),
        at: time::OffsetDateTime::now_utc(),
    }
}

fn job(id: &str) -> opti_core::retrain::RetrainJob {
    let now = time::OffsetDateTime::now_utc();
    opti_core::retrain::RetrainJob::started(
        id.to_owned(),
        "snapshot",
        "manual",
        "admin:a",
        now,
        0,
        None,
        1,
    )
}

/// The `job` attribute of the lock item, `None` when no lock is held.
async fn lock_holder(store: &AwsStore) -> Option<String> {
    let out = store
        .dynamodb()
        .get_item()
        .table_name(store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("RETRAIN_LOCK".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("read the lock item");
    out.item.map(|item| {
        item.get("job")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .expect("the lock names its job")
    })
}

/// The events stored for `entity`.
async fn events_of(store: &AwsStore, entity: &str) -> Vec<opti_core::AuditEvent> {
    use opti_core::ports::{AuditLog, AuditQuery};
    store
        .list_audit(&AuditQuery {
            entity: Some(entity.to_owned()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .expect("list audit")
        .items
}

/// A retried request re-sends an event whose id is stored: the transaction still stores
/// the record change, and the trail keeps the first copy of the event (as the plain
/// append does), instead of the whole write being refused.
#[tokio::test]
async fn audited_write_with_an_already_stored_event_keeps_the_first_copy() {
    use opti_core::ports::{AuditLog, ConfigStore};
    let Some(store) = fresh_store().await else {
        return;
    };
    let entity = format!("config-{}", run_tag());
    let first = event("evt-retried", &entity, "first");
    store.append_audit(&first).await.expect("append");
    let found = store.get_config().await.expect("config");
    let mut changed = found.value.clone();
    changed.retrain_min = changed.retrain_min % 50 + 1;
    let stored = store
        .put_config_audited(
            &changed,
            found.version,
            &event("evt-retried", &entity, "second"),
        )
        .await
        .expect("the audited put succeeds although its event is stored");
    assert_eq!(stored.version, found.version + 1);
    assert_eq!(store.get_config().await.expect("config").value, changed);
    assert_eq!(events_of(&store, &entity).await, vec![first]);
}

/// The lock item names the running job while it runs (progress updates keep it), and
/// the update that finishes the job removes it in the same transaction.
#[tokio::test]
async fn retrain_lock_names_the_running_job_and_is_released_with_it() {
    use opti_core::ports::RetrainJobStore;
    use opti_core::retrain::JobStatus;
    let Some(store) = fresh_store().await else {
        return;
    };
    let tag = run_tag();
    let first = job(&format!("job-{tag}-1"));
    let entity = format!("retrain/{}", first.id);
    store
        .create_job(&first, &event(&format!("evt-{tag}-1"), &entity, "start"))
        .await
        .expect("create");
    assert_eq!(lock_holder(&store).await, Some(first.id.clone()));

    let mut progressed = first.clone();
    progressed.phase = "train".into();
    let progressed = store
        .update_job(&progressed, 1, None)
        .await
        .expect("progress");
    assert_eq!(lock_holder(&store).await, Some(first.id.clone()));

    // Even a job that would not run is refused while one runs (as in SQLite).
    let mut idle = job(&format!("job-{tag}-idle"));
    idle.status = JobStatus::Failed;
    let err = store
        .create_job(
            &idle,
            &event(&format!("evt-{tag}-idle"), "retrain/idle", "x"),
        )
        .await
        .expect_err("refused while a job runs");
    assert!(
        matches!(err, opti_core::ports::StoreError::Conflict { .. }),
        "{err:?}"
    );

    let mut done = progressed.clone();
    done.status = JobStatus::Succeeded;
    store
        .update_job(
            &done,
            progressed.version,
            Some(&event(&format!("evt-{tag}-2"), &entity, "done")),
        )
        .await
        .expect("finish");
    assert_eq!(
        lock_holder(&store).await,
        None,
        "finishing released the lock"
    );
    assert_eq!(events_of(&store, &entity).await.len(), 2);
}

/// Two jobs started at once: exactly one runs, the other is `Conflict` naming it, and
/// a finished job cannot be moved back to running while another runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_job_starts_one_runs_and_the_other_gets_conflict_with_it() {
    use opti_core::ports::{RetrainJobStore, StoreError};
    use opti_core::retrain::{JobStatus, RetrainJob};
    let Some(store) = fresh_store().await else {
        return;
    };
    let tag = run_tag();
    let (a, b) = (job(&format!("job-{tag}-a")), job(&format!("job-{tag}-b")));
    let (ea, eb) = (
        event(&format!("evt-{tag}-a"), "retrain/a", "a"),
        event(&format!("evt-{tag}-b"), "retrain/b", "b"),
    );
    let (ra, rb) = tokio::join!(store.create_job(&a, &ea), store.create_job(&b, &eb));
    let (winner, loser, err) = match (ra, rb) {
        (Ok(()), Err(e)) => (&a, &b, e),
        (Err(e), Ok(())) => (&b, &a, e),
        other => panic!("expected exactly one start to succeed, got {other:?}"),
    };
    let StoreError::Conflict { current, .. } = err else {
        panic!("the refused start gave {err:?}");
    };
    let current: RetrainJob = serde_json::from_value(*current).expect("a job");
    assert_eq!(current.id, winner.id);
    assert!(matches!(
        store.get_job(&loser.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(lock_holder(&store).await, Some(winner.id.clone()));

    // Finish the winner, start the loser, then try to revive the winner.
    let mut finished = winner.clone();
    finished.status = JobStatus::Failed;
    let finished = store.update_job(&finished, 1, None).await.expect("finish");
    store
        .create_job(loser, &event(&format!("evt-{tag}-c"), "retrain/c", "c"))
        .await
        .expect("start the other");
    let mut revived = finished.clone();
    revived.status = JobStatus::Running;
    let err = store
        .update_job(&revived, finished.version, None)
        .await
        .expect_err("a second running job");
    let StoreError::Conflict { current, .. } = err else {
        panic!("reviving gave {err:?}");
    };
    let current: RetrainJob = serde_json::from_value(*current).expect("a job");
    assert_eq!(current.id, loser.id, "Conflict names the running job");
    assert_eq!(store.get_job(&winner.id).await.expect("get"), finished);
    assert_eq!(lock_holder(&store).await, Some(loser.id.clone()));
}
