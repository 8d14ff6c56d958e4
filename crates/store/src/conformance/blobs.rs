//! Checks of [`BlobStore`]: put/get/overwrite/size/delete, missing keys, sorted and
//! scoped listings, and refusal of unsafe keys.

use opti_core::ports::StoreError;

use super::{expect_err, run_tag, CheckResult, Context, Ports};

/// Bytes read back as written (binary, and empty), an overwrite replaces them whole,
/// `blob_size` follows, and a deleted blob is gone.
pub async fn blobs_put_get_overwrite_size_and_delete(ports: &Ports<'_>) -> CheckResult {
    let root = format!("conformance/{}", run_tag());
    let key = format!("{root}/raw/cam-1/a.jpg");
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    ports
        .blobs
        .put_blob(&key, &bytes, "image/jpeg")
        .await
        .ctx("put")?;
    let read = ports.blobs.get_blob(&key).await.ctx("get")?;
    ensure!(
        read == bytes,
        "blob read back differs ({} bytes)",
        read.len()
    );
    let size = ports.blobs.blob_size(&key).await.ctx("size")?;
    ensure_eq!(size, Some(bytes.len() as u64), "blob size");

    ports
        .blobs
        .put_blob(&key, b"second", "image/jpeg")
        .await
        .ctx("overwrite")?;
    let read = ports
        .blobs
        .get_blob(&key)
        .await
        .ctx("get after overwrite")?;
    ensure_eq!(read, b"second".to_vec(), "blob after overwrite");
    let size = ports
        .blobs
        .blob_size(&key)
        .await
        .ctx("size after overwrite")?;
    ensure_eq!(size, Some(6), "blob size after overwrite");

    let empty = format!("{root}/empty.bin");
    ports
        .blobs
        .put_blob(&empty, b"", "application/octet-stream")
        .await
        .ctx("put of an empty blob")?;
    let read = ports
        .blobs
        .get_blob(&empty)
        .await
        .ctx("get of an empty blob")?;
    ensure!(read.is_empty(), "empty blob read back {} bytes", read.len());
    let size = ports
        .blobs
        .blob_size(&empty)
        .await
        .ctx("size of an empty blob")?;
    ensure_eq!(size, Some(0), "size of an empty blob");

    for k in [&key, &empty] {
        ports.blobs.delete_blob(k).await.ctx("delete")?;
        let err = expect_err(ports.blobs.get_blob(k).await, "get after delete")?;
        ensure!(
            matches!(err, StoreError::NotFound { .. }),
            "get after delete gave {err:?}, not NotFound"
        );
        let size = ports.blobs.blob_size(k).await.ctx("size after delete")?;
        ensure_eq!(size, None, "size after delete");
    }
    let left = ports
        .blobs
        .list_blobs(&format!("{root}/"))
        .await
        .ctx("list after delete")?;
    ensure!(left.is_empty(), "deleted blobs are still listed: {left:?}");
    Ok(())
}

/// A key never written is `NotFound` on get, `None` on size, and deleting it succeeds.
pub async fn missing_blob_is_not_found_and_delete_is_idempotent(ports: &Ports<'_>) -> CheckResult {
    let key = format!("conformance/{}/never-written.jpg", run_tag());
    let err = expect_err(ports.blobs.get_blob(&key).await, "get of a missing blob")?;
    ensure!(
        matches!(err, StoreError::NotFound { .. }),
        "get of a missing blob gave {err:?}, not NotFound"
    );
    let size = ports
        .blobs
        .blob_size(&key)
        .await
        .ctx("size of a missing blob")?;
    ensure_eq!(size, None, "size of a missing blob");
    ports
        .blobs
        .delete_blob(&key)
        .await
        .ctx("delete of a missing blob")?;
    let listed = ports
        .blobs
        .list_blobs(&format!("conformance/{}/", run_tag()))
        .await
        .ctx("listing an unused prefix")?;
    ensure!(listed.is_empty(), "an unused prefix listed {listed:?}");
    Ok(())
}

