//! The annotator's state and its reducer: the boxes being edited, the selection, the
//! drag in progress, verdict and notes. Pure, so every edit is tested natively; the Yew
//! page only turns pointer and key events into [`Action`]s.

use opti_core::types::{Detection, Verdict};

use crate::geometry::{self, Handle, Point};
use crate::keys::Command;

/// How far one arrow-key nudge moves a box (normalised).
pub const NUDGE_STEP: f32 = 0.005;

/// A pointer drag in progress.
#[derive(Debug, Clone, PartialEq)]
pub enum Drag {
    /// Drawing a new box from `start` to `current`.
    Draw { start: Point, current: Point },
    /// Moving box `index`, grabbed at `grab` when it was at `original`.
    Move {
        index: usize,
        grab: Point,
        original: [f32; 4],
    },
    /// Dragging a corner of box `index`.
    Resize { index: usize, handle: Handle },
}

/// What the pointer went down on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The image itself (starts a new box).
    Image,
    Box(usize),
    Handle(usize, Handle),
}

/// Every change the annotator can make.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start over with these boxes (a freshly loaded inspection).
    Load(Vec<Detection>),
    Select(Option<usize>),
    PointerDown(Point, Target),
    PointerMove(Point),
    PointerUp,
    SetClass(usize),
    Delete,
    SetVerdict(Verdict),
    SetNotes(String),
    ToggleHelp,
    CycleBox,
    Escape,
    Nudge(i8, i8),
}

/// The editor's state.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnotatorState {
    /// The model's classes, in key order (`1` is the first).
    pub classes: Vec<String>,
    pub boxes: Vec<Detection>,
    pub selected: Option<usize>,
    /// Class given to the next box drawn (the last class picked).
    pub draw_class: usize,
    pub drag: Option<Drag>,
    pub verdict: Option<Verdict>,
    pub notes: String,
    /// The reviewer changed something since loading.
    pub dirty: bool,
    pub help_open: bool,
}

/// What "next" (`N`) should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// A verdict is given: submit it.
    Submit,
    /// Nothing was touched: release the item and move on.
    Skip,
    /// Edits were made but no verdict given: ask for one rather than drop the edits.
    NeedVerdict,
}

impl AnnotatorState {
    /// A fresh editor over the model's boxes.
    pub fn new(classes: Vec<String>, boxes: Vec<Detection>) -> Self {
        Self {
            classes,
            boxes,
            selected: None,
            draw_class: 0,
            drag: None,
            verdict: None,
            notes: String::new(),
            dirty: false,
            help_open: false,
        }
    }

    /// The action a keyboard command maps to (`Next` is handled by the page).
    pub fn action_for(command: Command) -> Option<Action> {
        Some(match command {
            Command::Class(i) => Action::SetClass(i),
            Command::Delete => Action::Delete,
            Command::Accept => Action::SetVerdict(Verdict::Ok),
            Command::Reject => Action::SetVerdict(Verdict::Defective),
            Command::Help => Action::ToggleHelp,
            Command::CycleBox => Action::CycleBox,
            Command::Escape => Action::Escape,
            Command::Nudge(dx, dy) => Action::Nudge(dx, dy),
            Command::Next => return None,
        })
    }

    /// What `N` should do in this state.
    pub fn next_step(&self) -> NextStep {
        match (self.verdict, self.dirty) {
            (Some(_), _) => NextStep::Submit,
            (None, false) => NextStep::Skip,
            (None, true) => NextStep::NeedVerdict,
        }
    }

    /// The box being drawn right now, for the overlay.
    pub fn draft_box(&self) -> Option<[f32; 4]> {
        match &self.drag {
            Some(Drag::Draw { start, current }) => Some(geometry::from_corners(*start, *current)),
            _ => None,
        }
    }

    /// The boxes to submit: every usable box, with coordinates rounded to 1e-4.
    pub fn submission(&self) -> Vec<Detection> {
        self.boxes
            .iter()
            .filter(|d| geometry::is_usable(&d.bbox))
            .map(|d| Detection {
                bbox: d.bbox.map(|v| (v * 10_000.0).round() / 10_000.0),
                ..d.clone()
            })
            .collect()
    }

