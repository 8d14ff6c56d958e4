//! Checks of the audited writes: a record change and its audit event are stored together
//! or not at all, and of [`RetrainJobStore`]: one running job at a time, conditional
//! updates, newest-first listing, each change with its audit event.

use opti_core::ports::{AuditQuery, StoreError};
use opti_core::retrain::{JobStatus, RetrainJob};
use opti_core::{AuditAction, AuditEvent, Status};

use super::fixtures::{at, base_time, event, inspection};
use super::{expect_err, run_tag, CheckFailure, CheckResult, Context, Ports};

/// The events stored for `entity`, by id.
async fn event_ids_of(ports: &Ports<'_>, entity: &str) -> Result<Vec<String>, CheckFailure> {
    let page = ports
        .audit
        .list_audit(&AuditQuery {
            entity: Some(entity.to_owned()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .ctx("listing audit events")?;
    Ok(page.items.into_iter().map(|e| e.id).collect())
}

/// An audited create stores the record and its events; a second create under the same
/// id returns the stored record and appends nothing.
pub async fn audited_create_appends_events_only_when_created(ports: &Ports<'_>) -> CheckResult {
    let tag = run_tag();
    let camera = format!("cam-{tag}-atomic");
    let base = base_time();
    let record = inspection(&camera, 1, 0.4, base, Status::PendingReview);
    let entity = format!("inspection/{}", record.id);
    let created = event(
        &format!("evt-{tag}-1"),
        "camera:c",
        AuditAction::InspectionCreated,
        &entity,
        base,
    );
    let sampled = event(
        &format!("evt-{tag}-2"),
        "system",
        AuditAction::AuditSampled,
        &entity,
        at(base, 1),
    );
    let (stored, was_new) = ports
        .inspections
        .create_inspection_audited(&record, &[created.clone(), sampled.clone()])
        .await
        .ctx("audited create")?;
    ensure!(was_new, "a new id was reported as existing");
    ensure_eq!(&stored, &record, "audited create returned");
    let mut ids = event_ids_of(ports, &entity).await?;
    ids.sort();
    ensure_eq!(ids, vec![created.id.clone(), sampled.id.clone()], "events");

    let again = event(
        &format!("evt-{tag}-3"),
        "camera:c",
        AuditAction::InspectionCreated,
        &entity,
        at(base, 2),
    );
    let (existing, was_new) = ports
        .inspections
        .create_inspection_audited(&record, std::slice::from_ref(&again))
        .await
        .ctx("repeated audited create")?;
    ensure!(!was_new, "a repeated create said it created the record");
    ensure_eq!(&existing, &record, "repeated create returned");
    ensure_eq!(
        event_ids_of(ports, &entity).await?.len(),
        2,
        "events after a repeated create (none added)"
    );
    Ok(())
}

/// An audited update stores the record at version + 1 and the event; a stale one is
/// `Conflict` and stores neither.
pub async fn audited_update_stores_both_and_stale_update_stores_neither(
    ports: &Ports<'_>,
) -> CheckResult {
    let tag = run_tag();
    let camera = format!("cam-{tag}-atomic-upd");
    let base = base_time();
    let record = inspection(&camera, 1, 0.4, base, Status::PendingReview);
    let entity = format!("inspection/{}", record.id);
    ports
        .inspections
        .create_inspection(&record)
        .await
        .ctx("create")?;
    let mut claimed = record.clone();
    claimed.status = Status::Claimed;
    let ok_event = event(
        &format!("evt-{tag}-claim"),
        "reviewer:r",
        AuditAction::Claimed,
        &entity,
        at(base, 1),
    );
    let stored = ports
        .inspections
        .update_inspection_audited(&claimed, record.version, &ok_event)
        .await
        .ctx("audited update")?;
    ensure_eq!(stored.version, record.version + 1, "version after update");
    ensure_eq!(
        event_ids_of(ports, &entity).await?,
        vec![ok_event.id.clone()],
        "events after the update"
    );

    let mut late = record.clone();
    late.status = Status::Reviewed;
    let stale_event = event(
        &format!("evt-{tag}-stale"),
        "reviewer:s",
        AuditAction::Reviewed,
        &entity,
        at(base, 2),
    );
    let err = expect_err(
        ports
            .inspections
            .update_inspection_audited(&late, record.version, &stale_event)
            .await,
        "stale audited update",
    )?;
    ensure!(
        matches!(err, StoreError::Conflict { .. }),
        "stale audited update gave {err:?}, not Conflict"
    );
    let read = ports
        .inspections
        .get_inspection(&record.id)
        .await
        .ctx("get")?;
    ensure_eq!(&read, &stored, "record after the refused update");
    ensure_eq!(
        event_ids_of(ports, &entity).await?,
        vec![ok_event.id.clone()],
        "events after the refused update (the stale one must not be stored)"
    );
    Ok(())
}

/// An audited config put stores the event with the config; a stale one stores neither.
/// (One config record per store: puts back the value it found.)
pub async fn audited_config_put_stores_both_and_stale_put_stores_neither(
    ports: &Ports<'_>,
) -> CheckResult {
    let tag = run_tag();
    let entity = format!("config-{tag}");
    let found = ports.config.get_config().await.ctx("reading the config")?;
    let mut changed = found.value.clone();
    changed.retrain_min = changed.retrain_min % 50 + 1;
    let put_event = event(
        &format!("evt-{tag}-cfg"),
        "admin:a",
        AuditAction::ConfigChanged,
        &entity,
        base_time(),
    );
    let stored = ports
        .config
        .put_config_audited(&changed, found.version, &put_event)
        .await
        .ctx("audited config put")?;
    ensure_eq!(stored.version, found.version + 1, "config version");
    let stale_event = AuditEvent {
        id: format!("evt-{tag}-cfg-stale"),
        ..put_event.clone()
    };
    let err = expect_err(
        ports
            .config
            .put_config_audited(&found.value, found.version, &stale_event)
            .await,
        "stale audited config put",
    )?;
    ensure!(
        matches!(err, StoreError::Conflict { .. }),
        "stale audited config put gave {err:?}, not Conflict"
    );
    ensure_eq!(
        event_ids_of(ports, &entity).await?,
        vec![put_event.id.clone()],
        "config events (the stale put's must not be stored)"
    );
    ports
        .config
        .put_config(&found.value, stored.version)
        .await
        .ctx("restoring the config found")?;
    Ok(())
}

fn job(id: &str, created_at: time::OffsetDateTime) -> RetrainJob {
    RetrainJob::started(
        id.to_owned(),
        "snapshot",
        "manual",
        "admin:a",
        created_at,
        12,
        Some("v1".into()),
        1,
    )
}

/// A job is created only while none runs (`Conflict` with the running one otherwise);
/// updates are conditional on the version; each change stores its audit event; jobs
/// list newest first; an unknown job is `NotFound`. Assumes no other job runs in the
/// store meanwhile.
pub async fn retrain_jobs_run_one_at_a_time_with_audited_changes(ports: &Ports<'_>) -> CheckResult {
    let tag = run_tag();
    let base = base_time();
    let first = job(&format!("job-{tag}-1"), base);
    let entity = |j: &RetrainJob| format!("retrain/{}", j.id);
    let started = event(
        &format!("evt-{tag}-j1"),
        "admin:a",
        AuditAction::RetrainStarted,
        &entity(&first),
        base,
    );
    ports
        .jobs
        .create_job(&first, &started)
        .await
        .ctx("creating a job")?;
    ensure_eq!(
        ports.jobs.get_job(&first.id).await.ctx("get")?,
        first.clone(),
        "job read back"
    );
    ensure_eq!(
        event_ids_of(ports, &entity(&first)).await?,
        vec![started.id.clone()],
        "events of the created job"
    );

    let second = job(&format!("job-{tag}-2"), at(base, 5));
    let refused = event(
        &format!("evt-{tag}-j2"),
        "admin:a",
        AuditAction::RetrainStarted,
        &entity(&second),
        at(base, 5),
    );
    let err = expect_err(
        ports.jobs.create_job(&second, &refused).await,
        "creating a job while one runs",
    )?;
    let StoreError::Conflict { current, .. } = err else {
        return Err(CheckFailure::new(format!(
            "a second running job gave {err:?}, not Conflict"
        )));
    };
    let current: RetrainJob = serde_json::from_value(*current)
        .map_err(|e| CheckFailure::new(format!("Conflict.current is not a job: {e}")))?;
    ensure_eq!(
        current.id,
        first.id,
        "Conflict.current names the running job"
    );
    ensure!(
        event_ids_of(ports, &entity(&second)).await?.is_empty(),
        "a refused job left an audit event"
    );
    let err = expect_err(ports.jobs.get_job(&second.id).await, "get refused job")?;
    ensure!(
        matches!(err, StoreError::NotFound { .. }),
        "a refused job was stored ({err:?})"
    );

    let mut failed = first.clone();
    failed.status = JobStatus::Failed;
    failed.error = Some("trainer exited with 1".into());
    failed.finished_at = Some(at(base, 3));
    let failed_event = event(
        &format!("evt-{tag}-j1f"),
        "system",
        AuditAction::RetrainFailed,
        &entity(&first),
        at(base, 3),
    );
    let stored = ports
        .jobs
        .update_job(&failed, first.version, Some(&failed_event))
        .await
        .ctx("failing the job")?;
    ensure_eq!(
        stored.version,
        first.version + 1,
        "job version after update"
    );
    let stale_event = event(
        &format!("evt-{tag}-j1s"),
        "system",
        AuditAction::RetrainFinished,
        &entity(&first),
        at(base, 4),
    );
    let err = expect_err(
        ports
            .jobs
            .update_job(&first, first.version, Some(&stale_event))
            .await,
        "stale job update",
    )?;
    ensure!(
        matches!(err, StoreError::Conflict { .. }),
        "stale job update gave {err:?}, not Conflict"
    );
    let mut ids = event_ids_of(ports, &entity(&first)).await?;
    ids.sort();
    let mut want = vec![started.id.clone(), failed_event.id.clone()];
    want.sort();
    ensure_eq!(ids, want, "events of the first job");

    ports
        .jobs
        .create_job(&second, &refused)
        .await
        .ctx("creating a job once none runs")?;
    let listed = ports.jobs.list_jobs(50).await.ctx("listing jobs")?;
    let ours: Vec<&str> = listed
        .iter()
        .map(|j| j.id.as_str())
        .filter(|id| id.starts_with(&format!("job-{tag}-")))
        .collect();
    ensure_eq!(
        ours,
        vec![second.id.as_str(), first.id.as_str()],
        "newest first"
    );
    let err = expect_err(
        ports.jobs.get_job(&format!("job-{tag}-none")).await,
        "unknown job",
    )?;
    ensure!(
        matches!(err, StoreError::NotFound { .. }),
        "unknown job gave {err:?}"
    );
    // Leave no running job behind for the next run on a shared store.
    let mut done = second.clone();
    done.status = JobStatus::Succeeded;
    ports
        .jobs
        .update_job(&done, second.version, None)
        .await
        .ctx("finishing the second job")?;
    Ok(())
}
