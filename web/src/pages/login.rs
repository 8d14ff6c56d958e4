//! Sign in: paste a bearer token (from `opti users add` or the first start of `opti
//! serve`); the API's `GET /me` says who it belongs to. In AWS mode a Cognito hosted UI
//! link (from `config.js`) returns with a token in the URL fragment.

use opti_core::types::Role;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::api::{deploy_setting, Api};
use crate::hooks::{use_session, Session};
use crate::wire::Me;

/// A token in the URL fragment (`#id_token=…` from Cognito's hosted UI), if any.
fn token_from_fragment() -> Option<String> {
    let hash = web_sys::window()?.location().hash().ok()?;
    hash.trim_start_matches('#')
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "id_token" || *k == "access_token")
        .map(|(_, v)| v.to_string())
}

/// The login page.
#[function_component(LoginPage)]
pub fn login_page() -> Html {
    let session = use_session();
    let input = use_node_ref();
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);

    let sign_in = {
        let session = session.clone();
        let error = error.clone();
        let busy = busy.clone();
        Callback::from(move |token: String| {
            let token = token.trim().to_string();
            if token.is_empty() {
                error.set(Some("Paste your access token first.".into()));
                return;
            }
            let session = session.clone();
            let error = error.clone();
            let busy = busy.clone();
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                let api = Api::new(Some(token.clone()));
                match api.get::<Me>("/me").await {
                    Ok(me) if me.role == Role::Camera => error.set(Some(format!(
                        "{} is a camera token; sign in with a reviewer or admin token.",
                        me.name
                    ))),
                    Ok(me) => {
                        let s = Session {
                            token,
                            name: me.name,
                            role: me.role,
                            classes: me.classes,
                        };
                        Session::store(Some(&s));
                        error.set(None);
                        session.set(Some(s));
                    }
                    Err(e) if e.status() == Some(401) => error.set(Some(
                        "This token was not accepted. Check it and try again.".into(),
                    )),
                    Err(e) => error.set(Some(e.to_string())),
                }
                busy.set(false);
            });
        })
    };
    {
        let sign_in = sign_in.clone();
        use_effect_with((), move |_| {
            if let Some(t) = token_from_fragment() {
                sign_in.emit(t);
            }
        });
    }
    {
        // `autofocus` is only honoured on page load; the SPA renders this page later.
        let input = input.clone();
        use_effect_with((), move |_| {
            if let Some(i) = input.cast::<HtmlInputElement>() {
                let _ = i.focus();
            }
        });
    }
    let onsubmit = {
        let input = input.clone();
        let sign_in = sign_in.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Some(i) = input.cast::<HtmlInputElement>() {
                sign_in.emit(i.value());
            }
        })
    };
    let cognito = deploy_setting("loginUrl");
    html! {
        <section class="panel login">
            <h1>{"Sign in"}</h1>
            <form onsubmit={onsubmit}>
                <label for="token">{"Access token"}</label>
                <input id="token" ref={input} type="password" autocomplete="current-password"
                       placeholder="oq_…" autofocus=true />
                <p class="muted">{"Ask an admin for a token (`opti users add --role reviewer --name you`). \
                    The first start of `opti serve` prints the admin token."}</p>
                <button class="btn primary" id="signin" type="submit" disabled={*busy}>{"Sign in"}</button>
            </form>
            if let Some(url) = cognito {
                <p><a class="btn" href={url}>{"Sign in with your organisation"}</a></p>
            }
            if let Some(e) = &*error {
                <div class="error" role="alert" id="login-error">{e}</div>
            }
        </section>
    }
}
