//! Writing a dataset: the folder layout Ultralytics expects, parseable labels, and a
//! manifest that records how it was made.

use opti_core::yolo::parse_label_file;
use opti_sim::{write_dataset, DatasetSpec, ImageFormat, Manifest, SimParams, GENERATOR_VERSION};

#[test]
fn small_dataset_has_images_labels_yaml_and_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let spec = DatasetSpec {
        seed: 4,
        count: 12,
        val_fraction: 0.25,
        params: SimParams {
            width: 320,
            height: 256,
            ..SimParams::default()
        },
        image_format: ImageFormat::Png,
    };
    let done = std::sync::atomic::AtomicUsize::new(0);
    let manifest = write_dataset(dir.path(), &spec, Some("test".into()), &|| {
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(done.into_inner(), 12);
    assert_eq!((manifest.train.images, manifest.val.images), (9, 3));

    for (split, n) in [("train", 9), ("val", 3)] {
        let images: Vec<_> = std::fs::read_dir(dir.path().join("images").join(split))
            .unwrap()
            .collect();
        assert_eq!(images.len(), n);
        for entry in std::fs::read_dir(dir.path().join("labels").join(split)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            parse_label_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let image = dir
                .path()
                .join("images")
                .join(split)
                .join(format!("{stem}.png"));
            let decoded = image::open(&image).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (320, 256));
        }
    }

    let yaml = std::fs::read_to_string(dir.path().join("data.yaml")).unwrap();
    assert!(yaml.contains("train: images/train") && yaml.contains("val: images/val"));
    assert!(yaml.contains("0: \"defect\"") && yaml.contains("3: \"misalignment\""));

    let manifest_file: Manifest =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest_file.generator_version, GENERATOR_VERSION);
    assert_eq!(manifest_file.spec, spec);

    let gt = std::fs::read_to_string(dir.path().join("ground_truth.jsonl")).unwrap();
    assert_eq!(gt.lines().count(), 12);
}

#[test]
fn invalid_knob_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = SimParams::default();
    params.drift.noise_sigma = 3.0;
    let spec = DatasetSpec {
        seed: 1,
        count: 2,
        val_fraction: 0.5,
        params,
        image_format: ImageFormat::default(),
    };
    let err = write_dataset(&dir.path().join("ds"), &spec, None, &|| {}).unwrap_err();
    assert!(err.to_string().contains("noise_sigma"), "{err}");
    assert!(!dir.path().join("ds").exists());
}
