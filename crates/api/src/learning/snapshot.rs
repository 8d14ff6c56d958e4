//! The dataset snapshot writer: reviewed inspections (verdict + corrected boxes, audit
//! samples included) become a YOLO dataset under `snapshots/{id}/` in the blob store —
//! `images/{train,val,holdout}/`, `labels/…`, `data.yaml`, `manifest.json` — split by
//! [`opti_core::snapshot::plan_splits`]. The id is the content hash of every file, so a
//! snapshot is immutable: the same content always lands on the same id, and an existing
//! snapshot is never written again. Locally the blob store is a folder under the data
//! dir; in AWS it is an S3 prefix.

use std::collections::BTreeMap;

use opti_core::ports::{BlobStore, InspectionOrder, InspectionQuery, InspectionStore, StoreError};
use opti_core::retrain::SnapshotCounts;
use opti_core::snapshot::{
    plan_splits, snapshot_id, PlanItem, PreviousSplit, SnapshotFile, Split, SplitShares,
};
use opti_core::yolo::{format_label_file, YoloLabel};
use opti_core::{ClassNames, Detection, Inspection, Status, Verdict};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// One item of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotEntry {
    pub inspection_id: String,
    pub camera_id: String,
    pub split: Split,
    /// Path of the image inside the snapshot (`images/train/insp_….jpg`).
    pub image: String,
    /// Path of the label file inside the snapshot.
    pub label: String,
    /// The reviewer's boxes (the ground truth), as stored in the label file.
    pub truth: Vec<Detection>,
}

/// `manifest.json` of a snapshot: what it holds and how it was split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotManifest {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub classes: Vec<String>,
    pub holdout_share: f64,
    pub val_share: f64,
    /// The snapshot whose holdout this one kept frozen.
    pub previous: Option<String>,
    pub counts: SnapshotCounts,
    pub entries: Vec<SnapshotEntry>,
    /// Every file and its SHA-256; the id is their hash.
    pub files: Vec<SnapshotFile>,
}

impl SnapshotManifest {
    /// Blob key prefix of the snapshot (`snapshots/{id}/`).
    pub fn prefix(&self) -> String {
        prefix_of(&self.id)
    }

    /// Entries of one split.
    pub fn split(&self, split: Split) -> impl Iterator<Item = &SnapshotEntry> {
        self.entries.iter().filter(move |e| e.split == split)
    }

    /// The split membership this snapshot imposes on the next one.
    pub fn as_previous(&self) -> PreviousSplit {
        PreviousSplit {
            holdout: self
                .split(Split::Holdout)
                .map(|e| e.inspection_id.clone())
                .collect(),
            seen: self
                .entries
                .iter()
                .map(|e| e.inspection_id.clone())
                .collect(),
        }
    }
}

/// `snapshots/{id}/`.
pub fn prefix_of(id: &str) -> String {
    format!("snapshots/{id}/")
}

/// Key of a snapshot's manifest.
pub fn manifest_key(id: &str) -> String {
    format!("{}manifest.json", prefix_of(id))
}

/// Why a snapshot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

/// Reads a stored snapshot's manifest.
pub async fn read_manifest(
    blobs: &dyn BlobStore,
    id: &str,
) -> Result<SnapshotManifest, SnapshotError> {
    let bytes = blobs.get_blob(&manifest_key(id)).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| SnapshotError::Invalid(format!("snapshot {id}: manifest unreadable: {e}")))
}

/// Every reviewed inspection, oldest first.
pub async fn reviewed_inspections(
    inspections: &dyn InspectionStore,
) -> Result<Vec<Inspection>, StoreError> {
    let mut query = InspectionQuery {
        status: Some(Status::Reviewed),
        order: InspectionOrder::Oldest,
        limit: opti_core::ports::MAX_PAGE,
        ..InspectionQuery::default()
    };
    let mut all = Vec::new();
    loop {
        let page = inspections.list_inspections(&query).await?;
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => return Ok(all),
        }
    }
}

/// The label truth of a reviewed inspection: its corrected boxes (an `ok` verdict has
/// none). `None` when it cannot be labelled (a `defective` verdict without any box).
pub fn truth_of(inspection: &Inspection) -> Option<Vec<Detection>> {
    let review = inspection.review.as_ref()?;
    match review.verdict {
        Verdict::Ok => Some(Vec::new()),
        Verdict::Defective if review.detections.is_empty() => None,
        Verdict::Defective => Some(review.detections.clone()),
    }
}

