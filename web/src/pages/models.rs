//! Models (admin): every version with metrics and lineage, promote and roll back; the
//! retraining jobs with their progress, and a "Retrain now" button. One job is shown in
//! detail (the newest, or the one picked): its phases, epochs with losses, snapshot, and
//! the gate's decision with its reasons and both score sets. The page
//! polls the jobs every 2 s; when one finishes the model list is fetched again, so the new
//! candidate appears without a reload.

use opti_core::retrain::{JobStatus, RetrainJob};
use opti_core::types::{MetricSet, ModelRecord, ModelStatus};
use serde_json::{json, Value};
use yew::prelude::*;

use crate::api::{encode, Method};
use crate::components::{error_box, loading};
use crate::format::{percent, timestamp};
use crate::hooks::{use_api, use_remote, use_ticker, Remote};
use crate::retrain_view::{
    jobs as full_jobs_from_json, metric_cells, phase_steps, progress_line, score_rows, METRIC_NAMES,
};
use crate::wire::{jobs_from_json, ModelList};

fn metrics(m: Option<MetricSet>) -> String {
    match m {
        Some(m) => format!(
            "P {:.3} · R {:.3} · mAP50 {:.3} · mAP50-95 {:.3}",
            m.precision, m.recall, m.map50, m.map50_95
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
    let tick = use_ticker(2_000);
    let jobs = use_remote::<Value>(Some("/retrain".into()), reload.wrapping_add(tick));
    let full_jobs = match &*jobs {
        Remote::Ready(v) => full_jobs_from_json(v),
        _ => Vec::new(),
    };
    // Every finished job may have registered (and promoted) a model: fetch the list again.
    let finished = full_jobs
        .iter()
        .filter(|j| j.status != JobStatus::Running)
        .count() as u32;
    let models = use_remote::<ModelList>(Some("/models".into()), reload.wrapping_add(finished));
    let selected = use_state(|| None::<String>);
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
                    Ok(v) => match v.get("id").and_then(Value::as_str) {
                        Some(id) if path == "/retrain" => {
                            message.set(Some((true, format!("{done} Job {id}."))))
                        }
                        _ => message.set(Some((true, done))),
                    },
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
                        <tr class={classes!("model-row", active.then_some("active"))} data-version={m.version.clone()}
                            data-status={status_name(m.status)} data-parent={m.parent.clone().unwrap_or_default()}
                            data-snapshot={m.snapshot_id.clone().unwrap_or_default()}>
                            <td class="mono">{&m.version}</td>
                            <td><span class={classes!("tag", active.then_some("ok"))}>{status_name(m.status)}</span></td>
                            <td class="measured">{metrics(m.measured_metrics)}</td>
                            <td class="trainer">{metrics(m.trainer_metrics)}</td>
                            <td class="mono lineage">{lineage(&list.items, m)}
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
                let shown = selected_job(&full_jobs, selected.as_deref());
                html! {
                    <>
                    <table class="jobs" id="jobs-table">
                        <thead><tr><th>{"Job"}</th><th>{"Status"}</th><th>{"Progress"}</th><th>{"Candidate"}</th><th>{"Started"}</th><th></th></tr></thead>
                        <tbody>{ for list.iter().map(|j| {
                            let pick = {
                                let (selected, id) = (selected.clone(), j.id.clone());
                                Callback::from(move |_| selected.set(Some(id.clone())))
                            };
                            let is_shown = shown.is_some_and(|s| s.id == j.id);
                            html! {
                            <tr class={classes!("job-row", is_shown.then_some("selected"))} data-id={j.id.clone()}
                                data-status={j.status.clone()} data-phase={j.phase.clone()}>
                                <td class="mono">{&j.id}</td>
                                <td>{format!("{} {}", j.status, j.phase)}
                                    if let Some(e) = &j.error { <div class="error small">{e}</div> }</td>
                                <td>{ match j.fraction() {
                                    Some(f) => html! { <><progress max="1" value={f.to_string()}></progress>{format!(" {} · epoch {}/{}", percent(Some(f)), j.epochs_done, j.epochs)}</> },
                                    None => html! { {"–"} },
                                } }</td>
                                <td>{j.candidate.clone().unwrap_or_else(|| "–".into())}{if j.promoted { " (promoted)" } else { "" }}</td>
                                <td>{j.created_at.clone().unwrap_or_default()}</td>
                                <td><button class="btn small job-details" onclick={pick} aria-pressed={is_shown.to_string()}>{"Details"}</button></td>
                            </tr>
                        }}) }</tbody>
                    </table>
                    { shown.map(job_detail).unwrap_or_default() }
                    </>
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

/// The job picked with "Details", else the newest.
fn selected_job<'a>(jobs: &'a [RetrainJob], selected: Option<&str>) -> Option<&'a RetrainJob> {
    selected
        .and_then(|id| jobs.iter().find(|j| j.id == id))
        .or_else(|| jobs.first())
}

fn metric_row(name: &str, m: Option<MetricSet>) -> Html {
    match m {
        Some(m) => html! { for metric_cells(&m).into_iter().enumerate().map(|(i, v)| html! {
            <td class={classes!("num", format!("{name}-{i}"))}>{v}</td>
        }) },
        None => html! { for (0..METRIC_NAMES.len()).map(|_| html! { <td class="num">{"–"}</td> }) },
    }
}

/// One job in detail: phases, epochs, snapshot, the gate's decision.
fn job_detail(job: &RetrainJob) -> Html {
    let status = job.status.as_str();
    let loss = |p: &opti_core::retrain::EpochProgress, k: &str| {
        p.losses
            .get(k)
            .map_or_else(|| "–".to_string(), |v| format!("{v:.4}"))
    };
    html! {
        <div class="card job-detail" id="job-detail" data-id={job.id.clone()} data-status={status}
             data-phase={job.phase.clone()} aria-live="polite">
            <h3>{format!("Job {} · ", job.id)}<span id="job-status" class={classes!("tag", match job.status {
                JobStatus::Succeeded => "ok", JobStatus::Failed => "bad", JobStatus::Running => "audit" })}>{status}</span></h3>
            <ol class="phases" id="job-phases">{ for phase_steps(job).into_iter().map(|(p, st)| html! {
                <li class={classes!("phase-step", st.class())} data-phase={p}>{p}</li>
            }) }</ol>
            <p id="job-progress">
                if job.epochs > 0 {
                    <progress max={job.epochs.to_string()} value={job.progress.len().to_string()}></progress>{" "}
                }
                {progress_line(job)}
            </p>
            <p class="muted" id="job-lineage">{format!("{} from {} · trigger {} by {}",
                job.candidate_version.as_deref().map_or_else(|| "candidate pending".to_string(), |c| format!("candidate {c}")),
                job.parent_version.as_deref().unwrap_or("–"), job.trigger, job.requested_by)}
                if let Some(s) = &job.snapshot_id {
                    {format!(" · snapshot {}", &s[..s.len().min(12)])}
                }
                if let Some(c) = &job.snapshot {
                    <span id="job-snapshot">{format!(" (train {}, val {}, holdout {}, replay {}, skipped {})",
                        c.train, c.val, c.holdout, c.replay, c.skipped)}</span>
                }
            </p>
            if !job.progress.is_empty() {
                <table class="epochs" id="job-epochs">
                    <thead><tr><th>{"Epoch"}</th><th class="num">{"box loss"}</th><th class="num">{"cls loss"}</th>
                        <th class="num">{"dfl loss"}</th><th class="num">{"val mAP50-95"}</th><th class="num">{"s"}</th></tr></thead>
                    <tbody>{ for job.progress.iter().map(|p| html! {
                        <tr class="epoch-row" data-epoch={p.epoch.to_string()}>
                            <td>{format!("{}/{}", p.epoch, p.epochs)}</td>
                            <td class="num">{loss(p, "box_loss")}</td><td class="num">{loss(p, "cls_loss")}</td>
                            <td class="num">{loss(p, "dfl_loss")}</td>
                            <td class="num">{p.metrics.map_or_else(|| "–".to_string(), |m| format!("{:.3}", m.map50_95))}</td>
                            <td class="num">{format!("{:.0}", p.elapsed_s)}</td>
                        </tr>
                    }) }</tbody>
                </table>
            }
            if let Some(e) = &job.error {
                <div class="error" id="job-error">{e}</div>
                if !job.log_tail.is_empty() {
                    <pre class="log-tail" id="job-log">{job.log_tail.join("\n")}</pre>
                }
            }
            if let Some(g) = &job.gate {
                <div class="gate" id="gate-decision" data-promote={g.promote.to_string()}>
                    <h4>{"Gate: "}<span id="gate-verdict" class={classes!("tag", if g.promote { "ok" } else { "bad" })}>
                        {if g.promote { "promoted" } else { "rejected" }}</span>
                        <span class="muted">{format!(" tolerance {} on mAP50-95 and recall · holdout {} image{}, {} labelled box{}",
                            g.tolerance, g.candidate.images, if g.candidate.images == 1 { "" } else { "s" },
                            g.candidate.labels, if g.candidate.labels == 1 { "" } else { "es" })}</span></h4>
                    <ul id="gate-reasons">{ for g.reasons.iter().map(|r| html! { <li class="gate-reason">{r}</li> }) }</ul>
                    <table class="scores" id="gate-scores">
                        <thead>
                            <tr><th></th><th colspan="4">{format!("candidate {}", job.candidate_version.as_deref().unwrap_or(""))}</th>
                                <th colspan="4">{format!("active {}", job.parent_version.as_deref().unwrap_or(""))}</th></tr>
                            <tr><th>{"Slice"}</th>{ for METRIC_NAMES.iter().chain(METRIC_NAMES.iter()).map(|n| html! { <th class="num">{*n}</th> }) }</tr>
                        </thead>
                        <tbody>{ for score_rows(g).into_iter().map(|(slice, c, a)| html! {
                            <tr class="score-row" data-slice={slice.clone()}>
                                <td class="mono">{slice}</td>{metric_row("cand", c)}{metric_row("act", a)}
                            </tr>
                        }) }</tbody>
                    </table>
                </div>
            }
        </div>
    }
}
