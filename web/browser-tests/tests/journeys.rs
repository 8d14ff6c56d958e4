//! The web UI in headless Chromium against a real `opti serve` with the real model: the
//! reviewer's journey through queue and annotator, the two-reviewer conflict, the
//! dashboard's charts, settings, models, and role-aware navigation. Each test has its
//! own server (fresh data dir, parts streamed by `opti simulate`) and chromedriver.
//! Screenshots go to test-output/web/<page>-<w>x<h>.png.

use opti_browser_tests::{free_point, key, Browser, Server, Setup, WebDriver};
use serde_json::Value;

const LAPTOP: (u32, u32) = (1366, 768);
const DESKTOP: (u32, u32) = (1920, 1080);

fn text_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_bad_token_is_refused_and_a_reviewer_sees_no_admin_pages() {
    let Some(setup) = Setup::detect("a_bad_token_is_refused_and_a_reviewer_sees_no_admin_pages")
    else {
        return;
    };
    let server = Server::start(&setup, &[]);
    let driver = WebDriver::start(&setup);
    let b = Browser::open(&setup, &driver, &server.base, LAPTOP).await;

    // A visitor without a session lands on the login page.
    b.goto("/").await;
    b.type_into("#token", "oq_not-a-real-token").await;
    b.click("#signin").await;
    b.find("#login-error").await;
    assert!(b.text("#login-error").await.contains("not accepted"));
    b.shot("login").await;

    let rex = server.add_user("reviewer", "rex");
    b.login(&rex).await;
    assert!(b.text("#whoami").await.contains("rex · reviewer"));
    assert_eq!(b.count("#nav-queue").await, 1);
    assert_eq!(b.count("#nav-dashboard").await, 1);
    for admin_only in ["#nav-settings", "#nav-audit", "#nav-models"] {
        assert_eq!(
            b.count(admin_only).await,
            0,
            "{admin_only} shown to a reviewer"
        );
    }
    b.goto("/settings").await;
    b.until("the admins-only notice", async || {
        b.try_text("main")
            .await
            .is_some_and(|t| t.contains("Admins only"))
    })
    .await;
    b.close().await;
}

