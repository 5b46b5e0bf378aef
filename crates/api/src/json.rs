//! The `json` option of Janus's transports: how responses are laid out.

use serde::Serialize;
use serde_json::ser::Formatter;
use serde_json::Value;
use std::io;

/// One line with a space after `,` and `:` — what Janus's `plain` output looks like.
struct PlainFormatter;

impl Formatter for PlainFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

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
            JsonFormat::Plain => {
                let mut out = Vec::with_capacity(256);
                let mut ser = serde_json::Serializer::with_formatter(&mut out, PlainFormatter);
                if v.serialize(&mut ser).is_err() {
                    return b"{}".to_vec();
                }
                out
            }
            JsonFormat::Compact => serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }

    pub fn to_string(self, v: &Value) -> String {
        String::from_utf8(self.to_vec(v)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn three_layouts() {
        let v = json!({"a": 1, "b": [true, null]});
        assert_eq!(
            JsonFormat::Compact.to_string(&v),
            r#"{"a":1,"b":[true,null]}"#
        );
        assert_eq!(
            JsonFormat::Plain.to_string(&v),
            r#"{"a": 1, "b": [true, null]}"#
        );
        assert_eq!(
            JsonFormat::Indented.to_string(&v),
            "{\n   \"a\": 1,\n   \"b\": [\n      true,\n      null\n   ]\n}"
        );
    }
}
