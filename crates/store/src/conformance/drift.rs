//! Checks of [`DriftHistory`]: create-if-absent by id, every field read back, newest-first
//! pages that stay stable while records arrive, and cursor validation. They take the
//! history port alone (`&dyn DriftHistory`) and run through [`run_drift_all`], so an
//! adapter adds the drift history without changing [`Ports`](super::Ports).
//!
//! Records carry a fresh run tag in their ids and only the tagged ones are compared, so
//! the checks are safe on reused tables.

use opti_core::drift::{advance_episodes, drift_report, DriftRecord};
use opti_core::ports::{DriftHistory, DriftQuery, StoreError};
use opti_core::DriftConfig;
use time::OffsetDateTime;

use super::fixtures::{at, base_time};
use super::{ensure_unique_ids, expect_err, run_tag, CheckFailure, CheckResult, Context};

/// A realistic record: a confidence drop that alarms, with its episode opened.
fn record(id: &str, evaluated_at: OffsetDateTime, drop: f32) -> DriftRecord {
    let cfg = DriftConfig {
        min_samples: 5,
        ..DriftConfig::default()
    };
    let baseline = [0.9, 0.85, 0.95, 0.9, 0.88, 0.92];
    let recent: Vec<f32> = baseline.iter().map(|c| c - drop).collect();
    let report = drift_report(&baseline, &recent, &cfg);
    DriftRecord {
        id: id.to_owned(),
        evaluated_at,
        window_key: format!("window-{id}"),
        episodes: advance_episodes(&[], &report),
        report,
    }
}

/// Every page of the history.
async fn list_all(
    history: &dyn DriftHistory,
    mut query: DriftQuery,
) -> Result<Vec<DriftRecord>, CheckFailure> {
    let mut items = Vec::new();
    for _ in 0..10_000 {
        let page = history
            .list_drift_records(&query)
            .await
            .ctx("listing drift records")?;
        if query.limit > 0 {
            ensure!(
                page.items.len() <= query.limit as usize,
                "a drift page held {} items for limit {}",
                page.items.len(),
                query.limit
            );
        }
        items.extend(page.items);
        match page.next_cursor {
            None => return Ok(items),
            Some(next) => query.cursor = Some(next),
        }
    }
    Err(CheckFailure::new(
        "drift listing did not end after 10000 pages",
    ))
}

/// A second put under the same id returns `false` and keeps the first record; every
/// field (the flattened report, signals, episodes, times) reads back as written.
pub async fn drift_record_put_is_create_if_absent_and_round_trips(
    history: &dyn DriftHistory,
) -> CheckResult {
    let tag = run_tag();
    let id = format!("drift-{tag}-a");
    let first = record(&id, base_time(), 0.3);
    ensure!(
        !first.report.signals.is_empty() && !first.episodes.open.is_empty(),
        "fixture record should carry signals and an open episode"
    );
    let stored = history
        .put_drift_record(&first)
        .await
        .ctx("putting a drift record")?;
    ensure!(stored, "the first put of {id} said it was already stored");
    let second = record(&id, at(base_time(), 60), 0.0);
    let again = history
        .put_drift_record(&second)
        .await
        .ctx("putting a drift record again")?;
    ensure!(!again, "a second put of {id} said it stored a new record");
    let all = list_all(history, DriftQuery::default()).await?;
    let found: Vec<&DriftRecord> = all.iter().filter(|r| r.id == id).collect();
    ensure_eq!(found.len(), 1, "records listed under {id}");
    ensure_eq!(found[0], &first, "the record as read back");
    Ok(())
}

