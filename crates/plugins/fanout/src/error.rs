//! The plugin's errors and their codes, in one place.

use jano_plugin::{Map, Value};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FanoutError {
    #[error("Missing element (request)")]
    MissingRequest,
    #[error("Unknown request '{0}'")]
    UnknownRequest(String),
    #[error("Missing element (feed)")]
    MissingFeed,
    #[error("Invalid element (feed should be a positive integer)")]
    InvalidFeed,
    #[error("No such feed ({0})")]
    NoSuchFeed(u64),
    #[error("This handle is already a {0}")]
    AlreadyInRole(&'static str),
    #[error("This handle is not a subscriber")]
    NotSubscriber,
}

impl FanoutError {
    /// Codes in the ranges Janus plugins use (4xx of their own).
    fn code(&self) -> u16 {
        match self {
            FanoutError::MissingRequest | FanoutError::MissingFeed => 452,
            FanoutError::UnknownRequest(_) => 453,
            FanoutError::InvalidFeed => 454,
            FanoutError::NoSuchFeed(_) => 455,
            FanoutError::AlreadyInRole(_) | FanoutError::NotSubscriber => 456,
        }
    }

    pub fn to_event(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("fanout".into(), json!("event"));
        m.insert("error_code".into(), json!(self.code()));
        m.insert("error".into(), json!(self.to_string()));
        m
    }
}
