//! The snapshot writer on a real store (SQLite + blob folder): reviewed inspections become
//! a YOLO dataset whose id is its content hash; the same content gives the same id and
//! writes nothing new; the holdout stays frozen and is never in train; labels carry the
//! reviewer's boxes; `defective` without a box is skipped.

use std::collections::BTreeSet;

use opti_api::learning::snapshot::{manifest_key, write_snapshot, SnapshotManifest};
use opti_core::ports::{BlobStore, InspectionStore};
use opti_core::snapshot::{Split, SplitShares};
use opti_core::types::{Decision, Detection, Inspection, Review, Status, Verdict};
use opti_core::ClassNames;
use opti_store::LocalStore;
use time::OffsetDateTime;

fn base() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
}

/// Stores reviewed inspection `n` (camera by parity, a stain box on every third, an
/// `ok` verdict otherwise) with a distinct small image.
async fn reviewed(store: &LocalStore, n: u32) -> Inspection {
    let key = format!("raw/cam-{}/part-{n}.jpg", n % 2);
    store
        .put_blob(&key, format!("image bytes {n}").as_bytes(), "image/jpeg")
        .await
        .expect("blob");
    let boxes = if n.is_multiple_of(3) {
        vec![Detection {
            class: "stain".into(),
            confidence: 1.0,
            bbox: [0.1, 0.2, 0.3, 0.4],
        }]
    } else {
        Vec::new()
    };
    let at = base() + time::Duration::minutes(i64::from(n));
    let record = Inspection {
        id: format!("insp_{n:04}"),
        ingest_key: key.clone(),
        image_key: key,
        camera_id: format!("cam-{}", n % 2),
        filename: None,
        captured_at: None,
        created_at: at,
        updated_at: at,
        model_version: "m1".into(),
        detections: Vec::new(),
        decision: Some(Decision::Clean),
        confidence: 0.4,
        threshold_used: 0.6,
        status: Status::Reviewed,
        audit_sample: n.is_multiple_of(5),
        claim: None,
        review: Some(Review {
            reviewer: "rita".into(),
            verdict: if boxes.is_empty() {
                Verdict::Ok
            } else {
                Verdict::Defective
            },
            detections: boxes,
            notes: String::new(),
            reviewed_at: at,
        }),
        rejection_reason: None,
        image_stats: None,
        version: 3,
    };
    store.create_inspection(&record).await.expect("create").0
}

async fn snapshot(
    store: &LocalStore,
    items: &[Inspection],
    previous: Option<&SnapshotManifest>,
) -> SnapshotManifest {
    write_snapshot(
        store,
        items,
        &ClassNames::default_line(),
        previous,
        SplitShares::default(),
        base(),
    )
    .await
    .expect("snapshot")
}

fn ids(m: &SnapshotManifest, split: Split) -> BTreeSet<String> {
    m.split(split).map(|e| e.inspection_id.clone()).collect()
}

