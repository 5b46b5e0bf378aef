//! Room and participant ids as Janus's room plugins take them: non-negative integers, or
//! strings when the plugin is configured with `string_ids`.

use crate::fields::{Body, FieldError};
use crate::Value;
use serde_json::json;
use std::fmt;

/// A room or participant id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    Num(u64),
    Str(String),
}

impl Id {
    pub fn to_json(&self) -> Value {
        match self {
            Id::Num(n) => json!(n),
            Id::Str(s) => json!(s),
        }
    }

    pub fn is_zero(&self) -> bool {
        match self {
            Id::Num(n) => *n == 0,
            Id::Str(s) => s.is_empty(),
        }
    }

    /// A fresh random id of the configured kind.
    pub fn random(string_ids: bool) -> Id {
        // Below 2^53, so JavaScript clients read numeric ids exactly (as Janus does).
        let n = (rand::random::<u64>() & ((1u64 << 53) - 1)).max(1);
        if string_ids {
            Id::Str(format!("{n:x}"))
        } else {
            Id::Num(n)
        }
    }

    /// Reads a configuration category name's id (`room-<id>`).
    pub fn parse_text(text: &str, string_ids: bool) -> Option<Id> {
        if string_ids {
            (!text.is_empty()).then(|| Id::Str(text.to_owned()))
        } else {
            text.parse().ok().map(Id::Num)
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => f.write_str(s),
        }
    }
}

/// How a plugin reads ids: integers, or strings with `string_ids`.
#[derive(Debug, Clone, Copy)]
pub struct Ids {
    pub strings: bool,
}

impl Ids {
    /// Janus's wording of the expected type.
    pub fn kind(&self) -> &'static str {
        if self.strings {
            "a string"
        } else {
            "a positive integer"
        }
    }

    pub fn opt(&self, b: &Body, name: &'static str) -> Result<Option<Id>, FieldError> {
        match b.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self
                .from_value(v)
                .map(Some)
                .ok_or(FieldError::Type(name, self.kind())),
        }
    }

    pub fn req(&self, b: &Body, name: &'static str) -> Result<Id, FieldError> {
        self.opt(b, name)?.ok_or(FieldError::Missing(name))
    }

    pub fn from_value(&self, v: &Value) -> Option<Id> {
        if self.strings {
            v.as_str().map(|s| Id::Str(s.to_owned()))
        } else {
            v.as_u64().map(Id::Num)
        }
    }
}
