//! The parsed tree: [`Value`] and ordered [`Group`]s.

/// Where a setting appeared in its file (1-based, columns count characters).
///
/// Kept next to every entry so that type errors found later, when the typed configuration
/// is built, can still point at the offending line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

/// One configuration value, as written in the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted (or, as an extension, unquoted) string.
    Str(String),
    /// An integer (decimal, hex, binary or octal; `L`/`LL` suffixes accepted).
    Int(i64),
    /// A finite floating point number.
    Float(f64),
    /// `true` / `false` (case-insensitive in the file).
    Bool(bool),
    /// `[ ... ]`: scalars only.
    Array(Vec<Value>),
    /// `( ... )`: any values, e.g. Streaming's `media = ( {...}, {...} )`.
    List(Vec<Value>),
    /// `{ ... }`: named settings.
    Group(Group),
}

/// Janus's boolean rule: a value is true iff it is case-insensitively `yes`, `true` or `1`.
///
/// Everything else (including `on`, `2` or garbage) is false, exactly as Janus reads it.
pub fn janus_is_true(text: &str) -> bool {
    let t = text.trim();
    t.eq_ignore_ascii_case("yes") || t.eq_ignore_ascii_case("true") || t == "1"
}

/// Parses an integer the way the `.jcfg` syntax writes one: optional sign, decimal or
/// `0x`/`0b`/`0o` prefixed digits, optional `L`/`LL` suffix.
///
/// Shared by the parser and by [`Value::as_int`] so that `port = "8088"` and `port = 8088`
/// read identically. Returns `None` for anything else, including overflow.
pub fn parse_int_text(text: &str) -> Option<i64> {
    let t = text.trim();
    let (negative, rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let rest = strip_long_suffix(rest);
    let (radix, digits) = if let Some(d) = rest.strip_prefix("0x").or(rest.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = rest.strip_prefix("0b").or(rest.strip_prefix("0B")) {
        (2, d)
    } else if let Some(d) = rest.strip_prefix("0o").or(rest.strip_prefix("0O")) {
        (8, d)
    } else {
        (10, rest)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        if magnitude == 1u64 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|v| -v)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

fn strip_long_suffix(s: &str) -> &str {
    for suffix in ["LL", "ll", "L", "l"] {
        if let Some(r) = s.strip_suffix(suffix) {
            return r;
        }
    }
    s
}

impl Value {
    /// The value as Janus sees it: every scalar is text (ints in decimal, bools as
    /// `"true"`/`"false"`). Arrays, lists and groups have no text form.
    pub fn as_string(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(format_float(*f)),
            Value::Bool(b) => Some(if *b { "true" } else { "false" }.to_string()),
            Value::Array(_) | Value::List(_) | Value::Group(_) => None,
        }
    }

    /// Borrow the text of a string value (no conversion).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Integer reading: ints, and strings holding an integer (`"12201"`).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Str(s) => parse_int_text(s),
            _ => None,
        }
    }

    /// Float reading: floats, ints, and strings holding a number.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::Str(s) => parse_int_text(s)
                .map(|i| i as f64)
                .or_else(|| s.trim().parse::<f64>().ok().filter(|f| f.is_finite())),
            _ => None,
        }
    }

    /// Janus's boolean rule applied to the text form; `None` for non-scalars.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            other => other.as_string().map(|s| janus_is_true(&s)),
        }
    }

    /// The group, if this is one.
    pub fn as_group(&self) -> Option<&Group> {
        match self {
            Value::Group(g) => Some(g),
            _ => None,
        }
    }

    /// Elements of an array or a list.
    pub fn as_items(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }

    /// True for strings, numbers and booleans.
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Value::Array(_) | Value::List(_) | Value::Group(_))
    }

    /// Human name of the kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::Array(_) => "an array",
            Value::List(_) => "a list",
            Value::Group(_) => "a group",
        }
    }
}

/// Float text that always reads back as a float (`1.0`, not `1`).
pub(crate) fn format_float(f: f64) -> String {
    format!("{f:?}")
}

/// An ordered set of named settings: a category, a nested group, or the file root.
///
/// Order is kept because Janus (and plugins that rewrite their own file) preserve it.
#[derive(Debug, Clone, Default)]
pub struct Group {
    entries: Vec<(String, Value)>,
    positions: Vec<Option<Position>>,
}

impl PartialEq for Group {
    /// Positions are bookkeeping, not content.
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Group {
    /// An empty group.
    pub fn new() -> Group {
        Group::default()
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index(key)
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v)
    }