/// Records list newest first by `evaluated_at` (not by insertion order), ties by id
/// descending; pages stay stable while newer and older records arrive between fetches.
pub async fn drift_history_lists_newest_first_with_stable_pages(
    history: &dyn DriftHistory,
) -> CheckResult {
    let tag = run_tag();
    let base = base_time();
    let mut records: Vec<DriftRecord> = [3, 0, 6, 1, 5, 2, 4]
        .into_iter()
        .map(|s| record(&format!("drift-{tag}-{s}"), at(base, s), 0.01 * s as f32))
        .collect();
    // Two records evaluated at the same instant: the larger id lists first.
    records.push(record(&format!("drift-{tag}-6b"), at(base, 6), 0.2));
    for r in &records {
        history
            .put_drift_record(r)
            .await
            .ctx("putting a drift record")?;
    }
    let mut query = DriftQuery {
        limit: 3,
        cursor: None,
    };
    let mut seen: Vec<DriftRecord> = Vec::new();
    for n in 0..1000 {
        let page = history
            .list_drift_records(&query)
            .await
            .ctx("listing drift records")?;
        ensure!(
            page.items.len() <= 3,
            "a drift page held {} items",
            page.items.len()
        );
        seen.extend(page.items);
        let Some(cursor) = page.next_cursor else {
            break;
        };
        query.cursor = Some(cursor);
        for (suffix, secs) in [("new", 100 + n), ("old", -100 - n)] {
            history
                .put_drift_record(&record(
                    &format!("drift-{tag}-{suffix}{n}"),
                    at(base, secs),
                    0.0,
                ))
                .await
                .ctx("putting a drift record between pages")?;
        }
    }
    ensure_unique_ids(seen.iter().map(|r| r.id.as_str()))?;
    let expected: Vec<String> = ["6b", "6", "5", "4", "3", "2", "1", "0"]
        .iter()
        .map(|s| format!("drift-{tag}-{s}"))
        .collect();
    let seen_original: Vec<&str> = seen
        .iter()
        .map(|r| r.id.as_str())
        .filter(|id| expected.iter().any(|e| e == id))
        .collect();
    ensure_eq!(
        seen_original,
        expected.iter().map(String::as_str).collect::<Vec<_>>(),
        "the first records, newest first"
    );
    for pair in seen.windows(2) {
        ensure!(
            (pair[0].evaluated_at, &pair[0].id) > (pair[1].evaluated_at, &pair[1].id),
            "drift order broke across pages: {} before {}",
            pair[0].id,
            pair[1].id
        );
    }
    Ok(())
}

/// A cursor the store did not hand out is `BadCursor`, not an empty page.
pub async fn garbage_drift_cursor_is_bad_cursor(history: &dyn DriftHistory) -> CheckResult {
    for garbage in ["not-a-cursor", "!!!!", "0123456789abcdef"] {
        let err = expect_err(
            history
                .list_drift_records(&DriftQuery {
                    limit: 10,
                    cursor: Some(garbage.to_owned()),
                })
                .await,
            &format!("drift listing with cursor {garbage:?}"),
        )?;
        ensure!(
            matches!(err, StoreError::BadCursor),
            "drift cursor {garbage:?} gave {err:?}, not BadCursor"
        );
    }
    Ok(())
}

/// Names of the drift-history checks, in the order [`run_drift_all`] runs them.
pub const DRIFT_CHECKS: &[&str] = &[
    "drift_record_put_is_create_if_absent_and_round_trips",
    "drift_history_lists_newest_first_with_stable_pages",
    "garbage_drift_cursor_is_bad_cursor",
];

/// Runs every drift-history check in order and reports all failures.
pub async fn run_drift_all(history: &dyn DriftHistory) -> Result<(), super::ConformanceFailures> {
    let mut failures = Vec::new();
    if let Err(f) = drift_record_put_is_create_if_absent_and_round_trips(history).await {
        failures.push((DRIFT_CHECKS[0], f));
    }
    if let Err(f) = drift_history_lists_newest_first_with_stable_pages(history).await {
        failures.push((DRIFT_CHECKS[1], f));
    }
    if let Err(f) = garbage_drift_cursor_is_bad_cursor(history).await {
        failures.push((DRIFT_CHECKS[2], f));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(super::ConformanceFailures { failures })
    }
}
