//! The review Lambda: the HTTP API Router behind API Gateway, callers from Cognito
//! (see `opti_lambda::review`). State is built once per container; the model is loaded
//! on first need by the routes that use it.

use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    opti_lambda::init_tracing();
    let (_store, state, _slot) = opti_lambda::state_from_env().await?;
    lambda_http::run(opti_lambda::review::app(state)).await
}
