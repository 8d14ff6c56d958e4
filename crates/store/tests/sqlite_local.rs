//! What only the embedded adapter has to prove: data survives a restart, migrations
//! run once and refuse newer files, torn blob writes stay invisible, keys cannot leave
//! the blob root, and many writers (tasks and connections) never see SQLITE_BUSY.

use std::path::Path;

use opti_core::ports::{
    AuditLog, AuditQuery, BlobStore, ConfigStore, InspectionOrder, InspectionQuery,
    InspectionStore, ModelRegistry, StoreError, UserStore,
};
use opti_core::{
    inspection_id, AuditAction, AuditEvent, Config, Inspection, ModelRecord, ModelStatus, Role,
    Status, User,
};
use opti_store::local::{BLOB_DIR, DB_FILE, SCHEMA_VERSION};
use opti_store::LocalStore;
use time::{Duration, OffsetDateTime};

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_760_000_000).expect("time")
}

fn inspection(n: u32, confidence: f32) -> Inspection {
    let ingest_key = format!("test/{n}");
    Inspection {
        id: inspection_id(&ingest_key),
        ingest_key,
        image_key: format!("raw/cam-1/{n}.jpg"),
        camera_id: "cam-1".into(),
        filename: Some(format!("{n}.jpg")),
        captured_at: None,
        created_at: now() + Duration::seconds(i64::from(n)),
        updated_at: now(),
        model_version: "v1".into(),
        detections: vec![],
        decision: None,
        confidence,
        threshold_used: 0.6,
        status: Status::PendingReview,
        audit_sample: false,
        claim: None,
        review: None,
        rejection_reason: None,
        image_stats: None,
        version: 1,
    }
}

fn model(version: &str) -> ModelRecord {
    ModelRecord {
        version: version.into(),
        parent: None,
        snapshot_id: None,
        status: ModelStatus::Active,
        artifact_key: format!("models/{version}/model.onnx"),
        classes: vec!["defect".into()],
        imgsz: 640,
        trainer_metrics: None,
        measured_metrics: None,
        trainer: serde_json::Value::Null,
        created_at: now(),
        record_version: 1,
    }
}

fn sqlite(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(DB_FILE)).expect("open sqlite directly")
}

fn user_version(dir: &Path) -> u32 {
    sqlite(dir)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version")
}

#[tokio::test]
async fn reopening_keeps_records_config_models_users_and_blobs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let record = inspection(1, 0.3);
    let config = Config {
        threshold: 0.7,
        ..Config::default()
    };
    let user = User {
        name: "ann".into(),
        role: Role::Admin,
        token_sha256: "ab".repeat(32),
        created_at: now(),
    };
    {
        let store = LocalStore::open(dir.path()).expect("open");
        store.create_inspection(&record).await.expect("create");
        store.put_config(&config, 0).await.expect("config");
        store.register_model(&model("v1")).await.expect("model");
        store.set_active_model("v1", None).await.expect("activate");
        store.add_user(&user).await.expect("user");
        store
            .put_blob("raw/cam-1/1.jpg", b"jpeg", "image/jpeg")
            .await
            .expect("blob");
    }

    let store = LocalStore::open(dir.path()).expect("reopen");
    assert_eq!(store.get_inspection(&record.id).await.expect("get"), record);
    let stored = store.get_config().await.expect("config");
    assert_eq!((stored.value, stored.version), (config, 1));
    assert_eq!(
        store.active_model().await.expect("active").as_deref(),
        Some("v1")
    );
    assert_eq!(
        store
            .user_by_token_hash(&user.token_sha256)
            .await
            .expect("user"),
        Some(user)
    );
    assert_eq!(
        store.get_blob("raw/cam-1/1.jpg").await.expect("blob"),
        b"jpeg"
    );
}

#[tokio::test]
async fn fresh_store_has_default_config_at_version_zero_and_no_active_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("open");
    let config = store.get_config().await.expect("config");
    assert_eq!((config.value, config.version), (Config::default(), 0));
    assert_eq!(store.active_model().await.expect("active"), None);
    let counts = store.count_by_status().await.expect("counts");
    assert_eq!(counts.len(), Status::ALL.len(), "every status has a count");
    assert!(counts.values().all(|&n| n == 0));
}

