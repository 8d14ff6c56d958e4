//! Dataset snapshots of reviewed inspections: which item goes to train, val or the
//! frozen holdout, and the snapshot's content-hash id. Pure; the writer that copies
//! images and labels lives with the service.
//!
//! Rules:
//! - **Holdout is frozen.** An item that was in the holdout of the previous snapshot
//!   stays there; an item that was in train or val never moves to the holdout (it may
//!   have been trained on). Only items new since the previous snapshot can join it, so
//!   no model ever trains on a holdout item.
//! - **The holdout grows by a fixed share.** After each snapshot it holds
//!   `round(holdout_share × all items)`, minus what could not be taken because older
//!   items are not eligible.
//! - **Stratified and deterministic.** Items are ordered by stratum (camera, then main
//!   class) and within a stratum by the SHA-256 of their id; holdout and val take every
//!   `1/share`-th item of that order (systematic sampling), so every camera and class is
//!   represented in proportion, and the same input gives the same split in any order.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where an item goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Val,
    /// Frozen: used only to judge models (the gate), never trained on.
    Holdout,
}

impl Split {
    /// Folder name (`train`, `val`, `holdout`).
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Holdout => "holdout",
        }
    }
}

/// What the planner needs to know about a reviewed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanItem {
    pub id: String,
    pub camera_id: String,
    /// Class names of the item's corrected boxes (empty for an OK part).
    pub classes: Vec<String>,
}

impl PlanItem {
    /// The stratum: camera and the most frequent class (`ok` for a part without boxes;
    /// ties broken by name).
    pub fn stratum(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &self.classes {
            *counts.entry(c.as_str()).or_default() += 1;
        }
        let main = counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map_or("ok", |(c, _)| c);
        format!("{}|{}", self.camera_id, main)
    }
}

/// Shares of the split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitShares {
    /// Share of all reviewed items kept in the holdout. In [0, 1).
    pub holdout: f64,
    /// Share of the trainable (non-holdout) items used as the trainer's val split. In [0, 1).
    pub val: f64,
}

impl Default for SplitShares {
    fn default() -> Self {
        Self {
            holdout: 0.2,
            val: 0.2,
        }
    }
}

/// The previous snapshot's membership, which constrains the next one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreviousSplit {
    /// Items that were in its holdout.
    pub holdout: BTreeSet<String>,
    /// Every item it held (any split).
    pub seen: BTreeSet<String>,
}

/// Assigns each item a split (see the module rules). Duplicated ids count once.
pub fn plan_splits(
    items: &[PlanItem],
    previous: &PreviousSplit,
    shares: SplitShares,
) -> BTreeMap<String, Split> {
    let mut unique: BTreeMap<&str, &PlanItem> = BTreeMap::new();
    for item in items {
        unique.entry(item.id.as_str()).or_insert(item);
    }
    let mut ordered: Vec<(String, [u8; 32], &PlanItem)> = unique
        .values()
        .map(|i| (i.stratum(), Sha256::digest(i.id.as_bytes()).into(), *i))
        .collect();
    ordered.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));

    let mut plan = BTreeMap::new();
    let frozen = ordered
        .iter()
        .filter(|(_, _, i)| previous.holdout.contains(&i.id))
        .count();
    let target = (shares.holdout.clamp(0.0, 1.0) * ordered.len() as f64).round() as usize;
    let need = target.saturating_sub(frozen);
    let fresh: Vec<&PlanItem> = ordered
        .iter()
        .map(|(_, _, i)| *i)
        .filter(|i| !previous.seen.contains(&i.id))
        .collect();
    let take = need.min(fresh.len());
    for (k, item) in fresh.iter().enumerate() {
        if picked(k, take, fresh.len()) {
            plan.insert(item.id.clone(), Split::Holdout);
        }
    }
    for (_, _, item) in &ordered {
        if previous.holdout.contains(&item.id) {
            plan.insert(item.id.clone(), Split::Holdout);
        }
    }
    let trainable: Vec<&PlanItem> = ordered
        .iter()
        .map(|(_, _, i)| *i)
        .filter(|i| !plan.contains_key(&i.id))
        .collect();
    let n_val = (shares.val.clamp(0.0, 1.0) * trainable.len() as f64).floor() as usize;
    // Keep at least one training item whenever there is one to keep.
    let n_val = n_val.min(trainable.len().saturating_sub(1));
    for (k, item) in trainable.iter().enumerate() {
        let split = if picked(k, n_val, trainable.len()) {
            Split::Val
        } else {
            Split::Train
        };
        plan.insert(item.id.clone(), split);
    }
    plan
}

