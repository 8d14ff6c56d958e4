//! The annotator's keyboard map: `1`–`9` pick a class, `D` deletes the selected box,
//! `A` accepts the part (verdict ok), `R` rejects it (verdict defective), `N` submits and
//! goes to the next item, `?` toggles the help. Keys typed into a text field are left alone.

/// What a key press asks the annotator to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Class by its index in the model's class list (key `1` is index 0).
    Class(usize),
    Delete,
    /// Verdict "ok": the part is good.
    Accept,
    /// Verdict "defective": the part is rejected.
    Reject,
    /// Submit the review and open the next item (or skip an untouched one).
    Next,
    Help,
    /// Select the next box (Tab order is kept for buttons; this cycles boxes).
    CycleBox,
    /// Close the help, or clear the selection.
    Escape,
    /// Move the selected box by this many steps.
    Nudge(i8, i8),
}

/// The command for `key` (a `KeyboardEvent.key` value). `None` when a modifier other
/// than Shift is held (browser shortcuts stay intact) or the focus is in a text field.
pub fn command_for(key: &str, modifier: bool, in_text_field: bool) -> Option<Command> {
    if modifier {
        return None;
    }
    if in_text_field {
        // Escape still leaves the notes field.
        return (key == "Escape").then_some(Command::Escape);
    }
    let cmd = match key {
        "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" => {
            Command::Class(key.parse::<usize>().ok()?.checked_sub(1)?)
        }
        "d" | "D" | "Delete" | "Backspace" => Command::Delete,
        "a" | "A" => Command::Accept,
        "r" | "R" => Command::Reject,
        "n" | "N" => Command::Next,
        "?" => Command::Help,
        "b" | "B" => Command::CycleBox,
        "Escape" => Command::Escape,
        "ArrowLeft" => Command::Nudge(-1, 0),
        "ArrowRight" => Command::Nudge(1, 0),
        "ArrowUp" => Command::Nudge(0, -1),
        "ArrowDown" => Command::Nudge(0, 1),
        _ => return None,
    };
    Some(cmd)
}

/// The help overlay's rows: key, what it does.
pub const HELP: &[(&str, &str)] = &[
    (
        "1 – 4",
        "class of the selected box (and of the next box you draw)",
    ),
    ("drag on image", "draw a new box"),
    ("drag box / corner", "move / resize"),
    ("B", "select next box"),
    ("arrows", "nudge the selected box"),
    ("D / Delete", "delete the selected box"),
    ("A", "accept: part is OK"),
    ("R", "reject: part is defective"),
    ("N", "submit and open the next item"),
    ("Esc", "clear selection / close help"),
    ("?", "show or hide this help"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_keys_pick_classes_from_zero() {
        assert_eq!(command_for("1", false, false), Some(Command::Class(0)));
        assert_eq!(command_for("4", false, false), Some(Command::Class(3)));
        assert_eq!(command_for("0", false, false), None);
    }

    #[test]
    fn letters_work_in_either_case_and_map_to_the_documented_actions() {
        for (k, c) in [
            ("d", Command::Delete),
            ("D", Command::Delete),
            ("a", Command::Accept),
            ("R", Command::Reject),
            ("n", Command::Next),
            ("?", Command::Help),
        ] {
            assert_eq!(command_for(k, false, false), Some(c), "{k}");
        }
    }

    #[test]
    fn typing_notes_or_browser_shortcuts_trigger_nothing() {
        assert_eq!(command_for("d", false, true), None);
        assert_eq!(command_for("n", true, false), None);
        assert_eq!(command_for("Escape", false, true), Some(Command::Escape));
    }
}
