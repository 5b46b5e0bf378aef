//! Parser for the libconfig-style `.jcfg` syntax Janus uses.
//!
//! Written as a small hand-rolled recursive-descent parser so that every error carries
//! file, line and column, and so that no input can make it panic (no indexing, bounded
//! recursion). One deliberate extension over libconfig: an unquoted word such as
//! `certfile = /etc/ssl/certs/x.pem` is read as a string, because Debian ships exactly
//! that in `janus.transport.mqtt.jcfg`.

use crate::error::ConfigError;
use crate::value::{parse_int_text, Group, Position, Value};

/// Deeper nesting than this is certainly not a Janus config; refusing it keeps the
/// recursion (and therefore the stack) bounded on hostile input.
const MAX_DEPTH: usize = 64;

/// Parses `text`; `file` is only used in error messages.
pub(crate) fn parse(text: &str, file: &str) -> Result<Group, ConfigError> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
        column: 1,
        file,
        depth: 0,
    };
    if p.peek() == Some('\u{feff}') {
        p.bump();
    }
    p.settings(None)
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    column: usize,
    file: &'a str,
    depth: usize,
}

/// How a group body ends: at end of file (the root) or at the `}` opened at a position.
type Opener = Option<Position>;

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos.saturating_add(offset)).copied()
    }

    fn here(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn error(&self, at: Position, message: impl Into<String>) -> ConfigError {
        ConfigError::Syntax {
            file: self.file.to_string(),
            line: at.line,
            column: at.column,
            message: message.into(),
        }
    }

    /// Skips whitespace and all three comment styles.
    fn skip_blank(&mut self) -> Result<(), ConfigError> {
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('#'), _) | (Some('/'), Some('/')) => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.here();
                    self.bump();
                    self.bump();
                    loop {
                        match (self.peek(), self.peek_at(1)) {
                            (Some('*'), Some('/')) => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            (Some(_), _) => {
                                self.bump();
                            }
                            (None, _) => {
                                return Err(self.error(start, "unterminated /* comment"));
                            }
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn enter(&mut self, at: Position) -> Result<(), ConfigError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(at, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// A sequence of settings, up to end of file (root) or the matching `}`.
    fn settings(&mut self, opener: Opener) -> Result<Group, ConfigError> {
        let mut group = Group::new();
        loop {
            self.skip_blank()?;
            let at = self.here();
            match self.peek() {
                None => {
                    return match opener {
                        None => Ok(group),
                        Some(open) => Err(self.error(
                            at,
                            format!(
                                "unexpected end of file: missing '}}' for the group opened at {}:{}",
                                open.line, open.column
                            ),
                        )),
                    };
                }
                Some('}') if opener.is_some() => {
                    self.bump();
                    return Ok(group);
                }
                Some('@') => {
                    return Err(self.error(at, "@include directives are not supported"));
                }
                Some(c) if is_name_start(c) => self.setting(&mut group)?,
                Some(c) => {
                    return Err(self.error(
                        at,
                        format!("expected a setting name, found {}", describe(c)),
                    ));
                }
            }
        }
    }

    /// `name = value` or `name: value`, with an optional `;` or `,` after it.
    fn setting(&mut self, group: &mut Group) -> Result<(), ConfigError> {
        let at = self.here();
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if !is_name_char(c) {
                break;
            }
            name.push(c);
            self.bump();
        }
        self.skip_blank()?;
        let sep = self.here();
        match self.peek() {
            Some('=') | Some(':') => {
                self.bump();
            }
            Some(c) => {
                return Err(self.error(
                    sep,
                    format!(
                        "expected '=' or ':' after setting name '{name}', found {}",
                        describe(c)
                    ),
                ));
            }
            None => {
                return Err(self.error(
                    sep,
                    format!("expected '=' or ':' after setting name '{name}', found end of file"),
                ));
            }
        }
        self.skip_blank()?;
        let value = self.value(Some(sep))?;
        if group.contains(&name) {
            return Err(self.error(at, format!("duplicate setting '{name}'")));
        }
        group.insert_at(name, value, Some(at));
        self.skip_blank()?;
        if matches!(self.peek(), Some(';') | Some(',')) {
            self.bump();
        }
        Ok(())
    }

    /// Any value. `sep` is the position of the `=` when this value is a setting's, so that
    /// a missing value is reported there instead of swallowing the next line's name.
    fn value(&mut self, sep: Option<Position>) -> Result<Value, ConfigError> {
        let at = self.here();
        match self.peek() {
            None => Err(self.error(at, "expected a value, found end of file")),
            Some('"') => self.string().map(Value::Str),
            Some('[') => {
                self.enter(at)?;
                self.bump();
                let items = self.sequence(']', at, "array")?;
                self.leave();
                Ok(Value::Array(items))
            }
            Some('(') => {
                self.enter(at)?;
                self.bump();
                let items = self.sequence(')', at, "list")?;
                self.leave();
                Ok(Value::List(items))
            }
            Some('{') => {
                self.enter(at)?;
                self.bump();
                let group = self.settings(Some(at))?;
                self.leave();
                Ok(Value::Group(group))
            }
            Some(c) if is_token_char(c) => self.scalar(at, sep),
            Some(c) => Err(self.error(at, format!("expected a value, found {}", describe(c)))),
        }
    }

    /// Comma-separated values up to `close`; a trailing comma is tolerated.
    fn sequence(
        &mut self,
        close: char,
        open: Position,
        what: &str,
    ) -> Result<Vec<Value>, ConfigError> {
        let mut items = Vec::new();
        loop {
            self.skip_blank()?;
            if self.peek() == Some(close) {
                self.bump();
                return Ok(items);
            }
            if self.peek().is_none() {
                return Err(self.unterminated(close, open, what));
            }
            let at = self.here();
            let item = self.value(None)?;
            if close == ']' && !item.is_scalar() {
                return Err(self.error(
                    at,
                    format!(
                        "arrays [ ] can only hold strings, numbers and booleans, found {}; nest values in a list ( ) instead",
                        item.kind_name()
                    ),
                ));
            }
            items.push(item);
            self.skip_blank()?;
            let after = self.here();
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                None => return Err(self.unterminated(close, open, what)),
                Some(c) => {
                    return Err(self.error(
                        after,
                        format!("expected ',' or '{close}' in {what}, found {}", describe(c)),
                    ));
                }
            }
        }
    }

    fn unterminated(&self, close: char, open: Position, what: &str) -> ConfigError {
        self.error(
            self.here(),
            format!(
                "unexpected end of file: missing '{close}' for the {what} opened at {}:{}",
                open.line, open.column
            ),
        )
    }

    /// One or more adjacent string literals, concatenated.
    fn string(&mut self) -> Result<String, ConfigError> {
        let mut out = self.string_literal()?;
        loop {
            self.skip_blank()?;
            if self.peek() != Some('"') {
                return Ok(out);
            }
            out.push_str(&self.string_literal()?);
        }
    }

    fn string_literal(&mut self) -> Result<String, ConfigError> {
        let start = self.here();
        self.bump(); // opening quote
        let mut bytes: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4];
        loop {
            let at = self.here();
            match self.bump() {
                None => return Err(self.error(start, "unterminated string")),
                Some('"') => break,
                Some('\\') => {
                    let c = match self.bump() {
                        None => return Err(self.error(start, "unterminated string")),
                        Some(c) => c,
                    };
                    match c {
                        '"' => bytes.push(b'"'),
                        '\\' => bytes.push(b'\\'),
                        'n' => bytes.push(b'\n'),
                        't' => bytes.push(b'\t'),
                        'r' => bytes.push(b'\r'),
                        'f' => bytes.push(0x0c),
                        'x' => {
                            let hi = self.bump().and_then(|c| c.to_digit(16));
                            let lo = self.bump().and_then(|c| c.to_digit(16));
                            match (hi, lo) {
                                // Two hex digits never exceed 255.
                                (Some(h), Some(l)) => bytes.push((h * 16 + l) as u8),
                                _ => {
                                    return Err(self
                                        .error(at, "invalid \\x escape: expected two hex digits"))
                                }
                            }
                        }
                        other => {
                            return Err(self.error(
                                at,
                                format!("invalid escape sequence '\\{}'", other.escape_debug()),
                            ))
                        }
                    }
                }
                Some(c) => bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
            }
        }
        String::from_utf8(bytes)
            .map_err(|_| self.error(start, "string contains invalid UTF-8 (from \\x escapes)"))
    }

    /// A number, a boolean, or (extension) a bare unquoted word.
    fn scalar(&mut self, at: Position, sep: Option<Position>) -> Result<Value, ConfigError> {
        let mut token = String::new();
        while let Some(c) = self.peek() {
            if !is_token_char(c) || (c == '/' && matches!(self.peek_at(1), Some('/' | '*'))) {
                break;
            }
            token.push(c);
            self.bump();
        }
        let first = token.chars().next();
        let second = token.chars().nth(1);
        // A leading sign always means a number: `-abc` is a typo, not a word.
        let numeric = match (first, second) {
            (Some(c), _) if c.is_ascii_digit() => true,
            (Some('+' | '-'), _) => true,
            (Some('.'), Some(d)) if d.is_ascii_digit() => true,
            _ => false,
        };
        if numeric {
            return self.number(&token, at);
        }
        if token.eq_ignore_ascii_case("true") {
            return Ok(Value::Bool(true));
        }
        if token.eq_ignore_ascii_case("false") {
            return Ok(Value::Bool(false));
        }
        if token.is_empty() {
            return Err(self.error(at, "expected a value"));
        }
        if let Some(sep) = sep {
            if sep.line != at.line {
                return Err(self.error(sep, "expected a value after '=' on the same line"));
            }
        }
        if self.peek() == Some('/') {
            return Err(self.error(
                at,
                format!("unquoted value '{token}' runs into a comment marker; put it in quotes"),
            ));
        }
        Ok(Value::Str(token))
    }

    fn number(&self, token: &str, at: Position) -> Result<Value, ConfigError> {
        let body = token.strip_prefix(['+', '-']).unwrap_or(token);
        let is_prefixed = body.len() > 1
            && body.starts_with('0')
            && matches!(body.chars().nth(1), Some('x' | 'X' | 'b' | 'B' | 'o' | 'O'));
        let looks_float = !is_prefixed && body.contains(['.', 'e', 'E']);
        if looks_float {
            let valid_chars = body
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
            return match token.parse::<f64>() {
                Ok(f) if valid_chars && f.is_finite() => Ok(Value::Float(f)),
                Ok(_) if valid_chars => {
                    Err(self.error(at, format!("number '{token}' is out of range")))
                }
                _ => Err(self.error(at, format!("invalid number '{token}'"))),
            };
        }
        match parse_int_text(token) {
            Some(i) => Ok(Value::Int(i)),
            None => {
                let digits_only = body
                    .trim_end_matches(['L', 'l'])
                    .chars()
                    .all(|c| c.is_ascii_digit());
                if digits_only && !body.is_empty() {
                    Err(self.error(at, format!("integer '{token}' is out of range")))
                } else {
                    Err(self.error(at, format!("invalid number '{token}'")))
                }
            }
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '*'
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c == '-'
}

/// Characters that may appear in an unquoted scalar: anything but blanks, quotes,
/// separators, brackets and comment starts.
fn is_token_char(c: char) -> bool {
    !c.is_whitespace()
        && !c.is_control()
        && !matches!(
            c,
            '"' | ';' | ',' | '#' | '=' | '[' | ']' | '(' | ')' | '{' | '}'
        )
}

fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("'{}'", c.escape_debug())
    } else {
        format!("'{c}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Value {
        let g = parse(&format!("v = {text}"), "t.jcfg").unwrap();
        g.get("v").unwrap().clone()
    }

    fn err(text: &str) -> String {
        parse(text, "t.jcfg").unwrap_err().to_string()
    }

    #[test]
    fn scalars() {
        assert_eq!(one("\"hi\""), Value::Str("hi".into()));
        assert_eq!(one("42"), Value::Int(42));
        assert_eq!(one("-42"), Value::Int(-42));
        assert_eq!(one("0x10"), Value::Int(16));
        assert_eq!(one("0XffL"), Value::Int(255));
        assert_eq!(one("7LL"), Value::Int(7));
        assert_eq!(one("1.5"), Value::Float(1.5));
        assert_eq!(one("-2.5e3"), Value::Float(-2500.0));
        assert_eq!(one(".5"), Value::Float(0.5));
        assert_eq!(one("1e3"), Value::Float(1000.0));
        assert_eq!(one("true"), Value::Bool(true));
        assert_eq!(one("FALSE"), Value::Bool(false));
        assert_eq!(one("True"), Value::Bool(true));
        assert_eq!(one("/etc/x.pem"), Value::Str("/etc/x.pem".into()));
    }

    #[test]
    fn strings() {
        assert_eq!(
            one(r#""a\"b\\c\n\t\r\f\x41""#),
            Value::Str("a\"b\\c\n\t\r\u{c}A".into())
        );
        assert_eq!(one("\"a\" \"b\"\n  \"c\""), Value::Str("abc".into()));
        assert_eq!(one("\"a\" /* x */ \"b\""), Value::Str("ab".into()));
        assert_eq!(one("\"\\xc3\\xa9\""), Value::Str("é".into()));
        assert_eq!(
            one("\"héllo # not a comment\""),
            Value::Str("héllo # not a comment".into())
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            err("a 1"),
            "t.jcfg:1:3: expected '=' or ':' after setting name 'a', found '1'"
        );
        assert_eq!(err("a = \"x"), "t.jcfg:1:5: unterminated string");
        assert_eq!(
            err("a = \"\\q\""),
            "t.jcfg:1:6: invalid escape sequence '\\q'"
        );
        assert_eq!(
            err("a = \"\\xZZ\""),
            "t.jcfg:1:6: invalid \\x escape: expected two hex digits"
        );
        assert_eq!(
            err("a = \"\\xff\""),
            "t.jcfg:1:5: string contains invalid UTF-8 (from \\x escapes)"
        );
        assert_eq!(err("/* x"), "t.jcfg:1:1: unterminated /* comment");
        assert_eq!(
            err("a = 99999999999999999999"),
            "t.jcfg:1:5: integer '99999999999999999999' is out of range"
        );
        assert_eq!(
            err("a = 1e999"),
            "t.jcfg:1:5: number '1e999' is out of range"
        );
        assert_eq!(err("a = 12ab"), "t.jcfg:1:5: invalid number '12ab'");
        assert_eq!(err("a = 1 a = 2"), "t.jcfg:1:7: duplicate setting 'a'");
        assert_eq!(
            err("a =\nb = 2"),
            "t.jcfg:1:3: expected a value after '=' on the same line"
        );
        assert_eq!(
            err("a = x//c"),
            "t.jcfg:1:5: unquoted value 'x' runs into a comment marker; put it in quotes"
        );
        assert_eq!(err("}"), "t.jcfg:1:1: expected a setting name, found '}'");
        assert_eq!(
            err("@include \"x\""),
            "t.jcfg:1:1: @include directives are not supported"
        );
        assert_eq!(err("a = [1, {}]"), "t.jcfg:1:9: arrays [ ] can only hold strings, numbers and booleans, found a group; nest values in a list ( ) instead");
        assert_eq!(
            err("a = [1 2]"),
            "t.jcfg:1:8: expected ',' or ']' in array, found '2'"
        );
        assert_eq!(
            err("a = (1,"),
            "t.jcfg:1:8: unexpected end of file: missing ')' for the list opened at 1:5"
        );
        assert_eq!(
            err("g: {\n a = 1\n"),
            "t.jcfg:3:1: unexpected end of file: missing '}' for the group opened at 1:4"
        );
        assert_eq!(
            err("a ="),
            "t.jcfg:1:4: expected a value, found end of file"
        );
        assert_eq!(err("a = ;"), "t.jcfg:1:5: expected a value, found ';'");
        assert_eq!(err("a = -"), "t.jcfg:1:5: invalid number '-'");
        assert_eq!(err("a = -abc"), "t.jcfg:1:5: invalid number '-abc'");
        assert_eq!(err("a = --5"), "t.jcfg:1:5: invalid number '--5'");
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!("a = {}", "[".repeat(100_000));
        assert!(err(&deep).contains("nesting deeper than"));
        let deep = format!("a = {}", "(".repeat(100_000));
        assert!(err(&deep).contains("nesting deeper than"));
        let deep = format!("a = {}", "{ b = ".repeat(100_000));
        assert!(err(&deep).contains("nesting deeper than"));
    }

    #[test]
    fn bom_and_crlf() {
        let g = parse("\u{feff}g: {\r\n  a = 1;\r\n}\r\n", "t").unwrap();
        assert_eq!(g.group("g").unwrap().get_int("a"), Some(1));
    }
}