/// Systematic sampling: whether position `k` of `n` is one of `take` evenly spread picks.
fn picked(k: usize, take: usize, n: usize) -> bool {
    if take == 0 || n == 0 {
        return false;
    }
    // Position k is picked when the running quota floor((k+1)·take/n) steps up at k.
    ((k + 1) * take) / n > (k * take) / n
}

/// One file of a snapshot and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// Path inside the snapshot (`images/train/insp_….jpg`).
    pub path: String,
    pub sha256: String,
}

/// The content-hash id of a snapshot made of `files`: `snap-` and 16 hex digits of the
/// SHA-256 over the sorted (path, hash) list. Same content, same id, whatever the order.
pub fn snapshot_id(files: &[SnapshotFile]) -> String {
    let mut sorted: Vec<&SnapshotFile> = files.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for f in sorted {
        h.update(f.path.as_bytes());
        h.update([0]);
        h.update(f.sha256.as_bytes());
        h.update([b'\n']);
    }
    format!("snap-{}", &hex::encode(h.finalize())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: usize, camera: &str, classes: &[&str]) -> PlanItem {
        PlanItem {
            id: format!("insp_{id:04}"),
            camera_id: camera.into(),
            classes: classes.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn line(n: usize) -> Vec<PlanItem> {
        let classes = [&["stain"][..], &["fracture"], &[], &["defect", "defect"]];
        (0..n)
            .map(|i| item(i, ["cam-a", "cam-b"][i % 2], classes[(i / 2) % 4]))
            .collect()
    }

    #[test]
    fn same_items_in_any_order_give_the_same_split() {
        let items = line(40);
        let mut reversed = items.clone();
        reversed.reverse();
        let a = plan_splits(&items, &PreviousSplit::default(), SplitShares::default());
        let b = plan_splits(&reversed, &PreviousSplit::default(), SplitShares::default());
        assert_eq!(a, b);
        assert_eq!(a.len(), 40);
    }

    #[test]
    fn holdout_and_val_are_stratified_by_camera_and_class() {
        let items = line(80);
        let plan = plan_splits(&items, &PreviousSplit::default(), SplitShares::default());
        let holdout: Vec<&PlanItem> = items
            .iter()
            .filter(|i| plan[&i.id] == Split::Holdout)
            .collect();
        assert_eq!(holdout.len(), 16, "20 % of 80");
        // 8 strata of 10 items each: every stratum gives exactly 2.
        let mut per: BTreeMap<String, usize> = BTreeMap::new();
        for i in &holdout {
            *per.entry(i.stratum()).or_default() += 1;
        }
        assert_eq!(per.len(), 8, "{per:?}");
        assert!(per.values().all(|&n| n == 2), "{per:?}");
        let val = plan.values().filter(|s| **s == Split::Val).count();
        assert_eq!(val, 12, "20 % of the 64 trainable, rounded down");
    }

    #[test]
    fn holdout_is_frozen_and_train_items_never_join_it() {
        let first_items = line(20);
        let first = plan_splits(
            &first_items,
            &PreviousSplit::default(),
            SplitShares::default(),
        );
        let previous = PreviousSplit {
            holdout: first
                .iter()
                .filter(|(_, s)| **s == Split::Holdout)
                .map(|(id, _)| id.clone())
                .collect(),
            seen: first.keys().cloned().collect(),
        };
        assert_eq!(previous.holdout.len(), 4);
        let more = line(50);
        let second = plan_splits(&more, &previous, SplitShares::default());
        for id in &previous.holdout {
            assert_eq!(second[id], Split::Holdout, "{id} stays in the holdout");
        }
        for (id, split) in &first {
            if *split != Split::Holdout {
                assert_ne!(
                    second[id],
                    Split::Holdout,
                    "{id} was trainable; never holdout"
                );
            }
        }
        let holdout = second.values().filter(|s| **s == Split::Holdout).count();
        assert_eq!(holdout, 10, "grown to 20 % of 50");
    }

    #[test]
    fn tiny_sets_keep_a_training_item() {
        let plan = plan_splits(&line(1), &PreviousSplit::default(), SplitShares::default());
        assert_eq!(plan.values().next(), Some(&Split::Train));
        let plan = plan_splits(&line(2), &PreviousSplit::default(), SplitShares::default());
        assert!(plan.values().any(|s| *s == Split::Train));
    }

    #[test]
    fn snapshot_id_is_a_content_hash() {
        let f = |p: &str, h: &str| SnapshotFile {
            path: p.into(),
            sha256: h.into(),
        };
        let a = snapshot_id(&[f("images/train/a.jpg", "11"), f("labels/train/a.txt", "22")]);
        let b = snapshot_id(&[f("labels/train/a.txt", "22"), f("images/train/a.jpg", "11")]);
        let c = snapshot_id(&[f("images/train/a.jpg", "11"), f("labels/train/a.txt", "23")]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("snap-") && a.len() == 21);
    }
}
