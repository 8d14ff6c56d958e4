//! A SageMaker training job that completed: the step that would register its output as
//! a candidate and run the gate. Not implemented in AWS mode yet: the job is closed as
//! failed with a message naming the artifacts, so the lock is released, the active model
//! stays as it was, and an operator can see what was trained and where it is.

use opti_core::retrain::RetrainJob;

use crate::retrain::{fail_job, Retrainer};

/// Handles a completed training job; returns what was done, for the logs.
pub async fn completed(r: &Retrainer, job: &RetrainJob, artifacts: &str) -> String {
    let message = format!(
        "the SageMaker training job completed (artifacts: {artifacts}), but registering its \
         model as a candidate and running the gate are not implemented in AWS mode yet; \
         the active model was not changed"
    );
    fail_job(r, job, &message, "system:retrain").await;
    message
}
