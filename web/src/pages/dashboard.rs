//! The dashboard: automation rate, queue size, override and defect rates, throughput
//! over the last 24 hours, defect rate by class, the drift chart with its threshold, and
//! the model in use with its metrics. Refreshes every 30 seconds.

use opti_core::drift::{DriftReport, DriftSignal};
use yew::prelude::*;

use crate::components::charts::{BarChart, HBarChart, LineChart, Series};
use crate::components::{class_colour, error_box, loading};
use crate::format::{hour_minute, percent};
use crate::hooks::{use_remote, use_session, use_ticker, Remote};
use crate::wire::{DriftPoint, ModelList, Stats};

/// `GET /drift/history` as far as the chart needs it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct DriftHistory {
    items: Vec<DriftPoint>,
}

fn tile(id: &str, label: &str, value: String, hint: &str) -> Html {
    html! {
        <div class="tile" id={id.to_string()}>
            <div class="tile-value">{value}</div>
            <div class="tile-label">{label}</div>
            <div class="tile-hint muted">{hint}</div>
        </div>
    }
}

fn drift_panel(current: &DriftReport, history: Option<&[DriftPoint]>) -> Html {
    let status = if !current.enough_data {
        html! { <span class="tag">{"not enough data yet"}</span> }
    } else if current.drift_detected {
        html! { <span class="tag bad" id="drift-flag">{"drift detected"}</span> }
    } else {
        html! { <span class="tag ok" id="drift-flag">{"stable"}</span> }
    };
    let numbers = html! {
        <p class="figure-numbers" id="drift-numbers">
            {format!("baseline {:.3} (n={}) · recent {:.3} (n={}) · drop {:.3} · tolerance {:.3}",
                current.baseline_avg, current.baseline_n, current.recent_avg, current.recent_n,
                current.drift_score, current.tolerance)}
        </p>
    };
    let chart = match history.filter(|h| !h.is_empty()) {
        Some(points) => {
            // Oldest first, left to right.
            let mut pts: Vec<&DriftPoint> = points.iter().collect();
            pts.sort_by_key(|p| p.evaluated_at);
            let labels: Vec<String> = pts.iter().map(|p| hour_minute(p.evaluated_at)).collect();
            html! {
                <LineChart id="chart-drift" title="Decision confidence: recent vs baseline"
                    labels={labels}
                    series={vec![
                        Series { name: "baseline".into(), colour: "#69c0ff".into(), values: pts.iter().map(|p| p.report.baseline_avg).collect() },
                        Series { name: "recent".into(), colour: "#ffb020".into(), values: pts.iter().map(|p| p.report.recent_avg).collect() },
                        Series { name: "drop".into(), colour: "#ff4d4f".into(), values: pts.iter().map(|p| p.report.drift_score).collect() },
                    ]}
                    threshold={Some((current.tolerance, "tolerance".to_string()))} />
            }
        }
        None => html! {
            <HBarChart id="chart-drift" title="Decision confidence: baseline vs recent (drop above tolerance = drift)"
                rows={vec![
                    ("baseline".to_string(), current.baseline_avg, "#69c0ff".to_string()),
                    ("recent".to_string(), current.recent_avg, "#ffb020".to_string()),
                    ("drop".to_string(), current.drift_score.max(0.0), "#ff4d4f".to_string()),
                    ("tolerance".to_string(), current.tolerance, "#8c8c8c".to_string()),
                ]} />
        },
    };
    html! {
        <div class="card wide">
            <h2>{"Drift "}{status}</h2>
            {chart}
            {numbers}
            {signal_tables(&current.signals)}
        </div>
    }
}

fn signal_table(id: &str, signals: &[&DriftSignal]) -> Html {
    html! {
        <table class="signals" id={id.to_string()}>
            <thead><tr><th>{"Signal"}</th><th>{"Scope"}</th><th class="num">{"Value"}</th>
                <th class="num">{"Threshold"}</th><th>{"State"}</th></tr></thead>
            <tbody>{ for signals.iter().map(|s| html! {
                <tr class={classes!(s.detected.then_some("bad"))} data-scope={s.scope.clone()}>
                    <td>{&s.name}</td><td class="muted">{&s.scope}</td>
                    <td class="num">{format!("{:.3}", s.value)}</td>
                    <td class="num">{format!("{:.3}", s.threshold)}</td>
                    <td>{if s.detected { "drift" } else if s.enough_data { "ok" } else { "too few" }}</td>
                </tr>
            }) }</tbody>
        </table>
    }
}

