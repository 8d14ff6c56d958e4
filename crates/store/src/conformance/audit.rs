//! Checks of [`AuditLog`]: newest-first pages that stay stable, filters, idempotent
//! append, and cursor validation.

use opti_core::ports::{AuditQuery, StoreError};
use opti_core::{AuditAction, AuditEvent};

use super::fixtures::{at, base_time, event};
use super::{ensure_unique_ids, expect_err, run_tag, CheckFailure, CheckResult, Context, Ports};

/// Every page of an audit listing.
async fn list_all(
    ports: &Ports<'_>,
    mut query: AuditQuery,
) -> Result<Vec<AuditEvent>, CheckFailure> {
    let mut items = Vec::new();
    for _ in 0..10_000 {
        let page = ports.audit.list_audit(&query).await.ctx("listing audit")?;
        if query.limit > 0 {
            ensure!(
                page.items.len() <= query.limit as usize,
                "an audit page held {} items for limit {}",
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
        "audit listing did not end after 10000 pages",
    ))
}

fn event_ids(events: &[AuditEvent]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

async fn append_all(ports: &Ports<'_>, events: &[AuditEvent]) -> CheckResult {
    for e in events {
        ports
            .audit
            .append_audit(e)
            .await
            .ctx("appending an audit event")?;
    }
    Ok(())
}

/// Events list newest first (by time, not by append order); pages stay stable while
/// new events are appended between fetches: nothing twice, nothing skipped.
pub async fn audit_lists_newest_first_with_stable_pages(ports: &Ports<'_>) -> CheckResult {
    let tag = run_tag();
    let actor = format!("auditor-{tag}");
    let base = base_time();
    let events: Vec<AuditEvent> = [3, 0, 6, 1, 5, 2, 4]
        .into_iter()
        .map(|s| {
            event(
                &format!("evt-{tag}-{s}"),
                &actor,
                AuditAction::Claimed,
                &format!("inspection/insp-{tag}-{s}"),
                at(base, s),
            )
        })
        .collect();
    append_all(ports, &events).await?;

    let mut query = AuditQuery {
        actor: Some(actor.clone()),
        limit: 3,
        ..AuditQuery::default()
    };
    let mut seen: Vec<AuditEvent> = Vec::new();
    for n in 0..1000 {
        let page = ports.audit.list_audit(&query).await.ctx("listing audit")?;
        ensure!(
            page.items.len() <= 3,
            "an audit page held {} items",
            page.items.len()
        );
        seen.extend(page.items);
        let Some(cursor) = page.next_cursor else {
            break;
        };
        query.cursor = Some(cursor);
        // Arrivals meanwhile: a newer event and an older one.
        append_all(
            ports,
            &[
                event(
                    &format!("evt-{tag}-new{n}"),
                    &actor,
                    AuditAction::Reviewed,
                    "config",
                    at(base, 100 + n),
                ),
                event(
                    &format!("evt-{tag}-old{n}"),
                    &actor,
                    AuditAction::Reviewed,
                    "config",
                    at(base, -100 - n),
                ),
            ],
        )
        .await?;
    }
    ensure_unique_ids(event_ids(&seen))?;
    let original: Vec<String> = (0..7).rev().map(|s| format!("evt-{tag}-{s}")).collect();
    let seen_original: Vec<&str> = event_ids(&seen)
        .into_iter()
        .filter(|id| original.iter().any(|o| o == id))
        .collect();
    ensure_eq!(
        seen_original,
        original.iter().map(String::as_str).collect::<Vec<_>>(),
        "the first events, newest first"
    );
    for pair in seen.windows(2) {
        ensure!(
            (pair[0].at, &pair[0].id) > (pair[1].at, &pair[1].id),
            "audit order broke across pages: {} ({}) before {} ({})",
            pair[0].id,
            pair[0].at,
            pair[1].id,
            pair[1].at
        );
    }
    let first = seen
        .iter()
        .find(|e| e.id == original[0])
        .ok_or_else(|| CheckFailure::new("the newest event is missing"))?;
    let expected = events
        .iter()
        .find(|e| e.id == original[0])
        .ok_or_else(|| CheckFailure::new("fixture lost its newest event"))?;
    ensure_eq!(first, expected, "an event as read back");
    Ok(())
}

/// Filters on actor, action and entity (exact, or a prefix ending in `/` that does not
/// match a longer kind sharing its letters) combine.
pub async fn audit_filters_by_actor_action_and_entity(ports: &Ports<'_>) -> CheckResult {
    let tag = run_tag();
    let ann = format!("ann-{tag}");
    let ben = format!("ben-{tag}");
    let kind = format!("insp{tag}");
    let base = base_time();
    let e = |n: i64, actor: &str, action, entity: String| {
        event(
            &format!("evt-{tag}-{n}"),
            actor,
            action,
            &entity,
            at(base, n),
        )
    };
    let events = vec![
        e(1, &ann, AuditAction::Claimed, format!("{kind}/a")),
        e(2, &ben, AuditAction::Reviewed, format!("{kind}/a")),
        e(3, &ann, AuditAction::Reviewed, format!("{kind}/b")),
        e(4, &ann, AuditAction::ConfigChanged, format!("{kind}x/c")),
        e(
            5,
            &ben,
            AuditAction::ModelPromoted,
            format!("model{tag}/v1"),
        ),
    ];
    append_all(ports, &events).await?;
    let id = |n: i64| format!("evt-{tag}-{n}");

    let cases: Vec<(&str, AuditQuery, Vec<String>)> = vec![
        (
            "exact entity",
            AuditQuery {
                entity: Some(format!("{kind}/a")),
                ..AuditQuery::default()
            },
            vec![id(2), id(1)],
        ),
        (
            "entity prefix",
            AuditQuery {
                entity: Some(format!("{kind}/")),
                ..AuditQuery::default()
            },
            vec![id(3), id(2), id(1)],
        ),
        (
            "entity prefix and actor",
            AuditQuery {
                entity: Some(format!("{kind}/")),
                actor: Some(ann.clone()),
                ..AuditQuery::default()
            },
            vec![id(3), id(1)],
        ),
        (
            "actor and action",
            AuditQuery {
                actor: Some(ann.clone()),
                action: Some(AuditAction::Reviewed),
                ..AuditQuery::default()
            },
            vec![id(3)],
        ),
        (
            "actor",
            AuditQuery {
                actor: Some(ben.clone()),
                ..AuditQuery::default()
            },
            vec![id(5), id(2)],
        ),
        (
            "entity without '/' is exact, not a prefix",
            AuditQuery {
                entity: Some(kind.clone()),
                ..AuditQuery::default()
            },
            vec![],
        ),
        (
            "action with an actor that did not do it",
            AuditQuery {
                actor: Some(ben.clone()),
                action: Some(AuditAction::Claimed),
                ..AuditQuery::default()
            },
            vec![],
        ),
    ];
    for (name, mut query, expected) in cases {
        query.limit = 2;
        let got = list_all(ports, query).await?;
        ensure_eq!(
            event_ids(&got),
            expected.iter().map(String::as_str).collect::<Vec<_>>(),
            "audit filter {name}"
        );
    }
    Ok(())
}

/// Appending an event whose id is already stored keeps the first copy, once (a
/// retried append must not duplicate the trail).
pub async fn audit_append_is_idempotent_by_event_id(ports: &Ports<'_>) -> CheckResult {
    let tag = run_tag();
    let entity = format!("idem{tag}/x");
    let first = event(
        &format!("evt-{tag}"),
        "ann",
        AuditAction::Reviewed,
        &entity,
        base_time(),
    );
    ports.audit.append_audit(&first).await.ctx("first append")?;
    ports
        .audit
        .append_audit(&first)
        .await
        .ctx("retried append")?;
    let mut altered = first.clone();
    altered.actor = "mallory".into();
    ports
        .audit
        .append_audit(&altered)
        .await
        .ctx("append of a different event under the same id")?;
    let got = list_all(
        ports,
        AuditQuery {
            entity: Some(entity),
            ..AuditQuery::default()
        },
    )
    .await?;
    ensure_eq!(got, vec![first], "the trail of the entity");
    Ok(())
}

/// A cursor the audit log never handed out is `BadCursor`.
pub async fn garbage_audit_cursor_is_bad_cursor(ports: &Ports<'_>) -> CheckResult {
    for garbage in ["not-a-cursor", "!!!!", "0123456789abcdef"] {
        let err = expect_err(
            ports
                .audit
                .list_audit(&AuditQuery {
                    limit: 10,
                    cursor: Some(garbage.to_owned()),
                    ..AuditQuery::default()
                })
                .await,
            &format!("audit listing with cursor {garbage:?}"),
        )?;
        ensure!(
            matches!(err, StoreError::BadCursor),
            "audit cursor {garbage:?} gave {err:?}, not BadCursor"
        );
    }
    Ok(())
}
