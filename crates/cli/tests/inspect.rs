//! `opti inspect` on a folder with the shipped model: rows in input order whatever the
//! number of workers, a corrupt file as a `rejected` row, bad `--jobs` refused.

use std::path::Path;
use std::process::{Command, Output};

fn opti() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_opti"));
    // The shipped model is found relative to the repository root.
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c
}

fn inspect(dir: &Path, jobs: &str) -> Output {
    opti()
        .args(["inspect", "--format", "jsonl", "--jobs", jobs])
        .arg(dir)
        .output()
        .expect("run opti inspect")
}

#[test]
fn workers_keep_input_order_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = dir.path().join("ds");
    let status = opti()
        .args(["simulate", "--count", "9", "--seed", "11", "--out"])
        .arg(&ds)
        .status()
        .expect("simulate");
    assert!(status.success());
    let images = ds.join("images");
    // A truncated JPEG among them: a rejected row, the run goes on.
    let first = std::fs::read_dir(images.join("train"))
        .expect("train images")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .min()
        .expect("one image");
    let bytes = std::fs::read(&first).expect("read image");
    std::fs::write(images.join("train/zz-torn.jpg"), &bytes[..bytes.len() / 3]).expect("write");

    let one = inspect(&images, "1");
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&one.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect();
    assert_eq!(rows.len(), 10, "9 images and the torn one");
    let paths: Vec<&str> = rows
        .iter()
        .map(|r| r["path"].as_str().expect("path"))
        .collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    assert_eq!(paths, sorted, "rows in path order");
    let torn = rows
        .iter()
        .find(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("zz-torn.jpg"))
        })
        .expect("torn row");
    assert_eq!(torn["status"], "rejected");
    assert!(rows
        .iter()
        .filter(|r| r["status"] != "rejected")
        .all(|r| r["confidence"].is_number()));

    for jobs in ["3", "16"] {
        let many = inspect(&images, jobs);
        assert!(many.status.success());
        assert_eq!(
            String::from_utf8_lossy(&many.stdout),
            String::from_utf8_lossy(&one.stdout),
            "--jobs {jobs} gives the rows of --jobs 1, in the same order"
        );
    }

    let zero = inspect(&images, "0");
    assert!(!zero.status.success());
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--jobs must be at least 1"));
}