fn extension_of(key: &str) -> String {
    key.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| matches!(e.as_str(), "jpg" | "jpeg" | "png" | "bmp" | "webp"))
        .unwrap_or_else(|| "jpg".into())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The Ultralytics dataset file of a snapshot (paths relative to the file's folder).
pub fn data_yaml(classes: &ClassNames) -> String {
    let mut s = String::from(
        "# Opti-Quality dataset snapshot; the holdout split is for the gate only.\n\
         train: images/train\nval: images/val\n",
    );
    s.push_str(&format!("nc: {}\nnames:\n", classes.len()));
    for (i, n) in classes.iter().enumerate() {
        let quoted = serde_json::to_string(n).unwrap_or_else(|_| format!("\"{n}\""));
        s.push_str(&format!("  {i}: {quoted}\n"));
    }
    s
}

/// Writes the snapshot of `reviewed` (split against `previous`) into `blobs` and returns
/// its manifest. If a snapshot with the same content exists, it is returned untouched.
pub async fn write_snapshot(
    blobs: &dyn BlobStore,
    reviewed: &[Inspection],
    classes: &ClassNames,
    previous: Option<&SnapshotManifest>,
    shares: SplitShares,
    now: OffsetDateTime,
) -> Result<SnapshotManifest, SnapshotError> {
    let mut skipped = 0;
    let mut labelled: Vec<(&Inspection, Vec<Detection>)> = Vec::new();
    for i in reviewed {
        match truth_of(i) {
            Some(truth) => labelled.push((i, truth)),
            None => skipped += 1,
        }
    }
    let plan_items: Vec<PlanItem> = labelled
        .iter()
        .map(|(i, truth)| PlanItem {
            id: i.id.clone(),
            camera_id: i.camera_id.clone(),
            classes: truth.iter().map(|d| d.class.clone()).collect(),
        })
        .collect();
    let prev_split = previous.map(|p| p.as_previous()).unwrap_or_default();
    let plan = plan_splits(&plan_items, &prev_split, shares);

    let mut files: Vec<(SnapshotFile, Vec<u8>)> = Vec::new();
    let mut entries = Vec::new();
    let mut counts = SnapshotCounts {
        skipped,
        ..SnapshotCounts::default()
    };
    let mut seen = BTreeMap::new();
    for (inspection, truth) in &labelled {
        if seen.insert(inspection.id.clone(), ()).is_some() {
            continue;
        }
        let Some(&split) = plan.get(&inspection.id) else {
            continue;
        };
        let image = blobs.get_blob(&inspection.image_key).await?;
        let labels: Vec<YoloLabel> = truth
            .iter()
            .filter_map(|d| YoloLabel::from_detection(d, classes))
            .collect();
        if labels.len() != truth.len() {
            return Err(SnapshotError::Invalid(format!(
                "inspection {}: a reviewed box has a class the model does not know",
                inspection.id
            )));
        }
        let label_text = format_label_file(&labels);
        let image_path = format!(
            "images/{}/{}.{}",
            split.as_str(),
            inspection.id,
            extension_of(&inspection.image_key)
        );
        let label_path = format!("labels/{}/{}.txt", split.as_str(), inspection.id);
        match split {
            Split::Train => counts.train += 1,
            Split::Val => counts.val += 1,
            Split::Holdout => counts.holdout += 1,
        }
        files.push((
            SnapshotFile {
                path: image_path.clone(),
                sha256: sha256_hex(&image),
            },
            image,
        ));
        let label_bytes = label_text.into_bytes();
        files.push((
            SnapshotFile {
                path: label_path.clone(),
                sha256: sha256_hex(&label_bytes),
            },
            label_bytes,
        ));
        entries.push(SnapshotEntry {
            inspection_id: inspection.id.clone(),
            camera_id: inspection.camera_id.clone(),
            split,
            image: image_path,
            label: label_path,
            truth: truth.clone(),
        });
    }
    let yaml = data_yaml(classes).into_bytes();
    files.push((
        SnapshotFile {
            path: "data.yaml".into(),
            sha256: sha256_hex(&yaml),
        },
        yaml,
    ));
    let list: Vec<SnapshotFile> = files.iter().map(|(f, _)| f.clone()).collect();
    let id = snapshot_id(&list);

    // Immutable: an existing snapshot of this content is returned as it is.
    if blobs.blob_size(&manifest_key(&id)).await?.is_some() {
        return read_manifest(blobs, &id).await;
    }
    entries.sort_by(|a, b| a.inspection_id.cmp(&b.inspection_id));
    let mut sorted = list;
    sorted.sort();
    let manifest = SnapshotManifest {
        id: id.clone(),
        created_at: now,
        classes: classes.0.clone(),
        holdout_share: shares.holdout,
        val_share: shares.val,
        previous: previous.map(|p| p.id.clone()),
        counts,
        entries,
        files: sorted,
    };
    let prefix = prefix_of(&id);
    for (file, bytes) in &files {
        let content_type = if file.path.ends_with(".txt") || file.path.ends_with(".yaml") {
            "text/plain"
        } else {
            "application/octet-stream"
        };
        blobs
            .put_blob(&format!("{prefix}{}", file.path), bytes, content_type)
            .await?;
    }
    let body = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| SnapshotError::Invalid(format!("manifest: {e}")))?;
    // The manifest last: its presence marks a complete snapshot.
    blobs
        .put_blob(&manifest_key(&id), &body, "application/json")
        .await?;
    Ok(manifest)
}
