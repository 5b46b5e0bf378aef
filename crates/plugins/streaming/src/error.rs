//! The plugin's errors and their Janus codes, in one place.

use jano_plugin::{Map, Value};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StError {
    #[error("No message??")]
    NoMessage,
    #[error("JSON error: not an object")]
    NotAnObject,
    #[error("Unknown request '{0}'")]
    UnknownRequest(String),
    #[error("Missing mandatory element ({0})")]
    Missing(&'static str),
    /// A wrong type or value: the whole text.
    #[error("{0}")]
    Invalid(String),
    #[error("No such mountpoint/stream {0}")]
    NoSuchMountpoint(String),
    /// Another 455 text (`Can't start: no mountpoint set`…).
    #[error("{0}")]
    NoMountpoint(String),
    #[error("{0}")]
    CantCreate(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    CantSwitch(String),
    #[error("{0}")]
    CantRecord(String),
    /// A 452 with a text of its own (not `Unknown request`).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    InvalidSdp(String),
    #[error("{0}")]
    Unknown(String),
}

impl StError {
    pub fn code(&self) -> u16 {
        match self {
            StError::NoMessage => 450,
            StError::NotAnObject => 451,
            StError::UnknownRequest(_) => 452,
            StError::Missing(_) => 453,
            StError::Invalid(_) => 454,
            StError::NoSuchMountpoint(_) | StError::NoMountpoint(_) => 455,
            StError::CantCreate(_) => 456,
            StError::Unauthorized(_) => 457,
            StError::CantSwitch(_) => 458,
            StError::CantRecord(_) => 459,
            StError::BadRequest(_) => 452,
            StError::InvalidState(_) => 460,
            StError::InvalidSdp(_) => 461,
            StError::Unknown(_) => 470,
        }
    }

    /// `Invalid element type (<name> should be <what>)`.
    pub fn invalid_type(name: &str, what: &str) -> StError {
        StError::Invalid(format!("Invalid element type ({name} should be {what})"))
    }

    /// The `{"streaming":"event","error_code":N,"error":"…"}` object.
    pub fn to_data(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("streaming".into(), json!("event"));
        m.insert("error_code".into(), json!(self.code()));
        m.insert("error".into(), json!(self.to_string()));
        m
    }
}

impl From<jano_plugin::fields::FieldError> for StError {
    fn from(e: jano_plugin::fields::FieldError) -> StError {
        match e {
            jano_plugin::fields::FieldError::Missing(n) => StError::Missing(n),
            other => StError::Invalid(other.to_string()),
        }
    }
}

pub type StResult<T> = Result<T, StError>;
