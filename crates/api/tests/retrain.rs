//! `/retrain` on a real server (real SQLite, real shipped model, real reviews): who may
//! call it, one job at a time, progress per epoch, a failing trainer that changes
//! nothing, a restart that leaves no zombie `running` job, and the automatic trigger.
//!
//! The trainer here is a stand-in process that speaks the trainer's JSON-line protocol
//! (two epochs, a log line, then it waits for a release file and fails), so that the
//! job can be held mid-run. The real trainer runs in the CLI's end-to-end test.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{sim_image, TestServer};
use opti_api::learning::{Learning, LearningOptions, SubprocessTrainer};
use opti_core::ports::BlobStore;
use opti_sim::{generate, SimParams};
use serde_json::{json, Value};

/// A stand-in trainer: reports two epochs, logs to stderr, waits for `release`, fails.
fn fake_trainer(dir: &Path, release: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("fake-python");
    let text = format!(
        r#"#!/bin/sh
echo '{{"event":"start","elapsed_s":0.0}}'
echo '{{"event":"epoch","epoch":1,"epochs":2,"losses":{{"box_loss":1.5,"cls_loss":2.25,"dfl_loss":1.125}},"precision":0.5,"recall":0.25,"mAP50":0.5,"mAP50-95":0.25,"elapsed_s":1.5}}'
echo '{{"event":"epoch","epoch":2,"epochs":2,"losses":{{"box_loss":1.25,"cls_loss":2.0,"dfl_loss":1.0}},"precision":0.75,"recall":0.5,"mAP50":0.625,"mAP50-95":0.375,"elapsed_s":3.0}}'
echo 'trainer log: loading weights parent.pt' >&2
while [ ! -f '{release}' ]; do sleep 0.05; done
echo 'Traceback: RuntimeError: simulated trainer crash' >&2
echo '{{"event":"error","message":"RuntimeError: simulated trainer crash"}}'
exit 1
"#,
        release = release.display()
    );
    std::fs::write(&script, text).expect("write fake trainer");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

struct Loop {
    server: TestServer,
    release: PathBuf,
    _scratch: tempfile::TempDir,
}

fn server_with_fake_trainer() -> Loop {
    let scratch = tempfile::tempdir().expect("scratch");
    let release = scratch.path().join("release");
    let python = fake_trainer(scratch.path(), &release);
    let work = scratch.path().join("runs");
    let factory: common::LearningFactory = Arc::new(move |store| {
        Arc::new(Learning {
            jobs: store,
            trainer: Arc::new(SubprocessTrainer {
                python: python.clone(),
                trainer_dir: std::env::temp_dir(),
                work_root: work.clone(),
                replay: None,
                replay_ratio: 0.0,
                replay_max: 0,
                extra: Vec::new(),
            }),
            reference: None,
            options: LearningOptions {
                epochs: 2,
                ..LearningOptions::default()
            },
        })
    });
    let server = TestServer::start_with_learning(factory);
    // Fine-tuning starts from the active model's weights; any bytes do for the stand-in.
    let active = active_version(&server);
    server
        .block_on(server.store.put_blob(
            &opti_api::learning::weights_key(&active),
            b"weights",
            "application/octet-stream",
        ))
        .expect("weights");
    Loop {
        server,
        release,
        _scratch: scratch,
    }
}

fn active_version(server: &TestServer) -> String {
    let (s, models) = server.get(&server.admin_token, "/models");
    assert_eq!(s, 200, "{models}");
    models["active"].as_str().expect("active").to_string()
}

/// Uploads generated parts `from..to` (all sent to review), and reviews each with its
/// ground truth. Returns the reviewed ids.
fn review_parts(server: &TestServer, from: u64, to: u64) -> Vec<String> {
    let admin = server.admin_token.clone();
    let (s, cfg) = server.put_json(&admin, "/config", &json!({"audit_rate": 1.0}));
    assert_eq!(s, 200, "{cfg}");
    let camera = server.token("camera");
    let reviewer = server.token("reviewer");
    let names = opti_core::ClassNames::default_line();
    let mut ids = Vec::new();
    for i in from..to {
        let (s, up) = server.upload(
            &camera,
            &sim_image(i),
            &format!("part-{i}.jpg"),
            Some("cam-1"),
        );
        assert!(s == 200 || s == 201, "{up}");
        let id = up["id"].as_str().expect("id").to_string();
        let (s, claimed) =
            server.post_json(&reviewer, &format!("/inspections/{id}/claim"), &json!({}));
        assert_eq!(s, 200, "{claimed}");
        let truth: Vec<Value> = generate(7, i, &SimParams::default())
            .labels
            .iter()
            .filter_map(|l| l.to_detection(&names))
            .map(|d| json!({"class": d.class, "confidence": 1.0, "bbox": d.bbox}))
            .collect();
        let verdict = if truth.is_empty() { "ok" } else { "defective" };
        let (s, reviewed) = server.post_json(
            &reviewer,
            &format!("/inspections/{id}/review"),
            &json!({"verdict": verdict, "detections": truth, "notes": "", "version": claimed["version"]}),
        );
        assert_eq!(s, 200, "{reviewed}");
        ids.push(id);
    }
    ids
}

/// Polls the job until `done` says so (30 s at most).
fn wait_for(server: &TestServer, job: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, body) = server.get(&server.admin_token, &format!("/retrain/{job}"));
        assert_eq!(s, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn audit_actions(server: &TestServer, entity: &str) -> Vec<String> {
    let (s, page) = server.get(&server.admin_token, &format!("/audit?entity={entity}"));
    assert_eq!(s, 200, "{page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn retrain_routes_need_an_admin() {
    let l = server_with_fake_trainer();
    let server = &l.server;
    let reviewer = server.token("reviewer");
    let camera = server.token("camera");
    for (method, path) in [
        ("POST", "/retrain"),
        ("GET", "/retrain"),
        ("GET", "/retrain/job-x"),
    ] {
        let (s, body) = server.raw(method, path, None, b"", None);
        assert_eq!(s, 401, "{method} {path} without a token: {body}");
        for token in [&reviewer, &camera] {
            let (s, body) = server.raw(method, path, Some(token), b"", None);
            assert_eq!(s, 403, "{method} {path} as a non-admin: {body}");
            assert!(body.contains("\"error\""));
        }
    }
    let (s, list) = server.get(&server.admin_token, "/retrain");
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["enabled"], true);
    assert_eq!(
        list["items"],
        json!([]),
        "nothing ran and nothing started by itself"
    );
}

#[test]
fn nothing_reviewed_means_nothing_to_train_on() {
    let l = server_with_fake_trainer();
    let (s, body) = l
        .server
        .post_json(&l.server.admin_token, "/retrain", &json!({}));
    assert_eq!(s, 409, "{body}");
    assert!(body["error"].as_str().unwrap_or("").contains("review"));
    let (_, list) = l.server.get(&l.server.admin_token, "/retrain");
    assert_eq!(list["items"], json!([]), "no job was recorded");
}

#[test]
fn unknown_job_is_not_found() {
    let l = server_with_fake_trainer();
    let (s, body) = l
        .server
        .get(&l.server.admin_token, "/retrain/job-does-not-exist");
    assert_eq!(s, 404, "{body}");
    assert!(body["error"].as_str().unwrap_or("").contains("not found"));
}

#[test]
fn a_running_job_reports_epochs_refuses_a_second_and_its_failure_changes_nothing() {
    let l = server_with_fake_trainer();
    let server = &l.server;
    let admin = server.admin_token.clone();
    let (s, _) = server.put_json(&admin, "/config", &json!({"retrain_min": 1000}));
    assert_eq!(s, 200);
    review_parts(server, 0, 10);
    let active_before = active_version(server);
    let (_, models_before) = server.get(&admin, "/models");

    // Given a dispatched job,
    let (s, job) = server.post_json(&admin, "/retrain", &json!({}));
    assert_eq!(s, 202, "{job}");
    assert_eq!(job["status"], "running");
    assert_eq!(job["trigger"], "manual");
    assert_eq!(job["parent_version"], active_before.as_str());
    let id = job["id"].as_str().expect("job id").to_string();

    // its epochs show up while it runs,
    let running = wait_for(server, &id, "two epochs", |j| {
        j["progress"].as_array().is_some_and(|p| p.len() == 2)
    });
    assert_eq!(running["status"], "running");
    assert_eq!(running["phase"], "train");
    assert_eq!(running["progress"][1]["epoch"], 2);
    assert_eq!(running["progress"][1]["losses"]["box_loss"], 1.25);
    assert_eq!(running["progress"][1]["metrics"]["recall"], 0.5);
    let counts = &running["snapshot"];
    assert_eq!(
        counts["train"].as_u64().unwrap_or(0)
            + counts["val"].as_u64().unwrap_or(0)
            + counts["holdout"].as_u64().unwrap_or(0)
            + counts["skipped"].as_u64().unwrap_or(0),
        10,
        "every reviewed part is in the snapshot: {counts}"
    );
    assert_eq!(counts["holdout"], 2, "20 % frozen for the gate");
    assert!(running["snapshot_id"]
        .as_str()
        .unwrap_or("")
        .starts_with("snap-"));

    // a second one is refused while it runs, naming the running job,
    let (s, conflict) = server.post_json(&admin, "/retrain", &json!({}));
    assert_eq!(s, 409, "{conflict}");
    assert_eq!(conflict["current"]["id"], id.as_str());

    // and when the trainer crashes, the job fails with its log tail and nothing else moves.
    std::fs::write(&l.release, b"go").expect("release");
    let failed = wait_for(server, &id, "failure", |j| j["status"] != "running");
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap_or("");
    assert!(error.contains("simulated trainer crash"), "{error}");
    let tail: Vec<&str> = failed["log_tail"]
        .as_array()
        .expect("log tail")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tail.iter().any(|l| l.contains("Traceback")), "{tail:?}");
    assert!(failed["finished_at"].is_string());
    assert_eq!(
        active_version(server),
        active_before,
        "the active model stays"
    );
    let (_, models_after) = server.get(&admin, "/models");
    assert_eq!(
        models_after["items"], models_before["items"],
        "no model registered"
    );
    assert_eq!(
        audit_actions(server, &format!("retrain/{id}")),
        vec!["retrain_failed", "retrain_started"]
    );
    let (s, list) = server.get(&admin, "/retrain");
    assert_eq!(s, 200);
    assert_eq!(list["items"][0]["id"], id.as_str());

    // Once it failed, a new job may start.
    let (s, again) = server.post_json(&admin, "/retrain", &json!({}));
    assert_eq!(s, 202, "{again}");
}

#[test]
fn a_restart_marks_the_job_it_cut_off_as_failed() {
    let mut l = server_with_fake_trainer();
    let admin = l.server.admin_token.clone();
    let (s, _) = l
        .server
        .put_json(&admin, "/config", &json!({"retrain_min": 1000}));
    assert_eq!(s, 200);
    review_parts(&l.server, 0, 6);
    let (s, job) = l.server.post_json(&admin, "/retrain", &json!({}));
    assert_eq!(s, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_string();
    wait_for(&l.server, &id, "training", |j| j["phase"] == "train");

    l.server.restart();

    let (s, after) = l.server.get(&admin, &format!("/retrain/{id}"));
    assert_eq!(s, 200, "{after}");
    assert_eq!(after["status"], "failed", "no zombie running job: {after}");
    assert!(after["error"]
        .as_str()
        .unwrap_or("")
        .contains("interrupted"));
    let (s, next) = l.server.post_json(&admin, "/retrain", &json!({}));
    assert_eq!(s, 202, "a new job may start after the restart: {next}");
    std::fs::write(&l.release, b"go").expect("release");
}

#[test]
fn enough_new_reviews_start_a_job_by_themselves() {
    let l = server_with_fake_trainer();
    let server = &l.server;
    let admin = server.admin_token.clone();
    let (s, _) = server.put_json(&admin, "/config", &json!({"retrain_min": 4}));
    assert_eq!(s, 200);
    review_parts(server, 0, 3);
    std::thread::sleep(Duration::from_millis(300));
    let (_, list) = server.get(&admin, "/retrain");
    assert_eq!(
        list["items"],
        json!([]),
        "3 reviews are fewer than retrain_min"
    );

    review_parts(server, 3, 4);
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = loop {
        let (_, list) = server.get(&admin, "/retrain");
        if let Some(job) = list["items"].as_array().and_then(|a| a.first()).cloned() {
            break job;
        }
        assert!(Instant::now() < deadline, "no job started by itself");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(job["trigger"], "auto");
    assert_eq!(job["reviewed_count"], 4);
    assert_eq!(job["requested_by"], "system:auto-retrain");
    std::fs::write(&l.release, b"go").expect("release");
    let id = job["id"].as_str().expect("id");
    wait_for(server, id, "the end", |j| j["status"] != "running");
}
