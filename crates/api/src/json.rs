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
    /// Reads a transport's `json` option: `compact`, `indented` or `plain` (any case).
    pub fn parse(text: &str) -> Option<JsonFormat> {
        let t = text.trim();
        [
            ("compact", JsonFormat::Compact),
            ("indented", JsonFormat::Indented),
            ("plain", JsonFormat::Plain),
        ]
        .into_iter()
        .find(|(name, _)| t.eq_ignore_ascii_case(name))
        .map(|(_, f)| f)
    }

    pub fn to_vec(self, v: &Value) -> Vec<u8> {
        self.write(v)
    }

    /// Lays out anything serialisable (a plugin's own ordered view of a value, say).
    pub fn write<T: Serialize + ?Sized>(self, v: &T) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        // Serializing into a Vec cannot fail for JSON values.
        let res = match self {
            JsonFormat::Indented => {
                let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
                v.serialize(&mut serde_json::Serializer::with_formatter(&mut out, fmt))
            }
            JsonFormat::Plain => v.serialize(&mut serde_json::Serializer::with_formatter(
                &mut out,
                PlainFormatter,
            )),
            JsonFormat::Compact => v.serialize(&mut serde_json::Serializer::new(&mut out)),
        };
        if res.is_err() {
            return b"{}".to_vec();
        }
        out
    }

    pub fn to_string(self, v: &Value) -> String {
        String::from_utf8(self.to_vec(v)).unwrap_or_default()
    }
}

/// Parses one request the way every transport hands it to the core: the JSON value, or the
/// parser's complaint written `<string>(line,col): text` (the core answers it with 454).
pub fn decode(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice::<Value>(bytes).map_err(|e| complaint(&e))
}

/// A parser error as the core words it after "Invalid Janus API request - ".
pub fn complaint(e: &serde_json::Error) -> String {
    format!("<string>({},{}): {}", e.line(), e.column(), parser_text(e))
}

/// serde_json's message without its trailing " at line L column C" (the position is given
/// separately, Janus-style).
pub fn parser_text(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rsplit_once(" at line ") {
        Some((text, _)) => text.to_owned(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decode_complaint() {
        assert_eq!(decode(b"{}").ok(), Some(json!({})));
        assert_eq!(
            decode(b"{oops").err().as_deref(),
            Some("<string>(1,2): key must be a string")
        );
    }

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
