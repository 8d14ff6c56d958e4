//! The Lambda functions' handlers against moto (S3 + DynamoDB emulated; started by
//! `scripts/test-aws.sh`): S3 events in every realistic shape (duplicated, retried,
//! reordered, URL-encoded, corrupt, oversized, foreign), the model pointer moving, the
//! records as the review API shows them to a Cognito caller, and the scheduled drift
//! report run twice in one window. Without `AWS_ENDPOINT_URL` the tests skip; `make
//! test-aws` runs them.

use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use axum::body::Body;
use opti_api::model::ModelSlot;
use opti_api::Settings;
use opti_core::ports::{BlobStore, InspectionQuery, InspectionStore, ModelRegistry};
use opti_core::{ModelRecord, ModelStatus, Status};
use opti_lambda::drift::{self, DriftRun};
use opti_lambda::models::ActiveModel;
use opti_lambda::upload::{Outcome, Uploader};
use opti_sim::{encode_image, generate, ImageFormat, SimParams};
use opti_store::aws::{load_sdk_config, AwsStore};
use opti_store::conformance::run_tag;
use serde_json::{json, Value};
use tower::ServiceExt;

const SEED_KEY: &str = "seed/model.onnx";

fn shipped_model() -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default/model.onnx");
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn part_image(index: u64) -> Vec<u8> {
    let sample = generate(7, index, &SimParams::default());
    encode_image(&sample.image, ImageFormat::Jpeg { quality: 90 }).expect("encode")
}

/// A store on a fresh table and bucket of the emulator, with the shipped model uploaded
/// where the upload function's seed setting points; `None` (skipped, and it says so)
/// without an emulator, as in a plain `cargo test --workspace`.
async fn fresh_store() -> Option<AwsStore> {
    if std::env::var("AWS_ENDPOINT_URL")
        .unwrap_or_default()
        .is_empty()
    {
        eprintln!("skipped: AWS_ENDPOINT_URL is not set; `make test-aws` runs this against moto");
        return None;
    }
    let tag = run_tag();
    let store = AwsStore::new(
        &load_sdk_config().await,
        format!("fn-{tag}"),
        format!("fn-{tag}"),
    );
    store.create_table_if_missing().await.expect("table");
    store.create_bucket_if_missing().await.expect("bucket");
    put(&store, SEED_KEY, shipped_model()).await;
    Some(store)
}

fn uploader(store: &AwsStore, settings: Settings) -> Uploader {
    let slot = Arc::new(ModelSlot::new());
    let mut state = opti_lambda::aws_state(store, slot.clone());
    state.settings = settings;
    Uploader {
        state,
        model: ActiveModel::new(slot, Some(SEED_KEY.into())),
        bucket: store.bucket().to_owned(),
    }
}

/// Puts an object and returns its ETag as S3 reports it (quoted).
async fn put(store: &AwsStore, key: &str, bytes: Vec<u8>) -> String {
    store
        .s3()
        .put_object()
        .bucket(store.bucket())
        .key(key)
        .body(bytes.into())
        .send()
        .await
        .expect("put object")
        .e_tag
        .expect("etag")
}

