//! A load-optimised copy of a model, kept between runs so that a process does not parse,
//! type and declutter the ONNX graph again (about two thirds of the ONNX load time).
//!
//! The cache file holds a short text header (format, tract version, the SHA-256 of the
//! ONNX bytes it was made from, the ONNX `metadata_props`) followed by the decluttered
//! graph as a tract NNEF tar. The metadata travels in the header, not in the NNEF:
//! Ultralytics' metadata strings (the `names` dict) break tract's NNEF parser.
//!
//! The graph is stored *before* the project's op rewrites ([`crate::rewrite::speed_up`])
//! and tract's `optimize`, which run again at load: NNEF holds portable ops only, and the
//! project-owned op then needs no NNEF (de)serialisation.
//!
//! A cache is only used when its header names the very ONNX bytes being loaded and this
//! build's format and tract version; anything else (absent, stale, truncated, corrupt) is
//! a miss, and the caller falls back to the ONNX. Writes go to a temporary file in the
//! same folder, renamed into place, so a reader never sees a half-written cache.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tract_nnef::framework::Nnef;
use tract_onnx::prelude::*;
use tract_onnx::WithOnnx;

/// First line of every cache file. Bump the number when the stored graph changes
/// meaning (e.g. a different set of declutter passes).
const MAGIC: &str = "opti-vision model cache 2";
/// The tract the stored graph was written by (the workspace pins it).
const TRACT: &str = "tract 0.23.9";
/// Largest header accepted, in bytes (the metadata of an Ultralytics export is ~1 KiB).
const MAX_HEADER: usize = 1 << 20;

/// Where a detector keeps the load-optimised copy of its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelCache {
    /// Always load the ONNX; never read or write a cache.
    #[default]
    Off,
    /// `<model file>.nnef-cache` next to the ONNX (see [`cache_path_for`]): read when it
    /// matches the ONNX bytes, (re)written otherwise.
    NextToModel,
}

/// The cache file [`ModelCache::NextToModel`] uses for a model: `model.onnx` →
/// `model.onnx.nnef-cache`.
pub fn cache_path_for(model: &Path) -> PathBuf {
    let mut name = model.file_name().unwrap_or_default().to_os_string();
    name.push(".nnef-cache");
    model.with_file_name(name)
}

/// Where a model came from at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadedFrom {
    /// Parsed, typed and decluttered from the ONNX file.
    #[default]
    Onnx,
    /// Read from a cache that matched the ONNX bytes.
    Cache,
}

/// SHA-256 of the ONNX bytes, lower-case hex: the key a cache must carry.
pub fn onnx_key(onnx: &[u8]) -> String {
    Sha256::digest(onnx)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// tract's NNEF framework with the ops a decluttered ONNX graph may hold (building its
/// registries takes ~10 ms: [`lookup`] builds it while the ONNX is hashed).
pub fn nnef() -> Nnef {
    tract_nnef::nnef().with_onnx()
}

/// Why a cache was not used or not written. A miss is never fatal to a load.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("no cache at {0}")]
    Absent(PathBuf),
    #[error("cache {path} is unreadable: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cache {path} is stale or foreign: {reason}")]
    Stale { path: PathBuf, reason: String },
    #[error("cache {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// A cache read back: the ONNX metadata and the decluttered graph.
pub(crate) struct Cached {
    pub metadata: BTreeMap<String, String>,
    pub model: TypedModel,
    /// Why the project's NNEF reader ([`crate::nnef_read`]) declined the graph, when it
    /// was read with tract's own (slower) parser instead; `None` on the fast path.
    pub slow_read: Option<String>,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            _ => return None,
        });
    }
    Some(out)
}

fn header(key: &str, metadata: &BTreeMap<String, String>) -> String {
    let mut h = format!("{MAGIC}\n{TRACT}\nonnx-sha256 {key}\n");
    for (k, v) in metadata {
        h.push_str(&format!("meta {}\t{}\n", escape(k), escape(v)));
    }
    h.push('\n');
    h
}

/// A copy of `model` that tract's NNEF writer serialises faithfully:
/// - no properties: the NNEF parser cannot read Ultralytics' metadata strings back (they
///   go in the cache header instead);
/// - node names `n{id}_{name with [^A-Za-z0-9_] as _}`: NNEF identifiers are made from
///   node names, and two ONNX-derived names can sanitise to the same identifier
///   (`…/Reshape_1.1` and a `…/Reshape_1` output suffixed `_1`), which silently wires
///   the wrong tensor and makes the graph unloadable (seen on YOLO11's attention block
///   in about half of the writes). The `n{id}_` prefix is unique per node.
pub fn nnef_safe(model: &TypedModel) -> TypedModel {
    let mut model = model.clone();
    model.properties.clear();
    for node in model.nodes.iter_mut() {
        let clean: String = node
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        node.name = format!("n{}_{}", node.id, clean.trim_matches('_'));
    }
    let outputs = model.outputs.clone();
    model
        .outlet_labels
        .retain(|outlet, _| outputs.contains(outlet));
    model
}

