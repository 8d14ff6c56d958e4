//! The audit trail: who did what to which record and when, newest first; filter by actor,
//! action, entity and time; each event opens into its before → after field changes.

use opti_core::types::{AuditAction, AuditEvent};
use time::OffsetDateTime;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::api::encode;
use crate::components::{error_box, loading};
use crate::diff::changes;
use crate::format::timestamp;
use crate::hooks::{use_remote, Remote};

const ACTIONS: [AuditAction; 16] = [
    AuditAction::InspectionCreated,
    AuditAction::InspectionRejected,
    AuditAction::AuditSampled,
    AuditAction::Claimed,
    AuditAction::ClaimReleased,
    AuditAction::Reviewed,
    AuditAction::ConfigChanged,
    AuditAction::UserAdded,
    AuditAction::ModelRegistered,
    AuditAction::ModelPromoted,
    AuditAction::ModelRolledBack,
    AuditAction::GateDecided,
    AuditAction::RetrainStarted,
    AuditAction::RetrainFinished,
    AuditAction::RetrainFailed,
    AuditAction::DriftAlert,
];

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct AuditPageData {
    items: Vec<AuditEvent>,
    next_cursor: Option<String>,
}

/// `YYYY-MM-DDTHH:MM` from a datetime-local input, as UTC.
fn parse_local(s: &str) -> Option<OffsetDateTime> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(s, &fmt)
        .ok()
        .map(|p| p.assume_utc())
}

#[derive(Properties, PartialEq)]
struct EventRowProps {
    event: AuditEvent,
}

#[function_component(EventRow)]
fn event_row(p: &EventRowProps) -> Html {
    let open = use_state(|| false);
    let e = &p.event;
    let toggle = {
        let open = open.clone();
        Callback::from(move |_| open.set(!*open))
    };
    let diff = changes(e.before.as_ref(), e.after.as_ref());
    html! {
        <>
        <tr class="audit-row" data-action={e.action.as_str()}>
            <td>{timestamp(e.at)}</td><td>{&e.actor}</td><td>{e.action.as_str()}</td><td class="mono">{&e.entity}</td>
            <td><button class="btn small" onclick={toggle} aria-expanded={open.to_string()}>
                {format!("{} change{}", diff.len(), if diff.len() == 1 { "" } else { "s" })}</button></td>
        </tr>
        if *open {
            <tr class="diff-row"><td colspan="5">
                <table class="diff">
                    <thead><tr><th>{"field"}</th><th>{"before"}</th><th>{"after"}</th></tr></thead>
                    <tbody>{ for diff.iter().map(|c| html! {
                        <tr><td class="mono">{&c.path}</td>
                            <td class="before mono">{c.before.clone().unwrap_or_else(|| "–".into())}</td>
                            <td class="after mono">{c.after.clone().unwrap_or_else(|| "–".into())}</td></tr>
                    }) }</tbody>
                </table>
            </td></tr>
        }
        </>
    }
}

/// The audit page.
#[function_component(AuditPage)]
pub fn audit_page() -> Html {
    let actor = use_state(String::new);
    let action = use_state(String::new);
    let entity = use_state(String::new);
    let from = use_state(String::new);
    let to = use_state(String::new);
    let limit = use_state(|| 100u32);
    let mut path = format!("/audit?limit={}", *limit);
    for (k, v) in [
        ("actor", &*actor),
        ("action", &*action),
        ("entity", &*entity),
    ] {
        if !v.is_empty() {
            path.push_str(&format!("&{k}={}", encode(v)));
        }
    }
    let data = use_remote::<AuditPageData>(Some(path), 0);
    let text = |h: &UseStateHandle<String>| {
        let h = h.clone();
        Callback::from(move |e: Event| h.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    let on_action = {
        let action = action.clone();
        Callback::from(move |e: Event| {
            action.set(e.target_unchecked_into::<HtmlSelectElement>().value())
        })
    };
    let (t0, t1) = (parse_local(&from), parse_local(&to));
    let body = match &*data {
        Remote::Loading => loading(),
        Remote::Failed(e) => error_box(e),
        Remote::Ready(page) => {
            let events: Vec<&AuditEvent> = page
                .items
                .iter()
                .filter(|e| t0.is_none_or(|t| e.at >= t) && t1.is_none_or(|t| e.at <= t))
                .collect();
            let more = {
                let limit = limit.clone();
                Callback::from(move |_| limit.set((*limit + 100).min(1000)))
            };
            html! {
                <>
                <table class="audit" id="audit-table">
                    <thead><tr><th>{"When (UTC)"}</th><th>{"Actor"}</th><th>{"Action"}</th><th>{"Entity"}</th><th>{"Before → after"}</th></tr></thead>
                    <tbody>{ for events.iter().map(|e| html! { <EventRow key={e.id.clone()} event={(*e).clone()} /> }) }</tbody>
                </table>
                if events.is_empty() { <div class="empty">{"No events match."}</div> }
                if page.next_cursor.is_some() && *limit < 1000 {
                    <button class="btn" onclick={more}>{"Show more"}</button>
                }
                </>
            }
        }
    };
    html! {
        <section class="panel">
            <h1>{"Audit trail"}</h1>
            <div class="filters">
                <label>{"Actor"}<input id="audit-actor" type="text" placeholder="reviewer:ana" onchange={text(&actor)} /></label>
                <label>{"Action"}
                    <select id="audit-action" onchange={on_action}>
                        <option value="" selected={action.is_empty()}>{"any"}</option>
                        { for ACTIONS.iter().map(|a| { let s = a.as_str(); html! { <option value={s.clone()} selected={*action == s}>{s.clone()}</option> } }) }
                    </select></label>
                <label>{"Entity"}<input id="audit-entity" type="text" placeholder="inspection/ or config" onchange={text(&entity)} /></label>
                <label>{"From (UTC)"}<input id="audit-from" type="datetime-local" onchange={text(&from)} /></label>
                <label>{"To (UTC)"}<input id="audit-to" type="datetime-local" onchange={text(&to)} /></label>
            </div>
            {body}
        </section>
    }
}
