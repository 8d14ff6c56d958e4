//! The learning loop as a new admin lives it, in headless Chromium against a real
//! `opti serve` with the shipped model and the real Python trainer: review a dozen parts
//! through the queue and the annotator (keyboard and mouse, both verdicts, a moved box),
//! open Models, press "Retrain now" (a second press while it runs is refused), watch the
//! job's phase and epochs, and read the finished job's gate decision (its reasons, both
//! score sets) and the new model version with its metrics and lineage — each checked
//! against what the API says.
//!
//! Training is kept short with the options of crates/cli/tests/learning_loop.rs (1 epoch
//! at imgsz 320, batch 8, a replay of at most 12 shipped-line images, 8 reference images
//! for the gate). Screenshots: test-output/web/retrain-*-1366x768.png.

use std::time::{Duration, Instant};

use opti_browser_tests::{free_point, key, Browser, Server, Setup, Trainer, WebDriver};
use serde_json::Value;

const LAPTOP: (u32, u32) = (1366, 768);

/// Reviews made through the UI before retraining.
const REVIEWS: usize = 12;

/// The longest a 1-epoch retraining may take here (≈ 45 s alone on 2 cores).
const TRAINING_PATIENCE: Duration = Duration::from_secs(900);

const PHASES: [&str; 5] = ["snapshot", "train", "evaluate", "gate", "done"];

fn text_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn cells(m: &Value) -> Vec<String> {
    ["precision", "recall", "map50", "map50_95"]
        .iter()
        .map(|k| format!("{:.3}", m[k].as_f64().expect("a metric")))
        .collect()
}

/// The id of the item the annotator shows (from the URL), once it is a new one.
async fn current_item(b: &Browser, reviewed: &[String]) -> String {
    let mut id = String::new();
    b.until("the annotator on a not yet reviewed item", async || {
        let Ok(url) = b.client.current_url().await else {
            return false;
        };
        match url.path().strip_prefix("/review/") {
            Some(i) if !reviewed.iter().any(|r| r == i) => {
                id = i.to_string();
                true
            }
            _ => false,
        }
    })
    .await;
    b.until("the part image decoded", async || {
        b.script(
            "const i = document.getElementById('annotate-image'); return !!(i && i.complete && i.naturalWidth > 0);",
            vec![],
        )
        .await
            == Value::Bool(true)
    })
    .await;
    id
}

