//! How TextRoom writes what goes over the data channel: JSON in the configured layout (`json`
//! = `indented`, the default, `plain` or `compact`, as Janus's option), and message dates in
//! local time as `%FT%T%z`.

use jano_plugin::Value;
use serde::Serialize;

pub use jano_api::json::JsonFormat;

/// The `json` setting; anything unknown (or none) is `indented`, as in Janus's TextRoom.
pub fn json_format(s: Option<&str>) -> JsonFormat {
    s.and_then(JsonFormat::parse)
        .unwrap_or(JsonFormat::Indented)
}

/// A message as it goes out: Janus's key order, the configured layout.
pub fn dump(format: JsonFormat, v: &Value) -> String {
    String::from_utf8(format.write(&Ordered(v))).unwrap_or_default()
}

/// Janus writes keys in the order it adds them: `textroom` first, `transaction` last, the
/// rest as each message builds them. One order for every TextRoom message gives the same.
const KEY_ORDER: &[&str] = &[
    "textroom",
    "error_code",
    "error",
    "room",
    "description",
    "pin_required",
    "num_participants",
    "history",
    "from",
    "date",
    "text",
    "whisper",
    "username",
    "display",
    "participants",
    "list",
    "exists",
    "allowed",
    "sent",
    "permanent",
    "transaction",
];

fn key_rank(k: &str) -> usize {
    KEY_ORDER
        .iter()
        .position(|x| *x == k)
        .unwrap_or(KEY_ORDER.len() - 1)
}

/// A value serialised with object keys in [`KEY_ORDER`] (others before `transaction`, by
/// name).
struct Ordered<'a>(&'a Value);

impl Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_by_key(|k| (key_rank(k), k.as_str() == "transaction"));
                let mut map = s.serialize_map(Some(keys.len()))?;
                for k in keys {
                    if let Some(v) = m.get(k) {
                        map.serialize_entry(k, &Ordered(v))?;
                    }
                }
                map.end()
            }
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Ordered(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// Now in local time, `2024-05-01T10:11:12+0200`.
pub fn local_date() -> String {
    jano_plugin::clock::local_time(c"%FT%T%z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layouts() {
        let v = json!({"a": 1, "b": [1, 2]});
        assert_eq!(dump(JsonFormat::Compact, &v), r#"{"a":1,"b":[1,2]}"#);
        let m = json!({"transaction": "t", "text": "x", "textroom": "message", "room": 1});
        assert_eq!(
            dump(JsonFormat::Compact, &m),
            r#"{"textroom":"message","room":1,"text":"x","transaction":"t"}"#
        );
        assert_eq!(dump(JsonFormat::Plain, &v), r#"{"a": 1, "b": [1, 2]}"#);
        assert_eq!(
            dump(JsonFormat::Indented, &v),
            "{\n   \"a\": 1,\n   \"b\": [\n      1,\n      2\n   ]\n}"
        );
    }

    #[test]
    fn date_shape() {
        let d = local_date();
        // 2024-05-01T10:11:12+0200
        assert_eq!(d.len(), 24, "{d}");
        assert_eq!(&d[10..11], "T");
        assert!(d[19..20] == *"+" || d[19..20] == *"-", "{d}");
    }
}
