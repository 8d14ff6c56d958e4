//! The load-optimised model cache (`opti_vision::cache`) on the shipped model: written
//! on the first load, used on the next, and any stale, truncated or corrupt cache falls
//! back to the ONNX (and is rewritten) instead of failing the load or changing answers.
//! Parity of the cached path with onnxruntime and Ultralytics is in `tests/parity.rs`.

use std::path::{Path, PathBuf};

use opti_vision::cache::onnx_key;
use opti_vision::{cache_path_for, Detector, DetectorOptions, LoadedFrom, ModelCache};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default/model.onnx")
}

/// A copy of the shipped model in a fresh folder, so that `NextToModel` writes there.
fn model_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("model.onnx");
    std::fs::copy(shipped(), &model).expect("copy model");
    (dir, model)
}

fn options() -> DetectorOptions {
    DetectorOptions {
        cache: ModelCache::NextToModel,
        ..DetectorOptions::default()
    }
}

/// Raw output on a fixed, non-trivial input.
fn output(d: &Detector) -> Vec<f32> {
    let info = d.info();
    let (w, h) = (info.input_width, info.input_height);
    let img = opti_vision::RgbImage::from_fn(w, h, |x, y| {
        opti_vision::image::Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let input = d.tensor_from_letterboxed(&img).expect("tensor");
    d.infer(input).expect("infer").data
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

#[test]
fn the_cache_is_written_on_first_load_and_used_on_the_next() {
    let (_dir, model) = model_copy();
    let cache = cache_path_for(&model);
    let first = Detector::load(&model, options()).expect("load");
    assert_eq!(first.info().loaded_from, LoadedFrom::Onnx);
    assert!(cache.is_file(), "{:?}", first.info().cache_note);
    let second = Detector::load(&model, options()).expect("load");
    assert_eq!(
        second.info().loaded_from,
        LoadedFrom::Cache,
        "{:?}",
        second.info().cache_note
    );
    assert_eq!(second.info().cache_note, None);
    assert_eq!(second.info().names, first.info().names);
    assert_eq!(second.info().metadata, first.info().metadata);
    assert_eq!(second.info().layout, first.info().layout);
    assert_eq!(second.info().rewrites, first.info().rewrites);
    let d = max_diff(&output(&first), &output(&second));
    assert!(d <= 1e-4, "cached model answers differently: {d}");
    // No temporary file is left behind by the atomic write.
    let leftovers: Vec<_> = std::fs::read_dir(model.parent().expect("dir"))
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "model.onnx" && n != "model.onnx.nnef-cache")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn cache_off_neither_reads_nor_writes() {
    let (_dir, model) = model_copy();
    let d = Detector::load(&model, DetectorOptions::default()).expect("load");
    assert_eq!(d.info().loaded_from, LoadedFrom::Onnx);
    assert!(!cache_path_for(&model).exists());
}

/// Each damaged cache is a miss: the ONNX is loaded, the answers are the ONNX's, and the
/// cache is rewritten so that the next load uses it.
#[test]
fn stale_truncated_or_corrupt_caches_fall_back_to_the_onnx() {
    let (_dir, model) = model_copy();
    let cache = cache_path_for(&model);
    let reference = output(&Detector::load(&model, options()).expect("load"));
    let good = std::fs::read(&cache).expect("cache written");
    let key = onnx_key(&std::fs::read(&model).expect("model"));
    // Made from other ONNX bytes (the model was replaced since): only the header's key
    // differs, the NNEF part is intact.
    let stale = {
        let at = good
            .windows(key.len())
            .position(|w| w == key.as_bytes())
            .expect("key in header");
        let mut b = good.clone();
        b[at..at + key.len()].copy_from_slice("0".repeat(key.len()).as_bytes());
        b
    };
    let truncated = good[..good.len() / 2].to_vec();
    let mut corrupt = good.clone();
    let n = corrupt.len();
    corrupt[n - 4096..].fill(0xff);
    // Header intact, NNEF graph nested far deeper than any writer emits: a miss, never
    // handed to tract's recursive parser (its stack overflow would abort the process).
    let too_deep = {
        let end = good
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("header end");
        let text = format!(
            "version 1.0;\ngraph g() -> (a) {{\n  a = {}1{};\n}}\n",
            "[".repeat(1_000_000),
            "]".repeat(1_000_000)
        );
        let mut tar = tar::Builder::new(good[..end + 2].to_vec());
        let mut entry = tar::Header::new_gnu();
        entry.set_size(text.len() as u64);
        entry.set_mode(0o644);
        entry.set_cksum();
        tar.append_data(&mut entry, "graph.nnef", text.as_bytes())
            .expect("tar entry");
        tar.into_inner().expect("tar")
    };
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("stale", stale, "stale"),
        ("truncated", truncated, "corrupt"),
        ("corrupt tail", corrupt, "corrupt"),
        ("not a cache", b"hello\n\nworld".to_vec(), "stale"),
        ("graph nested too deep", too_deep, "corrupt"),
    ];
    for (label, bytes, why) in cases {
        std::fs::write(&cache, &bytes).expect("write damaged cache");
        let d = Detector::load(&model, options()).expect("a damaged cache must not fail the load");
        assert_eq!(d.info().loaded_from, LoadedFrom::Onnx, "{label}");
        let note = d.info().cache_note.clone().unwrap_or_default();
        assert!(note.contains(why), "{label}: {note}");
        assert!(max_diff(&reference, &output(&d)) <= 1e-6, "{label}");
        let again = Detector::load(&model, options()).expect("load");
        assert_eq!(
            again.info().loaded_from,
            LoadedFrom::Cache,
            "{label}: rewritten ({:?})",
            again.info().cache_note
        );
    }
}

#[test]
fn an_unwritable_cache_location_does_not_fail_the_load() {
    let (dir, model) = model_copy();
    // The cache path is a folder: it can be neither read as a file nor replaced.
    let cache = dir.path().join("cache-is-a-dir");
    std::fs::create_dir(&cache).expect("mkdir");
    let bytes = std::fs::read(&model).expect("model");
    let d = Detector::from_onnx_bytes(&bytes, &model, DetectorOptions::default(), Some(&cache))
        .expect("load without a usable cache");
    assert_eq!(d.info().loaded_from, LoadedFrom::Onnx);
    assert!(d
        .info()
        .cache_note
        .as_deref()
        .is_some_and(|n| n.contains("not rewritten")));
}

/// A cache that reads back (header and NNEF fine) but cannot be used — here its metadata
/// lost the class names — still gives a working detector: loaded from the ONNX, with the
/// reason noted, and the cache rewritten so that the next load uses it.
#[test]
fn a_cache_that_reads_back_but_is_unusable_falls_back_and_is_rewritten() {
    let (_dir, model) = model_copy();
    let cache = cache_path_for(&model);
    let first = Detector::load(&model, options()).expect("load");
    assert!(first.info().cache_written, "{:?}", first.info().cache_note);
    let bytes = std::fs::read(&cache).expect("cache");
    let end = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("header end");
    let header = String::from_utf8(bytes[..end].to_vec()).expect("utf-8 header");
    let without_names: Vec<&str> = header
        .lines()
        .filter(|l| !l.starts_with("meta names\t"))
        .collect();
    assert!(without_names.len() < header.lines().count(), "a names line");
    let mut damaged = without_names.join("\n").into_bytes();
    damaged.extend_from_slice(&bytes[end..]);
    std::fs::write(&cache, &damaged).expect("write damaged cache");

    let second = Detector::load(&model, options()).expect("falls back to the ONNX");
    assert_eq!(second.info().loaded_from, LoadedFrom::Onnx);
    assert!(second.info().cache_written);
    let note = second.info().cache_note.clone().unwrap_or_default();
    assert!(
        note.contains("not usable") && note.contains("names"),
        "{note}"
    );
    assert_eq!(second.info().names, first.info().names);
    assert!(max_diff(&output(&first), &output(&second)) <= 1e-4);

    let third = Detector::load(&model, options()).expect("load");
    assert_eq!(third.info().loaded_from, LoadedFrom::Cache);
}
