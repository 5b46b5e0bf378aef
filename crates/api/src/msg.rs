//! Envelope builders. Every response echoes `transaction`; `session_id` appears only when
//! non-zero, as Janus does.

use crate::JanusError;
use serde_json::{json, Map, Value};

/// `{"janus": kind, "session_id"?: sid, "transaction"?: tx}` as a map to extend.
pub fn envelope(kind: &str, session_id: u64, transaction: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("janus".into(), Value::String(kind.into()));
    if session_id > 0 {
        m.insert("session_id".into(), session_id.into());
    }
    if let Some(tx) = transaction {
        m.insert("transaction".into(), Value::String(tx.into()));
    }
    m
}

/// An `error` response.
pub fn error(session_id: u64, transaction: Option<&str>, err: &JanusError) -> Value {
    let mut m = envelope("error", session_id, transaction);
    m.insert(
        "error".into(),
        json!({"code": err.code.code(), "reason": err.reason}),
    );
    Value::Object(m)
}

/// A plain `success` response.
pub fn success(session_id: u64, transaction: &str) -> Value {
    Value::Object(envelope("success", session_id, Some(transaction)))
}

/// `success` with `data: {"id": id}` (create and attach).
pub fn success_id(session_id: u64, transaction: &str, id: u64) -> Value {
    let mut m = envelope("success", session_id, Some(transaction));
    m.insert("data".into(), json!({ "id": id }));
    Value::Object(m)
}

/// An `ack`.
pub fn ack(session_id: u64, transaction: &str) -> Value {
    Value::Object(envelope("ack", session_id, Some(transaction)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn create_reply_has_no_session_id() {
        let v = success_id(0, "t", 9);
        assert_eq!(
            v,
            json!({"janus":"success","transaction":"t","data":{"id":9}})
        );
    }

    #[test]
    fn error_without_transaction() {
        let v = error(5, None, &JanusError::of(ErrorCode::InvalidJson));
        assert_eq!(
            v,
            json!({"janus":"error","session_id":5,"error":{"code":454,"reason":"Invalid JSON"}})
        );
    }
}
