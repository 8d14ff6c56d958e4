//! Checks of [`InspectionStore`]: idempotent create, optimistic updates, the review
//! queue order, stable pages, filters, counts, and the blob-before-record crash window.

use opti_core::ports::{InspectionOrder, InspectionQuery, StoreError};
use opti_core::{Claim, Decision, Detection, ImageStats, Inspection, Review, Status, Verdict};
use time::Duration;

use super::fixtures::{at, base_time, inspection};
use super::{ensure_unique_ids, expect_err, list_all, run_tag, CheckResult, Context, Ports};

fn ids(items: &[Inspection]) -> Vec<&str> {
    items.iter().map(|i| i.id.as_str()).collect()
}

/// The queue's sort key: confidence, then creation time, then id, all ascending.
fn queue_key(i: &Inspection) -> (f32, time::OffsetDateTime, String) {
    (i.confidence, i.created_at, i.id.clone())
}

fn sorted_ids_by<K: PartialOrd>(items: &[Inspection], key: impl Fn(&Inspection) -> K) -> Vec<&str> {
    let mut sorted: Vec<&Inspection> = items.iter().collect();
    sorted.sort_by(|a, b| {
        key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    sorted.into_iter().map(|i| i.id.as_str()).collect()
}

async fn create_all(ports: &Ports<'_>, records: &[Inspection]) -> CheckResult {
    for record in records {
        let (_, created) = ports
            .inspections
            .create_inspection(record)
            .await
            .ctx("creating an inspection")?;
        ensure!(
            created,
            "create of new inspection {} said it existed",
            record.id
        );
    }
    Ok(())
}

fn by_camera(camera: &str) -> InspectionQuery {
    InspectionQuery {
        camera_id: Some(camera.to_owned()),
        limit: 100,
        ..InspectionQuery::default()
    }
}

/// Every field, optional ones filled in, reads back exactly as written.
pub async fn inspection_round_trips_every_field(ports: &Ports<'_>) -> CheckResult {
    let camera = format!("cam-{}-rt", run_tag());
    let now = base_time();
    let mut full = inspection(&camera, 1, 0.42, now, Status::Reviewed);
    full.captured_at = Some(now - Duration::seconds(3));
    full.audit_sample = true;
    full.detections.push(Detection {
        class: "fracture".into(),
        confidence: 0.123_456_79,
        bbox: [0.0, 0.0, 1.0, 1.0],
    });
    full.claim = Some(Claim {
        reviewer: "rita".into(),
        claimed_at: now,
        expires_at: now + Duration::minutes(5),
    });
    full.review = Some(Review {
        reviewer: "rita".into(),
        verdict: Verdict::Ok,
        detections: vec![],
        notes: "scratch on the fixture, not the part — ünïcode".into(),
        reviewed_at: now + Duration::seconds(30),
    });
    full.image_stats = Some(ImageStats {
        width: 1920,
        height: 1080,
        brightness: 0.51,
        contrast: 0.18,
        sharpness: 0.0042,
    });
    let mut rejected = inspection(&camera, 2, 0.0, now, Status::Rejected);
    rejected.decision = None;
    rejected.detections.clear();
    rejected.filename = None;
    rejected.rejection_reason = Some("not an image: unknown format".into());

    for record in [&full, &rejected] {
        let (stored, created) = ports
            .inspections
            .create_inspection(record)
            .await
            .ctx("creating")?;
        ensure!(created, "a new id was reported as existing");
        ensure_eq!(&stored, record, "create returned");
        let read = ports
            .inspections
            .get_inspection(&record.id)
            .await
            .ctx("reading back")?;
        ensure_eq!(&read, record, "get returned");
    }
    Ok(())
}

/// A second create under an existing id returns the stored record and `false`, and
/// overwrites nothing.
pub async fn duplicate_create_returns_existing_record_unchanged(ports: &Ports<'_>) -> CheckResult {
    let camera = format!("cam-{}-dup", run_tag());
    let first = inspection(&camera, 1, 0.3, base_time(), Status::PendingReview);
    let (_, created) = ports
        .inspections
        .create_inspection(&first)
        .await
        .ctx("first create")?;
    ensure!(created, "first create said the record existed");

    let mut second = first.clone();
    second.confidence = 0.99;
    second.status = Status::AutoValidated;
    second.decision = Some(Decision::Clean);
    second.detections.clear();
    second.version = 7;
    let (returned, created) = ports
        .inspections
        .create_inspection(&second)
        .await
        .ctx("duplicate create")?;
    ensure!(!created, "duplicate create said it created the record");
    ensure_eq!(returned, first, "duplicate create returned");
    let stored = ports
        .inspections
        .get_inspection(&first.id)
        .await
        .ctx("get")?;
    ensure_eq!(stored, first, "stored record after duplicate create");
    Ok(())
}

/// Reading or updating an id that was never created is `NotFound`.
pub async fn missing_inspection_is_not_found(ports: &Ports<'_>) -> CheckResult {
    let camera = format!("cam-{}-missing", run_tag());
    let ghost = inspection(&camera, 1, 0.5, base_time(), Status::PendingReview);
    let err = expect_err(
        ports.inspections.get_inspection(&ghost.id).await,
        "get of a missing id",
    )?;
    ensure!(
        matches!(err, StoreError::NotFound { .. }),
        "get of a missing id gave {err:?}, not NotFound"
    );
    let err = expect_err(
        ports.inspections.update_inspection(&ghost, 1).await,
        "update of a missing id",
    )?;
    ensure!(
        matches!(err, StoreError::NotFound { .. }),
        "update of a missing id gave {err:?}, not NotFound"
    );
    let err = expect_err(
        ports.inspections.get_inspection(&ghost.id).await,
        "get after a failed update",
    )?;
    ensure!(
        matches!(err, StoreError::NotFound { .. }),
        "a failed update created the record ({err:?})"
    );
    Ok(())
}

/// An update at the stored version stores the record at `expected + 1`, whatever
/// version the caller's copy carried.
pub async fn update_stores_expected_version_plus_one(ports: &Ports<'_>) -> CheckResult {
    let camera = format!("cam-{}-upd", run_tag());
    let now = base_time();
    let original = inspection(&camera, 1, 0.3, now, Status::PendingReview);
    create_all(ports, std::slice::from_ref(&original)).await?;

    let mut next = original.clone();
    next.status = Status::Claimed;
    next.claim = Some(Claim {
        reviewer: "rita".into(),
        claimed_at: now,
        expires_at: now + Duration::minutes(5),
    });
    next.version = 99;
    let stored = ports
        .inspections
        .update_inspection(&next, 1)
        .await
        .ctx("update at v1")?;
    ensure_eq!(stored.version, 2, "version after the first update");
    ensure_eq!(stored.status, Status::Claimed, "status after the update");
    let read = ports
        .inspections
        .get_inspection(&original.id)
        .await
        .ctx("get")?;
    ensure_eq!(read, stored, "stored record");

    let mut again = read.clone();
    again.status = Status::Reviewed;
    let stored = ports
        .inspections
        .update_inspection(&again, 2)
        .await
        .ctx("update at v2")?;
    ensure_eq!(stored.version, 3, "version after the second update");
    ensure_eq!(
        stored.status,
        Status::Reviewed,
        "status after the second update"
    );
    Ok(())
}

/// An update at an old version is refused with `Conflict` carrying the record as
/// stored, and changes nothing.
pub async fn stale_update_gets_conflict_with_current_record(ports: &Ports<'_>) -> CheckResult {
    let camera = format!("cam-{}-stale", run_tag());
    let original = inspection(&camera, 1, 0.3, base_time(), Status::PendingReview);
    create_all(ports, std::slice::from_ref(&original)).await?;
    let mut first = original.clone();
    first.status = Status::Claimed;
    let winner = ports
        .inspections
        .update_inspection(&first, 1)
        .await
        .ctx("first update")?;

    let mut late = original.clone();
    late.status = Status::Reviewed;
    let err = expect_err(
        ports.inspections.update_inspection(&late, 1).await,
        "update at a stale version",
    )?;
    let StoreError::Conflict { current, .. } = err else {
        return Err(super::CheckFailure::new(format!(
            "stale update gave {err:?}, not Conflict"
        )));
    };
    let current: Inspection = serde_json::from_value(*current).map_err(|e| {
        super::CheckFailure::new(format!("Conflict.current is not an inspection: {e}"))
    })?;
    ensure_eq!(current, winner, "Conflict.current");
    let stored = ports
        .inspections
        .get_inspection(&original.id)
        .await
        .ctx("get")?;
    ensure_eq!(stored, winner, "stored record after the refused update");
    Ok(())
}

/// Two writers read version 1 and update at once: exactly one wins, the other gets
/// `Conflict` carrying the winner's record; no update is lost silently.
pub async fn concurrent_stale_writers_one_wins_other_gets_conflict_with_winner(
    ports: &Ports<'_>,
) -> CheckResult {
    let camera = format!("cam-{}-race", run_tag());
    let now = base_time();
    let original = inspection(&camera, 1, 0.3, now, Status::PendingReview);
    create_all(ports, std::slice::from_ref(&original)).await?;

    let read_a = ports
        .inspections
        .get_inspection(&original.id)
        .await
        .ctx("writer A reads")?;
    let read_b = ports
        .inspections
        .get_inspection(&original.id)
        .await
        .ctx("writer B reads")?;
    let claim = |reviewer: &str, mut record: Inspection| {
        record.status = Status::Claimed;
        record.claim = Some(Claim {
            reviewer: reviewer.to_owned(),
            claimed_at: now,
            expires_at: now + Duration::minutes(5),
        });
        record
    };
    let next_a = claim("alice", read_a);
    let next_b = claim("bob", read_b);
    let (a, b) = tokio::join!(
        ports.inspections.update_inspection(&next_a, 1),
        ports.inspections.update_inspection(&next_b, 1),
    );
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (Ok(_), Ok(_)) => {
            return Err(super::CheckFailure::new(
                "both writers at version 1 succeeded: one update was lost",
            ))
        }
        (Err(a), Err(b)) => {
            return Err(super::CheckFailure::new(format!(
                "both writers failed: {a} / {b}"
            )))
        }
    };
    ensure_eq!(winner.version, 2, "winner's stored version");
    let StoreError::Conflict { current, .. } = loser else {
        return Err(super::CheckFailure::new(format!(
            "the losing writer got {loser:?}, not Conflict"
        )));
    };
    let current: Inspection = serde_json::from_value(*current).map_err(|e| {
        super::CheckFailure::new(format!("Conflict.current is not an inspection: {e}"))
    })?;
    ensure_eq!(current, winner, "the loser's Conflict.current");
    let stored = ports
        .inspections
        .get_inspection(&original.id)
        .await
        .ctx("get")?;
    ensure_eq!(stored, winner, "stored record");
    Ok(())
}

/// `MostUncertain` lists the lowest confidence first, equal confidences oldest first,
/// then by id; the status filter keeps confident ones out of the queue.
pub async fn queue_orders_most_uncertain_first_ties_oldest_then_id(
    ports: &Ports<'_>,
) -> CheckResult {
    let camera = format!("cam-{}-queue", run_tag());
    let base = base_time();
    let pending = Status::PendingReview;
    let records = vec![
        inspection(&camera, 0, 0.50, at(base, 0), pending),
        inspection(&camera, 1, 0.20, at(base, 1), pending),
        inspection(&camera, 2, 0.20, at(base, 0), pending),
        inspection(&camera, 3, 0.90, at(base, 0), Status::AutoValidated),
        inspection(&camera, 4, 0.10, at(base, 3), pending),
        inspection(&camera, 5, 0.20, at(base, 1), pending),
        inspection(&camera, 6, 0.35, at(base, 2), pending),
        inspection(&camera, 7, 0.05, at(base, 9), Status::Reviewed),
    ];
    create_all(ports, &records).await?;

    let queue = list_all(
        ports.inspections,
        InspectionQuery {
            status: Some(pending),
            order: InspectionOrder::MostUncertain,
            // Pages of 3: the first boundary splits the full tie of records 1 and 5.
            limit: 3,
            ..by_camera(&camera)
        },
    )
    .await?;
    let pending_records: Vec<Inspection> = records
        .iter()
        .filter(|r| r.status == pending)
        .cloned()
        .collect();
    ensure_eq!(
        ids(&queue),
        sorted_ids_by(&pending_records, queue_key),
        "queue order (pending only, most uncertain first)"
    );
    ensure_eq!(
        ids(&queue).first().copied(),
        Some(records[4].id.as_str()),
        "head of the queue"
    );

    let everything = list_all(
        ports.inspections,
        InspectionQuery {
            order: InspectionOrder::MostUncertain,
            limit: 2,
            ..by_camera(&camera)
        },
    )
    .await?;
    ensure_eq!(
        ids(&everything),
        sorted_ids_by(&records, queue_key),
        "most-uncertain order over every status"
    );
    Ok(())
}

/// `Newest` is creation time descending, `Oldest` ascending, equal times by id in the
/// same direction.
pub async fn newest_and_oldest_orders_break_ties_by_id(ports: &Ports<'_>) -> CheckResult {
    let camera = format!("cam-{}-time", run_tag());
    let base = base_time();
    let records: Vec<Inspection> = [0, 1, 1, 2, 1, 3]
        .into_iter()
        .enumerate()
        .map(|(n, s)| inspection(&camera, n as u32, 0.5, at(base, s), Status::AutoValidated))
        .collect();
    create_all(ports, &records).await?;

    let oldest = list_all(
        ports.inspections,
        InspectionQuery {
            order: InspectionOrder::Oldest,
            limit: 2,
            ..by_camera(&camera)
        },
    )
    .await?;
    let ascending = sorted_ids_by(&records, |i| (i.created_at, i.id.clone()));
    ensure_eq!(ids(&oldest), ascending, "oldest-first order");

    let newest = list_all(
        ports.inspections,
        InspectionQuery {
            order: InspectionOrder::Newest,
            limit: 2,
            ..by_camera(&camera)
        },
    )
    .await?;
    let mut descending = ascending.clone();
    descending.reverse();
    ensure_eq!(ids(&newest), descending, "newest-first order");
    Ok(())
}

/// Paging through the queue while new records arrive between page fetches (before the
/// cursor, after it, and tied with it): no record appears twice, none that existed
/// from the start is skipped, and the order holds across pages.
pub async fn pagination_is_stable_under_concurrent_inserts(ports: &Ports<'_>) -> CheckResult {
    let camera = format!("cam-{}-pages", run_tag());
    let base = base_time();
    let pending = Status::PendingReview;
    let confidences = [
        0.30, 0.10, 0.30, 0.55, 0.20, 0.30, 0.05, 0.45, 0.20, 0.50, 0.10, 0.40,
    ];
    let mut initial: Vec<Inspection> = confidences
        .iter()
        .enumerate()
        .map(|(n, &c)| inspection(&camera, n as u32, c, at(base, n as i64), pending))
        .collect();
    // Four full ties on (confidence, created_at), only the id orders them: with pages
    // of 3, a page boundary must fall inside the group.
    for n in [0, 5, 11] {
        initial[n].confidence = 0.30;
        initial[n].created_at = initial[2].created_at;
    }
    create_all(ports, &initial).await?;

    let mut query = InspectionQuery {
        status: Some(pending),
        order: InspectionOrder::MostUncertain,
        limit: 3,
        ..by_camera(&camera)
    };
    let mut seen: Vec<Inspection> = Vec::new();
    let mut next_n = 100;
    for page_number in 0..1000 {
        let page = ports
            .inspections
            .list_inspections(&query)
            .await
            .ctx("listing a page")?;
        ensure!(
            page.items.len() <= 3,
            "page {page_number} held {} items for limit 3",
            page.items.len()
        );
        seen.extend(page.items);
        let Some(cursor) = page.next_cursor else {
            break;
        };
        query.cursor = Some(cursor);
        // New arrivals between fetches: one sorting before everything seen, one after
        // everything, and one tied on (confidence, created_at) with the last item seen.
        if let Some(last) = seen.last().cloned() {
            let arrivals = vec![
                inspection(&camera, next_n, 0.0, at(base, -60), pending),
                inspection(&camera, next_n + 1, 0.99, at(base, 60), pending),
                inspection(
                    &camera,
                    next_n + 2,
                    last.confidence,
                    last.created_at,
                    pending,
                ),
            ];
            next_n += 3;
            create_all(ports, &arrivals).await?;
        }
    }
    ensure_unique_ids(seen.iter().map(|i| i.id.as_str()))?;
    for record in &initial {
        ensure!(
            seen.iter().any(|s| s.id == record.id),
            "{} (confidence {}) existed before the listing began but was skipped",
            record.id,
            record.confidence
        );
    }
    for pair in seen.windows(2) {
        ensure!(
            queue_key(&pair[0]) < queue_key(&pair[1]),
            "order broke across pages: {:?} came before {:?}",
            queue_key(&pair[0]),
            queue_key(&pair[1])
        );
    }
    Ok(())
}

/// Filters on status, camera, audit sample and the half-open creation range
/// `[created_from, created_before)` select exactly the matching records.
pub async fn filters_select_by_status_camera_audit_sample_and_created_range(
    ports: &Ports<'_>,
) -> CheckResult {
    let tag = run_tag();
    let cam1 = format!("cam-{tag}-f1");
    let cam2 = format!("cam-{tag}-f2");
    let base = base_time();
    let minute = |m: i64| at(base, 60 * m);
    let spec = [
        (Status::PendingReview, false),
        (Status::AutoValidated, false),
        (Status::PendingReview, true),
        (Status::Reviewed, false),
        (Status::Rejected, false),
        (Status::PendingReview, true),
    ];
    let mut records: Vec<Inspection> = spec
        .iter()
        .enumerate()
        .map(|(n, &(status, sample))| {
            let mut r = inspection(&cam1, n as u32, 0.4, minute(n as i64), status);
            r.audit_sample = sample;
            r
        })
        .collect();
    let others = vec![
        inspection(&cam2, 0, 0.4, minute(2), Status::PendingReview),
        inspection(&cam2, 1, 0.4, minute(3), Status::AutoValidated),
    ];
    create_all(ports, &records).await?;
    create_all(ports, &others).await?;

    let select = |pick: &dyn Fn(usize, &Inspection) -> bool| -> Vec<String> {
        // Default order is newest first.
        let mut v: Vec<(time::OffsetDateTime, String)> = records
            .iter()
            .enumerate()
            .filter(|(n, r)| pick(*n, r))
            .map(|(_, r)| (r.created_at, r.id.clone()))
            .collect();
        v.sort();
        v.reverse();
        v.into_iter().map(|(_, id)| id).collect()
    };
    let cases: Vec<(&str, InspectionQuery, Vec<String>)> = vec![
        ("camera only", by_camera(&cam1), select(&|_, _| true)),
        (
            "status pending_review",
            InspectionQuery {
                status: Some(Status::PendingReview),
                ..by_camera(&cam1)
            },
            select(&|_, r| r.status == Status::PendingReview),
        ),
        (
            "status rejected",
            InspectionQuery {
                status: Some(Status::Rejected),
                ..by_camera(&cam1)
            },
            select(&|_, r| r.status == Status::Rejected),
        ),
        (
            "audit samples",
            InspectionQuery {
                audit_sample: Some(true),
                ..by_camera(&cam1)
            },
            select(&|_, r| r.audit_sample),
        ),
        (
            "not audit samples",
            InspectionQuery {
                audit_sample: Some(false),
                ..by_camera(&cam1)
            },
            select(&|_, r| !r.audit_sample),
        ),
        (
            "created in [2m, 5m)",
            InspectionQuery {
                created_from: Some(minute(2)),
                created_before: Some(minute(5)),
                ..by_camera(&cam1)
            },
            select(&|n, _| (2..5).contains(&n)),
        ),
        (
            "created from 4m",
            InspectionQuery {
                created_from: Some(minute(4)),
                ..by_camera(&cam1)
            },
            select(&|n, _| n >= 4),
        ),
        (
            "created before 1m",
            InspectionQuery {
                created_before: Some(minute(1)),
                ..by_camera(&cam1)
            },
            select(&|n, _| n < 1),
        ),
        (
            "pending audit samples created before 5m",
            InspectionQuery {
                status: Some(Status::PendingReview),
                audit_sample: Some(true),
                created_before: Some(minute(5)),
                ..by_camera(&cam1)
            },
            select(&|n, r| r.status == Status::PendingReview && r.audit_sample && n < 5),
        ),
    ];
    for (name, query, expected) in cases {
        let got = list_all(ports.inspections, query).await?;
        let got: Vec<String> = got.into_iter().map(|i| i.id).collect();
        ensure_eq!(got, expected, "filter {name}");
    }
    let got = list_all(ports.inspections, by_camera(&cam2)).await?;
    ensure_eq!(got.len(), 2, "records of the second camera");

    // The filter also applies to records updated into a status.
    records[1].status = Status::PendingReview;
    ports
        .inspections
        .update_inspection(&records[1], 1)
        .await
        .ctx("moving a record to pending_review")?;
    let got = list_all(
        ports.inspections,
        InspectionQuery {
            status: Some(Status::PendingReview),
            ..by_camera(&cam1)
        },
    )
    .await?;
    ensure!(
        got.iter().any(|i| i.id == records[1].id),
        "a record updated into pending_review is missing from that filter"
    );
    let got = list_all(
        ports.inspections,
        InspectionQuery {
            status: Some(Status::AutoValidated),
            ..by_camera(&cam1)
        },
    )
    .await?;
    ensure!(
        got.is_empty(),
        "a record updated out of auto_validated is still listed there"
    );
    Ok(())
}

/// A cursor the store never handed out is `BadCursor`, not an empty page.
pub async fn garbage_inspection_cursor_is_bad_cursor(ports: &Ports<'_>) -> CheckResult {
    for garbage in ["not-a-cursor", "!!!!", "0123456789abcdef"] {
        for order in [
            InspectionOrder::Newest,
            InspectionOrder::Oldest,
            InspectionOrder::MostUncertain,
        ] {
            let err = expect_err(
                ports
                    .inspections
                    .list_inspections(&InspectionQuery {
                        order,
                        limit: 10,
                        cursor: Some(garbage.to_owned()),
                        ..InspectionQuery::default()
                    })
                    .await,
                &format!("listing with cursor {garbage:?}"),
            )?;
            ensure!(
                matches!(err, StoreError::BadCursor),
                "cursor {garbage:?} gave {err:?}, not BadCursor"
            );
        }
    }
    Ok(())
}

/// Counts per status move by exactly what was created and updated. (Counts are
/// store-wide: this assumes no other writer during the check.)
pub async fn count_by_status_counts_each_status(ports: &Ports<'_>) -> CheckResult {
    let camera = format!("cam-{}-count", run_tag());
    let base = base_time();
    let before = ports
        .inspections
        .count_by_status()
        .await
        .ctx("counting before")?;
    let records = vec![
        inspection(&camera, 0, 0.3, base, Status::PendingReview),
        inspection(&camera, 1, 0.3, base, Status::PendingReview),
        inspection(&camera, 2, 0.9, base, Status::AutoValidated),
        inspection(&camera, 3, 0.3, base, Status::Reviewed),
        inspection(&camera, 4, 0.0, base, Status::Rejected),
    ];
    create_all(ports, &records).await?;
    let mut claimed = records[0].clone();
    claimed.status = Status::Claimed;
    ports
        .inspections
        .update_inspection(&claimed, 1)
        .await
        .ctx("claiming one")?;
    let after = ports
        .inspections
        .count_by_status()
        .await
        .ctx("counting after")?;
    for (status, delta) in [
        (Status::AutoValidated, 1),
        (Status::PendingReview, 1),
        (Status::Claimed, 1),
        (Status::Reviewed, 1),
        (Status::Rejected, 1),
    ] {
        let was = before.get(&status).copied().unwrap_or(0);
        let is = after.get(&status).copied().unwrap_or(0);
        ensure_eq!(
            i128::from(is) - i128::from(was),
            delta,
            "change of the {status} count"
        );
    }
    Ok(())
}

/// A crash between the blob write and the record write leaves no half-visible
/// inspection: the id is `NotFound`, listings do not show it, and the blob listing
/// finds the orphan so start-up recovery can finish (or drop) it.
pub async fn blob_without_record_is_invisible_and_listed_for_recovery(
    ports: &Ports<'_>,
) -> CheckResult {
    let camera = format!("cam-{}-crash", run_tag());
    let record = inspection(&camera, 1, 0.3, base_time(), Status::PendingReview);
    let key = format!("raw/{camera}/{}.jpg", record.id);
    ports
        .blobs
        .put_blob(&key, b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg")
        .await
        .ctx("writing the image blob")?;
    // ...the process dies here, before create_inspection.

    let err = expect_err(
        ports.inspections.get_inspection(&record.id).await,
        "get of the inspection whose record was never written",
    )?;
    ensure!(
        matches!(err, StoreError::NotFound { .. }),
        "orphan image's id gave {err:?}, not NotFound"
    );
    let listed = list_all(ports.inspections, by_camera(&camera)).await?;
    ensure!(
        listed.is_empty(),
        "a listing showed {} inspection(s) for a camera with only an orphan blob",
        listed.len()
    );
    let queue = list_all(
        ports.inspections,
        InspectionQuery {
            status: Some(Status::PendingReview),
            order: InspectionOrder::MostUncertain,
            ..by_camera(&camera)
        },
    )
    .await?;
    ensure!(queue.is_empty(), "the queue showed an orphan blob");

    // Recovery: list the blobs, find the keys without a record.
    let keys = ports
        .blobs
        .list_blobs(&format!("raw/{camera}/"))
        .await
        .ctx("listing blobs for recovery")?;
    ensure_eq!(keys, vec![key.clone()], "blobs of the camera");
    let mut orphans = Vec::new();
    for key in &keys {
        let id = key
            .rsplit('/')
            .next()
            .and_then(|name| name.strip_suffix(".jpg"))
            .unwrap_or_default();
        if matches!(
            ports.inspections.get_inspection(id).await,
            Err(StoreError::NotFound { .. })
        ) {
            orphans.push(key.clone());
        }
    }
    ensure_eq!(orphans, vec![key.clone()], "orphans found by recovery");

    // Recovery writes the record: now it is visible, once.
    let mut recovered = record.clone();
    recovered.image_key = key;
    create_all(ports, std::slice::from_ref(&recovered)).await?;
    let listed = list_all(ports.inspections, by_camera(&camera)).await?;
    ensure_eq!(
        ids(&listed),
        vec![recovered.id.as_str()],
        "listing after recovery"
    );
    Ok(())
}
