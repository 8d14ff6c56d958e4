//! The service end to end: a real server on a free port, a real SQLite file, the real
//! shipped model, generated images. Each test starts its own server and data directory.

mod common;

use common::{sim_image, TestServer};
use opti_core::ports::{BlobStore, InspectionStore};
use opti_core::types::Status;
use serde_json::{json, Value};

#[test]
fn clean_and_defective_uploads_are_routed_as_the_policy_says() {
    let server = TestServer::start();
    let camera = server.token("camera");
    let mut seen_defective = false;
    let mut seen_clean = false;
    for (index, defective) in server.sample_indices() {
        let image = sim_image(index);
        let (status, body) = server.upload(&camera, &image, "part.jpg", Some("line-a"));
        assert_eq!(status, 201, "{body}");
        for field in [
            "id",
            "status",
            "confidence",
            "threshold_used",
            "detections",
            "model_version",
        ] {
            assert!(
                body.get(field).is_some(),
                "upload answer lacks {field}: {body}"
            );
        }
        let expected = server.expected_routing(&body["id"], &image);
        assert_eq!(body["status"], json!(expected.status), "{body}");
        assert!(
            (body["confidence"].as_f64().unwrap_or(-1.0) - f64::from(expected.confidence)).abs()
                < 1e-6
        );
        assert_eq!(body["threshold_used"], json!(0.6));
        // The shipped model gets these generated parts right.
        assert_eq!(
            body["decision"],
            if defective { "defective" } else { "clean" },
            "part {index}: {body}"
        );
        if defective {
            seen_defective = true;
        } else {
            seen_clean = true;
            // A clean part is not sent to a human unless the model is unsure about it
            // or it was drawn as an audit sample.
            if expected.confidence >= 0.6 && !expected.audit_sample {
                assert_eq!(body["status"], "auto_validated", "{body}");
            }
        }
    }
    assert!(seen_defective && seen_clean);
}

#[test]
fn a_retried_upload_returns_the_same_inspection_and_stores_nothing_new() {
    let server = TestServer::start();
    let camera = server.token("camera");
    let image = sim_image(3);
    let (s1, first) = server.upload(&camera, &image, "a.jpg", Some("line-a"));
    let before = server.snapshot();
    let (s2, second) = server.upload(&camera, &image, "a.jpg", Some("line-a"));
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["created"], false);
    assert_eq!(server.snapshot(), before);
    // The same bytes from another camera are another part.
    let (s3, third) = server.upload(&camera, &image, "a.jpg", Some("line-b"));
    assert_eq!(s3, 201);
    assert_ne!(first["id"], third["id"]);
}

#[test]
fn claim_review_and_stale_review_follow_the_state_machine() {
    let server = TestServer::start();
    let id = server.pending_inspection();
    let alice = server.named_token("reviewer", "alice");
    let bob = server.named_token("reviewer", "bob");

    let (s, claimed) = server.post_json(&alice, &format!("/inspections/{id}/claim"), &json!({}));
    assert_eq!(s, 200, "{claimed}");
    assert_eq!(claimed["status"], "claimed");
    assert_eq!(claimed["claim"]["reviewer"], "alice");
    let version = claimed["version"].as_u64().unwrap_or(0);

    // Bob cannot take Alice's live lease; he is told who holds it and sees the record.
    let (s, conflict) = server.post_json(&bob, &format!("/inspections/{id}/claim"), &json!({}));
    assert_eq!(s, 409, "{conflict}");
    assert!(conflict["error"].as_str().unwrap_or("").contains("alice"));
    assert_eq!(conflict["current"]["claim"]["reviewer"], "alice");

    let review = json!({
        "verdict": "defective",
        "detections": [{"class": "stain", "confidence": 1.0, "bbox": [0.1, 0.1, 0.3, 0.4]}],
        "notes": "stain near the edge",
        "version": version,
    });
    let (s, reviewed) = server.post_json(&alice, &format!("/inspections/{id}/review"), &review);
    assert_eq!(s, 200, "{reviewed}");
    assert_eq!(reviewed["status"], "reviewed");
    assert_eq!(reviewed["review"]["verdict"], "defective");
    assert_eq!(reviewed["review"]["reviewer"], "alice");

    // A second submission with the version Alice read is stale: 409 and the current record.
    let (s, stale) = server.post_json(&bob, &format!("/inspections/{id}/review"), &review);
    assert_eq!(s, 409, "{stale}");
    assert_eq!(stale["current"]["status"], "reviewed");
    assert_eq!(stale["current"]["review"]["reviewer"], "alice");
}

