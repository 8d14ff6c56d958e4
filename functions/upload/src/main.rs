//! The upload Lambda: S3 `ObjectCreated` events under `raw/` become inspections (see
//! `opti_lambda::upload`). State, including the model, is built once per container.

use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use opti_lambda::upload::Uploader;

#[tokio::main]
async fn main() -> Result<(), Error> {
    opti_lambda::init_tracing();
    let uploader = Arc::new(Uploader::from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| {
        let uploader = uploader.clone();
        async move {
            let outcomes = uploader.handle(&event.payload).await?;
            Ok::<_, Error>(outcomes)
        }
    }))
    .await
}
