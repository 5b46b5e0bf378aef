//! Janus API requests and strict validation of the answers (transport independent).

use serde_json::{json, Value};

use crate::stats::{Failure, Kind};

pub const ECHOTEST: &str = "janus.plugin.echotest";
/// jano's fan-out plugin (opt-in on the server: `jano.plugin.fanout.jcfg`).
pub const FANOUT: &str = "jano.plugin.fanout";

/// Janus's VideoRoom (jano has it too).
pub const VIDEOROOM: &str = "janus.plugin.videoroom";
/// Janus's AudioBridge (jano has it too).
pub const AUDIOBRIDGE: &str = "janus.plugin.audiobridge";

/// Length of a [`Tx`] prefix: shared channels route answers to clients by it.
pub const TX_PREFIX_LEN: usize = 8;

/// Transaction generator: a random per-client prefix plus a counter (unique, cheap).
pub struct Tx {
    prefix: String,
    n: u64,
}

impl Tx {
    pub fn new() -> Tx {
        use rand::distributions::Alphanumeric;
        use rand::Rng;
        let prefix: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(TX_PREFIX_LEN)
            .map(char::from)
            .collect();
        Tx { prefix, n: 0 }
    }

    /// The client's prefix, which every transaction it makes starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn next(&mut self) -> String {
        self.n += 1;
        format!("{}{}", self.prefix, self.n)
    }
}

/// Which IDs a request needs in its body (WS always puts them in the body; HTTP uses the path).
#[derive(Clone, Copy)]
pub struct Ids {
    pub session: Option<u64>,
    pub handle: Option<u64>,
}

impl Ids {
    pub const NONE: Ids = Ids {
        session: None,
        handle: None,
    };
    pub fn session(s: u64) -> Ids {
        Ids {
            session: Some(s),
            handle: None,
        }
    }
    pub fn handle(s: u64, h: u64) -> Ids {
        Ids {
            session: Some(s),
            handle: Some(h),
        }
    }
}

/// Builds a request body. `ids` are put into the body (pass `Ids::NONE` for HTTP path addressing).
pub fn request(kind: Kind, tx: &str, ids: Ids) -> String {
    let mut v = match kind {
        Kind::Create => json!({"janus": "create", "transaction": tx}),
        Kind::Attach => json!({"janus": "attach", "plugin": ECHOTEST, "transaction": tx}),
        Kind::Message | Kind::Event => {
            json!({"janus": "message", "body": {"audio": true}, "transaction": tx})
        }
        Kind::Detach => json!({"janus": "detach", "transaction": tx}),
        Kind::Destroy => json!({"janus": "destroy", "transaction": tx}),
        Kind::Keepalive | Kind::Connect => json!({"janus": "keepalive", "transaction": tx}),
    };
    if let Some(obj) = v.as_object_mut() {
        if let Some(s) = ids.session {
            obj.insert("session_id".into(), json!(s));
        }
        if let Some(h) = ids.handle {
            obj.insert("handle_id".into(), json!(h));
        }
    }
    v.to_string()
}

pub fn parse(kind: Kind, bytes: &[u8]) -> Result<Value, Failure> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        Failure::new(kind, "invalid JSON", format!("{e}: {text}"))
    })?;
    if !v.is_object() {
        return Err(Failure::new(kind, "not a JSON object", short(&v)));
    }
    Ok(v)
}

pub fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

pub fn janus_kind(v: &Value) -> &str {
    v.get("janus").and_then(Value::as_str).unwrap_or("")
}

pub fn transaction(v: &Value) -> Option<&str> {
    v.get("transaction").and_then(Value::as_str)
}

/// The [`Tx`] prefix of a transaction (the client it belongs to), if it has one.
pub fn tx_prefix(tx: &str) -> Option<&str> {
    tx.get(..TX_PREFIX_LEN)
}

/// `{"janus":"ping"}`, answered with `pong` by any Janus API server.
pub fn ping(tx: &str) -> String {
    json!({"janus": "ping", "transaction": tx}).to_string()
}

