//! The annotator's SVG overlay: the boxes (colour per class, confidence label), resize
//! handles on the selected box, the box being drawn; pointer events become
//! [`Action`]s for the annotator reducer.

use opti_core::types::Detection;
use web_sys::{Element, PointerEvent};
use yew::prelude::*;

use crate::annotator::{Action, Target};
use crate::components::class_colour;
use crate::geometry::{Handle, Point};

/// Properties of [`BoxOverlay`].
#[derive(Properties, PartialEq)]
pub struct OverlayProps {
    pub boxes: Vec<Detection>,
    pub classes: Vec<String>,
    pub selected: Option<usize>,
    pub draft: Option<[f32; 4]>,
    /// The image's pixel size (the SVG's coordinate system).
    pub width: u32,
    pub height: u32,
    pub on_action: Callback<Action>,
}

fn point_of(e: &PointerEvent, svg: &NodeRef) -> Option<Point> {
    let el = svg.cast::<Element>()?;
    let r = el.get_bounding_client_rect();
    Point::from_client(
        f64::from(e.client_x()),
        f64::from(e.client_y()),
        (r.left(), r.top(), r.width(), r.height()),
    )
}

/// The overlay drawn over the image.
#[function_component(BoxOverlay)]
pub fn box_overlay(p: &OverlayProps) -> Html {
    let svg = use_node_ref();
    let (w, h) = (p.width.max(1) as f32, p.height.max(1) as f32);
    let down = |target: Target| {
        let svg = svg.clone();
        let on = p.on_action.clone();
        Callback::from(move |e: PointerEvent| {
            e.prevent_default();
            e.stop_propagation();
            if let Some(el) = svg.cast::<Element>() {
                let _ = el.set_pointer_capture(e.pointer_id());
            }
            if let Some(pt) = point_of(&e, &svg) {
                on.emit(Action::PointerDown(pt, target));
            }
        })
    };
    let on_move = {
        let svg = svg.clone();
        let on = p.on_action.clone();
        Callback::from(move |e: PointerEvent| {
            if e.buttons() == 0 {
                return;
            }
            if let Some(pt) = point_of(&e, &svg) {
                on.emit(Action::PointerMove(pt));
            }
        })
    };
    let on_up = {
        let svg = svg.clone();
        let on = p.on_action.clone();
        Callback::from(move |e: PointerEvent| {
            if let Some(pt) = point_of(&e, &svg) {
                on.emit(Action::PointerMove(pt));
            }
            on.emit(Action::PointerUp);
        })
    };
    let font = (w.max(h) / 38.0).max(10.0);
    let rect = |b: &[f32; 4]| {
        (
            b[0] * w,
            b[1] * h,
            ((b[2] - b[0]) * w).max(1.0),
            ((b[3] - b[1]) * h).max(1.0),
        )
    };
    html! {
        <svg ref={svg.clone()} id="overlay" class="overlay" viewBox={format!("0 0 {w} {h}")}
             preserveAspectRatio="none" onpointermove={on_move} onpointerup={on_up}>
            <rect class="hit-image" x="0" y="0" width={w.to_string()} height={h.to_string()}
                  fill="transparent" onpointerdown={down(Target::Image)} />
            { for p.boxes.iter().enumerate().map(|(i, d)| {
                let (x, y, bw, bh) = rect(&d.bbox);
                let colour = class_colour(&p.classes, &d.class);
                let selected = p.selected == Some(i);
                let label = format!("{} {:.0}%", d.class, d.confidence * 100.0);
                let label_y = if y > font * 1.3 { y - font * 0.35 } else { y + bh + font };
                html! {
                    <g class={classes!("det", selected.then_some("selected"))} data-index={i.to_string()}
                       data-class={d.class.clone()}>
                        <rect class="det-box" x={x.to_string()} y={y.to_string()} width={bw.to_string()} height={bh.to_string()}
                              stroke={colour} fill={if selected { "rgba(255,255,255,0.12)" } else { "rgba(0,0,0,0.01)" }}
                              stroke-width={if selected { "4" } else { "3" }} vector-effect="non-scaling-stroke"
                              onpointerdown={down(Target::Box(i))} />
                        <text class="det-label" x={x.to_string()} y={label_y.to_string()} fill={colour}
                              font-size={font.to_string()}>{label}</text>
                        if selected {
                            { for Handle::ALL.into_iter().map(|hd| {
                                let c = hd.position(&d.bbox);
                                let s = font * 0.9;
                                html! {
                                    <rect class="handle" x={(c.x * w - s / 2.0).to_string()} y={(c.y * h - s / 2.0).to_string()}
                                          width={s.to_string()} height={s.to_string()} fill={colour}
                                          onpointerdown={down(Target::Handle(i, hd))} />
                                }
                            }) }
                        }
                    </g>
                }
            }) }
            if let Some(b) = p.draft {
                <rect class="draft" x={(b[0] * w).to_string()} y={(b[1] * h).to_string()}
                      width={((b[2] - b[0]) * w).to_string()} height={((b[3] - b[1]) * h).to_string()}
                      fill="none" stroke="#ffffff" stroke-dasharray="8 6" stroke-width="2" vector-effect="non-scaling-stroke" />
            }
        </svg>
    }
}
