//! The annotator: the image at full resolution with the model's boxes as an SVG overlay;
//! draw, move, resize, delete and relabel boxes; verdict and notes; submit and go to the
//! next item. Claims the item on open (lease shown); a 409 shows the other reviewer's
//! result next to your edits, which stay on screen until you choose to reload.

use std::rc::Rc;

use opti_core::types::{Inspection, Status, Verdict};
use serde_json::json;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{Element, HtmlImageElement, HtmlTextAreaElement, KeyboardEvent};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::annotator::{Action, AnnotatorState, NextStep};
use crate::api::{Api, ApiError, Method};
use crate::app::Route;
use crate::components::overlay::BoxOverlay;
use crate::components::{class_colour, now_unix};
use crate::format::{age, percent, seconds_since, timestamp};
use crate::hooks::{use_api, use_session};
use crate::keys::{command_for, Command, HELP};
use crate::pages::queue::QueuePageData;
use crate::wire::{ConflictBody, InspectionView};

/// The reducer's state as Yew holds it.
#[derive(Debug, Clone, PartialEq)]
struct Editor(AnnotatorState);

impl Reducible for Editor {
    type Action = Action;
    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        Rc::new(Editor(self.0.clone().reduce(action)))
    }
}

/// Properties of [`AnnotatePage`].
#[derive(Properties, PartialEq)]
pub struct AnnotateProps {
    pub id: String,
}

fn conflict_of(e: &ApiError) -> Option<ConflictBody> {
    match e {
        ApiError::Status {
            status: 409, body, ..
        } => Some(serde_json::from_value(body.clone()).unwrap_or_default()),
        _ => None,
    }
}

/// Opens the next pending item other than `skip`, or the queue when none is left.
async fn go_next(api: &Api, navigator: &Navigator, skip: &str) {
    let page = api
        .get::<QueuePageData>("/inspections?status=pending_review&limit=5")
        .await;
    match page
        .ok()
        .and_then(|p| p.items.into_iter().find(|i| i.inspection.id != skip))
    {
        Some(next) => navigator.push(&Route::Review {
            id: next.inspection.id,
        }),
        None => navigator.push(&Route::Queue),
    }
}

fn other_result(current: &Inspection) -> Html {
    match (&current.review, &current.claim) {
        (Some(r), _) => html! {
            <div class="other-result" id="other-result">
                <p><b>{&r.reviewer}</b>{format!(" submitted at {}: verdict ", timestamp(r.reviewed_at))}
                   <b class="verdict-text">{match r.verdict { Verdict::Defective => "defective", Verdict::Ok => "ok" }}</b></p>
                <ul>{ for r.detections.iter().map(|d| html! {
                    <li>{format!("{} [{:.2}, {:.2}, {:.2}, {:.2}]", d.class, d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3])}</li>
                }) }</ul>
                if !r.notes.is_empty() { <p class="muted">{format!("Notes: {}", r.notes)}</p> }
            </div>
        },
        (None, Some(c)) => html! {
            <div class="other-result" id="other-result">
                <p><b>{&c.reviewer}</b>{format!(" holds this item until {} UTC.", timestamp(c.expires_at))}</p>
            </div>
        },
        _ => html! {
            <div class="other-result" id="other-result">
                <p>{format!("The item is now {} (version {}).", current.status, current.version)}</p>
            </div>
        },
    }
}

