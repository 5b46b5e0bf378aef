//! [`Jcfg`]: one parsed configuration file, with Janus's lookup semantics.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::value::{format_float, Group, Value};
use crate::{ini, parser};

/// One parsed configuration file (`.jcfg`, or a legacy INI `.cfg`).
///
/// Top-level groups are Janus "categories" (`general`, `room-1234`, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Jcfg {
    /// Top-level settings, in file order.
    pub root: Group,
}

impl Jcfg {
    /// Parses `.jcfg` text; `file_name` only labels errors.
    pub fn parse(text: &str, file_name: &str) -> Result<Jcfg, ConfigError> {
        parser::parse(text, file_name).map(|root| Jcfg { root })
    }

    /// Parses legacy INI text (`[section]`, `key = value`) into the same shape.
    pub fn parse_ini(text: &str, file_name: &str) -> Result<Jcfg, ConfigError> {
        ini::parse(text, file_name).map(|root| Jcfg { root })
    }

    /// Reads and parses a file; a `.cfg` extension selects the legacy INI syntax.
    /// Errors name the path.
    pub fn load(path: &Path) -> Result<Jcfg, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path.display().to_string();
        if is_ini_path(path) {
            Jcfg::parse_ini(&text, &name)
        } else {
            Jcfg::parse(&text, &name)
        }
    }

    /// Loads `<folder>/<package>.jcfg`, or else the legacy `<folder>/<package>.cfg`, the
    /// way Janus looks a component's configuration up. `Ok(None)` when neither exists.
    pub fn load_component(
        folder: &Path,
        package: &str,
    ) -> Result<Option<(Jcfg, PathBuf)>, ConfigError> {
        for ext in ["jcfg", "cfg"] {
            let path = folder.join(format!("{package}.{ext}"));
            if path.is_file() {
                return Jcfg::load(&path).map(|cfg| Some((cfg, path)));
            }
        }
        Ok(None)
    }

    /// The top-level group `name`. The empty name means the root, as Janus's NULL category.
    pub fn category(&self, name: &str) -> Option<&Group> {
        if name.is_empty() {
            Some(&self.root)
        } else {
            self.root.group(name)
        }
    }

    /// Mutable category, for plugins that edit and rewrite their file.
    pub fn category_mut(&mut self, name: &str) -> Option<&mut Group> {
        if name.is_empty() {
            Some(&mut self.root)
        } else {
            self.root.group_mut(name)
        }
    }

    /// Names of all top-level groups, in file order (e.g. Streaming mountpoints).
    pub fn categories(&self) -> impl Iterator<Item = (&str, &Group)> {
        self.root
            .entries()
            .iter()
            .filter_map(|(k, v)| v.as_group().map(|g| (k.as_str(), g)))
    }

    /// A scalar as text: Janus turns ints and bools into strings.
    pub fn get_str(&self, cat: &str, key: &str) -> Option<String> {
        self.category(cat)?.get_str(key)
    }

    /// A scalar read with Janus's rule: true iff `yes`, `true` or `1` (case-insensitive).
    pub fn get_bool(&self, cat: &str, key: &str) -> Option<bool> {
        self.category(cat)?.get_bool(key)
    }

    /// An integer, or a string holding one (Janus's samples write `port = "12201"`).
    pub fn get_int(&self, cat: &str, key: &str) -> Option<i64> {
        self.category(cat)?.get_int(key)
    }

    /// Serialises back to `.jcfg` text that [`Jcfg::parse`] reads to an equal value.
    /// Comments are not preserved (they are not kept when parsing).
    pub fn to_text(&self) -> String {
        self.to_string()
    }
}

fn is_ini_path(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("cfg")
}

impl fmt::Display for Jcfg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for (key, value) in self.root.entries() {
            match value {
                Value::Group(g) => {
                    let _ = writeln!(out, "{key}: {{");
                    write_settings(&mut out, g, 1);
                    out.push_str("}\n\n");
                }
                other => {
                    let _ = write!(out, "{key} = ");
                    write_value(&mut out, other, 0);
                    out.push('\n');
                }
            }
        }
        f.write_str(out.trim_end())?;
        f.write_str("\n")
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push('\t');
    }
}

fn write_settings(out: &mut String, group: &Group, level: usize) {
    for (key, value) in group.entries() {
        indent(out, level);
        let _ = write!(out, "{key} = ");
        write_value(out, value, level);
        out.push('\n');
    }
}

fn write_value(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Str(s) => write_string(out, s),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(x) => out.push_str(&format_float(*x)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i == 0 { " " } else { ", " });
                write_value(out, item, level);
            }
            out.push_str(if items.is_empty() { "]" } else { " ]" });
        }
        Value::List(items) => {
            out.push_str("(\n");
            for (i, item) in items.iter().enumerate() {
                indent(out, level + 1);
                write_value(out, item, level + 1);
                if i + 1 < items.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            indent(out, level);
            out.push(')');
        }
        Value::Group(g) => {
            out.push_str("{\n");
            write_settings(out, g, level + 1);
            indent(out, level);
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = r#"
            top = 1
            general: { a = "x\"y\n\u0001"; b = 2; c = 1.5; d = true; e = [1, 2]; f = [] }
            s: { media = ( { type = "audio", port = 5002 }, [ "k", "v" ], 3 ); n = { x = (); } }
        "#
        .replace("\\u0001", "\\x01");
        let cfg = Jcfg::parse(&text, "t").unwrap();
        let again = Jcfg::parse(&cfg.to_text(), "t2").unwrap();
        assert_eq!(cfg, again);
        assert_eq!(cfg.get_str("general", "a").as_deref(), Some("x\"y\n\u{1}"));
    }

    #[test]
    fn root_category() {
        let cfg = Jcfg::parse("top = 5\ng: {}", "t").unwrap();
        assert_eq!(cfg.get_int("", "top"), Some(5));
        assert_eq!(cfg.categories().count(), 1);
        assert_eq!(cfg.category("top"), None);
    }
}
