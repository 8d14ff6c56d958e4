//! Reading the model cache's NNEF tar into tract's [`ProtoModel`] without tract's text
//! parser.
//!
//! tract's `graph.nnef` parser (nom combinators) takes ~40 ms for the 111 KB graph of the
//! shipped model, the largest single part of a cold start: its expression grammar parses
//! every operand once per precedence level and again when no subscript follows, so a
//! nested array literal is re-read several times per level of nesting. This module reads
//! the subset of NNEF that tract's own writer emits — `version`, `extension`s, fragments
//! without generics or defaults, and a graph body of assignments whose right-hand sides
//! are invocations, literals, identifiers, arrays and tuples — into the very same AST in
//! one linear pass (0.5 ms against tract's 41 ms for the shipped model's graph).
//!
//! Anything outside that subset (operators, subscripts, comprehensions, escaped
//! identifiers, quantisation files, sub-models, gzip) is an [`Unsupported`] error, never a
//! guess: the caller then reads the tar with tract's own loader, so the result is always
//! what tract would have built. Wherever both parsers accept a text they produce equal
//! documents (tested on the shipped graph and on mutated texts in `tests`).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path};
use std::sync::Arc;

use tract_nnef::ast::{
    Argument, Assignment, Document, FragmentDecl, FragmentDef, GraphDef, Identifier, Invocation,
    LValue, Literal, Parameter, ProtoModel, RValue, Result_, TypeName, TypeSpec,
};

/// Why the fast reader declined a tar. The caller falls back to tract's loader, unless
/// the tar is `corrupt`: nested deeper than tract's writer ever emits ([`MAX_DEPTH`]),
/// which tract's recursive parser must not be handed either (a stack overflow aborts
/// the process).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{why}")]
pub(crate) struct Unsupported {
    pub why: String,
    pub corrupt: bool,
}

impl Unsupported {
    fn new(why: impl Into<String>) -> Unsupported {
        Unsupported {
            why: why.into(),
            corrupt: false,
        }
    }
}

fn unsupported<T>(why: impl Into<String>) -> Result<T, Unsupported> {
    Err(Unsupported::new(why))
}

/// Deepest nesting of arrays, tuples and invocations read (tract writes a tensor literal
/// of rank r as r nested arrays; models hold rank 6 at most).
const MAX_DEPTH: usize = 64;

