//! Checks of [`ConfigStore`]: the default at version 0, put with expected version, and
//! `Conflict` on a stale put.

use opti_core::ports::StoreError;
use opti_core::{Config, StoredConfig};

use super::{expect_err, CheckFailure, CheckResult, Context, Ports};

/// A never-written config reads as the default at version 0; a put at the stored
/// version stores it at version + 1; a put at an older version is `Conflict` carrying
/// the stored `StoredConfig` and changes nothing. (One record per store: this assumes
/// no other writer meanwhile, and puts back the value it found.)
pub async fn config_puts_with_expected_version_and_stale_put_conflicts(
    ports: &Ports<'_>,
) -> CheckResult {
    let found = ports.config.get_config().await.ctx("reading the config")?;
    if found.version == 0 {
        ensure_eq!(
            &found.value,
            &Config::default(),
            "a config never written (version 0)"
        );
    }

    let mut changed = found.value.clone();
    changed.threshold = if (changed.threshold - 0.73).abs() < 1e-6 {
        0.74
    } else {
        0.73
    };
    changed.class_thresholds.insert("fracture".into(), 0.9);
    changed.audit_rate = 0.125;
    let stored = ports
        .config
        .put_config(&changed, found.version)
        .await
        .ctx("putting at the stored version")?;
    ensure_eq!(stored.version, found.version + 1, "version after a put");
    ensure_eq!(&stored.value, &changed, "value returned by put");
    let read = ports.config.get_config().await.ctx("reading back")?;
    ensure_eq!(&read, &stored, "config read back");

    let mut late = found.value.clone();
    late.retrain_min = 77;
    let err = expect_err(
        ports.config.put_config(&late, found.version).await,
        "put at a stale version",
    )?;
    let StoreError::Conflict { current, .. } = err else {
        return Err(CheckFailure::new(format!(
            "stale config put gave {err:?}, not Conflict"
        )));
    };
    let current: StoredConfig = serde_json::from_value(*current)
        .map_err(|e| CheckFailure::new(format!("Conflict.current is not a StoredConfig: {e}")))?;
    ensure_eq!(&current, &stored, "Conflict.current of a stale config put");
    let read = ports
        .config
        .get_config()
        .await
        .ctx("reading after conflict")?;
    ensure_eq!(&read, &stored, "config after the refused put");

    let restored = ports
        .config
        .put_config(&found.value, stored.version)
        .await
        .ctx("restoring the config found")?;
    ensure_eq!(
        restored.version,
        found.version + 2,
        "version after restoring"
    );
    Ok(())
}
