//! Reading request fields with Janus's validation messages (`Missing mandatory element (x)`,
//! `Invalid element type (x should be …)`), and room and participant ids, which are integers
//! or strings depending on `string_ids`.

use crate::error::{VrError, VrResult};
use jano_plugin::{Map, Value};

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

pub use jano_plugin::ids::Id;

/// How ids are read: integers, or strings with `string_ids` (VideoRoom's errors).
#[derive(Debug, Clone, Copy)]
pub struct Ids {
    pub strings: bool,
}

impl Ids {
    fn shared(&self) -> jano_plugin::ids::Ids {
        jano_plugin::ids::Ids {
            strings: self.strings,
        }
    }

    pub fn opt(&self, b: &Body, name: &'static str) -> VrResult<Option<Id>> {
        self.shared()
            .opt(b, name)
            .map_err(|_| VrError::invalid_type(name, self.shared().kind()))
    }

    pub fn req(&self, b: &Body, name: &'static str) -> VrResult<Id> {
        self.opt(b, name)?.ok_or(VrError::Missing(name))
    }

    pub fn from_value(&self, v: &Value) -> Option<Id> {
        self.shared().from_value(v)
    }
}

/// Compares secrets in constant time.
pub use jano_plugin::fields::same_secret;