#[tokio::test]
async fn same_reviews_give_the_same_snapshot_and_nothing_is_rewritten() {
    let dir = tempfile::tempdir().expect("dir");
    let store = LocalStore::open(dir.path()).expect("store");
    let mut items = Vec::new();
    for n in 0..20 {
        items.push(reviewed(&store, n).await);
    }
    let first = snapshot(&store, &items, None).await;
    assert!(first.id.starts_with("snap-"));
    assert_eq!(
        first.counts.train + first.counts.val + first.counts.holdout,
        20
    );
    assert_eq!(first.counts.holdout, 4);

    // Files are where data.yaml says, and labels carry the reviewer's boxes.
    let keys = store.list_blobs(&first.prefix()).await.expect("list");
    assert!(keys.contains(&format!("{}data.yaml", first.prefix())));
    assert_eq!(
        keys.len(),
        20 * 2 + 2,
        "image + label per item, data.yaml, manifest"
    );
    let stain = first
        .entries
        .iter()
        .find(|e| e.inspection_id == "insp_0003")
        .expect("entry");
    let label = store
        .get_blob(&format!("{}{}", first.prefix(), stain.label))
        .await
        .expect("label");
    let text = String::from_utf8(label).expect("utf8");
    assert!(text.starts_with("2 "), "class id 2 is stain: {text}");
    let ok = first
        .entries
        .iter()
        .find(|e| e.inspection_id == "insp_0001")
        .expect("entry");
    let empty = store
        .get_blob(&format!("{}{}", first.prefix(), ok.label))
        .await
        .expect("label");
    assert!(empty.is_empty(), "an OK part has an empty label file");

    // Same content in another order: same id, and the stored manifest is not rewritten.
    let manifest_before = store.get_blob(&manifest_key(&first.id)).await.expect("m");
    let mut reversed = items.clone();
    reversed.reverse();
    let later = write_snapshot(
        &store,
        &reversed,
        &ClassNames::default_line(),
        None,
        SplitShares::default(),
        base() + time::Duration::hours(5),
    )
    .await
    .expect("again");
    assert_eq!(later.id, first.id);
    assert_eq!(
        later.created_at, first.created_at,
        "the stored snapshot, untouched"
    );
    assert_eq!(
        store.get_blob(&manifest_key(&first.id)).await.expect("m"),
        manifest_before
    );

    // A changed correction is different content: a new id, the old snapshot unchanged.
    let mut changed = items.clone();
    if let Some(review) = changed[3].review.as_mut() {
        review.detections[0].bbox = [0.1, 0.2, 0.35, 0.45];
    }
    let other = snapshot(&store, &changed, None).await;
    assert_ne!(other.id, first.id);
    assert_eq!(
        store.get_blob(&manifest_key(&first.id)).await.expect("m"),
        manifest_before
    );
}

#[tokio::test]
async fn holdout_is_frozen_and_never_in_train_as_reviews_grow() {
    let dir = tempfile::tempdir().expect("dir");
    let store = LocalStore::open(dir.path()).expect("store");
    let mut items = Vec::new();
    for n in 0..20 {
        items.push(reviewed(&store, n).await);
    }
    let first = snapshot(&store, &items, None).await;
    for n in 20..50 {
        items.push(reviewed(&store, n).await);
    }
    let second = snapshot(&store, &items, Some(&first)).await;
    assert_eq!(second.previous.as_deref(), Some(first.id.as_str()));

    let first_holdout = ids(&first, Split::Holdout);
    let second_holdout = ids(&second, Split::Holdout);
    assert!(
        first_holdout.is_subset(&second_holdout),
        "the holdout is frozen"
    );
    assert_eq!(second_holdout.len(), 10, "grown to 20 % of 50");
    let ever_trained: BTreeSet<String> = ids(&first, Split::Train)
        .union(&ids(&first, Split::Val))
        .cloned()
        .collect();
    assert!(ever_trained.is_disjoint(&second_holdout));
    assert!(ids(&second, Split::Train).is_disjoint(&second_holdout));
    // Both cameras are represented in the holdout (stratified).
    let cams: BTreeSet<&str> = second
        .split(Split::Holdout)
        .map(|e| e.camera_id.as_str())
        .collect();
    assert_eq!(cams.len(), 2, "{cams:?}");
}

#[tokio::test]
async fn a_defective_verdict_without_a_box_is_skipped() {
    let dir = tempfile::tempdir().expect("dir");
    let store = LocalStore::open(dir.path()).expect("store");
    let mut items = Vec::new();
    for n in 0..6 {
        items.push(reviewed(&store, n).await);
    }
    if let Some(review) = items[1].review.as_mut() {
        review.verdict = Verdict::Defective;
        review.detections.clear();
    }
    let snap = snapshot(&store, &items, None).await;
    assert_eq!(snap.counts.skipped, 1);
    assert!(!snap.entries.iter().any(|e| e.inspection_id == "insp_0001"));
}
