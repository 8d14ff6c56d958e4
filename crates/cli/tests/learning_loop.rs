//! The learning loop end to end, with every real part: `opti serve` on a fresh data dir
//! with the shipped model, 20 simulated parts uploaded and reviewed with their ground
//! truth, `POST /retrain` running the real Python trainer (1 epoch at imgsz 320 from the
//! shipped weights, with a small replay of the shipped line), the candidate scored in
//! Rust on the holdout, the gate deciding. Checks the candidate's lineage, the stored
//! decision and the audit trail. Needs the trainer venv (`make venv`; OPTI_PYTHON).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opti_sim::{encode_image, generate, ImageFormat, SimParams};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let p = std::env::var_os("OPTI_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/opti-quality/venv/bin/python"))
        })
        .expect("OPTI_PYTHON or HOME");
    assert!(
        p.is_file(),
        "the trainer's Python {} is missing: run `make venv` (or set OPTI_PYTHON)",
        p.display()
    );
    p
}

struct Server {
    child: Child,
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token));
        let bytes = match body {
            Some(b) => {
                req = req.header("Content-Type", "application/json");
                serde_json::to_vec(b).expect("json")
            }
            None => Vec::new(),
        };
        let mut resp = self
            .agent
            .run(req.body(bytes).expect("request"))
            .expect("transport");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn upload(&self, bytes: &[u8], name: &str) -> Value {
        let boundary = "----opti-loop-test";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"camera_id\"\r\n\r\nline-2\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: image/jpeg\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(format!("{}/upload/", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .expect("request");
        let mut resp = self.agent.run(req).expect("upload");
        assert!(matches!(resp.status().as_u16(), 200 | 201), "upload failed");
        serde_json::from_str(&resp.body_mut().read_to_string().expect("body")).expect("json")
    }
}

