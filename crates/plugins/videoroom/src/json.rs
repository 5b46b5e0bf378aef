//! Reading request fields with Janus's validation messages (`Missing mandatory element (x)`,
//! `Invalid element type (x should be …)`), and room and participant ids, which are integers
//! or strings depending on `string_ids`.

use crate::error::{VrError, VrResult};
use jano_plugin::{Map, Value};
use serde_json::json;
use std::fmt;

pub type Body = Map<String, Value>;

pub fn opt_str<'a>(b: &'a Body, name: &'static str) -> VrResult<Option<&'a str>> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(VrError::invalid_type(name, "a string")),
    }
}

pub fn req_str<'a>(b: &'a Body, name: &'static str) -> VrResult<&'a str> {
    opt_str(b, name)?.ok_or(VrError::Missing(name))
}

pub fn opt_bool(b: &Body, name: &'static str) -> VrResult<Option<bool>> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(v)) => Ok(Some(*v)),
        Some(_) => Err(VrError::invalid_type(name, "a boolean")),
    }
}

pub fn req_bool(b: &Body, name: &'static str) -> VrResult<bool> {
    opt_bool(b, name)?.ok_or(VrError::Missing(name))
}

/// A non-negative integer ("a positive integer" in Janus's words).
pub fn opt_u64(b: &Body, name: &'static str) -> VrResult<Option<u64>> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| VrError::invalid_type(name, "a positive integer")),
    }
}

pub fn req_u64(b: &Body, name: &'static str) -> VrResult<u64> {
    opt_u64(b, name)?.ok_or(VrError::Missing(name))
}

pub fn opt_i64(b: &Body, name: &'static str) -> VrResult<Option<i64>> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| VrError::invalid_type(name, "an integer")),
    }
}

pub fn opt_array<'a>(b: &'a Body, name: &'static str) -> VrResult<Option<&'a Vec<Value>>> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(VrError::invalid_type(name, "an array")),
    }
}

pub fn opt_object<'a>(b: &'a Body, name: &'static str) -> VrResult<Option<&'a Body>> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(VrError::invalid_type(name, "an object")),
    }
}

/// Each element of an array field as an object.
pub fn objects<'a>(items: &'a [Value], name: &'static str) -> VrResult<Vec<&'a Body>> {
    items
        .iter()
        .map(|v| {
            v.as_object()
                .ok_or_else(|| VrError::invalid_type(name, "an array of objects"))
        })
        .collect()
}

/// A room or participant id: a non-negative integer, or a string with `string_ids`.
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
        // Janus keeps numeric ids below 2^53 so that JavaScript reads them exactly.
        let n = rand::random::<u64>() & ((1u64 << 53) - 1);
        let n = n.max(1);
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

/// How ids are read: integers, or strings with `string_ids`.
#[derive(Debug, Clone, Copy)]
pub struct Ids {
    pub strings: bool,
}

impl Ids {
    fn kind(&self) -> &'static str {
        if self.strings {
            "a string"
        } else {
            "a positive integer"
        }
    }

    pub fn opt(&self, b: &Body, name: &'static str) -> VrResult<Option<Id>> {
        match b.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self
                .from_value(v)
                .map(Some)
                .ok_or_else(|| VrError::invalid_type(name, self.kind())),
        }
    }

    pub fn req(&self, b: &Body, name: &'static str) -> VrResult<Id> {
        self.opt(b, name)?.ok_or(VrError::Missing(name))
    }

    pub fn from_value(&self, v: &Value) -> Option<Id> {
        if self.strings {
            v.as_str().map(|s| Id::Str(s.to_owned()))
        } else {
            v.as_u64().map(Id::Num)
        }
    }
}

/// Compares secrets in constant time.
pub use jano_plugin::fields::same_secret;