#[test]
fn an_expired_lease_can_be_taken_over_by_another_reviewer() {
    let server = TestServer::start();
    let id = server.pending_inspection();
    let alice = server.named_token("reviewer", "alice");
    let bob = server.named_token("reviewer", "bob");
    let (s, _) = server.post_json(&alice, &format!("/inspections/{id}/claim"), &json!({}));
    assert_eq!(s, 200);
    server.advance_clock(301);
    let (s, taken) = server.post_json(&bob, &format!("/inspections/{id}/claim"), &json!({}));
    assert_eq!(s, 200, "{taken}");
    assert_eq!(taken["claim"]["reviewer"], "bob");
}

#[test]
fn every_transition_leaves_an_audit_event_with_before_and_after() {
    let server = TestServer::start();
    let id = server.pending_inspection();
    let alice = server.named_token("reviewer", "alice");
    let (_, claimed) = server.post_json(&alice, &format!("/inspections/{id}/claim"), &json!({}));
    let review =
        json!({"verdict": "ok", "detections": [], "notes": "", "version": claimed["version"]});
    let (s, _) = server.post_json(&alice, &format!("/inspections/{id}/review"), &review);
    assert_eq!(s, 200);
    let admin = server.admin_token.clone();
    let (s, audit) = server.get(&admin, &format!("/audit?entity=inspection/{id}"));
    assert_eq!(s, 200);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    // Newest first.
    assert_eq!(
        &actions[..3],
        ["reviewed", "claimed", "inspection_created"],
        "{audit}"
    );
    let reviewed = &audit["items"][0];
    assert_eq!(reviewed["actor"], "reviewer:alice");
    assert_eq!(reviewed["before"]["status"], "claimed");
    assert_eq!(reviewed["after"]["status"], "reviewed");
    assert_eq!(reviewed["after"]["review"]["verdict"], "ok");
}

#[test]
fn roles_see_only_their_routes() {
    let server = TestServer::start();
    let id = server.pending_inspection();
    let camera = server.token("camera");
    let reviewer = server.token("reviewer");
    let admin = server.admin_token.clone();
    // (method, path, allowed roles)
    let routes: Vec<(&str, String, &[&str])> = vec![
        ("POST", "/upload/".into(), &["camera", "admin"]),
        ("POST", "/uploads/presign".into(), &["camera", "admin"]),
        ("GET", "/inspections".into(), &["reviewer", "admin"]),
        ("GET", format!("/inspections/{id}"), &["reviewer", "admin"]),
        (
            "POST",
            format!("/inspections/{id}/claim"),
            &["reviewer", "admin"],
        ),
        (
            "POST",
            format!("/inspections/{id}/release"),
            &["reviewer", "admin"],
        ),
        (
            "POST",
            format!("/inspections/{id}/review"),
            &["reviewer", "admin"],
        ),
        ("GET", "/drift/".into(), &["reviewer", "admin"]),
        ("GET", "/drift/history".into(), &["reviewer", "admin"]),
        ("POST", "/drift/evaluate".into(), &["admin"]),
        ("GET", "/stats".into(), &["reviewer", "admin"]),
        ("GET", "/config".into(), &["reviewer", "admin"]),
        ("PUT", "/config".into(), &["admin"]),
        ("GET", "/audit".into(), &["admin"]),
        ("GET", "/models".into(), &["admin"]),
        ("POST", "/models/none/promote".into(), &["admin"]),
        ("POST", "/models/none/rollback".into(), &["admin"]),
    ];
    for (method, path, allowed) in &routes {
        let (s, body) = server.raw(method, path, None, b"", None);
        assert_eq!(s, 401, "{method} {path} without a token: {body}");
        assert!(body.contains("\"error\""), "{method} {path}: {body}");
        for (role, token) in [
            ("camera", &camera),
            ("reviewer", &reviewer),
            ("admin", &admin),
        ] {
            let (s, body) = server.raw(method, path, Some(token), b"", None);
            if allowed.contains(&role) {
                assert!(
                    s != 401 && s != 403,
                    "{role} {method} {path} got {s}: {body}"
                );
            } else {
                assert_eq!(s, 403, "{role} {method} {path}: {body}");
            }
        }
    }
    for open in ["/healthz", "/openapi.json", "/docs/"] {
        let (s, _) = server.raw("GET", open, None, b"", None);
        assert_eq!(s, 200, "{open} must be open");
    }
}

