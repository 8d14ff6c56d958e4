//! The navigation bar: pages the signed-in role may use, the queue's count badge, the
//! user and a sign-out button.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;
use crate::hooks::{use_remote, use_session, use_ticker, Remote, Session};
use crate::wire::Stats;

/// The top bar.
#[function_component(Nav)]
pub fn nav() -> Html {
    let session = use_session();
    let tick = use_ticker(15_000);
    let route = use_route::<Route>();
    let signed_in = session.is_some();
    let stats = use_remote::<Stats>(signed_in.then(|| "/stats".to_string()), tick);
    let Some(s) = (*session).clone() else {
        return html! {
            <header class="topbar"><span class="brand">{"Opti-Quality"}</span></header>
        };
    };
    let badge = match &*stats {
        Remote::Ready(st) => html! {
            <span id="queue-badge" class="badge" title="items waiting for review">{st.queue_size}</span>
        },
        _ => html! {},
    };
    let link = |to: Route, label: &str, id: &str, extra: Html| {
        let active = route.as_ref() == Some(&to)
            || matches!((&route, &to), (Some(Route::Review { .. }), Route::Queue));
        html! {
            <Link<Route> to={to} classes={classes!("navlink", active.then_some("active"))}>
                <span id={id.to_string()}>{label.to_string()}</span>{extra}
            </Link<Route>>
        }
    };
    let signout = {
        let session = session.clone();
        Callback::from(move |_| {
            Session::store(None);
            session.set(None);
        })
    };
    html! {
        <header class="topbar">
            <span class="brand">{"Opti-Quality"}</span>
            <nav class="nav" aria-label="main">
                {link(Route::Queue, "Queue", "nav-queue", badge)}
                {link(Route::Dashboard, "Dashboard", "nav-dashboard", html! {})}
                if s.is_admin() {
                    {link(Route::Audit, "Audit trail", "nav-audit", html! {})}
                    {link(Route::Settings, "Settings", "nav-settings", html! {})}
                    {link(Route::Models, "Models", "nav-models", html! {})}
                }
            </nav>
            <span class="user" id="whoami">{format!("{} · {}", s.name, s.role.as_str())}</span>
            <button class="btn ghost" id="signout" onclick={signout}>{"Sign out"}</button>
        </header>
    }
}