    /// Applies one action; returns the new state.
    pub fn reduce(mut self, action: Action) -> Self {
        match action {
            Action::Load(boxes) => {
                return Self::new(self.classes, boxes);
            }
            Action::Select(i) => {
                self.selected = i.filter(|i| *i < self.boxes.len());
            }
            Action::PointerDown(p, target) => {
                self.drag = Some(match target {
                    Target::Image => {
                        self.selected = None;
                        Drag::Draw {
                            start: p,
                            current: p,
                        }
                    }
                    Target::Box(index) if index < self.boxes.len() => {
                        self.selected = Some(index);
                        Drag::Move {
                            index,
                            grab: p,
                            original: self.boxes[index].bbox,
                        }
                    }
                    Target::Handle(index, handle) if index < self.boxes.len() => {
                        self.selected = Some(index);
                        Drag::Resize { index, handle }
                    }
                    _ => return self,
                });
            }
            Action::PointerMove(p) => match self.drag.clone() {
                Some(Drag::Draw { start, .. }) => {
                    self.drag = Some(Drag::Draw { start, current: p });
                }
                Some(Drag::Move {
                    index,
                    grab,
                    original,
                }) => {
                    let moved = geometry::translate(&original, p.x - grab.x, p.y - grab.y);
                    if moved != self.boxes[index].bbox {
                        self.boxes[index].bbox = moved;
                        self.dirty = true;
                    }
                }
                Some(Drag::Resize { index, handle }) => {
                    self.boxes[index].bbox = geometry::resize(&self.boxes[index].bbox, handle, p);
                    self.dirty = true;
                }
                None => {}
            },
            Action::PointerUp => {
                if let Some(Drag::Draw { start, current }) = self.drag.take() {
                    let bbox = geometry::from_corners(start, current);
                    if geometry::is_usable(&bbox) {
                        let class = self
                            .classes
                            .get(self.draw_class)
                            .cloned()
                            .unwrap_or_else(|| "defect".to_string());
                        self.boxes.push(Detection {
                            class,
                            // A box a human drew is certain.
                            confidence: 1.0,
                            bbox,
                        });
                        self.selected = Some(self.boxes.len() - 1);
                        self.dirty = true;
                    }
                }
            }
            Action::SetClass(i) => {
                if let Some(class) = self.classes.get(i).cloned() {
                    self.draw_class = i;
                    if let Some(b) = self.selected.and_then(|s| self.boxes.get_mut(s)) {
                        if b.class != class {
                            b.class = class;
                            // The reviewer vouches for the class now.
                            b.confidence = 1.0;
                            self.dirty = true;
                        }
                    }
                }
            }
            Action::Delete => {
                if let Some(s) = self.selected.take() {
                    if s < self.boxes.len() {
                        self.boxes.remove(s);
                        self.dirty = true;
                    }
                }
                self.drag = None;
            }
            Action::SetVerdict(v) => self.verdict = Some(v),
            Action::SetNotes(n) => {
                if n != self.notes {
                    self.notes = n;
                    self.dirty = true;
                }
            }
            Action::ToggleHelp => self.help_open = !self.help_open,
            Action::CycleBox => {
                self.selected = match (self.selected, self.boxes.len()) {
                    (_, 0) => None,
                    (None, _) => Some(0),
                    (Some(i), n) => Some((i + 1) % n),
                };
            }
            Action::Escape => {
                if self.help_open {
                    self.help_open = false;
                } else {
                    self.selected = None;
                    self.drag = None;
                }
            }
            Action::Nudge(dx, dy) => {
                if let Some(b) = self.selected.and_then(|s| self.boxes.get_mut(s)) {
                    b.bbox = geometry::translate(
                        &b.bbox,
                        f32::from(dx) * NUDGE_STEP,
                        f32::from(dy) * NUDGE_STEP,
                    );
                    self.dirty = true;
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        ["defect", "fracture", "stain", "misalignment"]
            .map(String::from)
            .to_vec()
    }

    fn model_box() -> Detection {
        Detection {
            class: "stain".into(),
            confidence: 0.42,
            bbox: [0.2, 0.2, 0.4, 0.4],
        }
    }

    fn editor() -> AnnotatorState {
        AnnotatorState::new(classes(), vec![model_box()])
    }

    #[test]
    fn dragging_a_box_moves_it_and_marks_the_work_unsaved() {
        let s = editor()
            .reduce(Action::PointerDown(Point::new(0.3, 0.3), Target::Box(0)))
            .reduce(Action::PointerMove(Point::new(0.4, 0.35)))
            .reduce(Action::PointerUp);
        let b = s.boxes[0].bbox;
        assert!(
            (b[0] - 0.3).abs() < 1e-5 && (b[1] - 0.25).abs() < 1e-5,
            "{b:?}"
        );
        assert_eq!(s.selected, Some(0));
        assert!(s.dirty);
        assert_eq!(s.next_step(), NextStep::NeedVerdict);
    }

    #[test]
    fn dragging_on_the_image_draws_a_certain_box_of_the_last_picked_class() {
        let s = editor()
            .reduce(Action::SetClass(1))
            .reduce(Action::PointerDown(Point::new(0.6, 0.6), Target::Image))
            .reduce(Action::PointerMove(Point::new(0.8, 0.9)));
        assert_eq!(s.draft_box(), Some([0.6, 0.6, 0.8, 0.9]));
        let s = s.reduce(Action::PointerUp);
        assert_eq!(s.boxes.len(), 2);
        assert_eq!(s.boxes[1].class, "fracture");
        assert_eq!(s.boxes[1].confidence, 1.0);
        assert_eq!(s.selected, Some(1));
        assert_eq!(s.draft_box(), None);
    }

    #[test]
    fn a_click_on_the_image_clears_the_selection_and_adds_nothing() {
        let s = editor()
            .reduce(Action::Select(Some(0)))
            .reduce(Action::PointerDown(Point::new(0.7, 0.7), Target::Image))
            .reduce(Action::PointerUp);
        assert_eq!(s.boxes.len(), 1);
        assert_eq!(s.selected, None);
        assert!(!s.dirty);
        assert_eq!(s.next_step(), NextStep::Skip);
    }

    #[test]
    fn class_keys_relabel_the_selected_box_and_delete_removes_it() {
        let s = editor()
            .reduce(Action::CycleBox)
            .reduce(Action::SetClass(3));
        assert_eq!(s.boxes[0].class, "misalignment");
        assert_eq!(s.boxes[0].confidence, 1.0);
        let s = s.reduce(Action::Delete);
        assert!(s.boxes.is_empty());
        assert_eq!(s.selected, None);
        // An unknown class index changes nothing.
        let s = editor()
            .reduce(Action::Select(Some(0)))
            .reduce(Action::SetClass(9));
        assert_eq!(s.boxes[0], model_box());
        assert!(!s.dirty);
    }

    #[test]
    fn resizing_by_a_corner_keeps_the_opposite_corner() {
        let s = editor()
            .reduce(Action::PointerDown(
                Point::new(0.4, 0.4),
                Target::Handle(0, Handle::BottomRight),
            ))
            .reduce(Action::PointerMove(Point::new(0.5, 0.6)))
            .reduce(Action::PointerUp);
        assert_eq!(s.boxes[0].bbox, [0.2, 0.2, 0.5, 0.6]);
    }

    #[test]
    fn a_verdict_makes_next_submit_and_keyboard_commands_map_to_actions() {
        let s = editor()
            .reduce(AnnotatorState::action_for(Command::Reject).expect("reject maps to an action"));
        assert_eq!(s.verdict, Some(Verdict::Defective));
        assert_eq!(s.next_step(), NextStep::Submit);
        assert_eq!(AnnotatorState::action_for(Command::Next), None);
    }

    #[test]
    fn escape_closes_help_before_it_clears_the_selection() {
        let s = editor()
            .reduce(Action::Select(Some(0)))
            .reduce(Action::ToggleHelp)
            .reduce(Action::Escape);
        assert!(!s.help_open);
        assert_eq!(s.selected, Some(0));
        assert_eq!(s.reduce(Action::Escape).selected, None);
    }

    #[test]
    fn nudging_moves_only_the_selected_box_and_submission_rounds_coordinates() {
        let s = editor().reduce(Action::Nudge(1, 0));
        assert!(!s.dirty, "nothing selected, nothing moved");
        let s = s
            .reduce(Action::Select(Some(0)))
            .reduce(Action::Nudge(1, 1));
        let sub = s.submission();
        assert_eq!(sub[0].bbox, [0.205, 0.205, 0.405, 0.405]);
    }
}