#[test]
fn bad_inputs_get_clear_4xx_and_leave_the_store_unchanged() {
    let server = TestServer::start();
    let id = server.pending_inspection();
    let camera = server.token("camera");
    let reviewer = server.token("reviewer");
    let before = server.snapshot();

    let mut truncated = sim_image(1);
    truncated.truncate(truncated.len() / 3);
    let (s, b) = server.upload(&camera, &truncated, "broken.jpg", None);
    assert_eq!(s, 422, "truncated JPEG: {b}");
    assert!(b["error"].is_string());

    let (s, b) = server.upload(&camera, b"II*\x00 a renamed tiff", "x.png", None);
    assert_eq!(s, 415, "TIFF renamed to .png: {b}");

    let huge = vec![0xFFu8; 50 * 1024 * 1024];
    let (s, b) = server.upload(&camera, &huge, "huge.jpg", None);
    // The server answers 413 as soon as the limit is passed and may close the connection
    // while the client is still sending, which the client then sees as a broken pipe.
    let refused = s == 413 || (s == 0 && b.to_string().contains("transport error"));
    assert!(refused, "50 MB body: {s} {b}");

    let (s, b) = server.raw(
        "POST",
        "/upload/",
        Some(&camera),
        b"{}",
        Some("application/json"),
    );
    assert_eq!(s, 415, "JSON instead of multipart: {b}");

    let (s, b) = server.raw(
        "POST",
        &format!("/inspections/{id}/review"),
        Some(&reviewer),
        b"{\"verdict\": ",
        Some("application/json"),
    );
    assert_eq!(s, 400, "bad JSON: {b}");
    assert!(b.contains("\"error\""));

    let (s, b) = server.get(&reviewer, "/inspections/insp_doesnotexist");
    assert_eq!(s, 404, "{b}");
    assert!(b["error"].is_string());

    let version = server.get(&reviewer, &format!("/inspections/{id}")).1["version"].clone();
    let out_of_range = json!({
        "verdict": "defective",
        "detections": [{"class": "stain", "confidence": 1.0, "bbox": [0.5, 0.5, 1.4, 0.9]}],
        "version": version,
    });
    let (s, b) = server.post_json(
        &reviewer,
        &format!("/inspections/{id}/review"),
        &out_of_range,
    );
    assert_eq!(s, 400, "box outside the image: {b}");
    let unknown_class = json!({
        "verdict": "defective",
        "detections": [{"class": "rust", "confidence": 1.0, "bbox": [0.1, 0.1, 0.2, 0.2]}],
        "version": version,
    });
    let (s, b) = server.post_json(
        &reviewer,
        &format!("/inspections/{id}/review"),
        &unknown_class,
    );
    assert_eq!(s, 400, "unknown class: {b}");

    let admin = server.admin_token.clone();
    let (s, b) = server.put_json(&admin, "/config", &json!({"threshold": 1.5}));
    assert_eq!(s, 400, "{b}");
    assert!(b["error"].as_str().unwrap_or("").contains("threshold"));

    assert_eq!(
        server.snapshot(),
        before,
        "a refused request changed the store"
    );
}

#[test]
fn a_new_threshold_applies_to_new_uploads_and_is_audited() {
    let server = TestServer::start();
    let admin = server.admin_token.clone();
    let (s, cfg) = server.put_json(
        &admin,
        "/config",
        &json!({"threshold": 0.8, "audit_rate": 0.0}),
    );
    assert_eq!(s, 200, "{cfg}");
    assert_eq!(cfg["value"]["threshold"], json!(0.8));
    let camera = server.token("camera");
    let (_, body) = server.upload(&camera, &sim_image(11), "p.jpg", None);
    assert!(
        (body["threshold_used"].as_f64().unwrap_or(0.0) - 0.8).abs() < 1e-6,
        "{body}"
    );
    let (_, audit) = server.get(&admin, "/audit?action=config_changed");
    assert_eq!(audit["items"][0]["after"]["value"]["threshold"], json!(0.8));
    assert_eq!(audit["items"][0]["actor"], "admin:admin");
}

