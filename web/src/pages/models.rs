//! Models (admin): every version with metrics and lineage, promote and roll back; the
//! retraining jobs with their progress, and a "Retrain now" button.

use gloo_timers::callback::Interval;
use opti_core::types::{MetricSet, ModelRecord, ModelStatus};
use serde_json::{json, Value};
use yew::prelude::*;

use crate::api::{encode, Method};
use crate::components::{error_box, loading};
use crate::format::{percent, timestamp};
use crate::hooks::{use_api, use_remote, Remote};
use crate::wire::{jobs_from_json, ModelList};

fn metrics(m: Option<MetricSet>) -> String {
    match m {
        Some(m) => format!(
            "P {:.3} · R {:.3} · mAP50 {:.3}",
            m.precision, m.recall, m.map50
        ),
        None => "–".into(),
    }
}

fn status_name(s: ModelStatus) -> &'static str {
    match s {
        ModelStatus::Candidate => "candidate",
        ModelStatus::Active => "active",
        ModelStatus::Retired => "retired",
        ModelStatus::Rejected => "rejected",
    }
}

/// `v3 ← v2 ← default`: the chain of parents known to the registry.
fn lineage(items: &[ModelRecord], start: &ModelRecord) -> String {
    let mut chain = vec![start.version.clone()];
    let mut parent = start.parent.clone();
    while let Some(p) = parent {
        if chain.contains(&p) || chain.len() > 20 {
            break;
        }
        chain.push(p.clone());
        parent = items
            .iter()
            .find(|m| m.version == p)
            .and_then(|m| m.parent.clone());
    }
    chain.join(" ← ")
}

/// The models page.
#[function_component(ModelsPage)]
pub fn models_page() -> Html {
    let api = use_api();
    let reload = use_state(|| 0u32);
    let tick = use_state(|| 0u32);
    {
        let tick = tick.clone();
        use_effect_with((), move |_| {
            let i = Interval::new(3_000, move || tick.set(tick.wrapping_add(1)));
            move || drop(i)
        });
    }
    let models = use_remote::<ModelList>(Some("/models".into()), *reload);
    let jobs = use_remote::<Value>(Some("/retrain".into()), reload.wrapping_add(*tick));
    let message = use_state(|| None::<(bool, String)>);

    let act = |path: String, done: String| {
        let (api, message, reload) = (api.clone(), message.clone(), reload.clone());
        Callback::from(move |_| {
            let (api, message, reload, path, done) = (
                api.clone(),
                message.clone(),
                reload.clone(),
                path.clone(),
                done.clone(),
            );
            wasm_bindgen_futures::spawn_local(async move {
                match api
                    .send::<Value>(Method::Post, &path, Some(&json!({})))
                    .await
                {
                    Ok(_) => message.set(Some((true, done))),
                    Err(e) if e.status() == Some(404) && path == "/retrain" => message.set(Some((
                        false,
                        "Retraining is not available on this server yet.".into(),
                    ))),
                    Err(e) => message.set(Some((false, e.to_string()))),
                }
                reload.set(reload.wrapping_add(1));
            });
        })
    };

    let table = match &*models {
        Remote::Loading => loading(),
        Remote::Failed(e) => error_box(e),
        Remote::Ready(list) => html! {
            <table class="models" id="models-table">
                <thead><tr><th>{"Version"}</th><th>{"Status"}</th><th>{"Measured (holdout)"}</th><th>{"Trainer (val)"}</th>
                    <th>{"Lineage"}</th><th>{"Created (UTC)"}</th><th></th></tr></thead>
                <tbody>{ for list.items.iter().map(|m| {
                    let active = list.active.as_deref() == Some(m.version.as_str());
                    let v = encode(&m.version);
                    html! {
                        <tr class={classes!("model-row", active.then_some("active"))} data-version={m.version.clone()}>
                            <td class="mono">{&m.version}</td>
                            <td><span class={classes!("tag", active.then_some("ok"))}>{status_name(m.status)}</span></td>
                            <td>{metrics(m.measured_metrics)}</td>
                            <td>{metrics(m.trainer_metrics)}</td>
                            <td class="mono">{lineage(&list.items, m)}
                                if let Some(s) = &m.snapshot_id { <div class="muted">{format!("snapshot {}", &s[..s.len().min(12)])}</div> }</td>
                            <td>{timestamp(m.created_at)}</td>
                            <td>
                                if active {
                                    <button class="btn" onclick={act(format!("/models/{v}/rollback"), format!("Rolled back from {}.", m.version))}>{"Roll back"}</button>
                                } else if m.status != ModelStatus::Rejected {
                                    <button class="btn" onclick={act(format!("/models/{v}/promote"), format!("{} is now active.", m.version))}>{"Promote"}</button>
                                }
                            </td>
                        </tr>
                    }
                }) }</tbody>
            </table>
        },
    };
    let jobs_html = match &*jobs {
        Remote::Loading => loading(),
        Remote::Failed(e) if e.status() == Some(404) => html! {
            <div class="notice" id="retrain-unavailable">{"Retraining jobs are not available on this server yet."}</div>
        },
        Remote::Failed(e) => error_box(e),
        Remote::Ready(v) => {
            let list = jobs_from_json(v);
            if list.is_empty() {
                html! { <div class="empty">{"No retraining has run yet."}</div> }
            } else {
                html! {
                    <table class="jobs" id="jobs-table">
                        <thead><tr><th>{"Job"}</th><th>{"Status"}</th><th>{"Progress"}</th><th>{"Candidate"}</th><th>{"Started"}</th></tr></thead>
                        <tbody>{ for list.iter().map(|j| html! {
                            <tr class="job-row">
                                <td class="mono">{&j.id}</td>
                                <td>{format!("{} {}", j.status, j.phase)}
                                    if let Some(e) = &j.error { <div class="error small">{e}</div> }</td>
                                <td>{ match j.fraction() {
                                    Some(f) => html! { <><progress max="1" value={f.to_string()}></progress>{format!(" {} · epoch {}/{}", percent(Some(f)), j.epochs_done, j.epochs)}</> },
                                    None => html! { {"–"} },
                                } }</td>
                                <td>{j.candidate.clone().unwrap_or_else(|| "–".into())}{if j.promoted { " (promoted)" } else { "" }}</td>
                                <td>{j.created_at.clone().unwrap_or_default()}</td>
                            </tr>
                        }) }</tbody>
                    </table>
                }
            }
        }
    };
    html! {
        <section class="panel">
            <h1>{"Models"}</h1>
            if let Some((ok, m)) = &*message {
                <div class={if *ok { "notice" } else { "error" }} role="status" id="models-message">{m}</div>
            }
            {table}
            <h2>{"Retraining"}</h2>
            <button class="btn primary" id="retrain-now" onclick={act("/retrain".into(), "Retraining started.".into())}>{"Retrain now"}</button>
            {jobs_html}
        </section>
    }
}
