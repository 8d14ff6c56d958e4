//! SVG charts for the dashboard: grouped bars over time, horizontal bars with their
//! values, and a line chart with a threshold line. Numbers are printed next to the marks.

use yew::prelude::*;

use crate::chart::{bar_slots, nice_max, polyline, ticks, LinearScale};

/// One named series of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub colour: String,
    pub values: Vec<f64>,
}

/// Width of the charts over time in SVG units: about their width on a 1366-pixel screen,
/// so their text is drawn near its CSS size there and grows moderately on wider ones.
const W: f64 = 1200.0;
const H: f64 = 300.0;
/// Width of the horizontal bar charts (half-width cards; capped in CSS).
const HBAR_W: f64 = 640.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

fn y_axis(y: &LinearScale, max: f64, fmt: &dyn Fn(f64) -> String) -> Html {
    ticks(max, 4)
        .into_iter()
        .map(|t| {
            let py = y.map(t);
            html! {
                <g class="tick">
                    <line x1={LEFT.to_string()} x2={(W - RIGHT).to_string()}
                          y1={py.to_string()} y2={py.to_string()} class="grid" />
                    <text x={(LEFT - 6.0).to_string()} y={(py + 4.0).to_string()}
                          text-anchor="end" class="axis">{fmt(t)}</text>
                </g>
            }
        })
        .collect()
}

fn legend(series: &[Series]) -> Html {
    html! {
        <div class="legend">
            { for series.iter().map(|s| html! {
                <span><i style={format!("background:{}", s.colour)}></i>{&s.name}</span>
            }) }
        </div>
    }
}

/// Properties of [`BarChart`].
#[derive(Properties, PartialEq)]
pub struct BarChartProps {
    pub id: AttrValue,
    pub title: AttrValue,
    /// One label per slot (every few are printed).
    pub labels: Vec<String>,
    pub series: Vec<Series>,
}

/// Grouped vertical bars, one group per label (throughput per hour).
#[function_component(BarChart)]
pub fn bar_chart(p: &BarChartProps) -> Html {
    let n = p.labels.len();
    let max = nice_max(
        p.series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(0.0, f64::max),
    );
    let y = LinearScale::new((0.0, max), (H - BOTTOM, TOP));
    let (xs, w) = bar_slots(n, (LEFT, W - RIGHT), 3.0);
    let k = p.series.len().max(1) as f64;
    let every = (n / 8).max(1);
    let totals: Vec<String> = p
        .series
        .iter()
        .map(|s| format!("{}: {}", s.name, s.values.iter().sum::<f64>()))
        .collect();
    html! {
        <figure class="chart over-time" id={p.id.clone()}>
            <figcaption>{&p.title}<span class="figure-numbers">{totals.join(" · ")}</span></figcaption>
            <svg viewBox={format!("0 0 {W} {H}")} role="img" aria-label={p.title.clone()}>
                {y_axis(&y, max, &|t| format!("{t}"))}
                { for xs.iter().enumerate().map(|(i, x0)| {
                    let bars = p.series.iter().enumerate().map(|(j, s)| {
                        let v = s.values.get(i).copied().unwrap_or(0.0);
                        let bw = w / k;
                        let top = y.map(v);
                        html! {
                            <rect x={(x0 + j as f64 * bw).to_string()} y={top.to_string()}
                                  width={bw.max(1.0).to_string()} height={(H - BOTTOM - top).max(0.0).to_string()}
                                  fill={s.colour.clone()} class="bar" data-value={v.to_string()}>
                                <title>{format!("{} {}: {}", p.labels.get(i).cloned().unwrap_or_default(), s.name, v)}</title>
                            </rect>
                        }
                    }).collect::<Html>();
                    let label = (i % every == 0).then(|| html! {
                        <text x={(x0 + w / 2.0).to_string()} y={(H - 8.0).to_string()}
                              text-anchor="middle" class="axis">{p.labels.get(i).cloned().unwrap_or_default()}</text>
                    });
                    html! { <g>{bars}{label}</g> }
                }) }
            </svg>
            {legend(&p.series)}
        </figure>
    }
}

/// Properties of [`HBarChart`].
#[derive(Properties, PartialEq)]
pub struct HBarChartProps {
    pub id: AttrValue,
    pub title: AttrValue,
    /// Label, share in [0, 1], colour.
    pub rows: Vec<(String, f64, String)>,
}

