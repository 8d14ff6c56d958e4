//! The app shell: routes, the session context, the navigation bar and the page switch.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::nav::Nav;
use crate::hooks::{Session, SessionHandle};
use crate::pages;

/// Every page. Paths avoid the API's own paths (`/audit`, `/models`, `/inspections`), so
/// a reload of any page reaches the SPA fallback of `opti serve` (or CloudFront's).
#[derive(Debug, Clone, PartialEq, Routable)]
pub enum Route {
    #[at("/")]
    Home,
    #[at("/login")]
    Login,
    #[at("/queue")]
    Queue,
    #[at("/review/:id")]
    Review { id: String },
    #[at("/dashboard")]
    Dashboard,
    #[at("/audit-trail")]
    Audit,
    #[at("/settings")]
    Settings,
    #[at("/model-registry")]
    Models,
    #[not_found]
    #[at("/404")]
    NotFound,
}

impl Route {
    /// Pages only admins may open.
    pub fn admin_only(&self) -> bool {
        matches!(self, Route::Audit | Route::Settings | Route::Models)
    }
}

/// The root component.
#[function_component(App)]
pub fn app() -> Html {
    let session: SessionHandle = use_state(Session::load);
    html! {
        <BrowserRouter>
            <ContextProvider<SessionHandle> context={session}>
                <Nav />
                <main id="main" class="main">
                    <Switch<Route> render={switch} />
                </main>
            </ContextProvider<SessionHandle>>
        </BrowserRouter>
    }
}

fn switch(route: Route) -> Html {
    html! { <Guard route={route} /> }
}

#[derive(Properties, PartialEq)]
struct GuardProps {
    route: Route,
}

/// Sends visitors without a session to the login page and keeps reviewers off admin pages.
#[function_component(Guard)]
fn guard(props: &GuardProps) -> Html {
    let session = crate::hooks::use_session();
    let route = props.route.clone();
    let Some(s) = (*session).clone() else {
        return html! { <pages::login::LoginPage /> };
    };
    if route.admin_only() && !s.is_admin() {
        return html! {
            <section class="panel">
                <h1>{"Admins only"}</h1>
                <p>{"This page is for quality engineers with the admin role. Signed in as "}
                   <b>{&s.name}</b>{format!(" ({}).", s.role.as_str())}</p>
            </section>
        };
    }
    match route {
        Route::Home | Route::Login => html! { <Redirect<Route> to={Route::Queue} /> },
        Route::Queue => html! { <pages::queue::QueuePage /> },
        Route::Review { id } => html! { <pages::annotate::AnnotatePage id={id} /> },
        Route::Dashboard => html! { <pages::dashboard::DashboardPage /> },
        Route::Audit => html! { <pages::audit::AuditPage /> },
        Route::Settings => html! { <pages::settings::SettingsPage /> },
        Route::Models => html! { <pages::models::ModelsPage /> },
        Route::NotFound => html! {
            <section class="panel"><h1>{"Not found"}</h1>
                <Link<Route> to={Route::Queue}>{"Back to the queue"}</Link<Route>></section>
        },
    }
}