#[test]
fn migrations_run_once_and_reopening_is_idempotent() {
    let dir = tempfile::tempdir().expect("temp dir");
    for _ in 0..3 {
        drop(LocalStore::open(dir.path()).expect("open"));
        assert_eq!(user_version(dir.path()), SCHEMA_VERSION);
    }
    let tables: i64 = sqlite(dir.path())
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .expect("count tables");
    assert_eq!(
        tables, 8,
        "inspections, audit, config, models, pointers, users, retrain jobs, drift_records"
    );
}

#[test]
fn database_is_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _store = LocalStore::open(dir.path()).expect("open");
    let mode: String = sqlite(dir.path())
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
}

#[test]
fn database_from_a_newer_schema_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(LocalStore::open(dir.path()).expect("open"));
    sqlite(dir.path())
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .expect("bump version");

    let err = LocalStore::open(dir.path()).expect_err("a newer schema must be refused");
    let message = err.to_string();
    assert!(message.contains("newer"), "{message}");
    assert!(
        message.contains(&format!("{}", SCHEMA_VERSION + 1)),
        "{message}"
    );
    assert_eq!(
        user_version(dir.path()),
        SCHEMA_VERSION + 1,
        "refusing must not touch the file"
    );
}

#[tokio::test]
async fn torn_temp_blob_file_from_a_crash_is_neither_listed_nor_reachable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("open");
    store
        .put_blob("raw/cam-1/whole.jpg", b"whole", "image/jpeg")
        .await
        .expect("put");
    // A crash mid-put leaves the temp file, half written, next to the real ones.
    let cam_dir = dir.path().join(BLOB_DIR).join("raw").join("cam-1");
    std::fs::write(cam_dir.join(".tmp-4242-0"), b"hal").expect("torn temp file");

    assert_eq!(
        store.list_blobs("").await.expect("list all"),
        vec!["raw/cam-1/whole.jpg".to_owned()]
    );
    assert_eq!(
        store.list_blobs("raw/cam-1/").await.expect("list camera"),
        vec!["raw/cam-1/whole.jpg".to_owned()]
    );
    assert!(store.get_blob("raw/cam-1/.tmp-4242-0").await.is_err());
    assert!(store.list_blobs("raw/cam-1/.tmp").await.is_err());
}

#[tokio::test]
async fn successful_put_leaves_no_temp_file_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("open");
    for i in 0..5u8 {
        store
            .put_blob("raw/cam-1/a.jpg", &[i; 100], "image/jpeg")
            .await
            .expect("put");
    }
    let names: Vec<String> = std::fs::read_dir(dir.path().join(BLOB_DIR).join("raw/cam-1"))
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["a.jpg".to_owned()]);
}

#[tokio::test]
async fn blob_keys_cannot_escape_the_blob_root() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let store = LocalStore::open(&data).expect("open");
    for key in [
        "../escape",
        "../../escape",
        "raw/../../escape",
        "/tmp/escape",
        "raw/..",
    ] {
        let err = store
            .put_blob(key, b"x", "text/plain")
            .await
            .expect_err(key);
        assert!(
            matches!(&err, StoreError::Backend(m) if m.contains("invalid blob key")),
            "{key}: {err}"
        );
    }
    assert!(!data.join("escape").exists());
    assert!(!dir.path().join("escape").exists());
}

