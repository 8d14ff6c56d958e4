//! Reusable pieces: the navigation bar, SVG charts, the box overlay, small widgets.

pub mod charts;
pub mod nav;
pub mod overlay;

use yew::prelude::*;

use crate::api::ApiError;

/// Colour of a class's boxes: a fixed high-contrast palette by class id.
pub fn class_colour(classes: &[String], class: &str) -> &'static str {
    const PALETTE: [&str; 6] = [
        "#ff4d4f", "#ffb020", "#36cfc9", "#c58cff", "#69c0ff", "#95de64",
    ];
    let i = classes
        .iter()
        .position(|c| c == class)
        .unwrap_or(PALETTE.len() - 1);
    PALETTE[i % PALETTE.len()]
}

/// An error box with the API's message.
pub fn error_box(e: &ApiError) -> Html {
    html! { <div class="error" role="alert">{e.to_string()}</div> }
}

/// A "loading" placeholder.
pub fn loading() -> Html {
    html! { <div class="muted" aria-busy="true">{"Loading…"}</div> }
}

/// Seconds since the Unix epoch, from the browser's clock.
pub fn now_unix() -> f64 {
    js_sys::Date::now() / 1000.0
}
