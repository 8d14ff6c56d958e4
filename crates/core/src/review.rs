//! The review state machine, as pure functions: each takes the inspection as read (and the
//! version the caller read it at) and returns the next record, or says why not.
//!
//! ```text
//!  auto_validated ──audit_sample──▶ pending_review ◀──release── claimed
//!                                     │     ▲ │                   │ ▲
//!                                     │     │ └──────claim────────┘ │ claim (renew, or
//!                                     │     │                       │ take over an expired lease)
//!                                     │     └──(lease expiry: anyone may claim or submit)
//!                                     └──submit_review──▶ reviewed ◀──submit_review── claimed
//! ```
//!
//! Every transition first checks the caller's version (a stale one is
//! [`DomainError::StaleVersion`], never a lost update), then legality
//! ([`DomainError::IllegalTransition`]), then the lease ([`DomainError::ClaimedByOther`]).
//! The returned record has `version + 1` and `updated_at = now`; the store then writes it
//! with update-if-version. A lease is expired once `now >= expires_at`.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::class::ClassNames;
use crate::error::DomainError;
use crate::types::{Claim, Detection, Inspection, Review, Status, Verdict};

/// Longest reviewer note accepted, in characters.
pub const MAX_NOTES_CHARS: usize = 4_000;
/// Most boxes a review may carry (Ultralytics' default `max_det`).
pub const MAX_REVIEW_DETECTIONS: usize = 300;
/// Longest reviewer name accepted, in characters.
pub const MAX_REVIEWER_CHARS: usize = 128;

/// `reviewer` leases `insp` until `now + lease`.
///
/// From `pending_review`; from `claimed` when the lease is held by the same reviewer
/// (renewal: the expiry moves, `claimed_at` stays) or has expired (anyone takes it over).
pub fn claim(
    insp: &Inspection,
    reviewer: &str,
    now: OffsetDateTime,
    lease: Duration,
    expected_version: u64,
) -> Result<Inspection, DomainError> {
    check_version(insp, expected_version)?;
    check_reviewer(reviewer)?;
    if !lease.is_positive() {
        return Err(DomainError::Invalid(format!(
            "lease must be positive, got {lease}"
        )));
    }
    let expires_at = now
        .checked_add(lease)
        .ok_or_else(|| DomainError::Invalid(format!("lease {lease} is too long")))?;
    let claimed_at = match (insp.status, &insp.claim) {
        (Status::PendingReview, _) => now,
        (Status::Claimed, Some(c)) if c.reviewer == reviewer && !lease_expired(c, now) => {
            c.claimed_at
        }
        (Status::Claimed, Some(c)) if lease_expired(c, now) => now,
        (Status::Claimed, Some(c)) => return Err(claimed_by_other(c)),
        // A claimed record without a claim is corrupt; treat the lease as expired.
        (Status::Claimed, None) => now,
        (from, _) => {
            return Err(DomainError::IllegalTransition {
                action: "claim",
                from,
            })
        }
    };
    let mut next = bump(insp, now);
    next.status = Status::Claimed;
    next.claim = Some(Claim {
        reviewer: reviewer.to_owned(),
        claimed_at,
        expires_at,
    });
    Ok(next)
}

/// `reviewer` gives the lease back; the inspection returns to `pending_review`.
///
/// Only from `claimed`; by the lease holder, or by anyone once the lease has expired.
pub fn release(
    insp: &Inspection,
    reviewer: &str,
    now: OffsetDateTime,
    expected_version: u64,
) -> Result<Inspection, DomainError> {
    check_version(insp, expected_version)?;
    check_reviewer(reviewer)?;
    if insp.status != Status::Claimed {
        return Err(DomainError::IllegalTransition {
            action: "release",
            from: insp.status,
        });
    }
    if let Some(c) = &insp.claim {
        if c.reviewer != reviewer && !lease_expired(c, now) {
            return Err(claimed_by_other(c));
        }
    }
    let mut next = bump(insp, now);
    next.status = Status::PendingReview;
    next.claim = None;
    Ok(next)
}

