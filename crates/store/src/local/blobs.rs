//! Blobs as files under the blob root, one file per key.
//!
//! A put writes a hidden temp file (`.tmp-…`) in the target's directory, fsyncs it,
//! renames it over the target and fsyncs the directory: readers see the old bytes or
//! the new, and a crash leaves at worst a stray temp file. Keys can never name such a
//! file (no segment starts with `.`) and listings skip them, so a torn write is never
//! visible. Keys are validated by [`crate::blob_key`] before they touch the filesystem.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use opti_core::ports::{BlobStore, StoreError};

use super::error::LocalError;
use super::LocalStore;
use crate::blob_key::{prefix_dir, validate_key, validate_prefix};

/// Prefix of the temp files a put writes before its rename.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The file path of a validated `key` (or key directory) under `root`.
fn path_of(root: &Path, key: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(key.split('/').filter(|s| !s.is_empty()));
    path
}

fn not_found(key: &str) -> LocalError {
    LocalError::NotFound {
        entity: "blob",
        id: key.to_owned(),
    }
}

/// No file at that path: missing, or a parent is a file rather than a directory.
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn put(root: &Path, key: &str, bytes: &[u8]) -> Result<(), LocalError> {
    validate_key(key)?;
    let path = path_of(root, key);
    let dir = path.parent().unwrap_or(root);
    fs::create_dir_all(dir)
        .map_err(|e| LocalError::io(format!("creating blob dir for {key}"), e))?;
    let temp = dir.join(format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_synced(&temp, bytes).and_then(|()| fs::rename(&temp, &path));
    if let Err(e) = written {
        // Best effort: the temp file is invisible anyway, this only saves space.
        let _ = fs::remove_file(&temp);
        return Err(LocalError::io(format!("writing blob {key}"), e));
    }
    sync_dir(dir).map_err(|e| LocalError::io(format!("syncing blob dir of {key}"), e))
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a rename in `dir` durable. Directories cannot be opened for sync on Windows,
/// where the rename is durable enough through NTFS's journal.
fn sync_dir(dir: &Path) -> io::Result<()> {
    if cfg!(unix) {
        File::open(dir)?.sync_all()
    } else {
        Ok(())
    }
}

fn get(root: &Path, key: &str) -> Result<Vec<u8>, LocalError> {
    validate_key(key)?;
    let path = path_of(root, key);
    match fs::read(&path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if is_absent(&e) || path.is_dir() => Err(not_found(key)),
        Err(e) => Err(LocalError::io(format!("reading blob {key}"), e)),
    }
}

fn size(root: &Path, key: &str) -> Result<Option<u64>, LocalError> {
    validate_key(key)?;
    match fs::metadata(path_of(root, key)) {
        Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
        Ok(_) => Ok(None),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(LocalError::io(format!("reading size of blob {key}"), e)),
    }
}

fn delete(root: &Path, key: &str) -> Result<(), LocalError> {
    validate_key(key)?;
    let path = path_of(root, key);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        // Deleting what is not there is done, as in S3.
        Err(e) if is_absent(&e) || path.is_dir() => Ok(()),
        Err(e) => Err(LocalError::io(format!("deleting blob {key}"), e)),
    }
}

fn list(root: &Path, prefix: &str) -> Result<Vec<String>, LocalError> {
    validate_prefix(prefix)?;
    let start_dir = prefix_dir(prefix);
    let mut keys = Vec::new();
    // Iterative walk from the deepest directory the prefix names; symlinks are not
    // followed, hidden and temp files are skipped.
    let mut pending = vec![(path_of(root, start_dir), start_dir.to_owned())];
    while let Some((dir, dir_key)) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(LocalError::io(format!("listing blobs under {prefix}"), e)),
        };
        for entry in entries {
            let entry =
                entry.map_err(|e| LocalError::io(format!("listing blobs under {prefix}"), e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let key = if dir_key.is_empty() {
                name
            } else {
                format!("{dir_key}/{name}")
            };
            // Skips temp files, hidden files and anything not written through a valid key.
            if validate_key(&key).is_err() {
                continue;
            }
            let file_type = entry
                .file_type()
                .map_err(|e| LocalError::io(format!("listing blobs under {prefix}"), e))?;
            if file_type.is_dir() {
                // Only descend where keys under this directory can still match.
                if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) {
                    pending.push((entry.path(), key));
                }
            } else if file_type.is_file() && key.starts_with(prefix) {
                keys.push(key);
            }
        }
    }
    keys.sort();
    Ok(keys)
}

#[async_trait]
impl BlobStore for LocalStore {
    /// Atomic and durable; `content_type` is not kept (the local server infers it).
    async fn put_blob(
        &self,
        key: &str,
        bytes: &[u8],
        _content_type: &str,
    ) -> Result<(), StoreError> {
        let key = key.to_owned();
        let bytes = bytes.to_vec();
        self.with_blobs(move |root| put(root, &key, &bytes)).await
    }

    async fn get_blob(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let key = key.to_owned();
        self.with_blobs(move |root| get(root, &key)).await
    }

    async fn blob_size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let key = key.to_owned();
        self.with_blobs(move |root| size(root, &key)).await
    }

    /// Deleting a missing key succeeds.
    async fn delete_blob(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.with_blobs(move |root| delete(root, &key)).await
    }

    async fn list_blobs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = prefix.to_owned();
        self.with_blobs(move |root| list(root, &prefix)).await
    }
}
