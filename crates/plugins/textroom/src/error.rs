//! TextRoom's errors and their Janus codes, in one place.

use jano_plugin::fields::{FieldError, SecretError};
use jano_plugin::{Map, Value};
use serde_json::json;

/// Every error a TextRoom request can answer with: the text is what the client reads in
/// `error`, [`TrError::code`] its `error_code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrError {
    #[error("No message??")]
    NoMessage,
    #[error("JSON error: not an object")]
    NotAnObject,
    #[error("Missing mandatory element ({0})")]
    Missing(&'static str),
    /// A field of the wrong type or value: the whole text.
    #[error("{0}")]
    Invalid(String),
    /// Janus-API requests that are not TextRoom's (`Unknown request 'x'`).
    #[error("Unknown request '{0}'")]
    UnknownRequest(String),
    /// Data-channel requests that are not TextRoom's.
    #[error("Unsupported request {0}")]
    Unsupported(String),
    #[error("{0}")]
    Setup(&'static str),
    #[error("No such room ({0})")]
    NoSuchRoom(String),
    #[error("Room {0} already exists")]
    RoomExists(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("Username already taken")]
    UsernameTaken,
    #[error("Already in room {0}")]
    AlreadyInRoom(String),
    #[error("Not in room {0}")]
    NotInRoom(String),
    #[error("No such user {0} in room {1}")]
    NoSuchUser(String, String),
    #[error("{0}")]
    Unknown(&'static str),
}

impl TrError {
    pub fn code(&self) -> u16 {
        match self {
            TrError::NoMessage => 411,
            TrError::NotAnObject => 412,
            TrError::Missing(_) => 413,
            TrError::Invalid(_) => 414,
            TrError::UnknownRequest(_) | TrError::Unsupported(_) => 415,
            TrError::Setup(_) => 416,
            TrError::NoSuchRoom(_) => 417,
            TrError::RoomExists(_) => 418,
            TrError::Unauthorized(_) => 419,
            TrError::UsernameTaken => 420,
            TrError::AlreadyInRoom(_) => 421,
            TrError::NotInRoom(_) => 422,
            TrError::NoSuchUser(..) => 423,
            TrError::Unknown(_) => 499,
        }
    }

    /// The error object: `kind` is `event` for synchronous Janus-API answers, `error` for
    /// data-channel replies and asynchronous events (Janus uses both).
    pub fn to_data(&self, kind: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("textroom".into(), json!(kind));
        m.insert("error_code".into(), json!(self.code()));
        m.insert("error".into(), json!(self.to_string()));
        m
    }
}

impl From<FieldError> for TrError {
    fn from(e: FieldError) -> TrError {
        match e {
            FieldError::Missing(name) => TrError::Missing(name),
            FieldError::Type(..) => TrError::Invalid(e.to_string()),
        }
    }
}

impl From<SecretError> for TrError {
    fn from(e: SecretError) -> TrError {
        match e {
            SecretError::Field(f) => f.into(),
            SecretError::Wrong(text) => TrError::Unauthorized(text),
        }
    }
}

pub type TrResult<T> = Result<T, TrError>;
