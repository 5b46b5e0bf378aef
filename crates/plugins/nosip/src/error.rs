//! NoSIP's errors and their Janus codes, in one place.

use jano_plugin::fields::FieldError;
use jano_plugin::{Map, Value};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NsError {
    #[error("No message??")]
    NoMessage,
    #[error("JSON error: not an object")]
    NotAnObject,
    #[error("Unknown request ({0})")]
    UnknownRequest(String),
    #[error("Missing mandatory element ({0})")]
    Missing(&'static str),
    /// A field of the wrong type or value: the whole text.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    WrongState(&'static str),
    /// No SDP, or one that cannot be used: the whole text.
    #[error("{0}")]
    MissingSdp(String),
    #[error("{0}")]
    InvalidSdp(&'static str),
    #[error("Could not allocate RTP/RTCP ports")]
    Io,
    #[error("{0}")]
    Recording(&'static str),
    #[error("{0}")]
    TooStrict(&'static str),
}

impl NsError {
    pub fn code(&self) -> u16 {
        match self {
            NsError::NoMessage => 440,
            NsError::NotAnObject => 441,
            NsError::UnknownRequest(_) => 442,
            NsError::Missing(_) => 443,
            NsError::Invalid(_) => 444,
            NsError::WrongState(_) => 445,
            NsError::MissingSdp(_) => 446,
            NsError::InvalidSdp(_) => 447,
            NsError::Io => 448,
            NsError::Recording(_) => 449,
            NsError::TooStrict(_) => 450,
        }
    }

    /// `{"nosip":"event","error_code":N,"error":"…"}`.
    pub fn to_data(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("nosip".into(), json!("event"));
        m.insert("error_code".into(), json!(self.code()));
        m.insert("error".into(), json!(self.to_string()));
        m
    }
}

impl From<FieldError> for NsError {
    fn from(e: FieldError) -> NsError {
        match e {
            FieldError::Missing(name) => NsError::Missing(name),
            FieldError::Type(..) => NsError::Invalid(e.to_string()),
        }
    }
}

pub type NsResult<T> = Result<T, NsError>;
