//! `use_remote`: GET a path into state, again whenever the path or a reload counter
//! changes. A 401 signs the user out (the token was revoked or mistyped).

use serde::de::DeserializeOwned;
use yew::prelude::*;

use crate::api::ApiError;
use crate::hooks::{use_api, use_session, Session};

/// Data on its way from the API.
#[derive(Debug, Clone, PartialEq)]
pub enum Remote<T> {
    Loading,
    Ready(T),
    Failed(ApiError),
}

/// GETs `path` (none when `None`) and re-GETs when `path` or `reload` changes.
#[hook]
pub fn use_remote<T>(path: Option<String>, reload: u32) -> UseStateHandle<Remote<T>>
where
    T: DeserializeOwned + Clone + PartialEq + 'static,
{
    let state = use_state(|| Remote::Loading);
    let api = use_api();
    let session = use_session();
    {
        let state = state.clone();
        use_effect_with((path, reload), move |(path, _)| {
            if let Some(path) = path.clone() {
                wasm_bindgen_futures::spawn_local(async move {
                    let result = api.get::<T>(&path).await;
                    match result {
                        Ok(v) => state.set(Remote::Ready(v)),
                        Err(e) => {
                            if e.status() == Some(401) {
                                Session::store(None);
                                session.set(None);
                            }
                            state.set(Remote::Failed(e));
                        }
                    }
                });
            }
        });
    }
    state
}