/// Checks `janus == want` and the transaction; turns a Janus `error` into a categorised failure.
fn expect(kind: Kind, v: &Value, want: &str, tx: &str) -> Result<(), Failure> {
    let got = janus_kind(v);
    if got == "error" {
        let code = v
            .pointer("/error/code")
            .and_then(Value::as_i64)
            .unwrap_or(-1);
        return Err(Failure::new(kind, format!("janus error {code}"), short(v)));
    }
    if got != want {
        return Err(Failure::new(
            kind,
            format!("expected {want:?}, got {got:?}"),
            short(v),
        ));
    }
    if transaction(v) != Some(tx) {
        return Err(Failure::new(kind, "wrong transaction", short(v)));
    }
    Ok(())
}

fn expect_session(kind: Kind, v: &Value, sid: u64) -> Result<(), Failure> {
    if v.get("session_id").and_then(Value::as_u64) != Some(sid) {
        return Err(Failure::new(kind, "wrong or missing session_id", short(v)));
    }
    Ok(())
}

fn data_id(kind: Kind, v: &Value) -> Result<u64, Failure> {
    match v.pointer("/data/id").and_then(Value::as_u64) {
        Some(id) if id > 0 && id < (1u64 << 53) => Ok(id),
        _ => Err(Failure::new(kind, "missing or invalid data.id", short(v))),
    }
}

/// `create` → `success` with `data.id`.
pub fn check_create(v: &Value, tx: &str) -> Result<u64, Failure> {
    expect(Kind::Create, v, "success", tx)?;
    data_id(Kind::Create, v)
}

/// `attach` → `success` with session_id and `data.id`.
pub fn check_attach(v: &Value, tx: &str, sid: u64) -> Result<u64, Failure> {
    expect(Kind::Attach, v, "success", tx)?;
    expect_session(Kind::Attach, v, sid)?;
    data_id(Kind::Attach, v)
}

/// `message` → `ack` with session_id.
pub fn check_ack(v: &Value, tx: &str, sid: u64) -> Result<(), Failure> {
    expect(Kind::Message, v, "ack", tx)?;
    expect_session(Kind::Message, v, sid)
}

/// The echotest `event` answering the message: same transaction, sender, `result: "ok"`.
pub fn check_event(v: &Value, tx: &str, sid: u64, hid: u64) -> Result<(), Failure> {
    check_plugin_event(v, tx, sid, hid, ECHOTEST, "echotest")
}

/// A plugin's `event` answering a message: same transaction, sender, plugin, `result: "ok"`
/// under `data.<name>: "event"`.
pub fn check_plugin_event(
    v: &Value,
    tx: &str,
    sid: u64,
    hid: u64,
    plugin: &str,
    name: &str,
) -> Result<(), Failure> {
    let k = Kind::Event;
    expect(k, v, "event", tx)?;
    expect_session(k, v, sid)?;
    if v.get("sender").and_then(Value::as_u64) != Some(hid) {
        return Err(Failure::new(k, "wrong or missing sender", short(v)));
    }
    if v.pointer("/plugindata/plugin").and_then(Value::as_str) != Some(plugin) {
        return Err(Failure::new(k, "wrong plugindata.plugin", short(v)));
    }
    let data = v.pointer("/plugindata/data");
    if data.and_then(|d| d.get(name)).and_then(Value::as_str) != Some("event") {
        return Err(Failure::new(
            k,
            format!("plugindata.data.{name} != \"event\""),
            short(v),
        ));
    }
    if data.and_then(|d| d.get("result")).and_then(Value::as_str) != Some("ok") {
        return Err(Failure::new(
            k,
            "plugindata.data.result != \"ok\"",
            short(v),
        ));
    }
    Ok(())
}

/// A VideoRoom answer (`success` of a synchronous request, or the `event` of an asynchronous
/// one): same transaction, session, sender and plugin; returns `plugindata.data`. With `want`,
/// `data.videoroom` must be it (a plugin error, `error_code`, becomes a failure); without, the
/// caller looks at the data (e.g. `created` vs. error 427).
pub fn check_videoroom<'v>(
    kind: Kind,
    v: &'v Value,
    tx: &str,
    sid: u64,
    hid: u64,
    want: Option<&str>,
) -> Result<&'v Value, Failure> {
    check_room_plugin(kind, v, tx, sid, hid, VIDEOROOM, "videoroom", want)
}

