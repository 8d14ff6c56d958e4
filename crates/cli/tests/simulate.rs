//! `opti simulate` end to end: a dataset whose labels parse, and a stream whose
//! multipart uploads arrive intact at a listening server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;

use opti_core::yolo::parse_label_file;

fn opti() -> Command {
    Command::new(env!("CARGO_BIN_EXE_opti"))
}

#[test]
fn simulate_writes_a_dataset_whose_labels_parse() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let status = opti()
        .args([
            "simulate",
            "--count",
            "20",
            "--seed",
            "3",
            "--val-fraction",
            "0.2",
            "--width",
            "320",
            "--height",
            "320",
        ])
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());

    let mut labels = 0;
    for split in ["train", "val"] {
        for entry in std::fs::read_dir(out.join("labels").join(split)).unwrap() {
            let path = entry.unwrap().path();
            parse_label_file(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            labels += 1;
        }
    }
    assert_eq!(labels, 20);
    assert_eq!(
        std::fs::read_dir(out.join("images/val")).unwrap().count(),
        4
    );
    assert!(out.join("data.yaml").is_file() && out.join("manifest.json").is_file());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["spec"]["seed"], 3);
    assert!(manifest["command"].as_str().unwrap().contains("simulate"));
}

#[test]
fn simulate_refuses_bad_knobs_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let output = opti()
        .args(["simulate", "--count", "2", "--blur-sigma", "99"])
        .arg("--out")
        .arg(dir.path().join("ds"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("blur_sigma"), "{stderr}");
}

/// One HTTP request as the test server saw it.
struct Received {
    head: String,
    body: Vec<u8>,
}

fn read_request(stream: &mut std::net::TcpStream) -> Received {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    Received { head, body }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn stream_posts_multipart_uploads_and_keeps_the_ground_truth() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for i in 0..3 {
            let (mut stream, _) = listener.accept().unwrap();
            let req = read_request(&mut stream);
            let body = format!("{{\"id\":\"insp_{i}\",\"status\":\"auto_validated\"}}");
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            seen.push(req);
        }
        seen
    });

    let dir = tempfile::tempdir().unwrap();
    let gt = dir.path().join("truth.jsonl");
    let status = opti()
        .args([
            "simulate",
            "--count",
            "3",
            "--seed",
            "5",
            "--rate",
            "20",
            "--token",
            "secret-token",
            "--camera-id",
            "line-1",
        ])
        .args(["--width", "256", "--height", "256"])
        .arg("--target")
        .arg(format!("http://127.0.0.1:{port}/upload/"))
        .arg("--ground-truth")
        .arg(&gt)
        .status()
        .unwrap();
    assert!(status.success());

    let seen = server.join().unwrap();
    for req in &seen {
        assert!(
            req.head.starts_with("POST /upload/ HTTP/1.1"),
            "{}",
            req.head
        );
        let head = req.head.to_ascii_lowercase();
        assert!(
            head.contains("authorization: bearer secret-token"),
            "{}",
            req.head
        );
        assert!(head.contains("content-type: multipart/form-data; boundary="));
        assert!(contains(&req.body, b"name=\"camera_id\"\r\n\r\nline-1\r\n"));
        assert!(contains(
            &req.body,
            b"name=\"file\"; filename=\"sim_5_00000"
        ));
        assert!(
            contains(&req.body, b"Content-Type: image/jpeg\r\n\r\n\xff\xd8"),
            "JPEG bytes must follow the part header"
        );
    }

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&gt)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["filename"], "sim_5_000000.jpg");
    assert_eq!(lines[2]["response"]["id"], "insp_2");
    assert_eq!(lines[1]["http_status"], 200);
    assert!(lines[0]["detections"].is_array());
}

#[test]
fn stream_to_a_closed_port_fails_with_a_message() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let output = opti()
        .args([
            "simulate", "--count", "1", "--width", "128", "--height", "128",
        ])
        .arg("--target")
        .arg(format!("http://127.0.0.1:{port}/upload/"))
        .arg("--ground-truth")
        .arg(dir.path().join("gt.jsonl"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot reach"));
}
