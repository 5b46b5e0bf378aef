//! The `json` option of Janus's transports: how responses are laid out.

use serde::Serialize;
use serde_json::Value;

/// `compact` (default), `indented` (three spaces, like Janus) or `plain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonFormat {
    #[default]
    Compact,
    Indented,
    Plain,
}

impl JsonFormat {
    pub fn to_vec(self, v: &Value) -> Vec<u8> {
        match self {
            JsonFormat::Indented => {
                let mut out = Vec::with_capacity(256);
                let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
                let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
                // Serializing a Value into a Vec cannot fail.
                if v.serialize(&mut ser).is_err() {
                    return b"{}".to_vec();
                }
                out
            }
            JsonFormat::Compact | JsonFormat::Plain => {
                serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec())
            }
        }
    }

    pub fn to_string(self, v: &Value) -> String {
        String::from_utf8(self.to_vec(v)).unwrap_or_default()
    }
}