/// The same for another room plugin: `plugin` its package, `key` its data key
/// (`audiobridge`).
#[allow(clippy::too_many_arguments)]
pub fn check_room_plugin<'v>(
    kind: Kind,
    v: &'v Value,
    tx: &str,
    sid: u64,
    hid: u64,
    plugin: &str,
    key: &str,
    want: Option<&str>,
) -> Result<&'v Value, Failure> {
    let got = janus_kind(v);
    expect(
        kind,
        v,
        if got == "success" { "success" } else { "event" },
        tx,
    )?;
    expect_session(kind, v, sid)?;
    if v.get("sender").and_then(Value::as_u64) != Some(hid) {
        return Err(Failure::new(kind, "wrong or missing sender", short(v)));
    }
    if v.pointer("/plugindata/plugin").and_then(Value::as_str) != Some(plugin) {
        return Err(Failure::new(kind, "wrong plugindata.plugin", short(v)));
    }
    let data = v
        .pointer("/plugindata/data")
        .ok_or_else(|| Failure::new(kind, "no plugindata.data", short(v)))?;
    if let Some(want) = want {
        if let Some(code) = data.get("error_code").and_then(Value::as_i64) {
            return Err(Failure::new(kind, format!("{key} error {code}"), short(v)));
        }
        if data.get(key).and_then(Value::as_str) != Some(want) {
            return Err(Failure::new(
                kind,
                format!("plugindata.data.{key} != {want:?}"),
                short(v),
            ));
        }
    }
    Ok(data)
}

/// `detach` / `destroy` → `success` with session_id.
pub fn check_success(kind: Kind, v: &Value, tx: &str, sid: u64) -> Result<(), Failure> {
    expect(kind, v, "success", tx)?;
    expect_session(kind, v, sid)
}

/// `keepalive` → `ack` with session_id.
pub fn check_keepalive(v: &Value, tx: &str, sid: u64) -> Result<(), Failure> {
    expect(Kind::Keepalive, v, "ack", tx)?;
    expect_session(Kind::Keepalive, v, sid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators() {
        let c = json!({"janus":"success","transaction":"t","data":{"id":5}});
        assert_eq!(check_create(&c, "t").unwrap(), 5);
        assert!(check_create(&c, "u").is_err());
        let e = json!({"janus":"error","transaction":"t","error":{"code":458,"reason":"x"}});
        assert_eq!(
            check_create(&e, "t").unwrap_err().category,
            "janus error 458"
        );
        let a = json!({"janus":"success","session_id":5,"transaction":"t","data":{"id":7}});
        assert_eq!(check_attach(&a, "t", 5).unwrap(), 7);
        assert!(check_attach(&a, "t", 6).is_err());
        let ev = json!({"janus":"event","session_id":5,"sender":7,"transaction":"t",
            "plugindata":{"plugin":"janus.plugin.echotest","data":{"echotest":"event","result":"ok"}}});
        assert!(check_event(&ev, "t", 5, 7).is_ok());
        assert!(check_event(&ev, "t", 5, 8).is_err());
        let bad = json!({"janus":"event","session_id":5,"sender":7,"transaction":"t",
            "plugindata":{"plugin":"janus.plugin.echotest","data":{"echotest":"event","error_code":413,"error":"x"}}});
        assert!(check_event(&bad, "t", 5, 7).is_err());
        let ack = json!({"janus":"ack","session_id":5,"transaction":"t"});
        assert!(check_ack(&ack, "t", 5).is_ok());
        assert!(check_success(Kind::Detach, &ack, "t", 5).is_err());
    }

    #[test]
    fn request_bodies() {
        let b = request(Kind::Message, "t", Ids::handle(1, 2));
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["janus"], "message");
        assert_eq!(v["body"]["audio"], true);
        assert_eq!(v["session_id"], 1);
        assert_eq!(v["handle_id"], 2);
        let b = request(Kind::Create, "t", Ids::NONE);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert!(v.get("session_id").is_none());
    }
}
