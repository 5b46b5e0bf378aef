//! The legacy INI format (`<package>.cfg`) that Janus still falls back to when a `.jcfg`
//! is missing: `[section]` headers, `key = value` lines, `;` or `#` comments.
//!
//! Every value is text (INI has no types); the typed layer converts as needed, exactly like
//! Janus does. The result has the same shape as a parsed `.jcfg`.

use crate::error::ConfigError;
use crate::value::{Group, Position, Value};

pub(crate) fn parse(text: &str, file: &str) -> Result<Group, ConfigError> {
    let mut root = Group::new();
    let mut section: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let raw = if index == 0 {
            raw.strip_prefix('\u{feff}').unwrap_or(raw)
        } else {
            raw
        };
        let indent = raw.chars().take_while(|c| c.is_whitespace()).count();
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        let at = Position {
            line: line_no,
            column: indent + 1,
        };
        let error = |column: usize, message: String| ConfigError::Syntax {
            file: file.to_string(),
            line: line_no,
            column,
            message,
        };
        if let Some(rest) = line.strip_prefix('[') {
            let rest = strip_comment(rest);
            let Some(name) = rest.trim_end().strip_suffix(']') else {
                return Err(error(
                    at.column,
                    "expected ']' to close the section name".into(),
                ));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(error(at.column, "empty section name".into()));
            }
            if root.group(name).is_none() {
                root.insert_at(name.to_string(), Value::Group(Group::new()), Some(at));
            }
            section = Some(name.to_string());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(error(
                at.column,
                "expected 'key = value' or '[section]'".into(),
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(error(at.column, "missing setting name before '='".into()));
        }
        let value = unquote(strip_comment(value.trim()));
        let target = match &section {
            Some(name) => match root.group_mut(name) {
                Some(g) => g,
                None => &mut root,
            },
            None => &mut root,
        };
        target.insert_at(key.to_string(), Value::Str(value), Some(at));
    }
    Ok(root)
}

/// Drops a trailing comment. A `;` or `#` only starts a comment at the start of the text or
/// after whitespace, so values like `a;b` or `stream#1` survive; quoted values are kept whole.
fn strip_comment(value: &str) -> &str {
    if let Some(inner) = value.strip_prefix('"') {
        if let Some(end) = inner.find('"') {
            return value.get(..end + 2).unwrap_or(value);
        }
    }
    let mut prev_blank = true;
    for (i, c) in value.char_indices() {
        if (c == ';' || c == '#') && prev_blank {
            return value.get(..i).unwrap_or(value).trim_end();
        }
        prev_blank = c.is_whitespace();
    }
    value
}

fn unquote(value: &str) -> String {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_comments() {
        let text = "; comment\n# other\ntop = 1\n[general]\nport = 8088 ; trailing\nname = \"My ; Janus\" # c\nurl = a;b\n\n[nat]\nice_ignore_list = vmnet\n[general]\nextra = yes\n";
        let g = parse(text, "janus.cfg").unwrap();
        assert_eq!(g.get_str("top").as_deref(), Some("1"));
        let general = g.group("general").unwrap();
        assert_eq!(general.get_int("port"), Some(8088));
        assert_eq!(general.get_str("name").as_deref(), Some("My ; Janus"));
        assert_eq!(general.get_str("url").as_deref(), Some("a;b"));
        assert_eq!(general.get_bool("extra"), Some(true));
        assert_eq!(
            g.group("nat")
                .unwrap()
                .get_str("ice_ignore_list")
                .as_deref(),
            Some("vmnet")
        );
        assert_eq!(
            general.position("port"),
            Some(Position { line: 5, column: 1 })
        );
    }

    #[test]
    fn errors() {
        let e = parse("[general]\n  nonsense\n", "janus.cfg").unwrap_err();
        assert_eq!(
            e.to_string(),
            "janus.cfg:2:3: expected 'key = value' or '[section]'"
        );
        let e = parse("[general\n", "janus.cfg").unwrap_err();
        assert_eq!(
            e.to_string(),
            "janus.cfg:1:1: expected ']' to close the section name"
        );
        let e = parse("[ ]\n", "x.cfg").unwrap_err();
        assert_eq!(e.to_string(), "x.cfg:1:1: empty section name");
        let e = parse(" = 5\n", "x.cfg").unwrap_err();
        assert_eq!(e.to_string(), "x.cfg:1:2: missing setting name before '='");
    }
}