#[test]
fn presigned_upload_is_inspected_and_a_tampered_one_is_refused() {
    let server = TestServer::start();
    let camera = server.named_token("camera", "cam-7");
    let (s, p) = server.post_json(
        &camera,
        "/uploads/presign",
        &json!({"content_type": "image/jpeg"}),
    );
    assert_eq!(s, 200, "{p}");
    let key = p["key"].as_str().unwrap_or_default().to_string();
    assert!(key.starts_with("raw/cam-7/"), "{key}");
    let url = p["url"].as_str().unwrap_or_default().to_string();
    let expires = time::OffsetDateTime::parse(
        p["expires_at"].as_str().unwrap_or_default(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("expires_at is RFC 3339");
    assert!(expires - server.now() <= time::Duration::minutes(15));
    assert_eq!(p["headers"]["content-type"], "image/jpeg");

    let tampered = url.replace("raw/cam-7/", "raw/cam-8/");
    let (s, _) = server.put_url(&tampered, &sim_image(2), "image/jpeg");
    assert_eq!(s, 403);
    let (s, _) = server.put_url(&url, &sim_image(2), "image/png");
    assert_eq!(s, 403, "content type is part of the signature");
    let (s, body) = server.put_url(&url, &sim_image(2), "image/jpeg");
    assert_eq!(s, 200, "{body}");
    let reviewer = server.token("reviewer");
    let (s, rec) = server.get(
        &reviewer,
        &format!("/inspections/{}", body["id"].as_str().unwrap_or("")),
    );
    assert_eq!(s, 200);
    assert_eq!(rec["image_key"], key);
    assert_eq!(rec["camera_id"], "cam-7");
    // The image URL the UI gets is signed and serves the bytes.
    let (s, bytes) = server.get_bytes(rec["image_url"].as_str().unwrap_or(""));
    assert_eq!(s, 200);
    assert_eq!(bytes, sim_image(2));
}

#[test]
fn a_corrupt_presigned_object_becomes_a_rejected_inspection() {
    let server = TestServer::start();
    let camera = server.token("camera");
    let (_, p) = server.post_json(
        &camera,
        "/uploads/presign",
        &json!({"content_type": "image/png"}),
    );
    let (s, body) = server.put_url(
        p["url"].as_str().unwrap_or(""),
        b"\x89PNG\r\n\x1a\nnot really",
        "image/png",
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "rejected");
    let rec = server.store_inspection(body["id"].as_str().unwrap_or(""));
    assert_eq!(rec.status, Status::Rejected);
    assert!(rec.rejection_reason.is_some());
}

#[test]
fn restart_keeps_data_and_recovers_an_upload_stored_but_not_recorded() {
    let mut server = TestServer::start();
    let camera = server.token("camera");
    let (_, first) = server.upload(&camera, &sim_image(5), "a.jpg", None);
    // A crash between the blob write and the record write leaves only the blob.
    let orphan_key = opti_api::ingest::upload_blob_key("line-z", &sim_image(6), "jpg");
    server
        .block_on(
            server
                .store
                .put_blob(&orphan_key, &sim_image(6), "image/jpeg"),
        )
        .expect("put blob");
    server.restart();
    let reviewer = server.token("reviewer");
    let (s, again) = server.get(
        &reviewer,
        &format!("/inspections/{}", first["id"].as_str().unwrap_or("")),
    );
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    let (s, _) = server.get(&camera, "/healthz");
    assert_eq!(s, 200);
    let (_, page) = server.get(&reviewer, "/inspections?camera_id=line-z");
    let items = page["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["image_key"], orphan_key);
}

#[test]
fn the_queue_lists_most_uncertain_first_with_stable_pages() {
    let server = TestServer::start();
    let camera = server.token("camera");
    let admin = server.admin_token.clone();
    // Everything goes to review, so the queue has something to order.
    server.put_json(
        &admin,
        "/config",
        &json!({"threshold": 1.0, "audit_rate": 0.0}),
    );
    for i in 20..26 {
        server.upload(&camera, &sim_image(i), "p.jpg", None);
    }
    let reviewer = server.token("reviewer");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/inspections?status=pending_review&limit=4&cursor={c}"),
            None => "/inspections?status=pending_review&limit=4".into(),
        };
        let (s, page) = server.get(&reviewer, &path);
        assert_eq!(s, 200, "{page}");
        for item in page["items"].as_array().cloned().unwrap_or_default() {
            seen.push((
                item["confidence"].as_f64().unwrap_or(0.0),
                item["id"].clone(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
}

#[test]
fn promote_and_rollback_swap_the_model_without_restart() {
    let server = TestServer::start();
    let admin = server.admin_token.clone();
    let (_, models) = server.get(&admin, "/models");
    let first = models["active"].as_str().unwrap_or_default().to_string();
    let candidate = server.register_candidate("candidate-1", &first);
    let (s, promoted) =
        server.post_json(&admin, &format!("/models/{candidate}/promote"), &json!({}));
    assert_eq!(s, 200, "{promoted}");
    assert_eq!(promoted["status"], "active");
    let camera = server.token("camera");
    let (_, up) = server.upload(&camera, &sim_image(30), "p.jpg", None);
    assert_eq!(up["model_version"], candidate.as_str());
    let (s, rolled) =
        server.post_json(&admin, &format!("/models/{candidate}/rollback"), &json!({}));
    assert_eq!(s, 200, "{rolled}");
    assert_eq!(rolled["version"], first.as_str());
    let (_, up) = server.upload(&camera, &sim_image(31), "p.jpg", None);
    assert_eq!(up["model_version"], first.as_str());
    let (_, audit) = server.get(&admin, "/audit?entity=model/");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(actions, ["model_rolled_back", "model_promoted"], "{audit}");
}

#[test]
fn openapi_lists_every_route_of_the_contract() {
    let server = TestServer::start();
    let (s, body) = server.raw("GET", "/openapi.json", None, b"", None);
    assert_eq!(s, 200);
    let spec: Value = serde_json::from_str(&body).expect("openapi.json is JSON");
    for path in [
        "/upload/",
        "/uploads/presign",
        "/inspections",
        "/inspections/{id}",
        "/inspections/{id}/claim",
        "/inspections/{id}/review",
        "/drift/",
        "/config",
        "/audit",
        "/models",
        "/models/{version}/promote",
        "/models/{version}/rollback",
        "/stats",
        "/healthz",
        "/me",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} missing from /openapi.json"
        );
    }
    let (s, page) = server.raw("GET", "/docs/", None, b"", None);
    assert_eq!(s, 200);
    assert!(page.contains("swagger"), "docs page is Swagger UI");
}

#[test]
fn drift_and_stats_report_the_seed_fields_and_real_counts() {
    let server = TestServer::start();
    let camera = server.token("camera");
    for i in 40..46 {
        server.upload(&camera, &sim_image(i), "p.jpg", None);
    }
    let reviewer = server.token("reviewer");
    let (s, drift) = server.get(&reviewer, "/drift/");
    assert_eq!(s, 200, "{drift}");
    for field in [
        "drift_detected",
        "drift_score",
        "recent_avg",
        "baseline_avg",
    ] {
        assert!(drift.get(field).is_some(), "{field} missing: {drift}");
    }
    // Six inspections are fewer than the default minimum sample: not "no drift" but "not enough data".
    assert_eq!(drift["enough_data"], false);
    let (s, stats) = server.get(&reviewer, "/stats");
    assert_eq!(s, 200, "{stats}");
    assert_eq!(stats["total"], 6);
    let n = server
        .block_on(server.store.count_by_status())
        .expect("counts");
    let queue = n.get(&Status::PendingReview).copied().unwrap_or(0);
    assert_eq!(stats["queue_size"], queue);
    let auto = n.get(&Status::AutoValidated).copied().unwrap_or(0) as f64;
    let rate = stats["automation_rate"].as_f64().unwrap_or(-1.0);
    // Audit samples wait in the queue, so the share is exactly auto-validated / total.
    assert!((rate - auto / 6.0).abs() < 1e-9, "{stats}");
    let hours = stats["throughput"].as_array().cloned().unwrap_or_default();
    assert_eq!(hours.len(), 24);
    assert_eq!(hours[23]["inspections"], 6, "this hour's bucket: {stats}");
}

#[test]
fn drift_compares_the_newest_window_with_the_first_one() {
    let server = TestServer::start();
    let admin = server.admin_token.clone();
    let (s, _) = server.put_json(
        &admin,
        "/config",
        &json!({"drift": {"baseline_window": 4, "recent_window": 3, "min_samples": 3, "tolerance": 0.1}}),
    );
    assert_eq!(s, 200);
    // Oldest first: a confident baseline, an unused middle, an unsure recent window.
    let confidences = [0.9, 0.9, 0.8, 0.8, 0.1, 0.1, 0.5, 0.5, 0.5];
    for (minute, c) in confidences.iter().enumerate() {
        server.insert_inspection("line-a", *c, minute as i64);
    }
    server.insert_inspection("line-b", 0.99, 20);
    let reviewer = server.token("reviewer");
    let (_, all) = server.get(&reviewer, "/drift/");
    // Recent = the 3 newest overall (0.99 from line-b, 0.5, 0.5); baseline = the first 4.
    assert_eq!(all["enough_data"], true, "{all}");
    assert!(
        (all["baseline_avg"].as_f64().unwrap_or(0.0) - 0.85).abs() < 1e-6,
        "{all}"
    );
    let recent_all = (0.99 + 0.5 + 0.5) / 3.0;
    assert!(
        (all["recent_avg"].as_f64().unwrap_or(0.0) - recent_all).abs() < 1e-6,
        "{all}"
    );
    let (_, line_a) = server.get(&reviewer, "/drift/?camera_id=line-a");
    assert!(
        (line_a["recent_avg"].as_f64().unwrap_or(0.0) - 0.5).abs() < 1e-6,
        "{line_a}"
    );
    assert!(
        (line_a["drift_score"].as_f64().unwrap_or(0.0) - 0.35).abs() < 1e-6,
        "{line_a}"
    );
    assert_eq!(line_a["drift_detected"], true);
    let (_, line_b) = server.get(&reviewer, "/drift/?camera_id=line-b");
    assert_eq!(
        line_b["enough_data"], false,
        "one inspection is not enough: {line_b}"
    );
    assert_eq!(line_b["drift_detected"], false);
}

#[test]
fn releasing_a_claim_puts_the_item_back_in_the_queue() {
    let server = TestServer::start();
    let id = server.pending_inspection();
    let alice = server.named_token("reviewer", "alice");
    let (_, claimed) = server.post_json(&alice, &format!("/inspections/{id}/claim"), &json!({}));
    let (s, released) = server.post_json(
        &alice,
        &format!("/inspections/{id}/release"),
        &json!({"version": claimed["version"]}),
    );
    assert_eq!(s, 200, "{released}");
    assert_eq!(released["status"], "pending_review");
    assert!(released["claim"].is_null());
}

#[test]
fn an_abandoned_lease_returns_to_the_queue_by_itself() {
    let server = TestServer::start();
    let id = server.pending_inspection();
    let alice = server.named_token("reviewer", "alice");
    server.post_json(&alice, &format!("/inspections/{id}/claim"), &json!({}));
    let (_, queue) = server.get(&alice, "/inspections?status=pending_review");
    assert_eq!(queue["items"].as_array().map(Vec::len), Some(0));
    server.advance_clock(301);
    let (_, queue) = server.get(&alice, "/inspections?status=pending_review");
    assert_eq!(queue["items"][0]["id"], id.as_str(), "{queue}");
    let (_, audit) = server.get(
        &server.admin_token,
        &format!("/audit?entity=inspection/{id}"),
    );
    assert_eq!(audit["items"][0]["actor"], "system:lease-expiry");
}

#[test]
fn two_reviews_at_the_same_version_give_one_success_and_one_conflict() {
    let server = TestServer::start();
    let id = server.pending_inspection();
    let alice = server.named_token("reviewer", "alice");
    let bob = server.named_token("reviewer", "bob");
    let version = server.get(&alice, &format!("/inspections/{id}")).1["version"].clone();
    let body = json!({"verdict": "ok", "detections": [], "version": version});
    let path = format!("/inspections/{id}/review");
    let (a, b) = std::thread::scope(|scope| {
        let ha = scope.spawn(|| server.post_json(&alice, &path, &body));
        let hb = scope.spawn(|| server.post_json(&bob, &path, &body));
        (ha.join().expect("alice"), hb.join().expect("bob"))
    });
    let mut codes = [a.0, b.0];
    codes.sort_unstable();
    assert_eq!(codes, [200, 409], "alice: {} bob: {}", a.1, b.1);
    let (_, audit) = server.get(
        &server.admin_token,
        &format!("/audit?entity=inspection/{id}&action=reviewed"),
    );
    assert_eq!(
        audit["items"].as_array().map(Vec::len),
        Some(1),
        "one review recorded"
    );
}

#[test]
fn a_partial_config_change_keeps_the_other_settings_and_refuses_unknown_fields() {
    let server = TestServer::start();
    let admin = server.admin_token.clone();
    let (s, first) = server.put_json(
        &admin,
        "/config",
        &json!({"class_thresholds": {"fracture": 0.9}, "drift": {"tolerance": 0.2}}),
    );
    assert_eq!(s, 200, "{first}");
    let (s, second) = server.put_json(&admin, "/config", &json!({"audit_rate": 0.1}));
    assert_eq!(s, 200, "{second}");
    assert_eq!(second["value"]["class_thresholds"]["fracture"], json!(0.9));
    assert_eq!(second["value"]["drift"]["tolerance"], json!(0.2));
    assert_eq!(second["value"]["drift"]["recent_window"], json!(50));
    let (s, b) = server.put_json(&admin, "/config", &json!({"treshold": 0.9}));
    assert_eq!(s, 400, "a typo must not pass silently: {b}");
    let (s, b) = server.put_json(&admin, "/config", &json!({"threshold": 0.7, "version": 0}));
    assert_eq!(s, 409, "stale version: {b}");
    assert_eq!(b["current"]["version"], second["version"]);
    let (s, _) = server.put_json(
        &admin,
        "/config",
        &json!({"threshold": 0.7, "version": u64::MAX}),
    );
    assert_eq!(s, 409);
}

#[test]
fn a_presigned_url_uploads_once_and_forged_image_urls_are_refused() {
    let server = TestServer::start();
    let camera = server.token("camera");
    let (_, p) = server.post_json(
        &camera,
        "/uploads/presign",
        &json!({"content_type": "image/jpeg"}),
    );
    let url = p["url"].as_str().unwrap_or_default().to_string();
    let (s, first) = server.put_url(&url, &sim_image(8), "image/jpeg");
    assert_eq!(s, 200, "{first}");
    let (s, again) = server.put_url(&url, &sim_image(9), "image/jpeg");
    assert_eq!(
        s, 409,
        "a second PUT must not replace an inspected image: {again}"
    );
    let reviewer = server.token("reviewer");
    let id = first["id"].as_str().unwrap_or("").to_string();
    let (_, rec) = server.get(&reviewer, &format!("/inspections/{id}"));
    let image_url = rec["image_url"].as_str().unwrap_or_default().to_string();
    let (s, bytes) = server.get_bytes(&image_url);
    assert_eq!((s, bytes == sim_image(8)), (200, true));
    assert_eq!(
        server.get_bytes(&format!("{image_url}0")).0,
        403,
        "forged signature"
    );
    server.advance_clock(16 * 60);
    assert_eq!(server.get_bytes(&image_url).0, 403, "image URLs expire");
}

#[test]
fn malformed_queries_and_unknown_routes_get_json_errors() {
    let server = TestServer::start();
    let reviewer = server.token("reviewer");
    for bad in [
        "/inspections?limit=0",
        "/inspections?limit=100000",
        "/inspections?status=bogus",
        "/inspections?status=pending_review&cursor=garbage",
    ] {
        let (s, b) = server.get(&reviewer, bad);
        assert_eq!(s, 400, "{bad}: {b}");
        assert!(b["error"].is_string(), "{bad}: {b}");
    }
    let (s, b) = server.get(&reviewer, "/no/such/route");
    assert_eq!(s, 404);
    assert!(b["error"].is_string(), "{b}");
    let (s, b) = server.raw("DELETE", "/config", Some(&reviewer), b"", None);
    assert_eq!(s, 405);
    assert!(b.contains("\"error\""), "{b}");
}

#[test]
fn a_model_that_does_not_load_is_refused_and_the_active_one_stays() {
    let server = TestServer::start();
    let admin = server.admin_token.clone();
    let (_, models) = server.get(&admin, "/models");
    let active = models["active"].as_str().unwrap_or_default().to_string();
    let broken = server.register_candidate("broken-1", &active);
    server
        .block_on(server.store.put_blob(
            "models/broken-1/model.onnx",
            b"not an onnx file",
            "application/octet-stream",
        ))
        .expect("overwrite");
    let (s, b) = server.post_json(&admin, &format!("/models/{broken}/promote"), &json!({}));
    assert_eq!(s, 422, "{b}");
    let (_, models) = server.get(&admin, "/models");
    assert_eq!(models["active"], active.as_str());
    let camera = server.token("camera");
    let (_, up) = server.upload(&camera, &sim_image(33), "p.jpg", None);
    assert_eq!(up["model_version"], active.as_str());
}

#[test]
fn scheduled_drift_evaluation_records_each_window_once_and_alerts_once_per_episode() {
    let server = TestServer::start();
    let admin = server.admin_token.clone();
    let (s, _) = server.put_json(
        &admin,
        "/config",
        &json!({"drift": {"baseline_window": 4, "recent_window": 3, "min_samples": 3, "tolerance": 0.1}}),
    );
    assert_eq!(s, 200);
    // Given a confident baseline and an unsure recent window on line-a…
    for (minute, c) in [0.9, 0.9, 0.8, 0.8, 0.5, 0.5, 0.5].iter().enumerate() {
        server.insert_inspection("line-a", *c, minute as i64);
    }
    // …when the scheduled evaluation runs, it stores a record and opens the episode.
    let (s, first) = server.post_json(&admin, "/drift/evaluate", &json!({}));
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["recorded"], true, "{first}");
    let raised: Vec<&str> = first["raised"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    assert!(raised.contains(&"overall/confidence.mean_drop"), "{first}");
    assert!(
        raised.contains(&"camera:line-a/confidence.mean_drop"),
        "{first}"
    );
    // Running again on the same data stores nothing (idempotent per window).
    let (_, again) = server.post_json(&admin, "/drift/evaluate", &json!({}));
    assert_eq!(again["recorded"], false, "{again}");
    // New data, same episode: a record, but no second alert.
    server.insert_inspection("line-a", 0.45, 10);
    let (_, second) = server.post_json(&admin, "/drift/evaluate", &json!({}));
    assert_eq!(second["recorded"], true, "{second}");
    assert_eq!(second["raised"], json!([]), "{second}");
    assert!(second["open"]
        .as_array()
        .is_some_and(|o| o.iter().any(|v| v == "overall/confidence.mean_drop")));
    // The line recovers: the episode closes.
    for m in 11..14 {
        server.insert_inspection("line-a", 0.85, m);
    }
    let (_, third) = server.post_json(&admin, "/drift/evaluate", &json!({}));
    assert!(
        third["cleared"]
            .as_array()
            .is_some_and(|c| c.iter().any(|v| v == "overall/confidence.mean_drop")),
        "{third}"
    );
    // One audit event for the one alert.
    let (_, audit) = server.get(&admin, "/audit?action=drift_alert");
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
    assert_eq!(audit["items"][0]["actor"], "system:drift");

    // The history lists the three records newest first, as reports with evaluated_at.
    let reviewer = server.token("reviewer");
    let (s, page) = server.get(&reviewer, "/drift/history?limit=2");
    assert_eq!(s, 200, "{page}");
    let items = page["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], third["id"]);
    assert_eq!(items[1]["id"], second["id"]);
    for item in &items {
        for field in [
            "evaluated_at",
            "drift_detected",
            "drift_score",
            "signals",
            "episodes",
        ] {
            assert!(item.get(field).is_some(), "{field} missing: {item}");
        }
    }
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, rest) = server.get(
        &reviewer,
        &format!("/drift/history?limit=2&cursor={cursor}"),
    );
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1), "{rest}");
    assert_eq!(rest["items"][0]["id"], first["id"]);
    assert_eq!(rest["next_cursor"], Value::Null);

    // Bad input is a 4xx, and cameras may not read it nor reviewers trigger it.
    let (s, e) = server.get(&reviewer, "/drift/history?cursor=garbage");
    assert_eq!(s, 400, "{e}");
    let (s, _) = server.get(&reviewer, "/drift/history?limit=0");
    assert_eq!(s, 400);
    let (s, _) = server.get(&server.token("camera"), "/drift/history");
    assert_eq!(s, 403);
    let (s, _) = server.post_json(&reviewer, "/drift/evaluate", &json!({}));
    assert_eq!(s, 403);
}

#[test]
fn me_tells_a_client_who_the_token_belongs_to() {
    let server = TestServer::start();
    let reviewer = server.named_token("reviewer", "rita");
    let (s, me) = server.get(&reviewer, "/me");
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["name"], "rita");
    assert_eq!(me["role"], "reviewer");
    // The shipped model's classes, in class-id order (the annotator's 1-4 keys).
    assert_eq!(
        me["classes"],
        json!(["defect", "fracture", "stain", "misalignment"])
    );
    let (s, _) = server.get("not-a-token", "/me");
    assert_eq!(s, 401);
}
