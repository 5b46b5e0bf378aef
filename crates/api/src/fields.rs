//! Field validation with Janus's exact wording: `Missing mandatory element (x)` (456) and
//! `Invalid element type (x should be <kind>)` (467). Plugins use the same helpers with their own
//! codes, so the kinds are exposed as data.

use crate::JanusError;
use serde_json::{Map, Value};

/// The JSON kind a field must have, with the phrase Janus uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    NonEmptyString,
    Integer,
    /// An integer ≥ 0 (Janus calls it "positive").
    PositiveInteger,
    Bool,
    Object,
    Array,
    NonEmptyArray,
}

impl Kind {
    pub const fn phrase(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::NonEmptyString => "a non-empty string",
            Kind::Integer => "an integer",
            Kind::PositiveInteger => "a positive integer",
            Kind::Bool => "a boolean",
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::NonEmptyArray => "a non-empty array",
        }
    }

    /// Whether `v` is acceptable for this kind.
    pub fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::String => v.is_string(),
            Kind::NonEmptyString => v.as_str().is_some_and(|s| !s.is_empty()),
            Kind::Integer => v.is_i64() || v.is_u64(),
            Kind::PositiveInteger => v.is_u64(),
            Kind::Bool => v.is_boolean(),
            Kind::Object => v.is_object(),
            Kind::Array => v.is_array(),
            Kind::NonEmptyArray => v.as_array().is_some_and(|a| !a.is_empty()),
        }
    }
}

/// Checks one field: `Ok(None)` when absent and optional, the value when present and well typed.
pub fn check<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    kind: Kind,
    required: bool,
) -> Result<Option<&'a Value>, JanusError> {
    match obj.get(name) {
        None if required => Err(JanusError::missing(name)),
        None => Ok(None),
        Some(v) if kind.accepts(v) => Ok(Some(v)),
        Some(_) => Err(JanusError::invalid(name, kind.phrase())),
    }
}

/// An optional string field.
pub fn opt_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, JanusError> {
    Ok(check(obj, name, Kind::String, false)?.and_then(Value::as_str))
}

/// A required string field.
pub fn req_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, JanusError> {
    check(obj, name, Kind::String, true)?
        .and_then(Value::as_str)
        .ok_or_else(|| JanusError::missing(name))
}

/// An optional integer ≥ 0.
pub fn opt_u64(obj: &Map<String, Value>, name: &str) -> Result<Option<u64>, JanusError> {
    Ok(check(obj, name, Kind::PositiveInteger, false)?.and_then(Value::as_u64))
}

/// An optional boolean.
pub fn opt_bool(obj: &Map<String, Value>, name: &str) -> Result<Option<bool>, JanusError> {
    Ok(check(obj, name, Kind::Bool, false)?.and_then(Value::as_bool))
}

/// Reads an id the way the Janus core does: only a JSON unsigned integer counts; anything else
/// (a string, null, a negative or fractional number) reads as "absent" (0).
pub fn id_field(obj: &Map<String, Value>, name: &str) -> u64 {
    obj.get(name).and_then(Value::as_u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn missing_and_wrong_type_wording() {
        let o = obj(json!({"a": 1, "b": "x", "c": -3, "d": []}));
        assert_eq!(req_str(&o, "zz").unwrap_err().code.code(), 456);
        let e = req_str(&o, "a").unwrap_err();
        assert_eq!(e.reason, "Invalid element type (a should be a string)");
        assert_eq!(opt_u64(&o, "c").unwrap_err().code.code(), 467);
        assert!(check(&o, "d", Kind::NonEmptyArray, true).is_err());
        assert_eq!(opt_str(&o, "b").unwrap(), Some("x"));
    }

    #[test]
    fn ids_only_from_unsigned_integers() {
        let o = obj(json!({"s": "12", "n": null, "neg": -1, "f": 1.5, "ok": 42}));
        for k in ["s", "n", "neg", "f", "missing"] {
            assert_eq!(id_field(&o, k), 0, "{k}");
        }
        assert_eq!(id_field(&o, "ok"), 42);
    }
}
