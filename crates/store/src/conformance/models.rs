//! Checks of [`ModelRegistry`]: register/get/list, duplicates, conditional updates, and
//! the active pointer's compare-and-set.

use opti_core::ports::StoreError;
use opti_core::{ModelRecord, ModelStatus};

use super::fixtures::{at, base_time, model};
use super::{expect_err, run_tag, CheckFailure, CheckResult, Context, Ports};

async fn register_all(ports: &Ports<'_>, models: &[&ModelRecord]) -> CheckResult {
    for m in models {
        ports
            .models
            .register_model(m)
            .await
            .ctx("registering a model")?;
    }
    Ok(())
}

/// Registered versions read back, list newest first, and a taken version is
/// `AlreadyExists` with the first registration kept.
pub async fn model_registry_registers_lists_newest_first_and_refuses_duplicates(
    ports: &Ports<'_>,
) -> CheckResult {
    let tag = run_tag();
    let base = base_time();
    let v = |n: i64| format!("v-{tag}-{n}");
    let m1 = model(&v(1), at(base, 0));
    let mut m2 = model(&v(2), at(base, 1));
    m2.parent = Some(v(1));
    m2.snapshot_id = Some(format!("snap-{tag}"));
    let m3 = model(&v(3), at(base, 2));
    register_all(ports, &[&m2, &m1, &m3]).await?;

    let read = ports.models.get_model(&m2.version).await.ctx("get")?;
    ensure_eq!(&read, &m2, "model read back");

    let mut impostor = m1.clone();
    impostor.artifact_key = "models/elsewhere.onnx".into();
    let err = expect_err(
        ports.models.register_model(&impostor).await,
        "registering a taken version",
    )?;
    ensure!(
        matches!(err, StoreError::AlreadyExists { .. }),
        "registering a taken version gave {err:?}, not AlreadyExists"
    );
    let read = ports.models.get_model(&m1.version).await.ctx("get")?;
    ensure_eq!(&read, &m1, "model after a refused duplicate");

    let listed = ports.models.list_models().await.ctx("list")?;
    let ours: Vec<&str> = listed
        .iter()
        .map(|m| m.version.as_str())
        .filter(|version| version.starts_with(&format!("v-{tag}-")))
        .collect();
    ensure_eq!(ours, vec![v(3), v(2), v(1)], "models, newest first");

    let err = expect_err(
        ports.models.get_model(&format!("v-{tag}-missing")).await,
        "get of a missing version",
    )?;
    ensure!(
        matches!(err, StoreError::NotFound { .. }),
        "get of a missing version gave {err:?}, not NotFound"
    );
    Ok(())
}

/// An update at the stored `record_version` stores it at + 1; a stale one is
/// `Conflict` with the stored record; a missing version is `NotFound`.
pub async fn model_update_is_conditional_on_record_version(ports: &Ports<'_>) -> CheckResult {
    let tag = run_tag();
    let original = model(&format!("v-{tag}"), base_time());
    register_all(ports, &[&original]).await?;

    let mut gated = original.clone();
    gated.status = ModelStatus::Rejected;
    gated.measured_metrics = Some(opti_core::MetricSet {
        precision: 0.8,
        recall: 0.7,
        map50: 0.75,
        map50_95: 0.5,
    });
    let stored = ports
        .models
        .update_model(&gated, 1)
        .await
        .ctx("update at record_version 1")?;
    ensure_eq!(stored.record_version, 2, "record_version after an update");
    ensure_eq!(
        stored.status,
        ModelStatus::Rejected,
        "status after an update"
    );
    let read = ports.models.get_model(&original.version).await.ctx("get")?;
    ensure_eq!(&read, &stored, "model read back");

    let mut late = original.clone();
    late.status = ModelStatus::Active;
    let err = expect_err(
        ports.models.update_model(&late, 1).await,
        "update at a stale record_version",
    )?;
    let StoreError::Conflict { current, .. } = err else {
        return Err(CheckFailure::new(format!(
            "stale model update gave {err:?}, not Conflict"
        )));
    };
    let current: ModelRecord = serde_json::from_value(*current)
        .map_err(|e| CheckFailure::new(format!("Conflict.current is not a model: {e}")))?;
    ensure_eq!(
        &current,
        &stored,
        "Conflict.current of a stale model update"
    );

    let ghost = model(&format!("v-{tag}-ghost"), base_time());
    let err = expect_err(
        ports.models.update_model(&ghost, 1).await,
        "update of a missing version",
    )?;
    ensure!(
        matches!(err, StoreError::NotFound { .. }),
        "update of a missing version gave {err:?}, not NotFound"
    );
    Ok(())
}

/// The active pointer moves only from the value the caller read: a stale move is
/// `Conflict` carrying the pointer as it is (a JSON string), of two racing moves from
/// the same value exactly one wins, and an unregistered version is `NotFound`.
pub async fn active_model_pointer_moves_by_compare_and_set(ports: &Ports<'_>) -> CheckResult {
    let tag = run_tag();
    let base = base_time();
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|n| model(&format!("v-{tag}-{n}"), base));
    register_all(ports, &[&a, &b, &c, &d]).await?;

    let found = ports
        .models
        .active_model()
        .await
        .ctx("reading the pointer")?;
    ports
        .models
        .set_active_model(&a.version, found.as_deref())
        .await
        .ctx("moving the pointer from the value read")?;
    let now = ports
        .models
        .active_model()
        .await
        .ctx("reading the pointer")?;
    ensure_eq!(
        now.as_deref(),
        Some(a.version.as_str()),
        "pointer after a move"
    );

    // `found` is stale now: it is not `a`.
    let err = expect_err(
        ports
            .models
            .set_active_model(&b.version, found.as_deref())
            .await,
        "moving the pointer from a stale value",
    )?;
    let StoreError::Conflict { current, .. } = err else {
        return Err(CheckFailure::new(format!(
            "stale pointer move gave {err:?}, not Conflict"
        )));
    };
    ensure_eq!(
        *current,
        serde_json::Value::String(a.version.clone()),
        "Conflict.current of a stale pointer move"
    );

    ports
        .models
        .set_active_model(&b.version, Some(&a.version))
        .await
        .ctx("moving the pointer from a to b")?;

    let (to_c, to_d) = tokio::join!(
        ports.models.set_active_model(&c.version, Some(&b.version)),
        ports.models.set_active_model(&d.version, Some(&b.version)),
    );
    let winner = match (&to_c, &to_d) {
        (Ok(()), Err(StoreError::Conflict { .. })) => &c.version,
        (Err(StoreError::Conflict { .. }), Ok(())) => &d.version,
        _ => {
            return Err(CheckFailure::new(format!(
            "two racing moves from b: expected one Ok and one Conflict, got {to_c:?} and {to_d:?}"
        )))
        }
    };
    let now = ports
        .models
        .active_model()
        .await
        .ctx("reading the pointer")?;
    ensure_eq!(now.as_ref(), Some(winner), "pointer after the race");

    let err = expect_err(
        ports
            .models
            .set_active_model(&format!("v-{tag}-unregistered"), Some(winner))
            .await,
        "pointing at an unregistered version",
    )?;
    ensure!(
        matches!(err, StoreError::NotFound { .. }),
        "pointing at an unregistered version gave {err:?}, not NotFound"
    );
    let now = ports
        .models
        .active_model()
        .await
        .ctx("reading the pointer")?;
    ensure_eq!(now.as_ref(), Some(winner), "pointer after a refused move");
    Ok(())
}