/// Listing returns the keys under the prefix, sorted; a prefix may end mid-name (as in
/// S3), and keys of a sibling prefix sharing its letters are not included.
pub async fn blob_listing_is_sorted_and_scoped_by_prefix(ports: &Ports<'_>) -> CheckResult {
    let tag = run_tag();
    let root = format!("conformance/{tag}");
    let sibling = format!("conformance/{tag}x/raw/o.jpg");
    let relative = [
        "raw/cam-b/2.jpg",
        "raw/cam-a/1.jpg",
        "raw/cam-a/0.jpg",
        "raw/cam-ab/x.jpg",
        "models/v1/model.onnx",
    ];
    let keys: Vec<String> = relative.iter().map(|k| format!("{root}/{k}")).collect();
    for key in keys.iter().chain(std::iter::once(&sibling)) {
        ports
            .blobs
            .put_blob(key, key.as_bytes(), "application/octet-stream")
            .await
            .ctx("put")?;
    }
    let k = |rel: &str| format!("{root}/{rel}");
    let cases = [
        (format!("{root}/"), {
            let mut all = keys.clone();
            all.sort();
            all
        }),
        (
            format!("{root}/raw/cam-a/"),
            vec![k("raw/cam-a/0.jpg"), k("raw/cam-a/1.jpg")],
        ),
        (
            format!("{root}/raw/cam-a"),
            vec![
                k("raw/cam-a/0.jpg"),
                k("raw/cam-a/1.jpg"),
                k("raw/cam-ab/x.jpg"),
            ],
        ),
        (format!("{root}/mod"), vec![k("models/v1/model.onnx")]),
        (format!("{root}/nothing/"), vec![]),
    ];
    for (prefix, expected) in cases {
        let got = ports.blobs.list_blobs(&prefix).await.ctx("list")?;
        ensure_eq!(got, expected, "keys under {prefix:?}");
    }
    let wide = ports
        .blobs
        .list_blobs(&format!("conformance/{tag}"))
        .await
        .ctx("list of a prefix shared with a sibling")?;
    ensure!(
        wide.contains(&sibling) && wide.len() == keys.len() + 1,
        "prefix without '/' should also match the sibling: {wide:?}"
    );
    let mut sorted = wide.clone();
    sorted.sort();
    ensure_eq!(wide, sorted, "listing order");

    for key in keys.iter().chain(std::iter::once(&sibling)) {
        ports.blobs.delete_blob(key).await.ctx("cleanup")?;
    }
    Ok(())
}

/// Keys that could climb out of the blob root, address hidden files, or mean
/// different things on different backends are refused by every operation.
pub async fn unsafe_blob_keys_are_refused(ports: &Ports<'_>) -> CheckResult {
    let tag = run_tag();
    let unsafe_keys = [
        String::new(),
        "../escape.jpg".to_owned(),
        format!("conformance/{tag}/../../escape.jpg"),
        format!("/conformance/{tag}/abs.jpg"),
        format!("conformance/{tag}//double.jpg"),
        format!("conformance/{tag}/trailing/"),
        format!("conformance/{tag}/nul\0.jpg"),
        format!("conformance/{tag}/.hidden"),
        format!("conformance/{tag}/back\\slash.jpg"),
        format!("conformance/{tag}/sp ace.jpg"),
    ];
    for key in &unsafe_keys {
        let shown = format!("{key:?}");
        expect_err(
            ports.blobs.put_blob(key, b"x", "text/plain").await,
            &format!("put of unsafe key {shown}"),
        )?;
        expect_err(
            ports.blobs.get_blob(key).await,
            &format!("get of unsafe key {shown}"),
        )?;
        expect_err(
            ports.blobs.blob_size(key).await,
            &format!("size of unsafe key {shown}"),
        )?;
        expect_err(
            ports.blobs.delete_blob(key).await,
            &format!("delete of unsafe key {shown}"),
        )?;
    }
    for prefix in ["../", "/", "a/../"] {
        expect_err(
            ports.blobs.list_blobs(prefix).await,
            &format!("listing unsafe prefix {prefix:?}"),
        )?;
    }
    let listed = ports
        .blobs
        .list_blobs(&format!("conformance/{tag}/"))
        .await
        .ctx("listing the run's prefix")?;
    ensure!(listed.is_empty(), "refused keys left blobs: {listed:?}");
    Ok(())
}
