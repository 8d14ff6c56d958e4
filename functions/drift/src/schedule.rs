//! The drift Lambda's scheduled side: an EventBridge schedule event runs the scheduled
//! drift evaluation (one record per window in the drift history) and publishes an SNS
//! alert when an alarm episode opens (see `opti_lambda::drift::scheduled`).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use opti_lambda::drift::Alerts;

#[tokio::main]
async fn main() -> Result<(), Error> {
    opti_lambda::init_tracing();
    let (_store, state, _slot) = opti_lambda::state_from_env().await?;
    let alerts = Alerts::from_env(&opti_lambda::sdk_config().await);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<EventBridgeEvent>| {
        let (state, alerts) = (state.clone(), alerts.clone());
        async move {
            let run = opti_lambda::drift::scheduled(&state, &alerts).await?;
            Ok::<_, Error>(format!("{run:?}"))
        }
    }))
    .await
}