/// An S3 notification as S3 sends it: key form-encoded, ETag unquoted.
fn s3_event(records: &[(&str, &str, &str, u64)]) -> S3Event {
    let records: Vec<Value> = records
        .iter()
        .map(|(bucket, encoded_key, etag, size)| {
            json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-25T23:41:07.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:camera"},
                "requestParameters": {"sourceIPAddress": "10.0.0.7"},
                "responseElements": {},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "raw-uploads",
                    "bucket": {"name": bucket, "ownerIdentity": {"principalId": "x"}, "arn": format!("arn:aws:s3:::{bucket}")},
                    "object": {"key": encoded_key, "size": size, "eTag": etag.trim_matches('"'), "sequencer": "0A1B2C3D4E5F678901"}
                }
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("an S3 event")
}

async fn camera_records(store: &AwsStore, camera: &str) -> Vec<opti_core::Inspection> {
    store
        .list_inspections(&InspectionQuery {
            camera_id: Some(camera.into()),
            limit: 100,
            ..InspectionQuery::default()
        })
        .await
        .expect("list")
        .items
}

/// An API Gateway HTTP API (v2) event for `GET path` whose JWT authorizer passed these
/// claims, as lambda_http turns it into a request.
fn api_request(path_and_query: &str, claims: Option<Value>) -> lambda_http::Request {
    api_call("GET", path_and_query, claims)
}

/// An API Gateway HTTP API (v2) event for `method path` (no body), as [`api_request`].
fn api_call(method: &str, path_and_query: &str, claims: Option<Value>) -> lambda_http::Request {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut ctx = json!({
        "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
        "domainPrefix": "api", "requestId": "r1", "routeKey": "$default", "stage": "$default",
        "time": "25/Nov/2026:23:41:07 +0000", "timeEpoch": 1_795_650_067_000_i64,
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.9", "userAgent": "test"}
    });
    if let Some(claims) = claims {
        ctx["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    }
    let event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": {"host": "api.example.com"}, "requestContext": ctx, "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway request")
}

async fn call(app: &axum::Router, req: lambda_http::Request) -> (u16, Value) {
    let (parts, body) = req.into_parts();
    let body = match body {
        lambda_http::Body::Empty => Body::empty(),
        lambda_http::Body::Text(t) => Body::from(t),
        lambda_http::Body::Binary(b) => Body::from(b),
        _ => Body::empty(),
    };
    let resp = app
        .clone()
        .oneshot(axum::http::Request::from_parts(parts, body))
        .await
        .expect("router");
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn reviewer() -> Option<Value> {
    Some(json!({"cognito:username": "rita", "cognito:groups": "[reviewer]", "sub": "s-1"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_events_make_one_record_per_object_version_visible_in_the_review_api() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let up = uploader(&store, Settings::default());
    let bucket = store.bucket().to_owned();
    let cam = format!("cam-{}", run_tag());

    let a_key = format!("raw/{cam}/a.jpg");
    let a_etag = put(&store, &a_key, part_image(0)).await;
    // S3 form-encodes keys in events: '=' arrives as %3D, '@' as %40.
    let b_key = format!("raw/{cam}/part=7@line2.jpg");
    let b_encoded = format!("raw/{cam}/part%3D7%40line2.jpg");
    let b_etag = put(&store, &b_key, part_image(1)).await;
    let bad_key = format!("raw/{cam}/corrupt.jpg");
    let bad_etag = put(
        &store,
        &bad_key,
        b"\xff\xd8\xff\xe0 truncated jpeg".to_vec(),
    )
    .await;

    // First delivery of A: one record, judged by the seeded model.
    let first = up
        .handle(&s3_event(&[(&bucket, &a_key, &a_etag, 1)]))
        .await
        .expect("A");
    let [Outcome::Created { id: a_id, status }] = first.as_slice() else {
        panic!("first delivery of A: {first:?}");
    };
    assert_ne!(*status, Status::Rejected);

    // Retried delivery of A, then B and A reordered in one event, and two concurrent
    // deliveries of the corrupt object.
    let again = up
        .handle(&s3_event(&[(&bucket, &a_key, &a_etag, 1)]))
        .await
        .expect("A again");
    assert_eq!(again, vec![Outcome::Duplicate { id: a_id.clone() }]);
    let reordered = up
        .handle(&s3_event(&[
            (&bucket, &b_encoded, &b_etag, 1),
            (&bucket, &a_key, &a_etag, 1),
        ]))
        .await
        .expect("B, A");
    let Outcome::Created { id: b_id, .. } = &reordered[0] else {
        panic!("B: {reordered:?}");
    };
    assert_eq!(reordered[1], Outcome::Duplicate { id: a_id.clone() });
    let bad_event = s3_event(&[(&bucket, &bad_key, &bad_etag, 1)]);
    let (x, y) = tokio::join!(up.handle(&bad_event), up.handle(&bad_event));
    let outcomes = [x.expect("corrupt 1"), y.expect("corrupt 2")].concat();
    let created: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Created { .. }))
        .collect();
    assert_eq!(created.len(), 1, "two concurrent deliveries: {outcomes:?}");
    assert!(matches!(
        created[0],
        Outcome::Created {
            status: Status::Rejected,
            ..
        }
    ));

    // Not uploads: another bucket, another prefix, an unsafe key.
    let foreign = up
        .handle(&s3_event(&[
            ("someone-elses-bucket", &a_key, &a_etag, 1),
            (&bucket, SEED_KEY, "e", 1),
            (&bucket, &format!("raw/{cam}/..%2F..%2Fx.jpg"), "e", 1),
        ]))
        .await
        .expect("foreign");
    assert!(
        foreign.iter().all(|o| matches!(o, Outcome::Ignored { .. })),
        "{foreign:?}"
    );

    // A new version of A under the same key is a new object version: a second record.
    let a2_etag = put(&store, &a_key, part_image(2)).await;
    assert_ne!(a2_etag, a_etag);
    let a2 = up
        .handle(&s3_event(&[(&bucket, &a_key, &a2_etag, 1)]))
        .await
        .expect("A v2");
    assert!(matches!(a2[0], Outcome::Created { .. }), "{a2:?}");

    let records = camera_records(&store, &cam).await;
    assert_eq!(records.len(), 4, "A, B, corrupt, A v2: {records:#?}");
    let b = records.iter().find(|r| &r.id == b_id).expect("B recorded");
    assert_eq!(b.image_key, b_key, "the decoded key is stored");
    assert_eq!(b.filename.as_deref(), Some("part=7@line2.jpg"));
    let bad = records
        .iter()
        .find(|r| r.image_key == bad_key)
        .expect("corrupt recorded");
    assert_eq!(bad.status, Status::Rejected);
    assert!(bad.rejection_reason.is_some());

    // The review API (the review function's Router) shows them to a Cognito reviewer.
    let app = opti_lambda::review::app(up.state.clone());
    let (status, body) = call(
        &app,
        api_request(&format!("/inspections?camera_id={cam}"), reviewer()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let listed = body["items"].as_array().expect("items");
    assert_eq!(listed.len(), 4);
    let (status, one) = call(
        &app,
        api_request(&format!("/inspections/{a_id}"), reviewer()),
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["id"], json!(a_id));
    let url = one["image_url"].as_str().unwrap_or_default();
    assert!(
        url.contains(&a_key) && url.contains("X-Amz-Signature="),
        "presigned S3 URL: {url}"
    );
    let expires: u64 = url
        .split("X-Amz-Expires=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .and_then(|v| v.parse().ok())
        .expect("X-Amz-Expires");
    assert!(
        expires <= 900,
        "image URLs live at most 15 minutes, not {expires}s"
    );

    // Without a role group, or without the authorizer's claims: no caller.
    let visitor = json!({"cognito:username": "eve", "cognito:groups": "[visitors]"});
    let (status, _) = call(&app, api_request("/inspections", Some(visitor))).await;
    assert_eq!(status, 401);
    let (status, _) = call(&app, api_request("/inspections", None)).await;
    assert_eq!(status, 401);
    // A reviewer may not read the audit trail (admins only).
    let (status, _) = call(&app, api_request("/audit", reviewer())).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_objects_are_rejected_before_they_are_read() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let up = uploader(
        &store,
        Settings {
            max_upload_bytes: 1000,
            ..Settings::default()
        },
    );
    let cam = format!("cam-{}", run_tag());
    let key = format!("raw/{cam}/big.jpg");
    let etag = put(&store, &key, part_image(3)).await;
    let out = up
        .handle(&s3_event(&[(store.bucket(), &key, &etag, 1)]))
        .await
        .expect("big");
    assert!(
        matches!(
            out[0],
            Outcome::Created {
                status: Status::Rejected,
                ..
            }
        ),
        "{out:?}"
    );
    let record = &camera_records(&store, &cam).await[0];
    assert!(
        record
            .rejection_reason
            .as_deref()
            .unwrap_or_default()
            .contains("too large"),
        "{record:?}"
    );
    assert_eq!(up.model.loaded_version().await, None, "no model was needed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_is_loaded_once_and_reloaded_when_the_registry_pointer_moves() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let up = uploader(&store, Settings::default());
    let cam = format!("cam-{}", run_tag());
    let k1 = format!("raw/{cam}/1.jpg");
    let e1 = put(&store, &k1, part_image(4)).await;
    up.handle(&s3_event(&[(store.bucket(), &k1, &e1, 1)]))
        .await
        .expect("1");
    let seeded = up
        .model
        .loaded_version()
        .await
        .expect("seeded model loaded");
    assert_eq!(
        store.active_model().await.expect("pointer"),
        Some(seeded.clone())
    );

    // Promote another version (same bytes, another name) by moving the pointer.
    let record = store.get_model(&seeded).await.expect("seeded record");
    let next = ModelRecord {
        version: format!("v2-{}", run_tag()),
        parent: Some(seeded.clone()),
        status: ModelStatus::Candidate,
        record_version: 1,
        ..record
    };
    store.register_model(&next).await.expect("register v2");
    store
        .set_active_model(&next.version, Some(&seeded))
        .await
        .expect("promote v2");

    let k2 = format!("raw/{cam}/2.jpg");
    let e2 = put(&store, &k2, part_image(5)).await;
    up.handle(&s3_event(&[(store.bucket(), &k2, &e2, 1)]))
        .await
        .expect("2");
    assert_eq!(
        up.model.loaded_version().await.as_deref(),
        Some(next.version.as_str())
    );
    let records = camera_records(&store, &cam).await;
    let by_key = |k: &str| records.iter().find(|r| r.image_key == k).expect("record");
    assert_eq!(by_key(&k1).model_version, seeded);
    assert_eq!(by_key(&k2).model_version, next.version);
}

/// A cold start with an empty `/tmp` loads the model from the ONNX and puts its
/// load-optimised copy next to the artifact in S3; the next cold start fetches that copy
/// and loads from it; a damaged copy in S3 only means an ONNX load, which replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_starts_share_a_load_optimised_model_copy_through_s3() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let cold_start = |dir: &std::path::Path| {
        let slot = Arc::new(ModelSlot::with_cache_dir(dir.to_owned()));
        let state = opti_lambda::aws_state(&store, slot.clone());
        (
            slot.clone(),
            ActiveModel::new(slot, Some(SEED_KEY.into())),
            state,
        )
    };

    let first = tempfile::tempdir().expect("tempdir");
    let (slot, model, state) = cold_start(first.path());
    let version = model.ensure_current(&state.ports).await.expect("seeded");
    assert_eq!(slot.current_model().map(|m| m.from_cache), Some(false));
    let record = store.get_model(&version).await.expect("record");
    let key = opti_lambda::models::cache_blob_key(&record.artifact_key);
    let shared = BlobStore::get_blob(&store, &key).await.expect("copy in S3");
    let local = slot.cache_file(&version).expect("cache file");
    assert_eq!(shared, std::fs::read(&local).expect("local copy"));

    let second = tempfile::tempdir().expect("tempdir");
    let (slot, model, state) = cold_start(second.path());
    assert_eq!(
        model.ensure_current(&state.ports).await.expect("load"),
        version
    );
    assert_eq!(
        slot.current_model().map(|m| m.from_cache),
        Some(true),
        "the second cold start loads the copy fetched from S3"
    );

    BlobStore::put_blob(
        &store,
        &key,
        b"not an NNEF copy",
        "application/octet-stream",
    )
    .await
    .expect("damage the copy");
    let third = tempfile::tempdir().expect("tempdir");
    let (slot, model, state) = cold_start(third.path());
    assert_eq!(
        model.ensure_current(&state.ports).await.expect("load"),
        version
    );
    assert_eq!(slot.current_model().map(|m| m.from_cache), Some(false));
    let fourth = tempfile::tempdir().expect("tempdir");
    let (slot, model, state) = cold_start(fourth.path());
    model.ensure_current(&state.ports).await.expect("load");
    assert_eq!(
        slot.current_model().map(|m| m.from_cache),
        Some(true),
        "the ONNX load put a good copy back"
    );
}

/// An inspection as the upload function stores it, `seconds` after a fixed start, with
/// this decision confidence (and, for `review`, a reviewer's verdict and boxes).
fn inspection(
    camera: &str,
    n: u32,
    seconds: i64,
    confidence: f32,
    review: Option<Value>,
) -> opti_core::Inspection {
    let at = time::macros::datetime!(2026-11-25 08:00 UTC) + time::Duration::seconds(seconds);
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    let status = if review.is_some() {
        "reviewed"
    } else {
        "auto_validated"
    };
    serde_json::from_value(json!({
        "id": format!("insp_{camera}_{n:04}"),
        "ingest_key": format!("test:{camera}:{n}"),
        "image_key": format!("raw/{camera}/{n:04}.jpg"),
        "camera_id": camera,
        "filename": null, "captured_at": null,
        "created_at": at, "updated_at": at,
        "model_version": "v-test",
        "detections": [],
        "decision": "clean",
        "confidence": confidence,
        "threshold_used": 0.6,
        "status": status,
        "audit_sample": false,
        "review": review.map(|r| {
            let mut r = r;
            r["reviewer"] = json!("rita");
            r["reviewed_at"] = json!(at);
            r
        }),
        "version": 1
    }))
    .expect("an inspection")
}

/// A loopback HTTP endpoint that keeps every body POSTed to it (an SNS subscriber).
async fn capture_endpoint() -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = seen.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: String| {
            let keep = keep.clone();
            async move {
                keep.lock()
                    .expect("lock")
                    .push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn drift_records(store: &AwsStore) -> Vec<opti_core::drift::DriftRecord> {
    opti_core::ports::DriftHistory::list_drift_records(
        store,
        &opti_core::ports::DriftQuery {
            limit: 100,
            cursor: None,
        },
    )
    .await
    .expect("drift history")
    .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_drift_records_once_per_window_and_alerts_sns_once_per_episode() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let state = opti_lambda::aws_state(&store, Arc::new(ModelSlot::new()));
    let sdk = load_sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name(format!("drift-{}", run_tag()))
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("arn");
    let (endpoint, received) = capture_endpoint().await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("http")
        .endpoint(&endpoint)
        .send()
        .await
        .expect("subscribe");
    let alerts = drift::Alerts {
        sns,
        topic_arn: Some(topic.clone()),
    };
    let sent = || received.lock().expect("lock").clone();
    let cam = format!("cam-{}", run_tag());
    // A steady line: 100 confident decisions (baseline 50 + recent 50 of them).
    for n in 0..100 {
        let conf = 0.90 + 0.09 * ((n * 37 % 100) as f32 / 100.0);
        store
            .create_inspection(&inspection(&cam, n, i64::from(n), conf, None))
            .await
            .expect("insert");
    }
    let first = drift::scheduled(&state, &alerts).await.expect("first run");
    let DriftRun::Recorded {
        id,
        raised,
        alerted,
        ..
    } = first.clone()
    else {
        panic!("first run: {first:?}");
    };
    assert!(raised.is_empty(), "a steady line raised {raised:?}");
    assert!(!alerted);
    // EventBridge delivers at least once: the same window again stores nothing.
    let second = drift::scheduled(&state, &alerts).await.expect("second run");
    assert_eq!(
        second,
        DriftRun::Unchanged {
            latest_id: id.clone(),
            alerted: false
        }
    );
    assert_eq!(
        drift_records(&store).await.len(),
        1,
        "one report per window"
    );
    assert!(sent().is_empty(), "{:?}", sent());

    // The line drifts: 50 newer decisions far less confident.
    for n in 100..150 {
        let conf = 0.40 + 0.2 * ((n * 37 % 100) as f32 / 100.0);
        store
            .create_inspection(&inspection(&cam, n, i64::from(n), conf, None))
            .await
            .expect("insert");
    }
    let third = drift::scheduled(&state, &alerts)
        .await
        .expect("drifted run");
    let DriftRun::Recorded {
        id: alarm_id,
        raised,
        alerted,
    } = third.clone()
    else {
        panic!("drifted run: {third:?}");
    };
    assert!(alerted, "{third:?}");
    assert!(
        raised
            .iter()
            .any(|k| k.starts_with("overall/") && k.contains("confidence")),
        "the alarm names the confidence signal of the whole line: {raised:?}"
    );
    let published = sent();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0]["TopicArn"], json!(topic));
    assert!(
        published[0]["Subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("Opti-Quality drift alarm")),
        "{published:?}"
    );
    let message: Value = serde_json::from_str(published[0]["Message"].as_str().expect("message"))
        .expect("the alert is JSON");
    assert_eq!(message["event"], json!("drift_alert"));
    assert_eq!(message["id"], json!(alarm_id));
    assert_eq!(message["raised"], json!(raised));
    assert!(message["signals"]
        .as_array()
        .is_some_and(|s| !s.is_empty() && s[0]["threshold"].is_number()));

    // The same episode: a retried run publishes nothing.
    let again = drift::scheduled(&state, &alerts).await.expect("retry");
    assert_eq!(
        again,
        DriftRun::Unchanged {
            latest_id: alarm_id.clone(),
            alerted: false
        }
    );
    assert_eq!(sent().len(), 1);
    // A run whose publish was lost (no marker) is made good by the next run.
    opti_core::ports::BlobStore::delete_blob(&store, &drift::alert_marker_key(&alarm_id))
        .await
        .expect("delete marker");
    let redo = drift::scheduled(&state, &alerts).await.expect("redo");
    assert_eq!(
        redo,
        DriftRun::Unchanged {
            latest_id: alarm_id.clone(),
            alerted: true
        }
    );
    assert_eq!(sent().len(), 2);
    // New data in the same episode: a new record, no new alert.
    for n in 150..160 {
        store
            .create_inspection(&inspection(&cam, n, i64::from(n), 0.45, None))
            .await
            .expect("insert");
    }
    let later = drift::scheduled(&state, &alerts).await.expect("later run");
    let DriftRun::Recorded {
        raised, alerted, ..
    } = later.clone()
    else {
        panic!("later run: {later:?}");
    };
    assert!(raised.is_empty() && !alerted, "{later:?}");
    assert_eq!(sent().len(), 2);
    let records = drift_records(&store).await;
    assert_eq!(records.len(), 3, "steady, drifted, later");
    assert!(
        !records[0].episodes.open.is_empty(),
        "the episode stays open"
    );
}

const TRAINER_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/opti-trainer:1";
const TRAINING_ROLE: &str = "arn:aws:iam::123456789012:role/opti-training";

fn admin() -> Option<Value> {
    Some(json!({"cognito:username": "ada", "cognito:groups": "[admin]", "sub": "s-2"}))
}

/// `n` reviewed inspections of `camera` with their images in S3: every third one
/// defective with a `defect` box, the rest `ok`.
async fn reviewed_items(store: &AwsStore, camera: &str, from: u32, n: u32) {
    for i in from..from + n {
        let review = if i % 3 == 0 {
            json!({"verdict": "defective", "notes": "",
                   "detections": [{"class": "defect", "confidence": 1.0, "bbox": [0.2, 0.2, 0.4, 0.5]}]})
        } else {
            json!({"verdict": "ok", "detections": [], "notes": ""})
        };
        let item = inspection(camera, i, i64::from(i), 0.5, Some(review));
        put(store, &item.image_key, part_image(u64::from(i))).await;
        store.create_inspection(&item).await.expect("insert");
    }
}

async fn training_jobs(sagemaker: &aws_sdk_sagemaker::Client, prefix: &str) -> Vec<String> {
    sagemaker
        .list_training_jobs()
        .name_contains(prefix)
        .max_results(100)
        .send()
        .await
        .expect("list training jobs")
        .training_job_summaries
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.training_job_name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrain_snapshots_to_s3_and_starts_one_sagemaker_job_per_snapshot() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let slot = Arc::new(ModelSlot::new());
    let state = opti_lambda::aws_state(&store, slot.clone());
    // The seeded model is the parent; its weights sit next to the seed ONNX.
    let parent = ActiveModel::new(slot, Some(SEED_KEY.into()))
        .ensure_current(&state.ports)
        .await
        .expect("seeded model");
    put(&store, "seed/model.pt", b"weights".to_vec()).await;
    let sdk = load_sdk_config().await;
    let sagemaker = aws_sdk_sagemaker::Client::new(&sdk);
    let r = opti_lambda::retrain::Retrainer {
        state,
        store: store.clone(),
        sagemaker: sagemaker.clone(),
        settings: Ok(opti_lambda::retrain::TrainingSettings {
            image: TRAINER_IMAGE.into(),
            role_arn: TRAINING_ROLE.into(),
            instance_type: "ml.g4dn.xlarge".into(),
            max_seconds: 3600,
            seed_model_key: Some(SEED_KEY.into()),
            options: opti_api::learning::LearningOptions::default(),
        }),
    };
    let app = opti_lambda::retrain::app(r.clone());

    // Nothing reviewed: a clear 409, no training job.
    let (status, body) = call(&app, api_call("POST", "/retrain", admin())).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("nothing to train")),
        "{body}"
    );
    let (status, _) = call(&app, api_call("POST", "/retrain", reviewer())).await;
    assert_eq!(status, 403, "only admins start retraining");

    let cam = format!("cam-{}", run_tag());
    reviewed_items(&store, &cam, 0, 12).await;
    let (status, job) = call(&app, api_call("POST", "/retrain", admin())).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("job id").to_owned();
    let snap = job["snapshot_id"].as_str().expect("snapshot id").to_owned();
    assert_eq!(
        id,
        format!("opti-{snap}"),
        "the job is named after its snapshot"
    );
    assert_eq!(job["status"], json!("running"));
    assert_eq!(job["phase"], json!("train"));
    assert_eq!(job["parent_version"], json!(parent));
    assert_eq!(job["requested_by"], json!("admin:ada"));

    // The snapshot is the local mode's: a YOLO dataset with its manifest, in S3.
    let files = opti_core::ports::BlobStore::list_blobs(&store, &format!("snapshots/{snap}/"))
        .await
        .expect("list");
    for f in ["manifest.json", "data.yaml"] {
        assert!(
            files.contains(&format!("snapshots/{snap}/{f}")),
            "{f} in {files:?}"
        );
    }
    assert!(
        files.iter().any(|f| f.contains("/images/train/")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.contains("/labels/holdout/")),
        "{files:?}"
    );

    // The training job as SageMaker (moto) recorded the call.
    let described = sagemaker
        .describe_training_job()
        .training_job_name(&id)
        .send()
        .await
        .expect("the training job exists");
    let spec = described.algorithm_specification().expect("algorithm");
    assert_eq!(spec.training_image(), Some(TRAINER_IMAGE));
    assert_eq!(described.role_arn(), Some(TRAINING_ROLE));
    let channels: Vec<(String, String)> = described
        .input_data_config()
        .iter()
        .map(|c| {
            (
                c.channel_name().unwrap_or_default().to_owned(),
                c.data_source()
                    .and_then(|d| d.s3_data_source())
                    .and_then(|s| s.s3_uri())
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let bucket = store.bucket();
    assert_eq!(
        channels,
        vec![
            (
                "snapshot".to_owned(),
                format!("s3://{bucket}/snapshots/{snap}/")
            ),
            ("weights".to_owned(), format!("s3://{bucket}/seed/model.pt")),
        ]
    );
    assert_eq!(
        described
            .output_data_config()
            .and_then(|o| o.s3_output_path()),
        Some(format!("s3://{bucket}/training/").as_str())
    );
    let hyper = described.hyper_parameters().expect("hyperparameters");
    assert_eq!(hyper.get("snapshot_id"), Some(&snap));
    assert_eq!(hyper.get("parent_version"), Some(&parent));
    assert_eq!(
        hyper.get("ultralytics").map(String::as_str),
        Some("optimizer=AdamW lr0=0.0003 warmup_epochs=0"),
        "the local fine-tune recipe goes to SageMaker too"
    );

    // The job record through the API.
    let (status, got) = call(&app, api_request(&format!("/retrain/{id}"), admin())).await;
    assert_eq!((status, got["id"].clone()), (200, json!(id)), "{got}");
    let (status, _) = call(&app, api_request("/retrain/opti-snap-nosuchjob", admin())).await;
    assert_eq!(status, 404);
    let (status, list) = call(&app, api_request("/retrain?limit=5", admin())).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["enabled"], json!(true));
    assert_eq!(list["items"][0]["id"], json!(id));

    // A second dispatch while it runs: 409 naming the running job, no second training job.
    let (status, body) = call(&app, api_call("POST", "/retrain", admin())).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["current"]["id"], json!(id), "{body}");
    assert_eq!(training_jobs(&sagemaker, &id).await, vec![id.clone()]);

    // moto finishes training jobs at once. The trainer container would have left its
    // model.tar.gz: here the shipped model itself, so the gate sees no improvement.
    let output = format!("training/{id}/output/model.tar.gz");
    put(
        &store,
        &output,
        model_tar_gz(&[
            ("model.onnx", shipped_model()),
            ("./model.pt", b"fine-tuned weights".to_vec()),
            (
                "result.json",
                serde_json::to_vec(&json!({"metrics": {"precision": 0.9, "recall": 0.8,
                    "mAP50": 0.85, "mAP50-95": 0.6}, "train_seconds": 12.5}))
                .expect("json"),
            ),
        ]),
    )
    .await;
    let run = opti_lambda::retrain::scheduled(&r).await.expect("schedule");
    assert!(
        matches!(&run, opti_lambda::retrain::ScheduledRun::Completed { job, outcome }
            if *job == id && outcome.contains("kept the active model")),
        "{run:?}"
    );
    let done = opti_core::ports::RetrainJobStore::get_job(&store, &id)
        .await
        .expect("job");
    assert_eq!(
        done.status,
        opti_core::retrain::JobStatus::Succeeded,
        "{done:?}"
    );
    assert!(!done.promoted);
    let gate = done.gate.clone().expect("the gate decided");
    assert!(
        !gate.promote,
        "the same model cannot improve on itself: {gate:?}"
    );
    let candidate = store
        .get_model(done.candidate_version.as_deref().expect("candidate"))
        .await
        .expect("registered");
    assert_eq!(candidate.parent.as_deref(), Some(parent.as_str()));
    assert_eq!(candidate.snapshot_id.as_deref(), Some(snap.as_str()));
    assert_eq!(candidate.status, ModelStatus::Rejected);
    assert_eq!(candidate.trainer_metrics.map(|m| m.map50_95), Some(0.6));
    assert!(
        candidate.measured_metrics.is_some(),
        "scored in Rust on the holdout"
    );
    assert_eq!(candidate.trainer["runner"], json!("sagemaker"));
    assert_eq!(
        opti_core::ports::BlobStore::get_blob(
            &store,
            &opti_api::learning::weights_key(&candidate.version)
        )
        .await
        .expect("weights kept for the next fine-tune"),
        b"fine-tuned weights"
    );
    assert_eq!(
        store.active_model().await.expect("active"),
        Some(parent.clone())
    );

    // The same reviews make the same snapshot: dispatched again, it starts nothing.
    let (status, body) = call(&app, api_call("POST", "/retrain", admin())).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("already dispatched")),
        "{body}"
    );
    assert_eq!(training_jobs(&sagemaker, &id).await, vec![id.clone()]);

    // The automatic trigger: nothing until retrain_min (10) new reviews, then one job.
    let run = opti_lambda::retrain::scheduled(&r).await.expect("schedule");
    assert_eq!(
        run,
        opti_lambda::retrain::ScheduledRun::NotEnoughReviews { new: 0, min: 10 }
    );
    reviewed_items(&store, &cam, 12, 10).await;
    let run = opti_lambda::retrain::scheduled(&r).await.expect("schedule");
    let opti_lambda::retrain::ScheduledRun::Dispatched { job: second } = run.clone() else {
        panic!("auto trigger: {run:?}");
    };
    assert_ne!(second, id);
    let auto = opti_core::ports::RetrainJobStore::get_job(&store, &second)
        .await
        .expect("job");
    assert_eq!(auto.trigger, "auto");
    assert_eq!(
        training_jobs(&sagemaker, &second).await,
        vec![second.clone()]
    );
    // Its snapshot kept the first one's holdout frozen.
    let manifest: Value = serde_json::from_slice(
        &opti_core::ports::BlobStore::get_blob(
            &store,
            &format!(
                "snapshots/{}/manifest.json",
                auto.snapshot_id.clone().expect("snap")
            ),
        )
        .await
        .expect("manifest"),
    )
    .expect("json");
    assert_eq!(manifest["previous"], json!(snap));
    // Its training "completes" without output: the job fails, naming what is missing.
    let run = opti_lambda::retrain::scheduled(&r).await.expect("schedule");
    assert!(
        matches!(&run, opti_lambda::retrain::ScheduledRun::Completed { job, .. } if *job == second),
        "{run:?}"
    );
    let failed = opti_core::ports::RetrainJobStore::get_job(&store, &second)
        .await
        .expect("job");
    assert_eq!(failed.status, opti_core::retrain::JobStatus::Failed);
    assert!(
        failed
            .error
            .as_deref()
            .is_some_and(|e| e.contains("reading the training output")),
        "{failed:?}"
    );
    assert_eq!(store.active_model().await.expect("active"), Some(parent));
}

/// A `model.tar.gz` as SageMaker packs `/opt/ml/model`.
fn model_tar_gz(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes.as_slice())
            .expect("tar");
    }
    tar.into_inner().expect("tar").finish().expect("gzip")
}
