//! Parsing of the metadata Ultralytics writes into an exported ONNX model:
//! `names` (a Python dict literal, `{0: 'defect', 1: 'fracture'}`) and `imgsz`
//! (`[320, 320]`). The strings are Python `repr`s, so the parser accepts both quote
//! styles and backslash escapes; a malformed value is an error naming the key, never a
//! silent fallback to some default list.

/// Why a metadata value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model metadata `{key}` is malformed ({reason}): {value:?}")]
pub struct MetadataError {
    pub key: &'static str,
    pub value: String,
    pub reason: String,
}

fn err(key: &'static str, value: &str, reason: impl Into<String>) -> MetadataError {
    MetadataError {
        key,
        value: value.chars().take(200).collect(),
        reason: reason.into(),
    }
}

/// Parses `names`: a dict `{id: 'name', …}` whose ids are exactly `0..n` (any order),
/// or a list `['a', 'b']`. Returns the names in id order.
pub fn parse_names(value: &str) -> Result<Vec<String>, MetadataError> {
    let key = "names";
    let mut p = Lexer::new(value);
    p.skip_ws();
    let mut entries: Vec<(usize, String)> = Vec::new();
    match p.peek() {
        Some('{') => {
            p.bump();
            loop {
                p.skip_ws();
                if p.eat('}') {
                    break;
                }
                let id = p
                    .integer()
                    .ok_or_else(|| err(key, value, "expected a class id"))?;
                p.skip_ws();
                if !p.eat(':') {
                    return Err(err(key, value, "expected ':' after a class id"));
                }
                p.skip_ws();
                let name = p
                    .string()
                    .map_err(|r| err(key, value, r))?
                    .ok_or_else(|| err(key, value, "expected a quoted class name"))?;
                entries.push((id, name));
                p.skip_ws();
                if p.eat(',') {
                    continue;
                }
                p.skip_ws();
                if !p.eat('}') {
                    return Err(err(key, value, "expected ',' or '}'"));
                }
                break;
            }
        }
        Some('[') => {
            p.bump();
            loop {
                p.skip_ws();
                if p.eat(']') {
                    break;
                }
                let name = p
                    .string()
                    .map_err(|r| err(key, value, r))?
                    .ok_or_else(|| err(key, value, "expected a quoted class name"))?;
                entries.push((entries.len(), name));
                p.skip_ws();
                if p.eat(',') {
                    continue;
                }
                p.skip_ws();
                if !p.eat(']') {
                    return Err(err(key, value, "expected ',' or ']'"));
                }
                break;
            }
        }
        _ => return Err(err(key, value, "expected a dict or a list")),
    }
    p.skip_ws();
    if !p.at_end() {
        return Err(err(key, value, "trailing characters"));
    }
    if entries.is_empty() {
        return Err(err(key, value, "no classes"));
    }
    entries.sort_by_key(|(id, _)| *id);
    for (expected, (id, name)) in entries.iter().enumerate() {
        if *id != expected {
            return Err(err(
                key,
                value,
                format!(
                    "class ids must be 0..{} without gaps or repeats",
                    entries.len()
                ),
            ));
        }
        if name.trim().is_empty() {
            return Err(err(key, value, format!("class {id} has an empty name")));
        }
    }
    Ok(entries.into_iter().map(|(_, n)| n).collect())
}

/// Parses `imgsz`: `[h, w]`, `(h, w)`, `[s]` or `s`. Returns `(height, width)`.
pub fn parse_imgsz(value: &str) -> Result<(u32, u32), MetadataError> {
    let key = "imgsz";
    let inner = value
        .trim()
        .trim_start_matches(['[', '('])
        .trim_end_matches([']', ')']);
    let dims: Vec<u32> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|e| err(key, value, format!("not an integer list: {e}")))?;
    let (h, w) = match dims.as_slice() {
        [s] => (*s, *s),
        [h, w] => (*h, *w),
        _ => return Err(err(key, value, "expected one or two sizes")),
    };
    if !(8..=8192).contains(&h) || !(8..=8192).contains(&w) {
        return Err(err(key, value, "sizes must be within 8..=8192"));
    }
    Ok((h, w))
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Self {
        Self {
            chars: s.chars().peekable(),
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        self.chars.next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn integer(&mut self) -> Option<usize> {
        let mut digits = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            digits.push(c);
            self.bump();
        }
        digits.parse().ok()
    }

    /// A Python string literal in single or double quotes; `Ok(None)` if none starts here.
    fn string(&mut self) -> Result<Option<String>, String> {
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Ok(None),
        };
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err("unterminated string".into()),
                Some(c) if c == quote => return Ok(Some(out)),
                Some('\\') => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('\\') => out.push('\\'),
                    Some('\'') => out.push('\''),
                    Some('"') => out.push('"'),
                    Some('x') => out.push(self.hex_char(2)?),
                    Some('u') => out.push(self.hex_char(4)?),
                    Some('U') => out.push(self.hex_char(8)?),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => return Err("unterminated escape".into()),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn hex_char(&mut self, n: usize) -> Result<char, String> {
        let hex: String = (0..n).filter_map(|_| self.bump()).collect();
        u32::from_str_radix(&hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| format!("bad escape \\x{hex}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ultralytics_names_dict_parses_in_id_order() {
        let names =
            parse_names("{0: 'defect', 1: 'fracture', 2: 'stain', 3: 'misalignment'}").unwrap();
        assert_eq!(names, ["defect", "fracture", "stain", "misalignment"]);
        let shuffled = parse_names("{1:\"b\",0:'a'}").unwrap();
        assert_eq!(shuffled, ["a", "b"]);
    }

    #[test]
    fn names_with_quotes_and_escapes_survive() {
        let names = parse_names(r#"{0: "it's bent", 1: 'say \'hi\'', 2: 'caf\xe9'}"#).unwrap();
        assert_eq!(names, ["it's bent", "say 'hi'", "café"]);
    }

    #[test]
    fn a_list_of_names_is_accepted_too() {
        assert_eq!(parse_names("['a', 'b']").unwrap(), ["a", "b"]);
    }

    #[test]
    fn malformed_names_are_errors_naming_the_key() {
        for bad in [
            "",
            "defect, stain",
            "{0: 'a', 2: 'c'}",
            "{0: 'a', 0: 'b'}",
            "{0: 'a'",
            "{0: a}",
            "{}",
            "{0: 'a'} extra",
            "{0: '  '}",
        ] {
            let e = parse_names(bad).unwrap_err();
            assert_eq!(e.key, "names", "{bad}");
        }
    }

    #[test]
    fn imgsz_accepts_list_tuple_and_scalar() {
        assert_eq!(parse_imgsz("[320, 320]").unwrap(), (320, 320));
        assert_eq!(parse_imgsz("[384, 640]").unwrap(), (384, 640));
        assert_eq!(parse_imgsz("(640, 480)").unwrap(), (640, 480));
        assert_eq!(parse_imgsz("640").unwrap(), (640, 640));
        for bad in [
            "",
            "[]",
            "[a, b]",
            "[1, 2, 3]",
            "[0, 0]",
            "[-1, 5]",
            "[100000, 5]",
        ] {
            assert_eq!(parse_imgsz(bad).unwrap_err().key, "imgsz", "{bad}");
        }
    }
}