/// Records the reviewer's final verdict and corrected boxes; the inspection becomes
/// `reviewed` and its lease ends.
///
/// From `pending_review` (no claim needed), or from `claimed` by the lease holder, or by
/// anyone once the lease has expired. The review is validated against `classes` (see
/// [`validate_review`]); `reviewed_at` is set to `now` (the server's clock, not the
/// client's).
pub fn submit_review(
    insp: &Inspection,
    review: Review,
    expected_version: u64,
    now: OffsetDateTime,
    classes: &ClassNames,
) -> Result<Inspection, DomainError> {
    check_version(insp, expected_version)?;
    match (insp.status, &insp.claim) {
        (Status::PendingReview, _) | (Status::Claimed, None) => {}
        (Status::Claimed, Some(c)) => {
            if c.reviewer != review.reviewer && !lease_expired(c, now) {
                return Err(claimed_by_other(c));
            }
        }
        (from, _) => {
            return Err(DomainError::IllegalTransition {
                action: "review",
                from,
            })
        }
    }
    validate_review(&review, classes)?;
    let mut next = bump(insp, now);
    next.status = Status::Reviewed;
    next.claim = None;
    next.review = Some(Review {
        reviewed_at: now,
        ..review
    });
    Ok(next)
}

/// Draws an auto-validated inspection into the queue as an audit sample of the automation.
pub fn audit_sample(
    insp: &Inspection,
    expected_version: u64,
    now: OffsetDateTime,
) -> Result<Inspection, DomainError> {
    check_version(insp, expected_version)?;
    if insp.status != Status::AutoValidated {
        return Err(DomainError::IllegalTransition {
            action: "audit-sample",
            from: insp.status,
        });
    }
    let mut next = bump(insp, now);
    next.status = Status::PendingReview;
    next.audit_sample = true;
    Ok(next)
}

/// True when `claim`'s lease no longer holds at `now`.
pub fn lease_expired(claim: &Claim, now: OffsetDateTime) -> bool {
    now >= claim.expires_at
}

/// Checks a review before it is stored: a reviewer name, notes of sane length, a verdict
/// consistent with the boxes (an `ok` part keeps no defect boxes), and every box valid
/// (see [`validate_detection`]).
pub fn validate_review(review: &Review, classes: &ClassNames) -> Result<(), DomainError> {
    check_reviewer(&review.reviewer)?;
    let notes = review.notes.chars().count();
    if notes > MAX_NOTES_CHARS {
        return Err(DomainError::Invalid(format!(
            "notes are {notes} characters long, at most {MAX_NOTES_CHARS} are accepted"
        )));
    }
    if review.detections.len() > MAX_REVIEW_DETECTIONS {
        return Err(DomainError::Invalid(format!(
            "a review may carry at most {MAX_REVIEW_DETECTIONS} boxes, got {}",
            review.detections.len()
        )));
    }
    if review.verdict == Verdict::Ok && !review.detections.is_empty() {
        return Err(DomainError::Invalid(format!(
            "verdict ok cannot keep {} defect box(es): remove them or give verdict defective",
            review.detections.len()
        )));
    }
    for (i, d) in review.detections.iter().enumerate() {
        validate_detection(d, classes).map_err(|e| match e {
            DomainError::Invalid(m) => DomainError::Invalid(format!("detections[{i}]: {m}")),
            other => other,
        })?;
    }
    Ok(())
}

/// Checks one box: a class the model knows, a normalised `[x1, y1, x2, y2]` inside
/// `[0, 1]` with `x1 < x2` and `y1 < y2`, a confidence in `[0, 1]`.
pub fn validate_detection(d: &Detection, classes: &ClassNames) -> Result<(), DomainError> {
    if classes.id(&d.class).is_none() {
        let known: Vec<&str> = classes.iter().collect();
        return Err(DomainError::Invalid(format!(
            "class {:?} is not a class of the model (known: {})",
            d.class,
            known.join(", ")
        )));
    }
    let [x1, y1, x2, y2] = d.bbox;
    for (name, v) in [("x1", x1), ("y1", y1), ("x2", x2), ("y2", y2)] {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            return Err(DomainError::Invalid(format!(
                "bbox {name} must be in [0, 1] (normalised to the image), got {v}"
            )));
        }
    }
    if x1 >= x2 {
        return Err(DomainError::Invalid(format!(
            "bbox must have x1 < x2, got x1 {x1} and x2 {x2}"
        )));
    }
    if y1 >= y2 {
        return Err(DomainError::Invalid(format!(
            "bbox must have y1 < y2, got y1 {y1} and y2 {y2}"
        )));
    }
    if !(d.confidence.is_finite() && (0.0..=1.0).contains(&d.confidence)) {
        return Err(DomainError::Invalid(format!(
            "confidence must be in [0, 1], got {}",
            d.confidence
        )));
    }
    Ok(())
}

