//! The review queue: pending items most uncertain first (as the API orders them), with
//! thumbnail, confidence, camera and age; filters by camera, class and audit sample.

use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::encode;
use crate::app::Route;
use crate::components::{error_box, loading, now_unix};
use crate::format::{age, percent, seconds_since};
use crate::hooks::{use_api, use_remote, use_session, Remote};
use crate::wire::{has_class, InspectionView};

/// A page of the queue as the API sends it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct QueuePageData {
    pub items: Vec<InspectionView>,
    pub next_cursor: Option<String>,
}

/// The queue page.
#[function_component(QueuePage)]
pub fn queue_page() -> Html {
    let session = use_session();
    let api = use_api();
    let camera = use_state(String::new);
    let class = use_state(String::new);
    let audit = use_state(String::new);
    let status = use_state(|| "pending_review".to_string());
    let reload = use_state(|| 0u32);
    let mut path = format!("/inspections?status={}&limit=200", encode(&status));
    if !camera.is_empty() {
        path.push_str(&format!("&camera_id={}", encode(&camera)));
    }
    if !audit.is_empty() {
        path.push_str(&format!("&audit_sample={}", *audit));
    }
    let data = use_remote::<QueuePageData>(Some(path), *reload);
    let classes = session
        .as_ref()
        .map(|s| s.classes.clone())
        .unwrap_or_default();

    let on_camera = {
        let camera = camera.clone();
        Callback::from(move |e: Event| {
            camera.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let on_class = {
        let class = class.clone();
        Callback::from(move |e: Event| {
            class.set(e.target_unchecked_into::<HtmlSelectElement>().value())
        })
    };
    let on_audit = {
        let audit = audit.clone();
        Callback::from(move |e: Event| {
            audit.set(e.target_unchecked_into::<HtmlSelectElement>().value())
        })
    };
    let on_status = {
        let status = status.clone();
        Callback::from(move |e: Event| {
            status.set(e.target_unchecked_into::<HtmlSelectElement>().value())
        })
    };
    let on_refresh = {
        let reload = reload.clone();
        Callback::from(move |_| reload.set(reload.wrapping_add(1)))
    };

    let body = match &*data {
        Remote::Loading => loading(),
        Remote::Failed(e) => error_box(e),
        Remote::Ready(page) => {
            let items: Vec<&InspectionView> = page
                .items
                .iter()
                .filter(|i| has_class(&i.inspection, &class))
                .collect();
            let more = if page.next_cursor.is_some() { "+" } else { "" };
            let now = now_unix();
            html! {
                <>
                <p class="count"><span id="queue-count" class="badge big">{format!("{}{more}", items.len())}</span>
                   {" items"}</p>
                if items.is_empty() {
                    <div class="empty" id="queue-empty">{"Nothing waiting. The line is running on its own."}</div>
                } else {
                    <table class="queue" id="queue-table">
                        <thead><tr><th>{"Image"}</th><th class="num">{"Confidence"}</th><th>{"Model says"}</th>
                            <th>{"Camera"}</th><th>{"Age"}</th><th>{"Status"}</th></tr></thead>
                        <tbody>
                        { for items.iter().map(|v| {
                            let i = &v.inspection;
                            let classes_seen: Vec<String> = {
                                let mut c: Vec<String> = i.detections.iter().map(|d| d.class.clone()).collect();
                                c.sort(); c.dedup(); c
                            };
                            let decision = match i.decision {
                                Some(opti_core::types::Decision::Defective) => "defective",
                                Some(opti_core::types::Decision::Clean) => "clean",
                                None => "–",
                            };
                            html! {
                                <tr class="queue-item" data-id={i.id.clone()} data-confidence={i.confidence.to_string()}>
                                    <td><Link<Route> to={Route::Review { id: i.id.clone() }} classes="thumb-link">
                                        <img class="thumb" loading="lazy" src={api.url(&v.image_url)} alt={i.filename.clone().unwrap_or_default()} />
                                    </Link<Route>></td>
                                    <td class="num">{percent(Some(f64::from(i.confidence)))}</td>
                                    <td>{decision}{" "}<span class="muted">{classes_seen.join(", ")}</span></td>
                                    <td>{&i.camera_id}</td>
                                    <td>{age(seconds_since(i.created_at, now))}</td>
                                    <td>
                                        if i.audit_sample { <span class="tag audit">{"audit"}</span> }
                                        if let Some(c) = &i.claim { <span class="tag">{format!("claimed by {}", c.reviewer)}</span> }
                                        <Link<Route> to={Route::Review { id: i.id.clone() }} classes="btn small open">{"Open"}</Link<Route>>
                                    </td>
                                </tr>
                            }
                        }) }
                        </tbody>
                    </table>
                }
                </>
            }
        }
    };
    html! {
        <section class="panel">
            <h1>{"Review queue"}</h1>
            <div class="filters">
                <label>{"Status"}
                    <select id="filter-status" onchange={on_status}>
                        <option value="pending_review" selected={*status == "pending_review"}>{"pending"}</option>
                        <option value="claimed" selected={*status == "claimed"}>{"claimed"}</option>
                        <option value="reviewed" selected={*status == "reviewed"}>{"reviewed"}</option>
                    </select></label>
                <label>{"Camera"}<input id="filter-camera" type="text" placeholder="any" value={(*camera).clone()} onchange={on_camera} /></label>
                <label>{"Class"}
                    <select id="filter-class" onchange={on_class}>
                        <option value="" selected={class.is_empty()}>{"any"}</option>
                        { for classes.iter().map(|c| html! { <option value={c.clone()} selected={*class == *c}>{c}</option> }) }
                    </select></label>
                <label>{"Audit samples"}
                    <select id="filter-audit" onchange={on_audit}>
                        <option value="" selected={audit.is_empty()}>{"include"}</option>
                        <option value="true" selected={*audit == "true"}>{"only"}</option>
                        <option value="false" selected={*audit == "false"}>{"exclude"}</option>
                    </select></label>
                <button class="btn" onclick={on_refresh} id="queue-refresh">{"Refresh"}</button>
            </div>
            {body}
        </section>
    }
}