#[tokio::test]
async fn key_under_an_existing_blob_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("open");
    store
        .put_blob("raw/a", b"x", "text/plain")
        .await
        .expect("put");
    let err = store
        .put_blob("raw/a/b", b"y", "text/plain")
        .await
        .expect_err("a file cannot also be a directory");
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
    assert!(matches!(
        store.get_blob("raw/a/b").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.blob_size("raw/a/b").await.expect("size"), None);
    assert!(matches!(
        store.get_blob("raw").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_many_tasks_and_connections_never_see_busy() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Four separate connections (as four processes would have) plus shared clones.
    let stores: Vec<LocalStore> = (0..4)
        .map(|_| LocalStore::open(dir.path()).expect("open"))
        .collect();
    let mut tasks = Vec::new();
    for writer in 0..8u32 {
        let store = stores[writer as usize % stores.len()].clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..25u32 {
                let record = inspection(writer * 1000 + n, 0.5);
                store.create_inspection(&record).await?;
                let mut next = record.clone();
                next.status = Status::Claimed;
                store.update_inspection(&next, 1).await?;
                store
                    .append_audit(&AuditEvent {
                        id: format!("evt-{writer}-{n}"),
                        actor: format!("writer-{writer}"),
                        action: AuditAction::Claimed,
                        entity: format!("inspection/{}", record.id),
                        before: None,
                        after: None,
                        at: now(),
                    })
                    .await?;
                // Everyone races on the one config record; conflicts are expected,
                // lock errors are not.
                let current = store.get_config().await?;
                match store.put_config(&current.value, current.version).await {
                    Ok(_) | Err(StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, StoreError>(())
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("no writer may fail");
    }
    let counts = stores[0].count_by_status().await.expect("counts");
    assert_eq!(counts.get(&Status::Claimed), Some(&200));
    let audit = stores[1]
        .list_audit(&AuditQuery {
            limit: 500,
            ..AuditQuery::default()
        })
        .await
        .expect("audit");
    assert_eq!(audit.items.len(), 200);
}

#[tokio::test]
async fn pages_are_full_until_the_last_and_limits_are_capped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("open");
    for n in 0..7 {
        store
            .create_inspection(&inspection(n, 0.1 * n as f32))
            .await
            .expect("create");
    }
    let mut query = InspectionQuery {
        order: InspectionOrder::MostUncertain,
        limit: 3,
        ..InspectionQuery::default()
    };
    let mut sizes = Vec::new();
    loop {
        let page = store.list_inspections(&query).await.expect("page");
        sizes.push(page.items.len());
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(sizes, vec![3, 3, 1]);

    let exact = store
        .list_inspections(&InspectionQuery {
            limit: 7,
            ..InspectionQuery::default()
        })
        .await
        .expect("page");
    assert_eq!(exact.items.len(), 7);
    assert_eq!(exact.next_cursor, None, "no cursor to an empty page");

    let default = store
        .list_inspections(&InspectionQuery::default())
        .await
        .expect("limit 0");
    assert_eq!(
        default.items.len(),
        7,
        "limit 0 means the default page size"
    );
}

#[tokio::test]
async fn cursor_of_another_order_is_a_bad_cursor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("open");
    for n in 0..3 {
        store
            .create_inspection(&inspection(n, 0.5))
            .await
            .expect("create");
    }
    let page = store
        .list_inspections(&InspectionQuery {
            order: InspectionOrder::Newest,
            limit: 1,
            ..InspectionQuery::default()
        })
        .await
        .expect("page");
    let err = store
        .list_inspections(&InspectionQuery {
            order: InspectionOrder::MostUncertain,
            limit: 1,
            cursor: page.next_cursor,
            ..InspectionQuery::default()
        })
        .await
        .expect_err("mixed cursor");
    assert!(matches!(err, StoreError::BadCursor));
}

#[tokio::test]
async fn non_finite_confidence_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("open");
    let bad = inspection(1, f32::NAN);
    let err = store.create_inspection(&bad).await.expect_err("NaN");
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains("finite")),
        "{err}"
    );
    assert!(matches!(
        store.get_inspection(&bad.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn row_that_no_longer_parses_is_reported_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("open");
    let record = inspection(1, 0.5);
    store.create_inspection(&record).await.expect("create");
    sqlite(dir.path())
        .execute(
            "UPDATE inspections SET body = '{\"id\": 3}' WHERE id = ?1",
            [&record.id],
        )
        .expect("damage the row");
    let err = store.get_inspection(&record.id).await.expect_err("corrupt");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

#[tokio::test]
async fn duplicate_user_token_is_refused_without_echoing_the_hash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("open");
    let hash = "cd".repeat(32);
    let user = |name: &str| User {
        name: name.into(),
        role: Role::Reviewer,
        token_sha256: hash.clone(),
        created_at: now(),
    };
    store.add_user(&user("ann")).await.expect("first");
    let err = store.add_user(&user("ben")).await.expect_err("same token");
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert!(!err.to_string().contains(&hash), "{err}");
    assert_eq!(store.list_users().await.expect("list").len(), 1);
}

#[test]
fn open_fails_clearly_when_the_data_dir_is_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("file");
    let err = LocalStore::open(&file).expect_err("a file is not a data dir");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