#[tokio::test]
async fn reviewer_fixes_the_most_uncertain_item_by_keyboard_and_mouse() {
    let Some(setup) = Setup::detect("reviewer_fixes_the_most_uncertain_item_by_keyboard_and_mouse")
    else {
        return;
    };
    let server = Server::start(&setup, &[]);
    let driver = WebDriver::start(&setup);
    let ana = server.add_user("reviewer", "ana");
    let b = Browser::open(&setup, &driver, &server.base, LAPTOP).await;
    b.login(&ana).await;

    // Given the queue, most uncertain first, with its count.
    b.goto("/queue").await;
    b.find(".queue-item").await;
    let pending = server.pending();
    assert!(!pending.is_empty());
    let rows = b.all(".queue-item").await;
    assert_eq!(rows.len(), pending.len());
    let mut confidences = Vec::new();
    for r in &rows {
        let c = r
            .attr("data-confidence")
            .await
            .expect("attribute")
            .expect("data-confidence");
        confidences.push(c.parse::<f64>().expect("a number"));
    }
    assert!(
        confidences.windows(2).all(|w| w[0] <= w[1]),
        "most uncertain first: {confidences:?}"
    );
    assert_eq!(b.text("#queue-count").await, pending.len().to_string());
    b.shot("queue").await;
    let queue_before = server.get("/stats")["queue_size"]
        .as_u64()
        .expect("queue_size");

    // When ana opens the most uncertain item that has model boxes to correct.
    let target = pending
        .iter()
        .find(|i| i["detections"].as_array().is_some_and(|d| !d.is_empty()))
        .expect("an item with boxes")
        .clone();
    let id = text_of(&target["id"]);
    let dets = target["detections"].as_array().expect("detections").clone();
    b.click(&format!(".queue-item[data-id=\"{id}\"] .open"))
        .await;
    b.find("#annotator").await;
    b.open_annotator(&id).await;
    b.until("the model's boxes drawn", async || {
        b.count("#overlay g.det").await == dets.len()
    })
    .await;
    assert!(b.text("#lease").await.contains("Your lease"));
    let claimed = server.get(&format!("/inspections/{id}"));
    assert_eq!(claimed["status"], "claimed");
    assert_eq!(claimed["claim"]["reviewer"], "ana");

    // Keyboard: select the first box (B) and give it another class (1-4).
    let classes: Vec<String> = server.get_as("/me", &ana)["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(text_of)
        .collect();
    let old_class = text_of(&dets[0]["class"]);
    let new_class = classes
        .iter()
        .find(|c| **c != old_class)
        .expect("another class")
        .clone();
    let digit = (classes.iter().position(|c| *c == new_class).expect("index") + 1).to_string();
    b.keys(&format!("b{digit}")).await;
    b.until("the first box relabelled", async || {
        b.attr("#overlay g.det[data-index=\"0\"]", "data-class")
            .await
            .as_deref()
            == Some(&new_class)
    })
    .await;

    // Mouse: move that box, then draw a new one on a free spot.
    let overlay = b.find("#overlay").await;
    let bbox = |i: usize| dets[0]["bbox"][i].as_f64().expect("bbox");
    let first = [bbox(0), bbox(1), bbox(2), bbox(3)];
    let centre = ((first[0] + first[2]) / 2.0, (first[1] + first[3]) / 2.0);
    b.drag(&overlay, centre, (24.0, 16.0)).await;
    let start = free_point(&dets);
    b.keys(&format!("{}3", key::ESCAPE)).await; // the next box drawn is a stain
    b.drag(&overlay, start, (70.0, 50.0)).await;
    b.until("the drawn box added", async || {
        b.count("#overlay g.det").await == dets.len() + 1
    })
    .await;
    b.keys("?").await;
    b.find("#help").await;
    b.shot("annotator-help").await;
    b.keys(&format!("{}r", key::ESCAPE)).await;
    b.type_into("#notes", "chipped edge, moved box").await;
    b.shot("annotator").await;
    b.click("#submit").await;

    // Then the review is stored as ana made it and the UI moves on.
    b.until("the item reviewed", async || {
        server.get(&format!("/inspections/{id}"))["status"] == "reviewed"
    })
    .await;
    b.until("moved on to the next item", async || {
        b.client
            .current_url()
            .await
            .is_ok_and(|u| !u.path().ends_with(&format!("/review/{id}")))
    })
    .await;
    let review = server.get(&format!("/inspections/{id}"))["review"].clone();
    assert_eq!(review["reviewer"], "ana");
    assert_eq!(review["verdict"], "defective");
    assert_eq!(review["notes"], "chipped edge, moved box");
    let boxes = review["detections"].as_array().expect("boxes").clone();
    assert_eq!(boxes.len(), dets.len() + 1);
    let moved = &boxes[0];
    assert_eq!(text_of(&moved["class"]), new_class);
    assert_eq!(moved["confidence"], 1.0);
    let m = |i: usize| moved["bbox"][i].as_f64().expect("bbox");
    assert!(
        m(0) > first[0] + 0.005 && m(1) > first[1] + 0.005,
        "moved {moved} from {first:?}"
    );
    let drawn = &boxes[boxes.len() - 1];
    assert_eq!(drawn["class"], "stain");
    assert_eq!(drawn["confidence"], 1.0);
    let d = |i: usize| drawn["bbox"][i].as_f64().expect("bbox");
    assert!(
        (d(0) - start.0).abs() < 0.03 && (d(1) - start.1).abs() < 0.03,
        "{drawn}"
    );

    // The queue shrank (the next item is claimed by ana, still queued; the reviewed one left).
    b.goto("/queue").await;
    b.find("#queue-badge").await;
    assert_eq!(
        server.get("/stats")["queue_size"].as_u64(),
        Some(queue_before - 1)
    );
    let expected = (queue_before - 1).to_string();
    b.until("the badge counts one less", async || {
        b.try_text("#queue-badge").await.as_deref() == Some(expected.as_str())
    })
    .await;
    b.find(".queue-item").await;
    assert_eq!(b.count(&format!(".queue-item[data-id=\"{id}\"]")).await, 0);

    // The audit trail shows the change, before → after.
    let a = Browser::open(&setup, &driver, &server.base, LAPTOP).await;
    a.login(&server.admin).await;
    a.goto("/audit-trail").await;
    a.find(".audit-row").await;
    a.type_into("#audit-entity", &format!("inspection/{id}{}", key::TAB))
        .await;
    let entity = format!("inspection/{id}");
    a.until(
        "only this item's events, its review among them",
        async || {
            let rows = a.all(".audit-row").await;
            let mut all_this = !rows.is_empty();
            for r in &rows {
                all_this &= r.text().await.is_ok_and(|t| t.contains(&entity));
            }
            all_this && a.count(".audit-row[data-action=\"reviewed\"]").await > 0
        },
    )
    .await;
    a.click(".audit-row[data-action=\"reviewed\"] button").await;
    let diff = a.text(".diff").await;
    assert!(
        diff.contains(&new_class) && diff.contains("defective") && diff.contains("reviewed"),
        "{diff}"
    );
    a.shot("audit").await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn two_reviewers_on_one_item_get_the_conflict_and_keep_their_work() {
    let Some(setup) =
        Setup::detect("two_reviewers_on_one_item_get_the_conflict_and_keep_their_work")
    else {
        return;
    };
    let server = Server::start(&setup, &[]);
    let driver = WebDriver::start(&setup);
    let (bob_token, cy_token) = (
        server.add_user("reviewer", "bob"),
        server.add_user("reviewer", "cy"),
    );
    let bob = Browser::open(&setup, &driver, &server.base, LAPTOP).await;
    let cy = Browser::open(&setup, &driver, &server.base, DESKTOP).await;
    bob.login(&bob_token).await;
    cy.login(&cy_token).await;
    let item = server
        .pending()
        .into_iter()
        .find(|i| i["detections"].as_array().is_some_and(|d| !d.is_empty()))
        .expect("an item with boxes");
    let id = text_of(&item["id"]);
    let boxes = item["detections"].as_array().map_or(0, Vec::len);

    // Given bob holds the lease, cy opens the same item and is told so.
    bob.open_annotator(&id).await;
    bob.until("bob's lease", async || {
        bob.try_text("#lease")
            .await
            .is_some_and(|t| t.contains("Your lease"))
    })
    .await;
    cy.open_annotator(&id).await;
    cy.find("#claim-conflict").await;
    assert!(cy.text("#claim-conflict").await.contains("bob"));
    // cy works on it anyway: deletes a box, judges it defective.
    cy.keys("bdr").await;
    cy.until("cy's box deleted", async || {
        cy.count("#overlay g.det").await == boxes - 1
    })
    .await;

    // When bob submits first (defective, as the model says) and cy submits afterwards.
    bob.keys("rn").await;
    bob.until("bob's review stored", async || {
        server.get(&format!("/inspections/{id}"))["status"] == "reviewed"
    })
    .await;
    cy.keys("n").await;

    // Then cy sees the 409 with bob's result, and cy's own work is still there.
    cy.find("#submit-conflict").await;
    let other = cy.text("#other-result").await;
    assert!(
        other.contains("bob") && other.contains("defective"),
        "{other}"
    );
    assert_eq!(
        cy.attr("#verdict-defective", "aria-pressed")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(cy.count("#overlay g.det").await, boxes - 1);
    assert_eq!(cy.count("#unsaved").await, 1);
    let url = cy.client.current_url().await.expect("url");
    assert!(url.path().ends_with(&format!("/review/{id}")), "{url}");
    cy.shot("conflict").await;
    let stored = server.get(&format!("/inspections/{id}"));
    assert_eq!(stored["review"]["reviewer"], "bob");
    assert_eq!(
        stored["review"]["detections"].as_array().map(Vec::len),
        Some(boxes)
    );

    // And reload shows the stored review.
    cy.click("#conflict-reload").await;
    cy.until("the reviewed record after reload", async || {
        cy.try_text("#record-status")
            .await
            .is_some_and(|t| t.contains("reviewed"))
    })
    .await;
    bob.close().await;
    cy.close().await;
}

#[tokio::test]
async fn dashboard_draws_its_charts_with_the_live_numbers() {
    let Some(setup) = Setup::detect("dashboard_draws_its_charts_with_the_live_numbers") else {
        return;
    };
    let server = Server::start(&setup, &[]);
    let driver = WebDriver::start(&setup);
    let stats = server.get("/stats");
    let drift = server.get("/drift/");
    let throughput = stats["throughput"].as_array().expect("throughput").clone();
    for size in [DESKTOP, LAPTOP] {
        let d = Browser::open(&setup, &driver, &server.base, size).await;
        d.login(&server.admin).await;
        d.goto("/dashboard").await;
        d.find("#chart-throughput svg").await;
        d.find("#chart-drift svg").await;
        let bars = d.all("#chart-throughput rect.bar").await;
        assert_eq!(bars.len(), 2 * throughput.len());
        assert_eq!(bars.len(), 48);
        let mut drawn = 0.0;
        for bar in &bars {
            let v = bar
                .attr("data-value")
                .await
                .expect("attr")
                .expect("data-value");
            drawn += v.parse::<f64>().expect("a number");
        }
        let expected: f64 = throughput
            .iter()
            .map(|h| {
                h["inspections"].as_f64().unwrap_or(0.0) + h["reviewed"].as_f64().unwrap_or(0.0)
            })
            .sum();
        assert!(expected > 0.0);
        assert_eq!(drawn, expected);
        assert_eq!(
            d.text("#kpi-total .tile-value").await,
            stats["total"].to_string()
        );
        assert_eq!(
            d.text("#kpi-queue .tile-value").await,
            stats["queue_size"].to_string()
        );
        assert_eq!(
            d.count("#chart-defects rect.bar").await,
            stats["defect_rate_by_class"]
                .as_object()
                .map_or(0, |m| m.len())
        );
        assert_eq!(
            d.text("#model-version").await,
            text_of(&stats["model_version"])
        );
        let baseline = format!(
            "baseline {:.3}",
            drift["baseline_avg"].as_f64().expect("baseline_avg")
        );
        let numbers = d.text("#drift-numbers").await;
        assert!(numbers.contains(&baseline), "{numbers} lacks {baseline}");
        d.shot("dashboard").await;
        d.close().await;
    }
}

#[tokio::test]
async fn admin_changes_settings_and_bad_values_are_refused() {
    let Some(setup) = Setup::detect("admin_changes_settings_and_bad_values_are_refused") else {
        return;
    };
    let server = Server::start(&setup, &[]);
    let driver = WebDriver::start(&setup);
    let d = Browser::open(&setup, &driver, &server.base, LAPTOP).await;
    d.login(&server.admin).await;
    let before = server.get("/config");
    d.goto("/settings").await;
    d.fill("#set-retrain-min", "37").await;
    d.click("#settings-save").await;
    d.until("saved", async || {
        d.try_text("#settings-message")
            .await
            .is_some_and(|t| t.contains("Saved"))
    })
    .await;
    let after = server.get("/config");
    assert_eq!(after["value"]["retrain_min"], 37);
    assert_eq!(
        after["version"].as_u64(),
        before["version"].as_u64().map(|v| v + 1)
    );
    assert_eq!(after["value"]["threshold"], before["value"]["threshold"]);
    let audit = server.get("/audit?action=config_changed");
    assert_eq!(
        audit["items"][0]["actor"]
            .as_str()
            .map(|a| a.contains("admin")),
        Some(true),
        "{audit}"
    );

    // An audit rate above 1 is refused and nothing changes.
    d.fill("#set-audit-rate", "1.5").await;
    d.click("#settings-save").await;
    d.until("the refusal names the field", async || {
        d.try_text("#settings-message")
            .await
            .is_some_and(|t| t.contains("audit_rate"))
    })
    .await;
    assert_eq!(server.get("/config"), after);
    d.shot("settings").await;
    d.close().await;
}

#[tokio::test]
async fn admin_sees_models_with_lineage_and_the_retraining_panel() {
    let Some(setup) = Setup::detect("admin_sees_models_with_lineage_and_the_retraining_panel")
    else {
        return;
    };
    let server = Server::start(&setup, &[]);
    let driver = WebDriver::start(&setup);
    let d = Browser::open(&setup, &driver, &server.base, LAPTOP).await;
    d.login(&server.admin).await;
    assert_eq!(d.count("#nav-models").await, 1);
    assert_eq!(d.count("#nav-settings").await, 1);
    let models = server.get("/models");
    d.goto("/model-registry").await;
    d.find(".model-row").await;
    assert_eq!(
        d.count(".model-row").await,
        models["items"].as_array().map_or(0, Vec::len)
    );
    assert_eq!(
        d.attr(".model-row.active", "data-version").await,
        models["active"].as_str().map(str::to_string)
    );
    d.find("#jobs-table, #retrain-unavailable, .empty").await;
    d.shot("models").await;
    d.close().await;
}

/// Copies the built UI into `to` with `config.js` pointing `apiBase` at `api`.
fn ui_for_api(from: &std::path::Path, to: &std::path::Path, api: &str) {
    for entry in std::fs::read_dir(from).expect("web/dist") {
        let entry = entry.expect("dist entry");
        if entry.file_type().expect("file type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
    let config = format!("window.OPTI_CONFIG = {{ apiBase: {api:?}, loginUrl: \"\" }};\n");
    std::fs::write(to.join("config.js"), config).expect("config.js");
}

#[tokio::test]
async fn a_ui_served_from_another_origin_works_when_the_api_allows_that_origin() {
    let Some(setup) =
        Setup::detect("a_ui_served_from_another_origin_works_when_the_api_allows_that_origin")
    else {
        return;
    };
    // Given the UI served by one server (the "site", like S3/CloudFront) whose config.js
    // points at an API on another origin started with --cors-origin <site>.
    let site_port = opti_browser_tests::free_port();
    let site_origin = format!("http://127.0.0.1:{site_port}");
    let api = Server::start_bare(
        &setup,
        opti_browser_tests::free_port(),
        &setup.web_dist,
        &["--cors-origin", &site_origin],
    );
    api.feed(&setup);
    let dist = api.scratch("site-dist");
    ui_for_api(&setup.web_dist, &dist, &api.base);
    let site = Server::start_bare(&setup, site_port, &dist, &[]);
    assert_ne!(site.base, api.base);

    // The API answers preflights from the site and from nowhere else.
    assert_eq!(
        api.preflight("/me", &site_origin, "GET").as_deref(),
        Some(site_origin.as_str())
    );
    assert_eq!(api.preflight("/me", "http://evil.example", "GET"), None);

    // When a reviewer signs in on the site with a token of the API and opens an item.
    let driver = WebDriver::start(&setup);
    let b = Browser::open(&setup, &driver, &site.base, LAPTOP).await;
    let dee = api.add_user("reviewer", "dee");
    b.login(&dee).await;
    assert!(b.text("#whoami").await.contains("dee · reviewer"));
    b.goto("/queue").await;
    b.find(".queue-item").await;
    assert_eq!(b.count(".queue-item").await, api.pending().len());
    let id = b.attr(".queue-item", "data-id").await.expect("an item id");
    b.open_annotator(&id).await;
    b.until("dee's lease (a cross-origin POST)", async || {
        b.try_text("#lease")
            .await
            .is_some_and(|t| t.contains("Your lease"))
    })
    .await;

    // Then the claim reached the API, and the site's own server saw nothing of it.
    assert_eq!(
        api.get(&format!("/inspections/{id}"))["claim"]["reviewer"],
        "dee"
    );
    assert_eq!(site.pending().len(), 0);
    b.shot("cross-origin").await;
    b.close().await;
}
