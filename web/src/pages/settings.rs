//! Settings (admin): thresholds (global and per class), audit rate, retrain minimum,
//! lease and drift tolerance. Checked by core's validation before sending; only changed
//! fields go out, with the version read, so a concurrent change is refused, not lost.

use opti_core::types::StoredConfig;
use serde_json::Value;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::api::Method;
use crate::components::{error_box, loading};
use crate::hooks::{use_api, use_remote, use_session, Remote};
use crate::settings_form::SettingsForm;

/// The settings page.
#[function_component(SettingsPage)]
pub fn settings_page() -> Html {
    let session = use_session();
    let api = use_api();
    let reload = use_state(|| 0u32);
    let stored = use_remote::<StoredConfig>(Some("/config".into()), *reload);
    let form = use_state(|| None::<SettingsForm>);
    let message = use_state(|| None::<(bool, String)>);
    let classes = session
        .as_ref()
        .map(|s| s.classes.clone())
        .unwrap_or_default();
    {
        let form = form.clone();
        let classes = classes.clone();
        use_effect_with(stored.clone(), move |stored| {
            if let Remote::Ready(s) = &**stored {
                form.set(Some(SettingsForm::from_config(&s.value, &classes)));
            }
        });
    }
    let Remote::Ready(current) = (*stored).clone() else {
        return html! { <section class="panel"><h1>{"Settings"}</h1>
        { match &*stored { Remote::Failed(e) => error_box(e), _ => loading() } }</section> };
    };
    let Some(f) = (*form).clone() else {
        return html! { <section class="panel"><h1>{"Settings"}</h1>{loading()}</section> };
    };
    let field = |get: fn(&mut SettingsForm) -> &mut String| {
        let form = form.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(mut f) = (*form).clone() {
                *get(&mut f) = e.target_unchecked_into::<HtmlInputElement>().value();
                form.set(Some(f));
            }
        })
    };
    let class_field = |class: String| {
        let form = form.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(mut f) = (*form).clone() {
                f.class_thresholds.insert(
                    class.clone(),
                    e.target_unchecked_into::<HtmlInputElement>().value(),
                );
                form.set(Some(f));
            }
        })
    };
    let onsubmit = {
        let (api, form, message, reload, current) = (
            api.clone(),
            form.clone(),
            message.clone(),
            reload.clone(),
            current.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(f) = (*form).clone() else { return };
            match f.patch(&current.value, current.version) {
                Err(m) => message.set(Some((false, m))),
                Ok(None) => message.set(Some((true, "Nothing changed.".into()))),
                Ok(Some(body)) => {
                    let (api, message, reload) = (api.clone(), message.clone(), reload.clone());
                    wasm_bindgen_futures::spawn_local(async move {
                        match api.send::<StoredConfig>(Method::Put, "/config", Some(&body)).await {
                            Ok(s) => {
                                message.set(Some((true, format!("Saved (version {}). New uploads use it now.", s.version))));
                                reload.set(reload.wrapping_add(1));
                            }
                            Err(e) if e.status() == Some(409) => message.set(Some((false,
                                "Someone else changed the settings meanwhile. Reload to see theirs, then apply yours again.".into()))),
                            Err(e) => message.set(Some((false, e.to_string()))),
                        }
                    });
                }
            }
        })
    };
    let reload_click = {
        let reload = reload.clone();
        let message = message.clone();
        Callback::from(move |_| {
            message.set(None);
            reload.set(reload.wrapping_add(1));
        })
    };
    let preview: Option<Value> = f.patch(&current.value, current.version).ok().flatten();
    html! {
        <section class="panel">
            <h1>{"Settings"}<span class="muted">{format!(" version {}", current.version)}</span></h1>
            <form class="settings" novalidate=true onsubmit={onsubmit}>
                <fieldset><legend>{"Routing"}</legend>
                    <label>{"Review threshold (decision confidence below it goes to a human), (0, 1]"}
                        <input id="set-threshold" type="number" step="0.01" min="0.01" max="1" value={f.threshold.clone()} oninput={field(|f| &mut f.threshold)} /></label>
                    { for f.class_thresholds.keys().map(|c| html! {
                        <label>{format!("Threshold for {c} (blank: use the review threshold)")}
                            <input id={format!("set-class-{c}")} type="number" step="0.01" min="0.01" max="1"
                                   value={f.class_thresholds.get(c).cloned().unwrap_or_default()} oninput={class_field(c.clone())} /></label>
                    }) }
                    <label>{"Audit rate: share of automatic decisions also sent to review, [0, 1]"}
                        <input id="set-audit-rate" type="number" step="0.01" min="0" max="1" value={f.audit_rate.clone()} oninput={field(|f| &mut f.audit_rate)} /></label>
                </fieldset>
                <fieldset><legend>{"Review and learning"}</legend>
                    <label>{"Retrain minimum: new reviewed items before a retraining starts"}
                        <input id="set-retrain-min" type="number" step="1" min="1" value={f.retrain_min.clone()} oninput={field(|f| &mut f.retrain_min)} /></label>
                    <label>{"Reviewer lease, seconds"}
                        <input id="set-lease" type="number" step="1" min="10" value={f.lease_seconds.clone()} oninput={field(|f| &mut f.lease_seconds)} /></label>
                    <label>{"Drift tolerance: drop of mean confidence that counts as drift"}
                        <input id="set-drift-tolerance" type="number" step="0.01" min="0.01" max="1" value={f.drift_tolerance.clone()} oninput={field(|f| &mut f.drift_tolerance)} /></label>
                </fieldset>
                if let Some(p) = preview { <p class="muted mono" id="settings-preview">{format!("will send: {p}")}</p> }
                <div class="row">
                    <button class="btn primary" id="settings-save" type="submit">{"Save"}</button>
                    <button class="btn ghost" type="button" onclick={reload_click}>{"Reload"}</button>
                </div>
            </form>
            if let Some((ok, m)) = &*message {
                <div class={if *ok { "notice" } else { "error" }} role="status" id="settings-message">{m}</div>
            }
        </section>
    }
}
