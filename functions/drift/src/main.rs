//! The drift Lambda's HTTP side: `GET /drift/` through API Gateway, callers from
//! Cognito, computed by the service Router (see `opti_lambda::drift`).

use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    opti_lambda::init_tracing();
    let (_store, state, _slot) = opti_lambda::state_from_env().await?;
    lambda_http::run(opti_lambda::review::app(state)).await
}