/// Horizontal bars of shares with the percentage printed (defect rate by class).
#[function_component(HBarChart)]
pub fn hbar_chart(p: &HBarChartProps) -> Html {
    let row_h = 34.0;
    let h = (p.rows.len() as f64 * row_h).max(row_h) + 8.0;
    let label_w = 130.0;
    let max = nice_max(p.rows.iter().map(|r| r.1).fold(0.0, f64::max));
    let x = LinearScale::new((0.0, max), (label_w, HBAR_W - 80.0));
    html! {
        <figure class="chart hbar" id={p.id.clone()}>
            <figcaption>{&p.title}</figcaption>
            <svg viewBox={format!("0 0 {HBAR_W} {h}")} role="img" aria-label={p.title.clone()}>
                { for p.rows.iter().enumerate().map(|(i, (label, v, colour))| {
                    let y0 = 4.0 + i as f64 * row_h;
                    html! {
                        <g>
                            <text x={(label_w - 8.0).to_string()} y={(y0 + 21.0).to_string()} text-anchor="end" class="label">{label}</text>
                            <rect x={label_w.to_string()} y={(y0 + 4.0).to_string()}
                                  width={(x.map(*v) - label_w).max(1.0).to_string()} height={(row_h - 10.0).to_string()}
                                  fill={colour.clone()} class="bar" data-value={v.to_string()} />
                            <text x={(x.map(*v) + 8.0).to_string()} y={(y0 + 21.0).to_string()} class="value">
                                {crate::format::percent(Some(*v))}</text>
                        </g>
                    }
                }) }
            </svg>
        </figure>
    }
}

/// Properties of [`LineChart`].
#[derive(Properties, PartialEq)]
pub struct LineChartProps {
    pub id: AttrValue,
    pub title: AttrValue,
    pub labels: Vec<String>,
    pub series: Vec<Series>,
    /// A dashed horizontal line (e.g. the drift tolerance) and its label.
    #[prop_or_default]
    pub threshold: Option<(f64, String)>,
}

/// Lines over time with an optional threshold line (the drift chart).
#[function_component(LineChart)]
pub fn line_chart(p: &LineChartProps) -> Html {
    let data_max = p
        .series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .chain(p.threshold.iter().map(|t| t.0))
        .fold(0.0, f64::max);
    let max = nice_max(data_max * 1.1);
    let y = LinearScale::new((0.0, max), (H - BOTTOM, TOP));
    let x = (LEFT + 6.0, W - RIGHT - 6.0);
    let n = p.labels.len();
    let every = (n / 6).max(1);
    let step = if n > 1 {
        (x.1 - x.0) / (n - 1) as f64
    } else {
        0.0
    };
    html! {
        <figure class="chart over-time" id={p.id.clone()}>
            <figcaption>{&p.title}</figcaption>
            <svg viewBox={format!("0 0 {W} {H}")} role="img" aria-label={p.title.clone()}>
                {y_axis(&y, max, &|t| format!("{t:.2}"))}
                if let Some((t, label)) = &p.threshold {
                    <line class="threshold" x1={LEFT.to_string()} x2={(W - RIGHT).to_string()}
                          y1={y.map(*t).to_string()} y2={y.map(*t).to_string()} />
                    <text class="threshold-label" x={(W - RIGHT - 4.0).to_string()} y={(y.map(*t) - 6.0).to_string()}
                          text-anchor="end">{format!("{label} {t:.2}")}</text>
                }
                { for p.series.iter().map(|s| html! {
                    <g>
                        <polyline points={polyline(&s.values, x, &y)} fill="none"
                                  stroke={s.colour.clone()} stroke-width="3" class="line" />
                        { for s.values.iter().enumerate().map(|(i, v)| html! {
                            <circle cx={(x.0 + step * i as f64).to_string()} cy={y.map(*v).to_string()} r="4"
                                    fill={s.colour.clone()} data-value={v.to_string()}>
                                <title>{format!("{} {}: {v:.3}", p.labels.get(i).cloned().unwrap_or_default(), s.name)}</title>
                            </circle>
                        }) }
                    </g>
                }) }
                { for p.labels.iter().enumerate().filter(|(i, _)| i % every == 0).map(|(i, l)| html! {
                    <text x={(x.0 + step * i as f64).to_string()} y={(H - 8.0).to_string()} text-anchor="middle" class="axis">{l}</text>
                }) }
            </svg>
            {legend(&p.series)}
        </figure>
    }
}
