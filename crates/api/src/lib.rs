//! Wire-level vocabulary of the Janus API, shared by the gateway core, the transports and the
//! plugins: the error-code table with Janus's reason strings, validation helpers that produce
//! Janus's exact "missing/invalid element" wording, and the response envelopes.
//!
//! Nothing here does IO.

pub mod error;
pub mod fields;
pub mod json;
pub mod msg;

pub use error::{ErrorCode, JanusError};
pub use serde_json::{Map, Value};

/// Largest identifier Janus hands out: ids are 53-bit so that JavaScript clients keep them exact.
pub const MAX_ID: u64 = (1 << 53) - 1;

/// The version jano reports in `server_info`, in Janus's numbering (it mimics Janus 1.1.2's
/// API level, which is what the clients in the field are tested against).
pub const JANUS_VERSION: i64 = 1102;
/// The matching `version_string`.
pub const JANUS_VERSION_STRING: &str = "1.1.2";
