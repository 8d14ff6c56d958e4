//! The drift Lambda's scheduled side: an EventBridge schedule event stores the drift
//! report of its window once (see `opti_lambda::drift::scheduled`).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    opti_lambda::init_tracing();
    let (_store, state, _slot) = opti_lambda::state_from_env().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| {
        let state = state.clone();
        async move {
            // The schedule's time, not the (possibly delayed or retried) run's.
            let at = event
                .payload
                .time
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.timestamp()).ok())
                .unwrap_or_else(time::OffsetDateTime::now_utc);
            let run = opti_lambda::drift::scheduled(&state, at).await?;
            Ok::<_, Error>(format!("{run:?}"))
        }
    }))
    .await
}
