//! The retrain Lambda's scheduled side: an EventBridge schedule, and the EventBridge rule
//! on our training jobs' `SageMaker Training Job State Change`, reconcile the running job
//! with its SageMaker training job (a completed one is registered, scored and gated), or
//! start a retraining once `retrain_min` new reviews exist (see
//! `opti_lambda::retrain::scheduled`). Either event only says "look now".

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use opti_lambda::retrain::Retrainer;

#[tokio::main]
async fn main() -> Result<(), Error> {
    opti_lambda::init_tracing();
    let (store, state, _slot) = opti_lambda::state_from_env().await?;
    let retrainer = Retrainer::new(state, store, &opti_lambda::sdk_config().await);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<EventBridgeEvent>| {
        let retrainer = retrainer.clone();
        async move {
            let run = opti_lambda::retrain::scheduled(&retrainer)
                .await
                .map_err(|e| Error::from(e.to_string()))?;
            tracing::info!(?run, "retrain schedule");
            Ok::<_, Error>(format!("{run:?}"))
        }
    }))
    .await
}
