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
use opti_core::ports::{InspectionQuery, InspectionStore, ModelRegistry};
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
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut ctx = json!({
        "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
        "domainPrefix": "api", "requestId": "r1", "routeKey": "$default", "stage": "$default",
        "time": "25/Nov/2026:23:41:07 +0000", "timeEpoch": 1_795_650_067_000_i64,
        "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.9", "userAgent": "test"}
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_drift_report_is_stored_once_per_window() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let state = opti_lambda::aws_state(&store, Arc::new(ModelSlot::new()));
    let at = time::macros::datetime!(2026-11-25 23:41:07 UTC);
    let first = drift::scheduled(&state, at).await.expect("first run");
    let DriftRun::Stored { key, .. } = &first else {
        panic!("first run: {first:?}");
    };
    assert_eq!(key, "reports/drift/20261125T2300Z.json");
    // EventBridge delivers at least once: a second run in the window stores nothing.
    let second = drift::scheduled(&state, at + time::Duration::minutes(10))
        .await
        .expect("second");
    assert_eq!(second, DriftRun::AlreadyStored { key: key.clone() });
    let next_window = drift::scheduled(&state, at + time::Duration::hours(1))
        .await
        .expect("next");
    assert!(matches!(next_window, DriftRun::Stored { .. }));
    let keys = opti_core::ports::BlobStore::list_blobs(&store, "reports/drift/")
        .await
        .expect("list");
    assert_eq!(keys.len(), 2, "{keys:?}");
    let stored: Value = serde_json::from_slice(
        &opti_core::ports::BlobStore::get_blob(&store, key)
            .await
            .expect("report"),
    )
    .expect("json");
    assert!(stored["report"].get("drift_detected").is_some(), "{stored}");
}
