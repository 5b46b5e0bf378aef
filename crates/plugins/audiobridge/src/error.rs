//! AudioBridge's errors and their Janus codes, in one place.

use jano_plugin::fields::FieldError;
use jano_plugin::{Map, Value};
use serde_json::json;

/// Every error an AudioBridge request can answer with. The text is what the client reads in
/// `error`; [`AbError::code`] is its `error_code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbError {
    #[error("No message??")]
    NoMessage,
    #[error("JSON error: not an object")]
    NotAnObject,
    #[error("Unknown request '{0}'")]
    UnknownRequest(String),
    /// A request that is not valid in the handle's state (not in a room, plugin-offered SDP).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Missing mandatory element ({0})")]
    Missing(&'static str),
    /// A field of the wrong type or an invalid value: the whole text.
    #[error("{0}")]
    Invalid(String),
    #[error("No such room ({0})")]
    NoSuchRoom(String),
    #[error("Room {0} already exists")]
    RoomExists(String),
    #[error("{0}")]
    NotJoined(&'static str),
    #[error("{0}")]
    Libopus(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("User ID {0} already exists")]
    IdExists(String),
    #[error("File ID exists ({0})")]
    FileIdExists(String),
    #[error("{0}")]
    AlreadyJoined(&'static str),
    #[error("No such user {0} in room {1}")]
    NoSuchUser(String, String),
    #[error("{0}")]
    InvalidSdp(String),
    #[error("{0}")]
    NoSuchGroup(String),
    #[error("{0}")]
    Unknown(String),
}

impl AbError {
    pub fn code(&self) -> u16 {
        match self {
            AbError::NoMessage => 480,
            AbError::NotAnObject => 481,
            AbError::UnknownRequest(_) | AbError::InvalidRequest(_) => 482,
            AbError::Missing(_) => 483,
            AbError::Invalid(_) => 484,
            AbError::NoSuchRoom(_) => 485,
            AbError::RoomExists(_) => 486,
            AbError::NotJoined(_) => 487,
            AbError::Libopus(_) => 488,
            AbError::Unauthorized(_) => 489,
            AbError::IdExists(_) | AbError::FileIdExists(_) => 490,
            AbError::AlreadyJoined(_) => 491,
            AbError::NoSuchUser(..) => 492,
            AbError::InvalidSdp(_) => 493,
            AbError::NoSuchGroup(_) => 494,
            AbError::Unknown(_) => 499,
        }
    }

    /// `Invalid element type (<name> should be <what>)`.
    pub fn invalid_type(name: &str, what: &str) -> AbError {
        AbError::Invalid(format!("Invalid element type ({name} should be {what})"))
    }

    /// The `{"audiobridge":"event","error_code":N,"error":"…"}` object.
    pub fn to_data(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("audiobridge".into(), json!("event"));
        m.insert("error_code".into(), json!(self.code()));
        m.insert("error".into(), json!(self.to_string()));
        m
    }
}

impl From<FieldError> for AbError {
    fn from(e: FieldError) -> AbError {
        match e {
            FieldError::Missing(name) => AbError::Missing(name),
            FieldError::Type(..) => AbError::Invalid(e.to_string()),
        }
    }
}

pub type AbResult<T> = Result<T, AbError>;