/// Writes `model` (decluttered, before `optimize`) and the metadata as the cache of the
/// ONNX whose key is `key`, atomically (temporary file in the same folder, then rename).
pub(crate) fn write(
    path: &Path,
    key: &str,
    metadata: &BTreeMap<String, String>,
    model: &TypedModel,
) -> Result<(), CacheError> {
    let corrupt = |reason: String| CacheError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let io = |source| CacheError::Io {
        path: path.to_owned(),
        source,
    };
    let model = nnef_safe(model);
    let mut bytes = header(key, metadata).into_bytes();
    let start = bytes.len();
    nnef()
        .write_to_tar(&model, &mut bytes)
        .map_err(|e| corrupt(format!("cannot serialise the graph as NNEF: {e:#}")))?;
    // Never persist a cache that would not load back.
    nnef()
        .model_for_read(&mut &bytes[start..])
        .map_err(|e| corrupt(format!("the NNEF written does not load back: {e:#}")))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".nnef-cache-")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(&bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The ONNX's key ([`onnx_key`]) and the cache at `path` made from it, if there is one
/// that matches. With a cache file present the ONNX is hashed on another thread while
/// tract's NNEF framework is built, so a cold start waits for the longer of the two only.
pub(crate) fn lookup(path: &Path, onnx: &[u8]) -> (String, Result<Cached, CacheError>) {
    let bytes = match read_bytes(path) {
        Ok(b) => b,
        Err(e) => return (onnx_key(onnx), Err(e)),
    };
    let (key, nnef) = std::thread::scope(|s| {
        let hash = s.spawn(|| onnx_key(onnx));
        let nnef = nnef();
        (hash.join().unwrap_or_else(|_| onnx_key(onnx)), nnef)
    });
    let cached = parse(path, &bytes, &key, &nnef);
    (key, cached)
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, CacheError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => CacheError::Absent(path.to_owned()),
        _ => CacheError::Io {
            path: path.to_owned(),
            source,
        },
    })
}

/// A cache file's text header (without the blank line that ends it) and its NNEF tar.
pub(crate) fn split(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes
        .windows(2)
        .take(MAX_HEADER)
        .position(|w| w == b"\n\n")?;
    Some((&bytes[..end], &bytes[end + 2..]))
}

/// The cache in `bytes` (read from `path`) if it was made from the ONNX whose key is
/// `key` by this build; any mismatch or damage is an error (a miss).
fn parse(path: &Path, bytes: &[u8], key: &str, nnef: &Nnef) -> Result<Cached, CacheError> {
    let stale = |reason: String| CacheError::Stale {
        path: path.to_owned(),
        reason,
    };
    let corrupt = |reason: String| CacheError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let (head, tar) = split(bytes).ok_or_else(|| corrupt("no header".into()))?;
    let head = std::str::from_utf8(head).map_err(|_| corrupt("header is not UTF-8".into()))?;
    let mut lines = head.lines();
    if lines.next() != Some(MAGIC) {
        return Err(stale(format!("not a `{MAGIC}` file")));
    }
    match lines.next() {
        Some(TRACT) => {}
        other => return Err(stale(format!("written by {other:?}, this is {TRACT}"))),
    }
    match lines.next().and_then(|l| l.strip_prefix("onnx-sha256 ")) {
        Some(k) if k == key => {}
        Some(k) => return Err(stale(format!("made from ONNX {k}, the model is {key}"))),
        None => return Err(corrupt("no onnx-sha256 line".into())),
    }
    let mut metadata = BTreeMap::new();
    for line in lines {
        let (k, v) = line
            .strip_prefix("meta ")
            .and_then(|kv| kv.split_once('\t'))
            .and_then(|(k, v)| Some((unescape(k)?, unescape(v)?)))
            .ok_or_else(|| corrupt(format!("bad header line {line:?}")))?;
        metadata.insert(k, v);
    }
    let graph_error = |e: TractError| corrupt(format!("NNEF graph: {e:#}"));
    // The project's reader parses tract's own output ~80x faster than tract's parser
    // (0.5 vs 41 ms for the shipped graph) into the same AST; anything it declines goes
    // through tract's loader.
    let (model, slow_read) = match crate::nnef_read::proto_model(tar) {
        Ok(proto) => (
            nnef.model_for_proto_model(&proto).map_err(graph_error)?,
            None,
        ),
        Err(why) if why.corrupt => return Err(corrupt(format!("NNEF graph: {why}"))),
        Err(why) => (
            nnef.model_for_read(&mut &tar[..]).map_err(graph_error)?,
            Some(why.to_string()),
        ),
    };
    Ok(Cached {
        metadata,
        model,
        slow_read,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_awkward_metadata() {
        for s in ["{0: 'a\tb', 1: \"c\\d\"}", "line\nbreak\r", "", "plain"] {
            assert_eq!(unescape(&escape(s)).as_deref(), Some(s));
            assert!(!escape(s).contains(['\n', '\t']));
        }
        assert_eq!(unescape("bad\\x"), None);
    }

    #[test]
    fn cache_path_sits_next_to_the_model() {
        assert_eq!(
            cache_path_for(Path::new("models/default/model.onnx")),
            Path::new("models/default/model.onnx.nnef-cache")
        );
    }

    #[test]
    fn a_missing_cache_is_absent_and_garbage_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.onnx.nnef-cache");
        let read = |path: &Path, key: &str| {
            read_bytes(path).and_then(|bytes| parse(path, &bytes, key, &nnef()))
        };
        assert!(matches!(read(&path, "k"), Err(CacheError::Absent(_))));
        std::fs::write(&path, b"\x00\x01garbage").expect("write");
        assert!(matches!(read(&path, "k"), Err(CacheError::Corrupt { .. })));
        std::fs::write(&path, format!("{MAGIC}\n{TRACT}\nonnx-sha256 other\n\nxx")).expect("write");
        assert!(matches!(read(&path, "k"), Err(CacheError::Stale { .. })));
        std::fs::write(&path, "opti-vision model cache 1\n\n").expect("write");
        assert!(matches!(read(&path, "k"), Err(CacheError::Stale { .. })));
    }
}