fn start_server(data: &std::path::Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_opti"))
        .args(["serve", "--port", &port.to_string()])
        .args([
            "--retrain-epochs",
            "1",
            "--retrain-imgsz",
            "320",
            "--retrain-batch",
            "8",
        ])
        .args([
            "--replay-ratio",
            "1",
            "--replay-max",
            "12",
            "--gate-reference-images",
            "8",
        ])
        .arg("--data-dir")
        .arg(data)
        .env("OPTI_PYTHON", python())
        .env("OPTI_TRAINER_DIR", repo().join("trainer"))
        .env("OPTI_MODEL", repo().join("models/default/model.onnx"))
        .env("OPTI_WEB_DIR", data.join("no-web"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start opti serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("is running") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("opti serve did not start");
    let token = std::fs::read_to_string(data.join("admin.token"))
        .expect("admin token")
        .trim()
        .to_string();
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        token,
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into(),
    }
}

#[test]
fn reviewed_parts_become_a_gated_candidate_with_lineage_and_audit() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start_server(dir.path());
    let (s, cfg) = server.call(
        "PUT",
        "/config",
        Some(&json!({"audit_rate": 1.0, "retrain_min": 1000})),
    );
    assert_eq!(s, 200, "{cfg}");
    let (_, models) = server.call("GET", "/models", None);
    let shipped = models["active"].as_str().expect("active").to_string();

    // Given 20 parts of a drifted line, reviewed with their ground truth,
    let names = opti_core::ClassNames::default_line();
    let mut params = SimParams::default();
    params.drift.material_shift = 0.3;
    params.drift.defect_shift = 0.3;
    for i in 0..20 {
        let sample = generate(41, i, &params);
        let jpeg = encode_image(&sample.image, ImageFormat::Jpeg { quality: 90 }).expect("jpeg");
        let up = server.upload(&jpeg, &format!("part-{i}.jpg"));
        let id = up["id"].as_str().expect("id");
        assert_eq!(
            up["model_version"],
            shipped.as_str(),
            "judged by the active model"
        );
        let (s, claimed) = server.call(
            "POST",
            &format!("/inspections/{id}/claim"),
            Some(&json!({})),
        );
        assert_eq!(s, 200, "{claimed}");
        let truth: Vec<Value> = sample
            .labels
            .iter()
            .filter_map(|l| l.to_detection(&names))
            .map(|d| json!({"class": d.class, "confidence": 1.0, "bbox": d.bbox}))
            .collect();
        let verdict = if truth.is_empty() { "ok" } else { "defective" };
        let (s, r) = server.call(
            "POST",
            &format!("/inspections/{id}/review"),
            Some(&json!({"verdict": verdict, "detections": truth, "version": claimed["version"]})),
        );
        assert_eq!(s, 200, "{r}");
    }

    // when an admin starts a retraining,
    let started = Instant::now();
    let (s, job) = server.call("POST", "/retrain", Some(&json!({})));
    assert_eq!(s, 202, "{job}");
    let id = job["id"].as_str().expect("job id").to_string();
    let job = loop {
        let (s, job) = server.call("GET", &format!("/retrain/{id}"), None);
        assert_eq!(s, 200, "{job}");
        if job["status"] != "running" {
            break job;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "the job did not finish in 15 minutes: {job}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let took = started.elapsed();
    eprintln!(
        "learning loop: POST /retrain → gate decision in {:.1} s",
        took.as_secs_f64()
    );

    // then a candidate is registered with its lineage, scored, and gated; all audited.
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["progress"].as_array().map(Vec::len),
        Some(1),
        "one epoch reported"
    );
    assert!(
        job["progress"][0]["losses"]["box_loss"].is_number(),
        "{job}"
    );
    assert_eq!(
        job["snapshot"]["holdout"], 4,
        "20 % of 20 frozen for the gate"
    );
    assert!(
        job["snapshot"]["replay"].as_u64().unwrap_or(0) > 0,
        "replay mixed in"
    );
    let candidate = job["candidate_version"]
        .as_str()
        .expect("candidate")
        .to_string();
    let gate = &job["gate"];
    assert!(gate["promote"].is_boolean());
    assert!(!gate["reasons"].as_array().expect("reasons").is_empty());
    for side in ["candidate", "active"] {
        assert!(gate[side]["overall"]["map50_95"].is_number(), "{gate}");
        assert!(
            gate[side]["slices"]["line:shipped"]["recall"].is_number(),
            "{gate}"
        );
        assert!(
            gate[side]["slices"]["camera:line-2"]["recall"].is_number(),
            "{gate}"
        );
        assert_eq!(gate[side]["images"], 4);
    }
    let (_, models) = server.call("GET", "/models", None);
    let record = models["items"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["version"] == candidate.as_str())
        .expect("candidate registered")
        .clone();
    assert_eq!(record["parent"], shipped.as_str());
    assert_eq!(record["snapshot_id"], job["snapshot_id"]);
    assert!(
        record["trainer"]["versions"]["ultralytics"].is_string(),
        "{record}"
    );
    // The fine-tune recipe reached Ultralytics and is kept with the model.
    let args = &record["trainer"]["args"];
    assert_eq!(args["optimizer"], "AdamW", "{record}");
    assert_eq!(args["lr0"], 0.0003, "{record}");
    assert_eq!(args["warmup_epochs"], 0, "{record}");
    assert!(record["trainer_metrics"]["recall"].is_number(), "{record}");
    assert_eq!(record["measured_metrics"], gate["candidate"]["overall"]);
    let promoted = gate["promote"].as_bool().unwrap_or(false);
    assert_eq!(job["promoted"], promoted);
    if promoted {
        assert_eq!(models["active"], candidate.as_str());
        assert_eq!(record["status"], "active");
    } else {
        assert_eq!(
            models["active"],
            shipped.as_str(),
            "a refused candidate changes nothing"
        );
        assert_eq!(record["status"], "rejected");
    }
    let (_, audit) = server.call("GET", &format!("/audit?entity=retrain/{id}"), None);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec!["retrain_finished", "gate_decided", "retrain_started"]
    );
    let gate_event = audit["items"][1]["after"].clone();
    assert_eq!(gate_event["promote"], promoted);
    assert!(gate_event["candidate_scores"]["overall"].is_object());
    let (_, audit) = server.call("GET", &format!("/audit?entity=model/{candidate}"), None);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"model_registered"), "{actions:?}");
    assert_eq!(actions.contains(&"model_promoted"), promoted, "{actions:?}");
}
