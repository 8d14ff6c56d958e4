//! Retraining jobs in DynamoDB. One running job at a time is kept by a lock item
//! (`RETRAIN_LOCK`, naming the running job in `job`): a job is created in one
//! transaction with the conditional put of the lock (absent), the job (absent) and its
//! audit event; the update that moves a job out of `running` deletes the lock (if it
//! names that job) in the same transaction as the job and its event.

use async_trait::async_trait;
use opti_core::ports::{RetrainJobStore, StoreError};
use opti_core::retrain::{JobStatus, RetrainJob};
use opti_core::AuditEvent;

use super::keys::{self, time_id_key, GSI1};
use super::query::{Filter, KeysetQuery};
use super::txn::{refused, Op, Refusal, Refusals};
use super::{decode, encode, get_s, n, s, AwsStore, Item};

const ENTITY: &str = "retrain job";
/// Key of the lock item.
pub(crate) const LOCK: &str = "RETRAIN_LOCK";
/// Attribute of the lock item naming the running job.
const LOCK_JOB: &str = "job";

fn pk(id: &str) -> String {
    format!("JOB#{id}")
}

fn item_of(job: &RetrainJob) -> Result<Item, StoreError> {
    let mut item = Item::new();
    item.insert(keys::PK.into(), s(pk(&job.id)));
    item.insert(GSI1.pk.into(), s("JOB"));
    item.insert(GSI1.sk.into(), s(time_id_key(job.created_at, &job.id)?));
    item.insert("status".into(), s(job.status.as_str()));
    item.insert(keys::VER.into(), n(job.version));
    item.insert(keys::BODY.into(), s(encode(ENTITY, job)?));
    Ok(item)
}

fn lock_item(id: &str) -> Item {
    let mut item = Item::new();
    item.insert(keys::PK.into(), s(LOCK));
    item.insert(LOCK_JOB.into(), s(id));
    item
}

impl AwsStore {
    /// The job named by the lock item (given, or read), as a `Conflict`.
    async fn running_conflict(&self, lock: Option<&Item>) -> Result<StoreError, StoreError> {
        let lock = match lock {
            Some(item) => Some(item.clone()),
            None => self.get_item(LOCK).await?,
        };
        let Some(id) = lock.as_ref().and_then(|l| get_s(l, LOCK_JOB)) else {
            return Err(StoreError::Backend(
                "a job was refused for a running job that has since finished; try again".into(),
            ));
        };
        let current = match self.get_item(&pk(id)).await? {
            Some(item) => decode::<serde_json::Value>(ENTITY, &item)?,
            None => {
                return Err(StoreError::Corrupt(format!(
                    "the retrain lock names job {id}, which is not stored"
                )))
            }
        };
        Ok(StoreError::Conflict {
            entity: ENTITY,
            current: Box::new(current),
        })
    }

    /// The stored job as a `Conflict` (`NotFound` when there is none).
    async fn job_conflict(&self, id: &str, item: Option<&Item>) -> Result<StoreError, StoreError> {
        let item = match item {
            Some(item) => Some(item.clone()),
            None => self.get_item(&pk(id)).await?,
        };
        Ok(match item {
            Some(item) => StoreError::Conflict {
                entity: ENTITY,
                current: Box::new(decode::<serde_json::Value>(ENTITY, &item)?),
            },
            None => StoreError::NotFound {
                entity: ENTITY,
                id: id.to_owned(),
            },
        })
    }
}

/// The refusal of operation `i`, if it was a failed condition.
fn condition_failed(refusals: &Refusals, i: usize) -> Option<Option<&Item>> {
    match refusals.get(i) {
        Some(Refusal::Condition(item)) => Some(item.as_ref()),
        _ => None,
    }
}

#[async_trait]
impl RetrainJobStore for AwsStore {
    async fn create_job(&self, job: &RetrainJob, event: &AuditEvent) -> Result<(), StoreError> {
        let table = self.table();
        // Op 0: the lock must be free (and is taken when the new job runs).
        let lock = if job.status == JobStatus::Running {
            Op::put(
                table,
                lock_item(&job.id),
                Some("attribute_not_exists(#pk)"),
                vec![],
            )?
        } else {
            Op::check(table, LOCK, "attribute_not_exists(#pk)")?
        };
        let ops = vec![
            lock,
            Op::put(
                table,
                item_of(job)?,
                Some("attribute_not_exists(#pk)"),
                vec![],
            )?,
            Op::audit(table, event)?,
        ];
        let Err(refusals) = self.transact(ops).await? else {
            return Ok(());
        };
        if let Some(lock) = condition_failed(&refusals, 0) {
            return Err(self.running_conflict(lock).await?);
        }
        if condition_failed(&refusals, 1).is_some() {
            return Err(StoreError::AlreadyExists {
                entity: ENTITY,
                id: job.id.clone(),
            });
        }
        Err(refused("job create", &refusals))
    }

    async fn get_job(&self, id: &str) -> Result<RetrainJob, StoreError> {
        match self.get_item(&pk(id)).await? {
            Some(item) => decode(ENTITY, &item),
            None => Err(StoreError::NotFound {
                entity: ENTITY,
                id: id.to_owned(),
            }),
        }
    }

    async fn list_jobs(&self, limit: u32) -> Result<Vec<RetrainJob>, StoreError> {
        let (items, _more) = self
            .keyset_query(KeysetQuery {
                index: GSI1,
                partition: "JOB".into(),
                lo: None,
                hi: None,
                forward: false,
                skip: None,
                filter: Filter::default(),
                want: crate::page_size(limit) as usize,
            })
            .await?;
        items.iter().map(|item| decode(ENTITY, item)).collect()
    }

    async fn update_job(
        &self,
        next: &RetrainJob,
        expected_version: u64,
        event: Option<&AuditEvent>,
    ) -> Result<RetrainJob, StoreError> {
        let table = self.table();
        let mut stored = next.clone();
        stored.version = expected_version
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("job version overflow".into()))?;
        let mut ops = vec![Op::put(
            table,
            item_of(&stored)?,
            Some("attribute_exists(#pk) AND ver = :expected"),
            vec![(":expected", n(expected_version))],
        )?];
        let holds_lock = |lock: &Item| get_s(lock, LOCK_JOB) == Some(next.id.as_str());
        if next.status == JobStatus::Running {
            // Still (or again) running: the lock must be free or this job's.
            ops.push(Op::put(
                table,
                lock_item(&next.id),
                Some("attribute_not_exists(#pk) OR #job = :job"),
                vec![(":job", s(next.id.clone()))],
            )?);
        } else if self.get_item(LOCK).await?.is_some_and(|l| holds_lock(&l)) {
            // Leaving `running`: release the lock with the change. Only this job's own
            // update can release it, and that update is conditional on the version.
            ops.push(Op::delete(
                table,
                LOCK,
                "#job = :job",
                vec![(":job", s(next.id.clone()))],
            )?);
        }
        let lock_op = ops.len() - 1;
        ops.extend(event.map(|e| Op::audit(table, e)).transpose()?);
        let Err(refusals) = self.transact(ops).await? else {
            return Ok(stored);
        };
        if let Some(item) = condition_failed(&refusals, 0) {
            return Err(self.job_conflict(&next.id, item).await?);
        }
        if lock_op > 0 {
            if let Some(lock) = condition_failed(&refusals, lock_op) {
                return Err(self.running_conflict(lock).await?);
            }
        }
        Err(refused("job update", &refusals))
    }
}
