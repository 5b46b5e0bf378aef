//! Reading a request's fields with Janus's validation texts (`Missing mandatory element (x)`,
//! `Invalid element type (x should be …)`), for every plugin: each maps [`FieldError`] to its
//! own codes (`From<FieldError>`).

use crate::{Map, Value};

pub type Body = Map<String, Value>;

/// A missing or mistyped field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("Missing mandatory element ({0})")]
    Missing(&'static str),
    #[error("Invalid element type ({0} should be {1})")]
    Type(&'static str, &'static str),
}

/// Why a `secret`, `pin` or `admin_key` check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Field(#[from] FieldError),
    /// `Unauthorized (wrong <name>)`: each plugin's own "unauthorized" code.
    #[error("{0}")]
    Wrong(&'static str),
}

/// A room's (or mountpoint's, or the plugin's) `secret`, `pin` or `admin_key` as Janus checks
/// it: nothing to check when none is set; otherwise the field must be there, a string, and
/// match (compared in constant time).
pub fn check_secret(want: Option<&str>, b: &Body, name: &'static str) -> Result<(), SecretError> {
    let Some(want) = want else {
        return Ok(());
    };
    let got = req_str(b, name)?;
    if same_secret(got, want) {
        Ok(())
    } else {
        Err(SecretError::Wrong(match name {
            "pin" => "Unauthorized (wrong pin)",
            "admin_key" => "Unauthorized (wrong admin_key)",
            _ => "Unauthorized (wrong secret)",
        }))
    }
}

/// Compares a secret (room or mountpoint secret, pin, admin key) in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

pub fn opt_str<'a>(b: &'a Body, name: &'static str) -> Result<Option<&'a str>, FieldError> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(FieldError::Type(name, "a string")),
    }
}

pub fn req_str<'a>(b: &'a Body, name: &'static str) -> Result<&'a str, FieldError> {
    opt_str(b, name)?.ok_or(FieldError::Missing(name))
}

pub fn opt_bool(b: &Body, name: &'static str) -> Result<Option<bool>, FieldError> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(v)) => Ok(Some(*v)),
        Some(_) => Err(FieldError::Type(name, "a boolean")),
    }
}

/// A non-negative integer ("a positive integer" in Janus's words).
pub fn opt_u64(b: &Body, name: &'static str) -> Result<Option<u64>, FieldError> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or(FieldError::Type(name, "a positive integer")),
    }
}

pub fn req_u64(b: &Body, name: &'static str) -> Result<u64, FieldError> {
    opt_u64(b, name)?.ok_or(FieldError::Missing(name))
}

pub fn opt_array<'a>(b: &'a Body, name: &'static str) -> Result<Option<&'a [Value]>, FieldError> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(FieldError::Type(name, "an array")),
    }
}

pub fn opt_object<'a>(b: &'a Body, name: &'static str) -> Result<Option<&'a Body>, FieldError> {
    match b.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(FieldError::Type(name, "an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn texts_are_janus_ones() {
        let b = match json!({"a": 5, "s": "x", "n": -1}) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        assert_eq!(opt_str(&b, "s"), Ok(Some("x")));
        assert_eq!(
            opt_str(&b, "a").map_err(|e| e.to_string()),
            Err("Invalid element type (a should be a string)".into())
        );
        assert_eq!(
            req_u64(&b, "z").map_err(|e| e.to_string()),
            Err("Missing mandatory element (z)".into())
        );
        assert_eq!(
            opt_u64(&b, "n").map_err(|e| e.to_string()),
            Err("Invalid element type (n should be a positive integer)".into())
        );
    }
}