    /// Mutable access, for components that edit and rewrite their configuration.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let i = self.index(key)?;
        self.entries.get_mut(i).map(|(_, v)| v)
    }

    /// All settings in file order.
    pub fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }

    /// The nested group named `key`, if it is a group.
    pub fn group(&self, key: &str) -> Option<&Group> {
        self.get(key).and_then(Value::as_group)
    }

    /// Mutable nested group.
    pub fn group_mut(&mut self, key: &str) -> Option<&mut Group> {
        match self.get_mut(key) {
            Some(Value::Group(g)) => Some(g),
            _ => None,
        }
    }

    /// Where `key` was written, when it came from a file.
    pub fn position(&self, key: &str) -> Option<Position> {
        self.index(key)
            .and_then(|i| self.positions.get(i).copied())
            .flatten()
    }

    /// Sets `key`, replacing an existing value in place (keeping its order) or appending.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        self.insert_at(key.into(), value, None);
    }

    pub(crate) fn insert_at(&mut self, key: String, value: Value, pos: Option<Position>) {
        match self.index(&key) {
            Some(i) => {
                if let Some(slot) = self.entries.get_mut(i) {
                    slot.1 = value;
                }
                if let Some(p) = self.positions.get_mut(i) {
                    *p = pos;
                }
            }
            None => {
                self.entries.push((key, value));
                self.positions.push(pos);
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.index(key)?;
        if i < self.positions.len() {
            self.positions.remove(i);
        }
        if i < self.entries.len() {
            Some(self.entries.remove(i).1)
        } else {
            None
        }
    }

    /// Whether `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.index(key).is_some()
    }

    /// Number of settings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no settings.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A scalar as text (Janus semantics).
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key).and_then(Value::as_string)
    }

    /// A scalar read with Janus's yes/true/1 rule.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// An integer, or a string holding one.
    pub fn get_int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_int)
    }

    fn index(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }
}

impl FromIterator<(String, Value)> for Group {
    fn from_iter<T: IntoIterator<Item = (String, Value)>>(iter: T) -> Self {
        let mut g = Group::new();
        for (k, v) in iter {
            g.insert(k, v);
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn janus_truth() {
        for t in ["yes", "YES", "true", "True", "1", " true "] {
            assert!(janus_is_true(t), "{t}");
        }
        for f in ["no", "false", "0", "on", "2", "", "truex"] {
            assert!(!janus_is_true(f), "{f}");
        }
    }

    #[test]
    fn int_text() {
        assert_eq!(parse_int_text("42"), Some(42));
        assert_eq!(parse_int_text("-42"), Some(-42));
        assert_eq!(parse_int_text("+7"), Some(7));
        assert_eq!(parse_int_text("0x1F"), Some(31));
        assert_eq!(parse_int_text("0b101"), Some(5));
        assert_eq!(parse_int_text("0o17"), Some(15));
        assert_eq!(parse_int_text("10L"), Some(10));
        assert_eq!(parse_int_text("10LL"), Some(10));
        assert_eq!(parse_int_text("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int_text("9223372036854775808"), None);
        assert_eq!(parse_int_text("abc"), None);
        assert_eq!(parse_int_text("0x"), None);
        assert_eq!(parse_int_text("1.5"), None);
        assert_eq!(parse_int_text(""), None);
    }

    #[test]
    fn conversions() {
        assert_eq!(Value::Int(5).as_string().as_deref(), Some("5"));
        assert_eq!(Value::Bool(false).as_string().as_deref(), Some("false"));
        assert_eq!(Value::Float(1.0).as_string().as_deref(), Some("1.0"));
        assert_eq!(Value::Str("12201".into()).as_int(), Some(12201));
        assert_eq!(Value::Str("yes".into()).as_bool(), Some(true));
        assert_eq!(Value::Int(1).as_bool(), Some(true));
        assert_eq!(Value::Int(2).as_bool(), Some(false));
        assert_eq!(Value::Array(vec![]).as_string(), None);
        assert_eq!(Value::Array(vec![]).as_bool(), None);
    }

    #[test]
    fn group_ops() {
        let mut g = Group::new();
        g.insert("a", Value::Int(1));
        g.insert("b", Value::Int(2));
        g.insert("a", Value::Int(3));
        assert_eq!(g.len(), 2);
        assert_eq!(g.entries()[0], ("a".to_string(), Value::Int(3)));
        assert_eq!(g.remove("a"), Some(Value::Int(3)));
        assert!(!g.contains("a"));
        assert_eq!(g.get_int("b"), Some(2));
    }
}