/// The annotator page for inspection `id`.
#[function_component(AnnotatePage)]
pub fn annotate_page(props: &AnnotateProps) -> Html {
    let session = use_session();
    let api = use_api();
    let navigator = use_navigator().expect("inside the router");
    let classes = session
        .as_ref()
        .map(|s| s.classes.clone())
        .unwrap_or_default();
    let editor = use_reducer(|| Editor(AnnotatorState::new(classes.clone(), Vec::new())));
    let record = use_state(|| None::<InspectionView>);
    let load_error = use_state(|| None::<String>);
    let claim_conflict = use_state(|| None::<ConflictBody>);
    let submit_conflict = use_state(|| None::<ConflictBody>);
    let message = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let reload = use_state(|| 0u32);
    let dims = use_state(|| None::<(u32, u32)>);
    let tick = use_state(|| 0u32);

    // Claim on open (and on reload): the lease keeps two reviewers off the same item.
    {
        let (api, editor, record, load_error, claim_conflict, submit_conflict, message, dims) = (
            api.clone(),
            editor.clone(),
            record.clone(),
            load_error.clone(),
            claim_conflict.clone(),
            submit_conflict.clone(),
            message.clone(),
            dims.clone(),
        );
        use_effect_with((props.id.clone(), *reload), move |(id, _)| {
            let id = id.clone();
            record.set(None);
            load_error.set(None);
            claim_conflict.set(None);
            submit_conflict.set(None);
            message.set(None);
            dims.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                let claimed = api
                    .send::<InspectionView>(
                        Method::Post,
                        &format!("/inspections/{id}/claim"),
                        Some(&json!({})),
                    )
                    .await;
                let view = match claimed {
                    Ok(v) => Ok(v),
                    Err(e) => {
                        if let Some(c) = conflict_of(&e) {
                            claim_conflict.set(Some(c));
                            api.get::<InspectionView>(&format!("/inspections/{id}"))
                                .await
                        } else {
                            Err(e)
                        }
                    }
                };
                match view {
                    Ok(v) => {
                        editor.dispatch(Action::Load(v.inspection.detections.clone()));
                        record.set(Some(v));
                    }
                    Err(e) => load_error.set(Some(e.to_string())),
                }
            });
        });
    }
    // A clock for the lease countdown.
    {
        let tick = tick.clone();
        use_effect_with((), move |_| {
            let interval =
                gloo_timers::callback::Interval::new(1000, move || tick.set(tick.wrapping_add(1)));
            move || drop(interval)
        });
    }

    let submit = {
        let (api, navigator, editor, record, submit_conflict, message, busy) = (
            api.clone(),
            navigator.clone(),
            editor.clone(),
            record.clone(),
            submit_conflict.clone(),
            message.clone(),
            busy.clone(),
        );
        Callback::from(move |_: ()| {
            let Some(rec) = (*record).clone() else { return };
            let st = editor.0.clone();
            match st.next_step() {
                NextStep::NeedVerdict => {
                    message.set(Some(
                        "Give a verdict first: A = OK, R = defective. Your edits are kept.".into(),
                    ));
                }
                NextStep::Skip => {
                    let (api, navigator, busy) = (api.clone(), navigator.clone(), busy.clone());
                    busy.set(true);
                    wasm_bindgen_futures::spawn_local(async move {
                        let id = rec.inspection.id.clone();
                        if rec.inspection.status == Status::Claimed {
                            let _ = api
                                .send::<serde_json::Value>(
                                    Method::Post,
                                    &format!("/inspections/{id}/release"),
                                    Some(&json!({"version": rec.inspection.version})),
                                )
                                .await;
                        }
                        go_next(&api, &navigator, &id).await;
                        busy.set(false);
                    });
                }
                NextStep::Submit => {
                    let (api, navigator, submit_conflict, message, busy) = (
                        api.clone(),
                        navigator.clone(),
                        submit_conflict.clone(),
                        message.clone(),
                        busy.clone(),
                    );
                    busy.set(true);
                    wasm_bindgen_futures::spawn_local(async move {
                        let id = rec.inspection.id.clone();
                        let body = json!({
                            "verdict": st.verdict,
                            "detections": st.submission(),
                            "notes": st.notes,
                            "version": rec.inspection.version,
                        });
                        let result = api
                            .send::<InspectionView>(
                                Method::Post,
                                &format!("/inspections/{id}/review"),
                                Some(&body),
                            )
                            .await;
                        match result {
                            Ok(_) => go_next(&api, &navigator, &id).await,
                            Err(e) => match conflict_of(&e) {
                                Some(c) => submit_conflict.set(Some(c)),
                                None => message.set(Some(e.to_string())),
                            },
                        }
                        busy.set(false);
                    });
                }
            }
        })
    };

    // Keyboard shortcuts, on the whole document (the focus may be on any button).
    let on_key = {
        let editor = editor.clone();
        let submit = submit.clone();
        Callback::from(move |e: KeyboardEvent| {
            let in_text = e
                .target()
                .and_then(|t| t.dyn_into::<Element>().ok())
                .map(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
                .unwrap_or(false);
            let modifier = e.ctrl_key() || e.meta_key() || e.alt_key();
            let Some(cmd) = command_for(&e.key(), modifier, in_text) else {
                return;
            };
            e.prevent_default();
            if cmd == Command::Escape && in_text {
                if let Some(el) = e
                    .target()
                    .and_then(|t| t.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    let _ = el.blur();
                }
                return;
            }
            match AnnotatorState::action_for(cmd) {
                Some(a) => editor.dispatch(a),
                None => submit.emit(()),
            }
        })
    };
    let key_ref = use_mut_ref(|| on_key.clone());
    *key_ref.borrow_mut() = on_key;
    {
        let key_ref = key_ref.clone();
        use_effect_with((), move |_| {
            let closure = Closure::<dyn Fn(KeyboardEvent)>::new(move |e: KeyboardEvent| {
                key_ref.borrow().emit(e)
            });
            let document = web_sys::window().and_then(|w| w.document());
            if let Some(d) = &document {
                let _ =
                    d.add_event_listener_with_callback("keydown", closure.as_ref().unchecked_ref());
            }
            move || {
                if let Some(d) = &document {
                    let _ = d.remove_event_listener_with_callback(
                        "keydown",
                        closure.as_ref().unchecked_ref(),
                    );
                }
            }
        });
    }

    if let Some(e) = &*load_error {
        return html! {
            <section class="panel"><h1>{"Cannot open this item"}</h1>
                <div class="error" role="alert">{e}</div>
                <Link<Route> to={Route::Queue} classes="btn">{"Back to the queue"}</Link<Route>></section>
        };
    }
    let Some(rec) = (*record).clone() else {
        return html! { <section class="panel"><div class="muted">{"Opening…"}</div></section> };
    };
    let st = &editor.0;
    let i = &rec.inspection;
    let (w, h) = (*dims)
        .or(i.image_stats.map(|s| (s.width, s.height)))
        .unwrap_or((1000, 1000));
    let on_img_load = {
        let dims = dims.clone();
        Callback::from(move |e: Event| {
            let img: HtmlImageElement = e.target_unchecked_into();
            if img.natural_width() > 0 {
                dims.set(Some((img.natural_width(), img.natural_height())));
            }
        })
    };
    let dispatch = {
        let editor = editor.clone();
        Callback::from(move |a: Action| editor.dispatch(a))
    };
    let act = |a: Action| {
        let editor = editor.clone();
        Callback::from(move |_| editor.dispatch(a.clone()))
    };
    let now = now_unix();
    let _ = *tick;
    let lease = match (&i.claim, session.as_ref()) {
        (Some(c), Some(s)) if c.reviewer == s.name => {
            let left = c.expires_at.unix_timestamp() as f64 - now;
            if left > 0.0 {
                html! { <p class="lease ok" id="lease">{format!("Your lease: {} left (until {} UTC)", age(left as i64), timestamp(c.expires_at))}</p> }
            } else {
                html! { <p class="lease warn" id="lease">{"Your lease ran out; someone else may take this item. Reload to claim it again."}</p> }
            }
        }
        (Some(c), _) => {
            html! { <p class="lease warn" id="lease">{format!("Claimed by {} until {} UTC", c.reviewer, timestamp(c.expires_at))}</p> }
        }
        _ => html! {},
    };
    let reload_btn = {
        let reload = reload.clone();
        Callback::from(move |_| reload.set(reload.wrapping_add(1)))
    };
    let keep_mine = {
        let (record, submit_conflict) = (record.clone(), submit_conflict.clone());
        Callback::from(move |_| {
            // Take the latest version so a resubmission is judged on its own merits.
            if let (Some(mut r), Some(c)) = ((*record).clone(), (*submit_conflict).clone()) {
                if let Some(cur) = c.current_inspection() {
                    r.inspection = cur;
                    record.set(Some(r));
                }
            }
            submit_conflict.set(None);
        })
    };
    let on_notes = {
        let editor = editor.clone();
        Callback::from(move |e: InputEvent| {
            editor.dispatch(Action::SetNotes(
                e.target_unchecked_into::<HtmlTextAreaElement>().value(),
            ))
        })
    };
    let selected_class = st
        .selected
        .and_then(|s| st.boxes.get(s))
        .map(|b| b.class.clone());
    let submit_click = {
        let submit = submit.clone();
        Callback::from(move |_| submit.emit(()))
    };
    let decision = match i.decision {
        Some(opti_core::types::Decision::Defective) => "defective",
        Some(opti_core::types::Decision::Clean) => "clean",
        None => "–",
    };
    html! {
        <section class="annotate" id="annotator" data-id={i.id.clone()} data-version={i.version.to_string()}>
            <div class="stage">
                <div class="imgwrap" style={format!("--ar: {:.5}", f64::from(w) / f64::from(h.max(1)))}>
                    <img id="annotate-image" src={api.url(&rec.image_url)} alt="part" onload={on_img_load} draggable="false" />
                    <BoxOverlay boxes={st.boxes.clone()} classes={st.classes.clone()} selected={st.selected}
                        draft={st.draft_box()} width={w} height={h} on_action={dispatch} />
                </div>
            </div>
            <aside class="side">
                <h1 class="title">{i.filename.clone().unwrap_or_else(|| i.id.clone())}</h1>
                <dl class="facts">
                    <dt>{"Camera"}</dt><dd>{&i.camera_id}</dd>
                    <dt>{"Model"}</dt><dd>{format!("{decision}, confidence {}", percent(Some(f64::from(i.confidence))))}</dd>
                    <dt>{"Status"}</dt><dd id="record-status">{i.status.as_str()}{if i.audit_sample { " · audit sample" } else { "" }}</dd>
                    <dt>{"Age"}</dt><dd>{age(seconds_since(i.created_at, now))}</dd>
                </dl>
                {lease}
                if let (Some(c), None) = (&*claim_conflict, &*submit_conflict) {
                    <div class="conflict" role="alert" id="claim-conflict">
                        <p>{format!("Could not claim: {}", c.error)}</p>
                        <button class="btn" onclick={reload_btn.clone()}>{"Reload"}</button>
                    </div>
                }
                if let Some(c) = &*submit_conflict {
                    <div class="conflict" role="alert" id="submit-conflict">
                        <h2>{"Someone else got there first"}</h2>
                        <p>{&c.error}</p>
                        if let Some(cur) = c.current_inspection() { {other_result(&cur)} }
                        <p class="muted">{"Your edits are still on screen; nothing was saved over theirs."}</p>
                        <div class="row">
                            <button class="btn primary" id="conflict-reload" onclick={reload_btn.clone()}>{"Reload (discard my edits)"}</button>
                            <button class="btn" id="conflict-keep" onclick={keep_mine}>{"Keep my edits"}</button>
                        </div>
                    </div>
                }
                <h2>{"Class"}<span class="muted">{" keys 1–"}{st.classes.len()}</span></h2>
                <div class="classes" role="group" aria-label="class">
                    { for st.classes.iter().enumerate().map(|(k, c)| {
                        let active = selected_class.as_deref() == Some(c.as_str()) || (selected_class.is_none() && st.draw_class == k);
                        html! {
                            <button class={classes!("btn", "class-btn", active.then_some("active"))} data-class={c.clone()}
                                    style={format!("border-color:{}", class_colour(&st.classes, c))}
                                    aria-pressed={active.to_string()} onclick={act(Action::SetClass(k))}>
                                <kbd>{k + 1}</kbd>{" "}{c}</button>
                        }
                    }) }
                </div>
                <h2>{format!("Boxes ({})", st.boxes.len())}</h2>
                <ul class="boxes" id="box-list">
                    { for st.boxes.iter().enumerate().map(|(k, d)| html! {
                        <li class={classes!((st.selected == Some(k)).then_some("selected"))} data-class={d.class.clone()}>
                            <button class="btn small" onclick={act(Action::Select(Some(k)))}
                                    style={format!("border-color:{}", class_colour(&st.classes, &d.class))}>
                                {format!("{} {:.0}%", d.class, d.confidence * 100.0)}</button>
                            <button class="btn small ghost" aria-label="delete box"
                                    onclick={{ let e = editor.clone(); Callback::from(move |_| { e.dispatch(Action::Select(Some(k))); e.dispatch(Action::Delete); }) }}>{"✕"}</button>
                        </li>
                    }) }
                </ul>
                <h2>{"Verdict"}</h2>
                <div class="verdict" role="group" aria-label="verdict">
                    <button id="verdict-ok" class={classes!("btn", "big", "ok", (st.verdict == Some(Verdict::Ok)).then_some("active"))}
                            aria-pressed={(st.verdict == Some(Verdict::Ok)).to_string()} onclick={act(Action::SetVerdict(Verdict::Ok))}>
                        <kbd>{"A"}</kbd>{" OK"}</button>
                    <button id="verdict-defective" class={classes!("btn", "big", "bad", (st.verdict == Some(Verdict::Defective)).then_some("active"))}
                            aria-pressed={(st.verdict == Some(Verdict::Defective)).to_string()} onclick={act(Action::SetVerdict(Verdict::Defective))}>
                        <kbd>{"R"}</kbd>{" Defective"}</button>
                </div>
                <label for="notes">{"Notes"}</label>
                <textarea id="notes" rows="2" value={st.notes.clone()} oninput={on_notes} placeholder="optional"></textarea>
                if let Some(m) = &*message { <div class="error" role="alert" id="annotate-message">{m}</div> }
                <div class="actions">
                    <div class="row">
                        <button id="submit" class="btn primary big" disabled={*busy} onclick={submit_click}>
                            {match st.next_step() { NextStep::Skip => "Skip to next", _ => "Submit & next" }}{" "}<kbd>{"N"}</kbd></button>
                        <button class="btn ghost" id="help-btn" onclick={act(Action::ToggleHelp)}><kbd>{"?"}</kbd>{" Help"}</button>
                    </div>
                    if st.dirty { <p class="muted unsaved" id="unsaved">{"Unsaved changes"}</p> }
                </div>
            </aside>
            if st.help_open {
                <div class="modal" role="dialog" aria-label="keyboard shortcuts" id="help">
                    <div class="modal-body">
                        <h2>{"Keyboard shortcuts"}</h2>
                        <table>{ for HELP.iter().map(|(k, v)| html! { <tr><td><kbd>{*k}</kbd></td><td>{*v}</td></tr> }) }</table>
                        <button class="btn" onclick={act(Action::ToggleHelp)}>{"Close (Esc)"}</button>
                    </div>
                </div>
            }
        </section>
    }
}
