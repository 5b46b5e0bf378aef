//! VideoRoom's errors and their Janus codes, in one place.

use jano_plugin::{Map, Value};
use serde_json::json;

/// Every error a VideoRoom request can answer with. The text is what the client reads in
/// `error`; [`VrError::code`] is its `error_code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VrError {
    #[error("No message??")]
    NoMessage,
    #[error("JSON error: not an object")]
    NotAnObject,
    #[error("Unknown request '{0}'")]
    UnknownRequest(String),
    #[error("Invalid request on unconfigured participant")]
    JoinFirst,
    #[error("{0}")]
    AlreadyJoined(&'static str),
    #[error("No such room ({0})")]
    NoSuchRoom(String),
    /// A request on a handle whose room is gone (it left, was kicked, or the room was
    /// destroyed): Janus names no id here.
    #[error("No such room")]
    RoomGone,
    #[error("Room {0} already exists")]
    RoomExists(String),
    #[error("{0}")]
    NoSuchFeed(String),
    #[error("Missing mandatory element ({0})")]
    Missing(&'static str),
    /// A field of the wrong type or an invalid value: the whole text.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    InvalidSdpType(String),
    #[error("Maximum number of publishers ({0}) already reached")]
    PublishersFull(u64),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("Can't publish, already published")]
    AlreadyPublished,
    #[error("Can't unpublish, not published")]
    NotPublished,
    #[error("User ID {0} already exists")]
    IdExists(String),
    #[error("{0}")]
    InvalidSdp(String),
    #[error("{0}")]
    InvalidFeed(String),
    #[error("{0}")]
    Unknown(String),
}

impl VrError {
    pub fn code(&self) -> u16 {
        match self {
            VrError::NoMessage => 421,
            VrError::NotAnObject => 422,
            VrError::UnknownRequest(_) => 423,
            VrError::JoinFirst => 424,
            VrError::AlreadyJoined(_) => 425,
            VrError::NoSuchRoom(_) | VrError::RoomGone => 426,
            VrError::RoomExists(_) => 427,
            VrError::NoSuchFeed(_) => 428,
            VrError::Missing(_) => 429,
            VrError::Invalid(_) => 430,
            VrError::InvalidSdpType(_) => 431,
            VrError::PublishersFull(_) => 432,
            VrError::Unauthorized(_) => 433,
            VrError::AlreadyPublished => 434,
            VrError::NotPublished => 435,
            VrError::IdExists(_) => 436,
            VrError::InvalidSdp(_) => 437,
            VrError::InvalidFeed(_) => 438,
            VrError::Unknown(_) => 499,
        }
    }

    /// `Invalid element type (<name> should be <what>)`.
    pub fn invalid_type(name: &str, what: &str) -> VrError {
        VrError::Invalid(format!("Invalid element type ({name} should be {what})"))
    }

    /// The `{"videoroom":"event","error_code":N,"error":"…"}` object.
    pub fn to_data(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("videoroom".into(), json!("event"));
        m.insert("error_code".into(), json!(self.code()));
        m.insert("error".into(), json!(self.to_string()));
        m
    }
}

pub type VrResult<T> = Result<T, VrError>;