#[tokio::test]
async fn admin_reviews_a_dozen_parts_retrains_and_reads_the_gate_and_the_new_model() {
    const NAME: &str = "admin_reviews_a_dozen_parts_retrains_and_reads_the_gate_and_the_new_model";
    let Some(setup) = Setup::detect(NAME) else {
        return;
    };
    let Some(trainer) = Trainer::detect(NAME) else {
        return;
    };
    let started = Instant::now();
    let (python, trainer_dir) = (
        trainer.python.display().to_string(),
        trainer.dir.display().to_string(),
    );
    let server = Server::start(
        &setup,
        &[
            "--python",
            &python,
            "--trainer-dir",
            &trainer_dir,
            "--retrain-epochs",
            "1",
            "--retrain-imgsz",
            "320",
            "--retrain-batch",
            "8",
            "--replay-ratio",
            "1",
            "--replay-max",
            "12",
            "--gate-reference-images",
            "8",
        ],
    );
    // The automatic trigger (10 new reviews by default) would start a job on its own in
    // the middle of the reviews; this journey is about the button.
    let (status, body) = server.call(
        "PUT",
        "/config",
        &server.admin,
        Some(serde_json::json!({"retrain_min": 1000})),
    );
    assert_eq!(status, 200, "PUT /config: {body}");
    let models_before = server.get("/models");
    let shipped = text_of(&models_before["active"]);
    assert_eq!(models_before["items"].as_array().map(Vec::len), Some(1));
    let classes: Vec<String> = server.get("/me")["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(text_of)
        .collect();

    let driver = WebDriver::start(&setup);
    let b = Browser::open(&setup, &driver, &server.base, LAPTOP).await;
    b.login(&server.admin).await;

    // Given a dozen parts reviewed through the UI, starting from the queue.
    b.goto("/queue").await;
    b.find(".queue-item").await;
    let pending = server.pending().len();
    assert!(pending > REVIEWS, "{pending} parts pending");
    b.click(".queue-item .open").await;
    let mut reviewed: Vec<String> = Vec::new();
    let (mut moved, mut relabelled, mut oks) = (None::<String>, None::<String>, 0);
    for n in 0..REVIEWS {
        let id = current_item(&b, &reviewed).await;
        let item = server.get(&format!("/inspections/{id}"));
        let boxes = item["detections"].as_array().map_or(0, Vec::len);
        b.until("the model's boxes drawn", async || {
            b.count("#overlay g.det").await == boxes
        })
        .await;
        b.until("the lease", async || {
            b.try_text("#lease")
                .await
                .is_some_and(|t| t.contains("Your lease"))
        })
        .await;
        if boxes > 0 && moved.is_none() {
            // Mouse: move the model's first box, then draw one more on a free spot.
            let overlay = b.find("#overlay").await;
            let bb = |i: usize| item["detections"][0]["bbox"][i].as_f64().expect("bbox");
            let centre = ((bb(0) + bb(2)) / 2.0, (bb(1) + bb(3)) / 2.0);
            b.drag(&overlay, centre, (20.0, 14.0)).await;
            b.keys(&key::ESCAPE.to_string()).await;
            let dets = item["detections"].as_array().expect("detections");
            b.drag(&overlay, free_point(dets), (60.0, 44.0)).await;
            b.until("the drawn box added", async || {
                b.count("#overlay g.det").await == boxes + 1
            })
            .await;
            b.click("#verdict-defective").await;
            moved = Some(id.clone());
        } else if boxes > 0 && relabelled.is_none() {
            // Keyboard: select the first box and give it another class.
            let old = text_of(&item["detections"][0]["class"]);
            let digit = classes.iter().position(|c| *c != old).expect("a class") + 1;
            b.keys(&format!("b{digit}r")).await;
            relabelled = Some(id.clone());
        } else if boxes == 0 || (n == REVIEWS - 1 && oks == 0) {
            // A part the reviewer finds good (the last one at the latest, so both
            // verdicts are in the data).
            b.keys("a").await;
            oks += 1;
        } else {
            b.keys("r").await;
        }
        // Submit by mouse every other time, by keyboard otherwise.
        if n % 2 == 0 {
            b.click("#submit").await;
        } else {
            b.keys("n").await;
        }
        b.until("the review stored", async || {
            server.get(&format!("/inspections/{id}"))["status"] == "reviewed"
        })
        .await;
        reviewed.push(id);
    }
    let stored: Vec<Value> = reviewed
        .iter()
        .map(|id| server.get(&format!("/inspections/{id}")))
        .collect();
    let verdicts: Vec<String> = stored
        .iter()
        .map(|i| text_of(&i["review"]["verdict"]))
        .collect();
    assert!(
        verdicts.iter().any(|v| v == "ok") && verdicts.iter().any(|v| v == "defective"),
        "both verdicts given: {verdicts:?}"
    );
    let moved = moved.expect("an item with boxes to move");
    let moved_item = stored
        .iter()
        .find(|i| i["id"] == moved.as_str())
        .expect("moved item");
    assert_ne!(
        moved_item["review"]["detections"], moved_item["detections"],
        "the reviewer's boxes differ from the model's"
    );
    assert_eq!(
        moved_item["review"]["detections"].as_array().map(Vec::len),
        moved_item["detections"].as_array().map(|d| d.len() + 1)
    );
    b.goto("/queue").await;
    let left = server.pending().len();
    b.until("the queue without the reviewed parts", async || {
        b.count(".queue-item").await == left
    })
    .await;
    for id in &reviewed {
        assert_eq!(b.count(&format!(".queue-item[data-id=\"{id}\"]")).await, 0);
    }
    b.shot("retrain-1-queue-after-reviews").await;
    let reviews_done = started.elapsed();

    // When the admin opens Models and presses "Retrain now".
    b.click("#nav-models").await;
    b.find(".model-row").await;
    b.find("#retrain-now").await;
    b.click("#retrain-now").await;
    let training = Instant::now();
    b.until("the job started", async || {
        b.try_text("#models-message")
            .await
            .is_some_and(|t| t.contains("Retraining started"))
    })
    .await;
    let jobs = server.get("/retrain");
    let job_id = text_of(&jobs["items"][0]["id"]);
    assert!(!job_id.is_empty(), "{jobs}");
    assert!(b.text("#models-message").await.contains(&job_id));
    // A second press while it runs is refused with the API's reason; still one job.
    b.click("#retrain-now").await;
    b.until("the second start refused", async || {
        b.try_text("#models-message")
            .await
            .is_some_and(|t| t.contains("already running"))
    })
    .await;
    let jobs = server.get("/retrain");
    assert_eq!(jobs["items"].as_array().map(Vec::len), Some(1), "{jobs}");
    assert_eq!(jobs["items"][0]["status"], "running", "{jobs}");

    // Then the page follows the job by itself: phase, epochs.
    let mut seen: Vec<String> = Vec::new();
    let mut running_shot = false;
    b.until_within("the job finished", TRAINING_PATIENCE, async || {
        // One read of the panel, so that a re-render cannot fall between its parts.
        let panel = b
            .script(
                "const d = document.getElementById('job-detail'); if (!d) return null; \
                 const p = document.getElementById('job-progress'); \
                 const c = d.querySelector('.phase-step.current'); \
                 return [d.dataset.id, d.dataset.status, d.dataset.phase, \
                         p ? p.innerText : '', c ? c.dataset.phase : null];",
                vec![],
            )
            .await;
        let field = |i: usize| panel[i].as_str().unwrap_or_default().to_string();
        if panel.is_null() || field(0) != job_id {
            return false;
        }
        let (status, phase) = (field(1), field(2));
        if status == "running" {
            if seen.last() != Some(&phase) {
                seen.push(phase.clone());
            }
            let progress = field(3);
            assert!(
                progress.contains(&format!("/1 · phase {phase}")),
                "progress line {progress:?} for phase {phase}"
            );
            assert_eq!(field(4), phase, "the current step is the job's phase");
            if phase == "train" && !running_shot {
                b.script(
                    "document.getElementById('retrain-now').scrollIntoView()",
                    vec![],
                )
                .await;
                b.shot("retrain-2-job-running").await;
                running_shot = true;
            }
            return false;
        }
        !status.is_empty()
    })
    .await;
    let took = training.elapsed();
    assert!(
        running_shot,
        "the training phase was shown while running: {seen:?}"
    );
    let order: Vec<usize> = seen
        .iter()
        .map(|p| PHASES.iter().position(|q| q == p).expect("a known phase"))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "phases in order: {seen:?}"
    );

    // The finished job as the API has it, and as the page shows it.
    let job = server.get(&format!("/retrain/{job_id}"));
    assert_eq!(
        job["status"],
        "succeeded",
        "{}",
        serde_json::to_string_pretty(&job).unwrap_or_default()
    );
    assert_eq!(
        b.attr("#job-detail", "data-status").await.as_deref(),
        Some("succeeded")
    );
    assert_eq!(b.text("#job-status").await, "succeeded");
    let epochs = job["progress"].as_array().expect("progress");
    assert_eq!(epochs.len(), 1, "{job}");
    assert_eq!(b.count("#job-epochs .epoch-row").await, 1);
    let box_loss = format!(
        "{:.4}",
        epochs[0]["losses"]["box_loss"].as_f64().expect("box_loss")
    );
    let epoch_row = b.text("#job-epochs .epoch-row").await;
    assert!(
        epoch_row.contains(&box_loss),
        "{epoch_row} lacks {box_loss}"
    );
    let holdout = job["snapshot"]["holdout"].as_u64().expect("holdout");
    assert!(holdout > 0, "{job}");
    let snapshot_text = b.text("#job-snapshot").await;
    assert!(
        snapshot_text.contains(&format!("holdout {holdout}"))
            && snapshot_text.contains(&format!(
                "replay {}",
                job["snapshot"]["replay"].as_u64().expect("replay")
            )),
        "{snapshot_text}"
    );

    let gate = &job["gate"];
    let promote = gate["promote"].as_bool().expect("a gate decision");
    assert_eq!(
        b.text("#gate-verdict").await,
        if promote { "promoted" } else { "rejected" }
    );
    assert_eq!(
        b.attr("#gate-decision", "data-promote").await,
        Some(promote.to_string())
    );
    let mut reasons = Vec::new();
    for li in b.all("#gate-reasons .gate-reason").await {
        reasons.push(li.text().await.expect("reason"));
    }
    let api_reasons: Vec<String> = gate["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(text_of)
        .collect();
    assert!(!api_reasons.is_empty());
    assert_eq!(reasons, api_reasons);
    // Both score sets: overall, then every slice (line:shipped, the camera) per side.
    let mut slices: Vec<String> = ["candidate", "active"]
        .iter()
        .flat_map(|side| {
            gate[side]["slices"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect();
    slices.sort();
    slices.dedup();
    assert!(slices.iter().any(|s| s == "line:shipped"), "{slices:?}");
    let mut expected_rows = vec!["overall".to_string()];
    expected_rows.extend(slices);
    let mut shown_rows = Vec::new();
    for row in b.all("#gate-scores .score-row").await {
        shown_rows.push(
            row.attr("data-slice")
                .await
                .expect("attr")
                .expect("data-slice"),
        );
    }
    assert_eq!(shown_rows, expected_rows);
    for slice in &expected_rows {
        let row = format!("#gate-scores .score-row[data-slice=\"{slice}\"]");
        for (side, prefix) in [("candidate", "cand"), ("active", "act")] {
            let scores = if slice == "overall" {
                gate[side]["overall"].clone()
            } else {
                gate[side]["slices"][slice].clone()
            };
            if scores.is_null() {
                continue;
            }
            for (i, want) in cells(&scores).iter().enumerate() {
                let got = b.text(&format!("{row} td.{prefix}-{i}")).await;
                assert_eq!(&got, want, "{side} {slice} metric {i}");
            }
        }
    }
    b.script(
        "document.getElementById('job-detail').scrollIntoView()",
        vec![],
    )
    .await;
    b.shot("retrain-3-job-finished").await;

    // And the new version is listed (without a reload) with its metrics and lineage.
    let models = server.get("/models");
    let candidate = text_of(&job["candidate_version"]);
    let record = models["items"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["version"] == candidate.as_str())
        .expect("the candidate registered")
        .clone();
    let count = models["items"].as_array().map_or(0, Vec::len);
    assert_eq!(count, 2);
    b.until("the new version listed", async || {
        b.count(".model-row").await == count
    })
    .await;
    let row = format!(".model-row[data-version=\"{candidate}\"]");
    assert_eq!(
        b.attr(&row, "data-status").await.as_deref(),
        record["status"].as_str()
    );
    assert_eq!(
        record["status"],
        if promote { "active" } else { "rejected" }
    );
    assert_eq!(b.attr(&row, "data-parent").await, Some(shipped.clone()));
    assert_eq!(
        b.attr(&row, "data-snapshot").await.as_deref(),
        job["snapshot_id"].as_str()
    );
    assert_eq!(
        b.attr(".model-row.active", "data-version").await.as_deref(),
        models["active"].as_str()
    );
    let measured = b.text(&format!("{row} td.measured")).await;
    let m = cells(&record["measured_metrics"]);
    assert_eq!(record["measured_metrics"], gate["candidate"]["overall"]);
    assert!(
        measured.contains(&format!("R {}", m[1]))
            && measured.contains(&format!("mAP50-95 {}", m[3])),
        "{measured} vs {m:?}"
    );
    let trainer_text = b.text(&format!("{row} td.trainer")).await;
    let t = cells(&record["trainer_metrics"]);
    assert!(
        trainer_text.contains(&format!("P {}", t[0]))
            && trainer_text.contains(&format!("mAP50-95 {}", t[3])),
        "{trainer_text} vs {t:?}"
    );
    let lineage = b.text(&format!("{row} td.lineage")).await;
    let snapshot_id = text_of(&job["snapshot_id"]);
    assert!(
        lineage.starts_with(&format!("{candidate} ← {shipped}"))
            && lineage.contains(&snapshot_id[..12]),
        "{lineage}"
    );
    b.script("window.scrollTo(0, 0)", vec![]).await;
    b.shot("retrain-4-models").await;
    b.close().await;
    println!("gate: {}", serde_json::to_string(gate).unwrap_or_default());
    println!(
        "retrain journey: {REVIEWS} reviews in {:.1} s, Retrain → gate decision shown in {:.1} s \
         (phases seen while running: {seen:?}; gate {}), whole test {:.1} s",
        reviews_done.as_secs_f64(),
        took.as_secs_f64(),
        if promote { "promoted" } else { "rejected" },
        started.elapsed().as_secs_f64()
    );
}
