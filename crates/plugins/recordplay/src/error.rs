//! Record&Play's errors and their Janus codes, in one place.

use jano_plugin::fields::FieldError;
use jano_plugin::{Map, Value};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpError {
    #[error("No message??")]
    NoMessage,
    #[error("JSON error: not an object")]
    NotAnObject,
    #[error("Unknown request '{0}'")]
    UnknownRequest(String),
    /// A field of the wrong type or value: the whole text.
    #[error("{0}")]
    Invalid(String),
    /// A missing field or SDP: the whole text.
    #[error("{0}")]
    Missing(String),
    #[error("No such recording")]
    NotFound,
    #[error("Error opening recording files")]
    InvalidRecording,
    #[error("{0}")]
    InvalidState(&'static str),
    #[error("{0}")]
    InvalidSdp(String),
    #[error("Recording {0} already exists")]
    Exists(u64),
    #[error("{0}")]
    Unknown(String),
}

impl RpError {
    pub fn code(&self) -> u16 {
        match self {
            RpError::NoMessage => 411,
            RpError::NotAnObject => 412,
            RpError::UnknownRequest(_) => 413,
            RpError::Invalid(_) => 414,
            RpError::Missing(_) => 415,
            RpError::NotFound => 416,
            RpError::InvalidRecording => 417,
            RpError::InvalidState(_) => 418,
            RpError::InvalidSdp(_) => 419,
            RpError::Exists(_) => 420,
            RpError::Unknown(_) => 499,
        }
    }

    /// `{"recordplay":"event","error_code":N,"error":"…"}`.
    pub fn to_data(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("recordplay".into(), json!("event"));
        m.insert("error_code".into(), json!(self.code()));
        m.insert("error".into(), json!(self.to_string()));
        m
    }
}

impl From<FieldError> for RpError {
    fn from(e: FieldError) -> RpError {
        match e {
            FieldError::Missing(_) => RpError::Missing(e.to_string()),
            FieldError::Type(..) => RpError::Invalid(e.to_string()),
        }
    }
}

pub type RpResult<T> = Result<T, RpError>;