/// The whole-line signals in a table; the per-camera ones (the same signals again for
/// each camera) folded away below it, opened on demand.
fn signal_tables(signals: &[DriftSignal]) -> Html {
    if signals.is_empty() {
        return html! {};
    }
    let (overall, per_camera): (Vec<&DriftSignal>, Vec<&DriftSignal>) =
        signals.iter().partition(|s| s.scope == "overall");
    let drifting = per_camera.iter().filter(|s| s.detected).count();
    html! {
        <>
            {signal_table("drift-signals", &overall)}
            if !per_camera.is_empty() {
                <details class="per-camera" open={drifting > 0}>
                    <summary>{format!("Per camera: {} signals, {} drifting", per_camera.len(), drifting)}</summary>
                    {signal_table("drift-signals-camera", &per_camera)}
                </details>
            }
        </>
    }
}

/// The dashboard page.
#[function_component(DashboardPage)]
pub fn dashboard_page() -> Html {
    let session = use_session();
    let admin = session.as_ref().is_some_and(|s| s.is_admin());
    let tick = use_ticker(30_000);
    let stats = use_remote::<Stats>(Some("/stats".into()), tick);
    let drift = use_remote::<DriftReport>(Some("/drift/".into()), tick);
    let history = use_remote::<DriftHistory>(Some("/drift/history?limit=48".into()), tick);
    let models = use_remote::<ModelList>(admin.then(|| "/models".to_string()), tick);
    let classes = session
        .as_ref()
        .map(|s| s.classes.clone())
        .unwrap_or_default();

    let top = match &*stats {
        Remote::Loading => loading(),
        Remote::Failed(e) => error_box(e),
        Remote::Ready(s) => {
            let labels: Vec<String> = s.throughput.iter().map(|h| hour_minute(h.hour)).collect();
            let rows: Vec<(String, f64, String)> = s
                .defect_rate_by_class
                .iter()
                .map(|(c, v)| (c.clone(), *v, class_colour(&classes, c).to_string()))
                .collect();
            html! {
                <>
                <div class="tiles">
                    {tile("kpi-automation", "automation rate", percent(s.automation_rate), &format!("of the last {} parts, decided without a human", s.window))}
                    {tile("kpi-queue", "in the review queue", s.queue_size.to_string(), "pending + claimed")}
                    {tile("kpi-override", "reviewer override rate", percent(s.override_rate), "expert changed verdict or classes")}
                    {tile("kpi-defect", "defect rate", percent(s.defect_rate), "parts the model called defective")}
                    {tile("kpi-total", "inspections", s.total.to_string(), "all time")}
                    {tile("kpi-audit", "audit miss rate", percent(s.audit_miss_rate), "audit samples the automation got wrong")}
                </div>
                <div class="card wide">
                        <BarChart id="chart-throughput" title="Throughput per hour (last 24 h)" labels={labels}
                            series={vec![
                                Series { name: "inspected".into(), colour: "#69c0ff".into(), values: s.throughput.iter().map(|h| h.inspections as f64).collect() },
                                Series { name: "reviewed".into(), colour: "#95de64".into(), values: s.throughput.iter().map(|h| h.reviewed as f64).collect() },
                            ]} />
                </div>
                <div class="cards">
                    <div class="card">
                        <HBarChart id="chart-defects" title="Defect rate by class" rows={rows} />
                    </div>
                    <div class="card" id="model-card">
                        <h2>{"Model in use"}</h2>
                        <p class="big-number" id="model-version">{&s.model_version}</p>
                        { match &*models {
                            Remote::Ready(m) => match m.items.iter().find(|r| Some(&r.version) == m.active.as_ref()) {
                                Some(r) => match r.measured_metrics.or(r.trainer_metrics) {
                                    Some(mm) => html! { <p class="figure-numbers" id="model-metrics">
                                        {format!("precision {:.3} · recall {:.3} · mAP50 {:.3} · mAP50-95 {:.3}", mm.precision, mm.recall, mm.map50, mm.map50_95)}</p> },
                                    None => html! { <p class="muted">{"no metrics recorded"}</p> },
                                },
                                None => html! {},
                            },
                            _ => html! {},
                        } }
                    </div>
                </div>
                </>
            }
        }
    };
    let drift_html = match (&*drift, &*history) {
        (Remote::Ready(d), Remote::Ready(h)) => drift_panel(d, Some(&h.items)),
        (Remote::Ready(d), Remote::Failed(_)) => drift_panel(d, None),
        (Remote::Ready(_), Remote::Loading) | (Remote::Loading, _) => loading(),
        (Remote::Failed(e), _) => error_box(e),
    };
    html! {
        <section class="panel dashboard">
            <h1>{"Dashboard"}</h1>
            {top}
            {drift_html}
        </section>
    }
}