fn check_version(insp: &Inspection, expected_version: u64) -> Result<(), DomainError> {
    if insp.version != expected_version {
        return Err(DomainError::StaleVersion {
            given: expected_version,
            current: insp.version,
        });
    }
    Ok(())
}

fn check_reviewer(reviewer: &str) -> Result<(), DomainError> {
    if reviewer.trim().is_empty() {
        return Err(DomainError::Invalid("reviewer must not be empty".into()));
    }
    if reviewer.chars().count() > MAX_REVIEWER_CHARS {
        return Err(DomainError::Invalid(format!(
            "reviewer name is longer than {MAX_REVIEWER_CHARS} characters"
        )));
    }
    Ok(())
}

fn claimed_by_other(c: &Claim) -> DomainError {
    DomainError::ClaimedByOther {
        by: c.reviewer.clone(),
        until: c
            .expires_at
            .format(&Rfc3339)
            .unwrap_or_else(|_| c.expires_at.to_string()),
    }
}

/// The record with its version incremented and `updated_at = now`.
fn bump(insp: &Inspection, now: OffsetDateTime) -> Inspection {
    let mut next = insp.clone();
    next.version = insp.version.saturating_add(1);
    next.updated_at = now;
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Decision;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2025-03-01 08:00:00 UTC);
    const LEASE: Duration = Duration::minutes(5);

    fn inspection(status: Status) -> Inspection {
        Inspection {
            id: "insp_000000000000000000000001".into(),
            ingest_key: "sha256:ab/cam-1".into(),
            image_key: "raw/cam-1/ab.png".into(),
            camera_id: "cam-1".into(),
            filename: Some("part-1.png".into()),
            captured_at: None,
            created_at: T0,
            updated_at: T0,
            model_version: "v1".into(),
            detections: vec![],
            decision: Some(Decision::Clean),
            confidence: 0.4,
            threshold_used: 0.6,
            status,
            audit_sample: false,
            claim: None,
            review: None,
            rejection_reason: None,
            image_stats: None,
            version: 3,
        }
    }

    fn claimed_by(reviewer: &str) -> Inspection {
        claim(&inspection(Status::PendingReview), reviewer, T0, LEASE, 3).expect("claim")
    }

    fn review(reviewer: &str, verdict: Verdict, detections: Vec<Detection>) -> Review {
        Review {
            reviewer: reviewer.into(),
            verdict,
            detections,
            notes: "scratch near the edge".into(),
            reviewed_at: datetime!(1999-01-01 00:00:00 UTC),
        }
    }

    fn stain(bbox: [f32; 4]) -> Detection {
        Detection {
            class: "stain".into(),
            confidence: 1.0,
            bbox,
        }
    }

    fn classes() -> ClassNames {
        ClassNames::default_line()
    }

    fn invalid_message(r: Result<Inspection, DomainError>) -> String {
        match r {
            Err(DomainError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    // ---- claim ----

    #[test]
    fn claiming_a_pending_inspection_leases_it_and_bumps_the_version() {
        let now = T0 + Duration::seconds(10);
        let next = claim(&inspection(Status::PendingReview), "ana", now, LEASE, 3).expect("claim");
        assert_eq!(next.status, Status::Claimed);
        assert_eq!(next.version, 4);
        assert_eq!(next.updated_at, now);
        let c = next.claim.expect("claim set");
        assert_eq!(c.reviewer, "ana");
        assert_eq!(c.claimed_at, now);
        assert_eq!(c.expires_at, now + LEASE);
    }

    #[test]
    fn same_reviewer_reclaiming_renews_the_lease_and_keeps_the_claim_time() {
        let first = claimed_by("ana");
        let later = T0 + Duration::minutes(4);
        let renewed = claim(&first, "ana", later, LEASE, 4).expect("renew");
        let c = renewed.claim.expect("claim");
        assert_eq!(c.claimed_at, T0);
        assert_eq!(c.expires_at, later + LEASE);
        assert_eq!(renewed.version, 5);
    }

    #[test]
    fn another_reviewer_on_an_unexpired_lease_gets_claimed_by_other() {
        let held = claimed_by("ana");
        let err = claim(&held, "bob", T0 + Duration::minutes(1), LEASE, 4).unwrap_err();
        assert_eq!(
            err,
            DomainError::ClaimedByOther {
                by: "ana".into(),
                until: "2025-03-01T08:05:00Z".into()
            }
        );
    }

    #[test]
    fn an_expired_lease_can_be_taken_over_by_anyone() {
        let held = claimed_by("ana");
        let at_expiry = T0 + LEASE;
        let next = claim(&held, "bob", at_expiry, LEASE, 4).expect("take over");
        let c = next.claim.expect("claim");
        assert_eq!(c.reviewer, "bob");
        assert_eq!(c.claimed_at, at_expiry);
    }

    #[test]
    fn the_same_reviewer_reclaiming_an_expired_lease_starts_a_new_claim() {
        let held = claimed_by("ana");
        let late = T0 + Duration::hours(1);
        let c = claim(&held, "ana", late, LEASE, 4)
            .expect("reclaim")
            .claim
            .expect("claim");
        assert_eq!(c.claimed_at, late);
    }

    #[test]
    fn claiming_with_a_stale_version_is_refused_with_the_current_version() {
        let err = claim(&inspection(Status::PendingReview), "ana", T0, LEASE, 2).unwrap_err();
        assert_eq!(
            err,
            DomainError::StaleVersion {
                given: 2,
                current: 3
            }
        );
    }

    #[test]
    fn claiming_outside_the_queue_is_an_illegal_transition() {
        for from in [Status::AutoValidated, Status::Reviewed, Status::Rejected] {
            let err = claim(&inspection(from), "ana", T0, LEASE, 3).unwrap_err();
            assert_eq!(
                err,
                DomainError::IllegalTransition {
                    action: "claim",
                    from
                }
            );
        }
    }

    #[test]
    fn claiming_with_an_empty_reviewer_or_no_lease_is_invalid() {
        let p = inspection(Status::PendingReview);
        assert!(invalid_message(claim(&p, " ", T0, LEASE, 3)).contains("reviewer"));
        assert!(invalid_message(claim(&p, "ana", T0, Duration::ZERO, 3)).contains("lease"));
        assert!(invalid_message(claim(&p, "ana", T0, Duration::MAX, 3)).contains("lease"));
    }

    // ---- release ----

    #[test]
    fn the_holder_releasing_puts_the_inspection_back_in_the_queue() {
        let held = claimed_by("ana");
        let now = T0 + Duration::minutes(1);
        let next = release(&held, "ana", now, 4).expect("release");
        assert_eq!(next.status, Status::PendingReview);
        assert_eq!(next.claim, None);
        assert_eq!(next.version, 5);
        assert_eq!(next.updated_at, now);
    }

    #[test]
    fn another_reviewer_cannot_release_an_unexpired_lease() {
        let held = claimed_by("ana");
        let err = release(&held, "bob", T0 + Duration::minutes(1), 4).unwrap_err();
        assert!(matches!(err, DomainError::ClaimedByOther { by, .. } if by == "ana"));
    }

    #[test]
    fn anyone_can_release_an_expired_lease() {
        let held = claimed_by("ana");
        let next = release(&held, "bob", T0 + Duration::hours(1), 4).expect("release");
        assert_eq!(next.status, Status::PendingReview);
    }

    #[test]
    fn releasing_with_a_stale_version_is_refused() {
        let held = claimed_by("ana");
        let err = release(&held, "ana", T0, 3).unwrap_err();
        assert_eq!(
            err,
            DomainError::StaleVersion {
                given: 3,
                current: 4
            }
        );
    }

    #[test]
    fn releasing_an_unclaimed_inspection_is_an_illegal_transition() {
        for from in [
            Status::AutoValidated,
            Status::PendingReview,
            Status::Reviewed,
            Status::Rejected,
        ] {
            let err = release(&inspection(from), "ana", T0, 3).unwrap_err();
            assert_eq!(
                err,
                DomainError::IllegalTransition {
                    action: "release",
                    from
                }
            );
        }
    }

    // ---- submit_review ----

    #[test]
    fn the_holder_submitting_marks_it_reviewed_and_ends_the_lease() {
        let held = claimed_by("ana");
        let now = T0 + Duration::minutes(2);
        let r = review("ana", Verdict::Defective, vec![stain([0.1, 0.2, 0.3, 0.4])]);
        let next = submit_review(&held, r, 4, now, &classes()).expect("submit");
        assert_eq!(next.status, Status::Reviewed);
        assert_eq!(next.claim, None);
        assert_eq!(next.version, 5);
        assert_eq!(next.updated_at, now);
        let stored = next.review.expect("review kept");
        assert_eq!(stored.reviewed_at, now, "server clock, not the client's");
        assert_eq!(stored.verdict, Verdict::Defective);
        assert_eq!(stored.detections.len(), 1);
        assert_eq!(stored.notes, "scratch near the edge");
    }

    #[test]
    fn a_pending_inspection_can_be_reviewed_without_a_claim() {
        let p = inspection(Status::PendingReview);
        let next = submit_review(&p, review("ana", Verdict::Ok, vec![]), 3, T0, &classes())
            .expect("submit");
        assert_eq!(next.status, Status::Reviewed);
        assert_eq!(next.version, 4);
    }

    #[test]
    fn another_reviewer_cannot_submit_while_the_lease_holds() {
        let held = claimed_by("ana");
        let r = review("bob", Verdict::Ok, vec![]);
        let err = submit_review(&held, r, 4, T0 + Duration::minutes(1), &classes()).unwrap_err();
        assert!(matches!(err, DomainError::ClaimedByOther { by, .. } if by == "ana"));
    }

    #[test]
    fn anyone_can_submit_once_the_lease_expired_and_nobody_reclaimed() {
        let held = claimed_by("ana");
        let r = review("bob", Verdict::Ok, vec![]);
        let next = submit_review(&held, r, 4, T0 + LEASE, &classes()).expect("submit");
        assert_eq!(next.review.expect("review").reviewer, "bob");
    }

    #[test]
    fn stale_review_gets_stale_version_with_the_current_version() {
        let held = claimed_by("ana");
        let r = review("ana", Verdict::Ok, vec![]);
        let err = submit_review(&held, r, 3, T0, &classes()).unwrap_err();
        assert_eq!(
            err,
            DomainError::StaleVersion {
                given: 3,
                current: 4
            }
        );
    }

    #[test]
    fn reviewing_outside_the_queue_is_an_illegal_transition() {
        for from in [Status::AutoValidated, Status::Reviewed, Status::Rejected] {
            let r = review("ana", Verdict::Ok, vec![]);
            let err = submit_review(&inspection(from), r, 3, T0, &classes()).unwrap_err();
            assert_eq!(
                err,
                DomainError::IllegalTransition {
                    action: "review",
                    from
                }
            );
        }
    }

    #[test]
    fn a_box_of_an_unknown_class_is_refused_naming_the_box_and_the_known_classes() {
        let mut d = stain([0.1, 0.1, 0.2, 0.2]);
        d.class = "scratch".into();
        let r = review(
            "ana",
            Verdict::Defective,
            vec![stain([0.1, 0.1, 0.2, 0.2]), d],
        );
        let m = invalid_message(submit_review(
            &inspection(Status::PendingReview),
            r,
            3,
            T0,
            &classes(),
        ));
        assert!(m.starts_with("detections[1]: "), "{m}");
        assert!(m.contains("\"scratch\""), "{m}");
        assert!(m.contains("defect, fracture, stain, misalignment"), "{m}");
    }

    #[test]
    fn boxes_outside_the_image_or_inverted_or_degenerate_are_refused() {
        let p = inspection(Status::PendingReview);
        let cases: [([f32; 4], &str); 5] = [
            ([-0.1, 0.1, 0.2, 0.2], "x1 must be in [0, 1]"),
            ([0.1, 0.1, 1.2, 0.2], "x2 must be in [0, 1]"),
            ([0.1, f32::NAN, 0.2, 0.2], "y1 must be in [0, 1]"),
            ([0.3, 0.1, 0.2, 0.2], "x1 < x2"),
            ([0.1, 0.2, 0.2, 0.2], "y1 < y2"),
        ];
        for (bbox, expected) in cases {
            let r = review("ana", Verdict::Defective, vec![stain(bbox)]);
            let m = invalid_message(submit_review(&p, r, 3, T0, &classes()));
            assert!(m.contains(expected), "{bbox:?}: {m}");
        }
    }

    #[test]
    fn a_box_confidence_outside_the_unit_interval_is_refused() {
        let mut d = stain([0.1, 0.1, 0.2, 0.2]);
        d.confidence = 1.5;
        let r = review("ana", Verdict::Defective, vec![d]);
        let m = invalid_message(submit_review(
            &inspection(Status::PendingReview),
            r,
            3,
            T0,
            &classes(),
        ));
        assert!(m.contains("confidence must be in [0, 1]"), "{m}");
    }

    #[test]
    fn an_ok_verdict_with_defect_boxes_is_refused_as_contradictory() {
        let r = review("ana", Verdict::Ok, vec![stain([0.1, 0.1, 0.2, 0.2])]);
        let m = invalid_message(submit_review(
            &inspection(Status::PendingReview),
            r,
            3,
            T0,
            &classes(),
        ));
        assert!(m.contains("verdict ok"), "{m}");
    }

    #[test]
    fn overlong_notes_and_too_many_boxes_are_refused() {
        let p = inspection(Status::PendingReview);
        let mut r = review("ana", Verdict::Ok, vec![]);
        r.notes = "x".repeat(MAX_NOTES_CHARS + 1);
        assert!(invalid_message(submit_review(&p, r, 3, T0, &classes())).contains("notes"));
        let boxes = vec![stain([0.1, 0.1, 0.2, 0.2]); MAX_REVIEW_DETECTIONS + 1];
        let r = review("ana", Verdict::Defective, boxes);
        assert!(invalid_message(submit_review(&p, r, 3, T0, &classes())).contains("at most"));
    }

    #[test]
    fn a_review_without_a_reviewer_is_refused() {
        let r = review("", Verdict::Ok, vec![]);
        let m = invalid_message(submit_review(
            &inspection(Status::PendingReview),
            r,
            3,
            T0,
            &classes(),
        ));
        assert!(m.contains("reviewer"), "{m}");
    }

    // ---- audit_sample ----

    #[test]
    fn auditing_an_auto_validated_inspection_queues_it_flagged_as_audit() {
        let now = T0 + Duration::hours(2);
        let next = audit_sample(&inspection(Status::AutoValidated), 3, now).expect("audit");
        assert_eq!(next.status, Status::PendingReview);
        assert!(next.audit_sample);
        assert_eq!(next.version, 4);
        assert_eq!(next.updated_at, now);
    }

    #[test]
    fn auditing_anything_but_an_auto_validated_inspection_is_illegal() {
        for from in [
            Status::PendingReview,
            Status::Claimed,
            Status::Reviewed,
            Status::Rejected,
        ] {
            let err = audit_sample(&inspection(from), 3, T0).unwrap_err();
            assert_eq!(
                err,
                DomainError::IllegalTransition {
                    action: "audit-sample",
                    from
                }
            );
        }
    }

    #[test]
    fn auditing_with_a_stale_version_is_refused() {
        let err = audit_sample(&inspection(Status::AutoValidated), 7, T0).unwrap_err();
        assert_eq!(
            err,
            DomainError::StaleVersion {
                given: 7,
                current: 3
            }
        );
    }

    #[test]
    fn a_full_round_trip_claim_release_claim_review_keeps_versions_consecutive() {
        let p = inspection(Status::PendingReview);
        let a = claim(&p, "ana", T0, LEASE, 3).expect("claim");
        let b = release(&a, "ana", T0 + Duration::seconds(5), a.version).expect("release");
        let c = claim(&b, "bob", T0 + Duration::seconds(6), LEASE, b.version).expect("claim");
        let r = review("bob", Verdict::Ok, vec![]);
        let d =
            submit_review(&c, r, c.version, T0 + Duration::seconds(9), &classes()).expect("review");
        assert_eq!([a.version, b.version, c.version, d.version], [4, 5, 6, 7]);
        assert_eq!(d.overridden(), Some(false));
    }
}