/// The proto model of an uncompressed NNEF tar holding `graph.nnef` and `.dat` tensors.
pub(crate) fn proto_model(tar_bytes: &[u8]) -> Result<ProtoModel, Unsupported> {
    if tar_bytes.starts_with(&[0x1f, 0x8b]) {
        return unsupported("gzip-compressed NNEF");
    }
    let mut archive = tar::Archive::new(tar_bytes);
    let entries = archive
        .entries()
        .map_err(|e| Unsupported::new(format!("tar: {e}")))?;
    let mut text = None;
    let mut tensors = HashMap::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| Unsupported::new(format!("tar entry: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| Unsupported::new(format!("tar path: {e}")))?
            .into_owned();
        let path = path.strip_prefix("./").unwrap_or(&path).to_path_buf();
        // tract skips every path with a component starting with '.' (macOS tar metadata).
        if path
            .components()
            .any(|c| c.as_os_str().as_encoded_bytes().first() == Some(&b'.'))
        {
            continue;
        }
        if path.components().count() != 1
            || !matches!(path.components().next(), Some(Component::Normal(_)))
        {
            return unsupported(format!("entry {path:?} outside the top folder"));
        }
        if path == Path::new("graph.nnef") {
            let mut s = String::new();
            entry
                .read_to_string(&mut s)
                .map_err(|e| Unsupported::new(format!("graph.nnef: {e}")))?;
            if text.replace(s).is_some() {
                return unsupported("graph.nnef twice");
            }
        } else if path.extension().is_some_and(|e| e == "dat") {
            let id = path
                .with_extension("")
                .to_str()
                .map(str::to_owned)
                .ok_or_else(|| Unsupported::new(format!("tensor name {path:?} is not UTF-8")))?;
            // tract keys every resource by its id in one map: a tensor named after the
            // graph file collides with it there.
            if id == "graph.nnef" {
                return unsupported("a tensor named graph.nnef");
            }
            let tensor = tract_nnef::tensors::read_tensor(&mut entry)
                .map_err(|e| Unsupported::new(format!("tensor {id}: {e}")))?;
            if tensors
                .insert(Identifier(id.clone()), Arc::new(tensor))
                .is_some()
            {
                return unsupported(format!("tensor {id} twice"));
            }
        } else {
            return unsupported(format!("entry {path:?} (only graph.nnef and .dat files)"));
        }
    }
    let text = text.ok_or_else(|| Unsupported::new("no graph.nnef"))?;
    let doc = parse_document(&text)?;
    let proto = ProtoModel {
        doc,
        tensors,
        quantization: None,
        resources: HashMap::new(),
    };
    proto
        .validate()
        .map_err(|e| Unsupported::new(format!("fragments: {e}")))?;
    Ok(proto)
}

/// Parses `graph.nnef` text into tract's AST (the subset described in the module docs).
pub(crate) fn parse_document(text: &str) -> Result<Document, Unsupported> {
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let doc = p.document();
    doc.map_err(|what| {
        let at = p.i.min(text.len());
        let line = text.as_bytes()[..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Unsupported {
            why: format!("graph.nnef line {line}: {what}"),
            corrupt: p.depth > MAX_DEPTH,
        }
    })
}

type Parsed<T> = Result<T, String>;

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    /// Values being read around the current position (arrays, tuples, invocations).
    depth: usize,
}

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'a> Parser<'a> {
    /// Skips white space and `#` comments, as tract's `space_and_comments`.
    fn skip(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' => self.i += 1,
                b'#' => {
                    while self
                        .b
                        .get(self.i)
                        .is_some_and(|&c| c != b'\n' && c != b'\r')
                    {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip();
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Parsed<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{}`", c as char))
        }
    }

    fn expect_arrow(&mut self) -> Parsed<()> {
        self.skip();
        if self.b[self.i..].starts_with(b"->") {
            self.i += 2;
            Ok(())
        } else {
            Err("expected `->`".into())
        }
    }

    /// The next word, if it is `[A-Za-z_][A-Za-z0-9_]*` (not consumed when absent).
    fn word(&mut self) -> Option<&'a str> {
        self.skip();
        let start = self.i;
        if !self.b.get(start).copied().is_some_and(ident_start) {
            return None;
        }
        let mut end = start + 1;
        while self.b.get(end).copied().is_some_and(ident_char) {
            end += 1;
        }
        self.i = end;
        Some(&self.s[start..end])
    }

    /// Consumes `kw` when the next word is exactly `kw`.
    fn keyword(&mut self, kw: &str) -> bool {
        let save = self.i;
        if self.word() == Some(kw) {
            true
        } else {
            self.i = save;
            false
        }
    }

    fn identifier(&mut self) -> Parsed<Identifier> {
        let w = self.word().ok_or("expected an identifier")?;
        // `i"…"` is an escaped identifier in NNEF: not in the subset.
        if w == "i" && matches!(self.b.get(self.i), Some(b'"' | b'\'')) {
            return Err("escaped identifier".into());
        }
        Ok(Identifier(w.to_owned()))
    }

    /// `item`s separated by `,`, through the `close` bracket (the opening one already
    /// read). Empty is `close` right away: after space too where `spaced` (tract's
    /// `stag` lists: parameters, results, identifiers, arguments, tuple types), only
    /// adjacent for values (tract refuses `[ ]` as a value).
    fn list<T>(
        &mut self,
        close: u8,
        spaced: bool,
        mut item: impl FnMut(&mut Self) -> Parsed<T>,
    ) -> Parsed<Vec<T>> {
        let mut items = Vec::new();
        let empty = if spaced {
            self.peek() == Some(close)
        } else {
            self.b.get(self.i) == Some(&close)
        };
        if empty {
            self.i += 1;
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok(items);
                }
                _ => return Err(format!("expected `,` or `{}`", close as char)),
            }
        }
    }

    /// `f` one level of nesting deeper; past [`MAX_DEPTH`] an error (the caller marks
    /// the text corrupt).
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Parsed<T>) -> Parsed<T> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        let value = f(self)?;
        self.depth -= 1;
        Ok(value)
    }

    // <document> ::= <version> <extension>* <fragment-definition>* <graph-definition>
    fn document(&mut self) -> Parsed<Document> {
        if !self.keyword("version") {
            return Err("expected `version`".into());
        }
        let version = self.number().ok_or("expected the version number")?;
        self.expect(b';')?;
        let mut extension = Vec::new();
        while self.keyword("extension") {
            let id = self.identifier()?;
            // tract keeps the raw text after the identifier (and its trailing space) up to `;`.
            self.skip();
            let rest = &self.s[self.i..];
            let end = rest.find(';').ok_or("extension without `;`")?;
            extension.push((id, rest[..end].to_owned()));
            self.i += end + 1;
        }
        let mut fragments = Vec::new();
        while self.keyword("fragment") {
            fragments.push(self.fragment()?);
        }
        if !self.keyword("graph") {
            return Err("expected `graph`".into());
        }
        let id = self.identifier()?;
        self.expect(b'(')?;
        let parameters = self.list(b')', true, Self::identifier)?;
        self.expect_arrow()?;
        self.expect(b'(')?;
        let results = self.list(b')', true, Self::identifier)?;
        let body = self.body()?;
        self.skip();
        if self.i != self.b.len() {
            return Err("text after the graph".into());
        }
        Ok(Document {
            version,
            extension,
            fragments,
            graph_def: GraphDef {
                id,
                parameters,
                results,
                body,
            },
        })
    }

    // "fragment" <identifier> "(" <parameter-list> ")" "->" "(" <result-list> ")" (<body> | ";")
    fn fragment(&mut self) -> Parsed<FragmentDef> {
        let id = self.identifier()?;
        self.expect(b'(')?;
        let parameters = self.list(b')', true, |p| {
            let (id, spec) = p.typed_identifier()?;
            if p.peek() == Some(b'=') {
                return Err("parameter default (not in the subset)".into());
            }
            Ok(Parameter {
                id,
                spec,
                lit: None,
                doc: None,
            })
        })?;
        self.expect_arrow()?;
        self.expect(b'(')?;
        let results = self.list(b')', true, |p| {
            let (id, spec) = p.typed_identifier()?;
            Ok(Result_ { id, spec })
        })?;
        let body = match self.peek() {
            Some(b'{') => Some(self.body()?),
            Some(b';') => {
                self.i += 1;
                None
            }
            _ => return Err("expected a fragment body or `;`".into()),
        };
        Ok(FragmentDef {
            decl: FragmentDecl {
                id,
                generic_decl: None,
                parameters,
                results,
            },
            body,
        })
    }

    /// `<identifier> ":" <type-spec>`, a fragment's parameter or result.
    fn typed_identifier(&mut self) -> Parsed<(Identifier, TypeSpec)> {
        let id = self.identifier()?;
        self.expect(b':')?;
        Ok((id, self.type_spec()?))
    }

    fn type_name(&mut self) -> Parsed<TypeName> {
        if self.peek() == Some(b'?') {
            self.i += 1;
            return Ok(TypeName::Any);
        }
        match self.word() {
            Some("integer") => Ok(TypeName::Integer),
            Some("scalar") => Ok(TypeName::Scalar),
            Some("logical") => Ok(TypeName::Logical),
            Some("string") => Ok(TypeName::String),
            _ => Err("expected a type name".into()),
        }
    }

    // <type-spec> ::= (<type-name> | "tensor" "<" <type-name> ">" | "(" <type-spec>,* ")") ["[" "]"]
    fn type_spec(&mut self) -> Parsed<TypeSpec> {
        self.nested(Self::type_spec_inner)
    }

    fn type_spec_inner(&mut self) -> Parsed<TypeSpec> {
        let single = if self.peek() == Some(b'(') {
            self.i += 1;
            TypeSpec::Tuple(self.list(b')', true, Self::type_spec)?)
        } else if self.keyword("tensor") {
            self.expect(b'<')?;
            let t = self.type_name()?;
            self.expect(b'>')?;
            TypeSpec::Tensor(t)
        } else {
            TypeSpec::Single(self.type_name()?)
        };
        if self.peek() == Some(b'[') {
            self.i += 1;
            self.expect(b']')?;
            Ok(TypeSpec::Array(Box::new(single)))
        } else {
            Ok(single)
        }
    }

    // <body> ::= "{" <assignment>* "}" ; <assignment> ::= <identifier> "=" <rvalue> ";"
    fn body(&mut self) -> Parsed<Vec<Assignment>> {
        self.expect(b'{')?;
        let mut body = Vec::new();
        while self.peek() != Some(b'}') {
            let left = LValue::Identifier(self.identifier()?);
            self.expect(b'=')?;
            let right = self.rvalue()?;
            self.expect(b';')?;
            body.push(Assignment { left, right });
        }
        self.i += 1;
        Ok(body)
    }

    /// tract's numeric literal: `-?(digits|inf)(.digits*)?([eE][+-]?digits)?`.
    fn number(&mut self) -> Option<String> {
        self.skip();
        let start = self.i;
        let b = self.b;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        if b.get(i).is_some_and(u8::is_ascii_digit) {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        } else if b[i..].starts_with(b"inf") {
            i += 3;
        } else {
            return None;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if b.get(j).is_some_and(u8::is_ascii_digit) {
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
                i = j;
            }
        }
        self.i = i;
        Some(self.s[start..i].to_owned())
    }

    /// A quoted string; `\` takes the next character as is (tract's rule).
    fn string(&mut self) -> Parsed<String> {
        let quote = self.b[self.i] as char;
        self.i += 1;
        let mut out = String::new();
        let mut chars = self.s[self.i..].char_indices();
        loop {
            let Some((at, c)) = chars.next() else {
                return Err("unterminated string".into());
            };
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => out.push(escaped),
                    None => return Err("unterminated string".into()),
                },
                c if c == quote => {
                    self.i += at + 1;
                    return Ok(out);
                }
                '"' | '\'' => return Err("the other quote inside a string".into()),
                c => out.push(c),
            }
        }
    }

    /// An invocation, literal, identifier, array or tuple. What tract would read as an
    /// operator, subscript, `if`/`else` or comprehension is refused by the check at the end.
    fn rvalue(&mut self) -> Parsed<RValue> {
        self.nested(Self::rvalue_inner)
    }

    fn rvalue_inner(&mut self) -> Parsed<RValue> {
        let value = match self.peek() {
            Some(b'"' | b'\'') => RValue::Literal(Literal::String(self.string()?)),
            Some(b'(') => {
                self.i += 1;
                let mut items = self.list(b')', false, Self::rvalue)?;
                if items.len() == 1 {
                    items.remove(0)
                } else {
                    RValue::Tuple(items)
                }
            }
            Some(b'[') => {
                self.i += 1;
                let save = self.i;
                if self.word().is_some_and(|w| w.starts_with("for")) {
                    return Err("comprehension (not in the subset)".into());
                }
                self.i = save;
                RValue::Array(self.list(b']', false, Self::rvalue)?)
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                RValue::Literal(Literal::Numeric(self.number().ok_or("unary operator")?))
            }
            Some(c) if ident_start(c) => {
                let id = self.identifier()?;
                match self.peek() {
                    Some(b'(') => {
                        self.i += 1;
                        RValue::Invocation(self.invocation(id, None)?)
                    }
                    Some(b'<') => {
                        self.i += 1;
                        let t = self.type_name()?;
                        self.expect(b'>')?;
                        self.expect(b'(')?;
                        RValue::Invocation(self.invocation(id, Some(t))?)
                    }
                    _ => match id.0.as_str() {
                        "true" => RValue::Literal(Literal::Logical(true)),
                        "false" => RValue::Literal(Literal::Logical(false)),
                        "inf" => RValue::Literal(Literal::Numeric("inf".into())),
                        // tract reads these prefixes as literals, then fails on the rest.
                        w if w.starts_with("inf")
                            || w.starts_with("true")
                            || w.starts_with("false") =>
                        {
                            return Err(format!("identifier {w:?}"))
                        }
                        _ => RValue::Identifier(id),
                    },
                }
            }
            _ => return Err("expected a value".into()),
        };
        match self.peek() {
            Some(b',' | b')' | b']' | b';') => Ok(value),
            _ => Err("operator, subscript or condition (not in the subset)".into()),
        }
    }

    /// A positional argument, or `name = value`.
    fn argument(&mut self) -> Parsed<Argument> {
        let save = self.i;
        let mut named = None;
        if let Some(w) = self.word() {
            self.skip();
            if self.b.get(self.i) == Some(&b'=') && self.b.get(self.i + 1) != Some(&b'=') {
                if w == "i" {
                    return Err("escaped identifier".into());
                }
                self.i += 1;
                named = Some(Identifier(w.to_owned()));
            } else {
                self.i = save;
            }
        }
        Ok(Argument {
            id: named,
            rvalue: self.rvalue()?,
        })
    }

    /// Arguments after `id(`, through `)`.
    fn invocation(&mut self, id: Identifier, generic: Option<TypeName>) -> Parsed<Invocation> {
        let arguments = self.list(b')', true, Self::argument)?;
        Ok(Invocation {
            id,
            generic_type_name: generic,
            arguments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::prelude::Framework;

    fn tract(text: &str) -> Option<Document> {
        tract_nnef::ast::parse::parse_document(text).ok()
    }

    const SMALL: &str = r#"version 1.0;

extension tract_registry tract_core;
extension tract_symbol S ;

fragment tract_core_properties(
) -> (properties: (string, tensor<scalar>)[])
{
  properties = [("tract_nnef_ser_version", "0.23.9"), ("tract_nnef_format_version", "beta1")];
}

# a comment
graph network(n0_images) -> (output0, o2) {
  n0_images = external(shape = [1, 3, 320, 320]);
  w = variable<scalar>(label = "w.x", shape = [16, 3, 3, 3]);
  c = conv(n0_images, w, 0.0, dilation = [1, 1], stride = [2, 2], border = "constant", groups = 1, padding = [(1, 1), (1, 1)]);
  k = [[[-8.578125], [1e-5], [2.5E+3]], [[-inf], [inf], [7.]]];
  t = matmul(c, k, transposeA = false, transposeB = true); # trailing
  e = tract_core_einsum([], expr = 'a\'b\\c', acc = "f32");
  output0 = ((t));
  o2 = ();
}
"#;

    #[test]
    fn the_subset_reads_as_tract_reads_it() {
        let ours = parse_document(SMALL).expect("subset");
        assert_eq!(Some(ours), tract(SMALL));
    }

    #[test]
    fn the_shipped_models_graph_reads_as_tract_reads_it() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default/model.onnx");
        let dir = tempfile::tempdir().expect("tempdir");
        let model = dir.path().join("model.onnx");
        std::fs::copy(&shipped, &model).expect("the shipped model");
        let options = crate::DetectorOptions {
            cache: crate::ModelCache::NextToModel,
            ..crate::DetectorOptions::default()
        };
        crate::Detector::load(&model, options).expect("load writes the cache");
        let bytes = std::fs::read(crate::cache_path_for(&model)).expect("cache written");
        let (_, tar) = crate::cache::split(&bytes).expect("header");
        let mut archive = tar::Archive::new(tar);
        let mut text = String::new();
        for entry in archive.entries().expect("tar") {
            let mut entry = entry.expect("entry");
            if entry.path().expect("path").as_ref() == Path::new("graph.nnef") {
                entry.read_to_string(&mut text).expect("text");
            }
        }
        assert!(text.len() > 50_000, "graph.nnef of the shipped model");
        let ours = parse_document(&text).expect("tract's writer stays in the subset");
        assert_eq!(Some(ours), tract(&text));
        let ours = proto_model(tar).expect("tar in the subset");
        let theirs = crate::cache::nnef()
            .proto_model_for_read(&mut &tar[..])
            .expect("tract reads its tar");
        assert_eq!(ours.doc, theirs.doc);
        assert!(ours.tensors.len() > 100, "{} tensors", ours.tensors.len());
        assert_eq!(ours.tensors, theirs.tensors);
        assert_eq!(ours.quantization, theirs.quantization);
        assert!(theirs.resources.is_empty());
    }

    /// Whatever mutation of a valid text this parser still accepts, tract reads the same.
    #[test]
    fn mutated_texts_are_refused_or_read_as_tract_reads_them() {
        let pieces: &[&str] = &[
            " ", ",", ";", "(", ")", "[", "]", "=", "==", "-", "+", "*", "<", ">", "'", "\"", "\\",
            "#", "\n", "i", "if", "in", "for", "inf", "true", "false", "1", ".", "e", "x",
            "<scalar>", "->", ":", "{", "}", "[]", "a[0]", "tensor", "?", "[ ]", "( )", "[#\n]",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..3000 {
            let mut text = SMALL.to_owned();
            for _ in 0..1 + next(3) {
                let at = (0..)
                    .map(|_| next(text.len() + 1))
                    .find(|&at| text.is_char_boundary(at))
                    .unwrap_or(0);
                match next(3) {
                    0 => text.insert_str(at, pieces[next(pieces.len())]),
                    1 => {
                        let end = (at + 1 + next(4)).min(text.len());
                        if text.is_char_boundary(end) {
                            text.replace_range(at..end, "");
                        }
                    }
                    _ => {
                        let end = (at + 1).min(text.len());
                        if text.is_char_boundary(end) {
                            text.replace_range(at..end, pieces[next(pieces.len())]);
                        }
                    }
                }
            }
            match parse_document(&text) {
                Ok(ours) => {
                    accepted += 1;
                    assert_eq!(Some(ours), tract(&text), "text:\n{text}");
                }
                Err(_) => refused += 1,
            }
        }
        // Both sides exercised: many mutations (in strings, comments, spacing) stay valid.
        assert!(
            accepted > 300 && refused > 300,
            "accepted {accepted}, refused {refused}"
        );
    }

    #[test]
    fn constructs_outside_the_subset_are_refused_not_guessed() {
        for body in [
            "a = b + c;",
            "a = b[0];",
            "a = -b;",
            "a = [for x in y yield x];",
            "a = b if c else d;",
            "a = i\"x\";",
            "a = info;",
            "a = truex;",
            "a, b = c;",
            // tract refuses space inside an empty value list (found by review).
            "a = [ ];",
            "a = ( );",
            "a = [#c\n];",
            "a = f([ ]);",
        ] {
            let text = format!("version 1.0;\ngraph g(b) -> (a) {{\n  {body}\n}}\n");
            assert!(parse_document(&text).is_err(), "{body}");
        }
        assert!(proto_model(&[0x1f, 0x8b, 0, 0]).is_err());
        // Nesting no writer emits is corrupt (no fallback to tract's recursive parser),
        // and neither parser is handed it; tract's own depth stays readable.
        let deep = |n: usize| {
            format!(
                "version 1.0;\ngraph g() -> (a) {{\n  a = {}1{};\n}}\n",
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        let refused = parse_document(&deep(100_000)).expect_err("too deep");
        assert!(refused.corrupt, "{refused}");
        let six = parse_document(&deep(6)).expect("rank-6 literal");
        assert_eq!(Some(six), tract(&deep(6)));
        let deep_type = format!(
            "version 1.0;\nfragment f(a: {}scalar{}) -> ();\ngraph g() -> () {{}}\n",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert!(
            parse_document(&deep_type)
                .expect_err("type too deep")
                .corrupt
        );
        assert!(
            !parse_document("version 1.0; graph g() -> (a) { a = b + c; }")
                .expect_err("operator")
                .corrupt
        );
        assert!(proto_model(b"not a tar").is_err());
    }

    /// Cases a review found where this parser accepted what tract refuses.
    #[test]
    fn what_tract_refuses_is_refused() {
        for body in ["a = [ ];", "a = ( );", "a = [#c\n];", "a = f([ ]);"] {
            let text = format!("version 1.0;\ngraph g(b) -> (a) {{\n  {body}\n}}\n");
            assert_eq!(tract(&text), None, "{body}");
            assert!(parse_document(&text).is_err(), "{body}");
        }
        // A tensor file named after the graph collides with it in tract's resource map.
        let text = "version 1.0;\ngraph g() -> (a) {\n  a = external(shape = [1]);\n}\n";
        let tensor = tract_onnx::prelude::Tensor::from(1f32);
        let mut dat = Vec::new();
        tract_nnef::tensors::write_tensor(&mut dat, &tensor).expect("tensor");
        let mut tar = tar::Builder::new(Vec::new());
        for (name, bytes) in [
            ("graph.nnef", text.as_bytes()),
            ("graph.nnef.dat", &dat[..]),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes).expect("entry");
        }
        let tar = tar.into_inner().expect("tar");
        assert!(crate::cache::nnef()
            .proto_model_for_read(&mut &tar[..])
            .is_err());
        assert!(proto_model(&tar).is_err());
    }
}
