//! VideoCall's errors and their Janus codes, in one place.

use jano_plugin::fields::FieldError;
use jano_plugin::{Map, Value};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VcError {
    #[error("No message??")]
    NoMessage,
    #[error("JSON error: not an object")]
    NotAnObject,
    #[error("Unknown request ({0})")]
    UnknownRequest(String),
    #[error("Register a username first")]
    RegisterFirst,
    /// A field of the wrong type or value: the whole text.
    #[error("{0}")]
    Invalid(String),
    #[error("Missing mandatory element ({0})")]
    Missing(&'static str),
    #[error("Username '{0}' already taken")]
    UsernameTaken(String),
    #[error("Already registered ({0})")]
    AlreadyRegistered(String),
    #[error("Username '{0}' doesn't exist")]
    NoSuchUsername(String),
    #[error("You can't call yourself... use the EchoTest for that")]
    UseEchoTest,
    #[error("Already in a call")]
    AlreadyInCall,
    #[error("No incoming call to accept")]
    NoCall,
    #[error("Missing SDP")]
    MissingSdp,
    #[error("{0}")]
    InvalidSdp(String),
}

impl VcError {
    pub fn code(&self) -> u16 {
        match self {
            VcError::NoMessage => 470,
            VcError::NotAnObject => 471,
            VcError::UnknownRequest(_) => 472,
            VcError::RegisterFirst => 473,
            VcError::Invalid(_) => 474,
            VcError::Missing(_) => 475,
            VcError::UsernameTaken(_) => 476,
            VcError::AlreadyRegistered(_) => 477,
            VcError::NoSuchUsername(_) => 478,
            VcError::UseEchoTest => 479,
            VcError::AlreadyInCall => 480,
            VcError::NoCall => 481,
            VcError::MissingSdp => 482,
            VcError::InvalidSdp(_) => 483,
        }
    }

    /// `{"videocall":"event","error_code":N,"error":"…"}`.
    pub fn to_data(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("videocall".into(), json!("event"));
        m.insert("error_code".into(), json!(self.code()));
        m.insert("error".into(), json!(self.to_string()));
        m
    }
}

impl From<FieldError> for VcError {
    fn from(e: FieldError) -> VcError {
        match e {
            FieldError::Missing(name) => VcError::Missing(name),
            FieldError::Type(..) => VcError::Invalid(e.to_string()),
        }
    }
}

pub type VcResult<T> = Result<T, VcError>;
