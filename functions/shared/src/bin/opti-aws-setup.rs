//! `opti-aws-setup [MODEL.onnx]`: prepares an AWS-style environment that CloudFormation
//! did not create — moto server or LocalStack for a local run (docs/deploy.md). Creates the
//! table (`OPTI_TABLE`, the layout of template.yaml's `Table`) and the bucket
//! (`OPTI_BUCKET`) when missing, and uploads the seed model under `OPTI_SEED_MODEL_KEY`
//! (its `.json` card and `.pt` weights next to it) unless an object is already there.
//! Endpoint, region and credentials come from the usual AWS variables (`AWS_ENDPOINT_URL`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use opti_core::ports::BlobStore;
use opti_store::aws::AwsStore;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") || args.len() > 1 {
        println!("usage: opti-aws-setup [MODEL.onnx]   (default models/default/model.onnx)");
        if args.len() > 1 {
            bail!("expected at most one argument, got {}", args.len());
        }
        return Ok(());
    }
    let model = PathBuf::from(
        args.first()
            .map(String::as_str)
            .unwrap_or("models/default/model.onnx"),
    );
    let seed_key = std::env::var(opti_lambda::models::SEED_MODEL_ENV)
        .ok()
        .filter(|k| !k.is_empty())
        .with_context(|| format!("{} is not set", opti_lambda::models::SEED_MODEL_ENV))?;
    if !seed_key.ends_with(".onnx") {
        bail!(
            "{} must name an .onnx key, got {seed_key}",
            opti_lambda::models::SEED_MODEL_ENV
        );
    }
    let store = AwsStore::from_env().await?;
    store.create_table_if_missing().await?;
    store.create_bucket_if_missing().await?;
    println!(
        "table {} and bucket {} ready",
        store.table(),
        store.bucket()
    );

    // The model, its card (class names, input size, metrics) and its training weights,
    // as the registry and the retrain function look for them.
    let stem = seed_key.strip_suffix(".onnx").unwrap_or(&seed_key);
    put_if_absent(&store, &seed_key, &model, true).await?;
    for ext in ["json", "pt"] {
        let key = format!("{stem}.{ext}");
        put_if_absent(&store, &key, &model.with_extension(ext), false).await?;
    }
    Ok(())
}

/// Uploads `path` under `key` unless the key exists; a missing optional file is skipped.
async fn put_if_absent(
    store: &AwsStore,
    key: &str,
    path: &std::path::Path,
    required: bool,
) -> anyhow::Result<()> {
    let url = format!("s3://{}/{key}", store.bucket());
    if store
        .blob_size(key)
        .await
        .with_context(|| format!("checking {url}"))?
        .is_some()
    {
        println!("{url} already there, kept");
        return Ok(());
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            println!("{} not found, {url} not seeded", path.display());
            return Ok(());
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
    };
    store
        .put_blob(key, &bytes, "application/octet-stream")
        .await
        .with_context(|| format!("uploading {url}"))?;
    println!("{} -> {url} ({} bytes)", path.display(), bytes.len());
    Ok(())
}
