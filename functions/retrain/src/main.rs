//! The retrain Lambda's HTTP side: `POST /retrain`, `GET /retrain`, `GET /retrain/{job}`
//! through API Gateway, callers from Cognito (see `opti_lambda::retrain`).

use lambda_http::Error;
use opti_lambda::retrain::Retrainer;

#[tokio::main]
async fn main() -> Result<(), Error> {
    opti_lambda::init_tracing();
    let (store, state, _slot) = opti_lambda::state_from_env().await?;
    let retrainer = Retrainer::new(state, store, &opti_lambda::sdk_config().await);
    if let Err(why) = &retrainer.settings {
        tracing::warn!(%why, "retraining is not configured: POST /retrain answers 503");
    }
    lambda_http::run(opti_lambda::retrain::app(retrainer)).await
}
