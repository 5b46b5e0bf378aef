//! Shared helpers: an in-process gateway with EchoTest, unique socket paths, and a few Janus
//! API shortcuts over [`PairClient`]. Every wait is bounded.

#![allow(dead_code)]

use jano_core::CoreConfig;
use jano_nanomsg::client::PairClient;
use jano_nanomsg::{Address, Endpoint, Mode, Settings};
use jano_runtime::{PluginQueue, PluginRegistry, Runtime};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub const ADMIN_SECRET: &str = "nn-secret";
pub const ECHO: &str = "janus.plugin.echotest";
pub const WAIT: Duration = Duration::from_secs(5);

static N: AtomicU64 = AtomicU64::new(1);

/// A gateway with EchoTest and an admin secret.
pub fn runtime(session_timeout: u64) -> Runtime {
    let queue = PluginQueue::new();
    let mut plugins = PluginRegistry::new();
    plugins.add(
        jano_echotest::EchoTest::factory(None, queue.services_for(jano_echotest::PACKAGE))
            .expect("echotest"),
    );
    let cfg = CoreConfig {
        admin_secret: Some(ADMIN_SECRET.into()),
        session_timeout,
        ..Default::default()
    };
    Runtime::start(cfg, plugins, queue, None)
}

/// A fresh folder for socket files, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "jano-nn-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    pub fn ipc(&self, name: &str) -> Address {
        Address::Ipc(self.0.join(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn tcp_any_port() -> Address {
    Address::Tcp {
        host: "127.0.0.1".into(),
        port: 0,
    }
}

/// A free loopback port (for a peer that listens where jano connects).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

pub fn ep(mode: Mode, address: Address) -> Endpoint {
    Endpoint { mode, address }
}

pub fn settings(api: Option<Endpoint>, admin: Option<Endpoint>) -> Settings {
    Settings {
        enabled: true,
        api,
        admin,
        ..Default::default()
    }
}

/// Where a client reaches a bound server: a TCP port 0 is replaced by the real one.
pub fn reach(configured: &Address, bound: Option<std::net::SocketAddr>) -> Address {
    match (configured, bound) {
        (Address::Tcp { .. }, Some(a)) => Address::Tcp {
            host: a.ip().to_string(),
            port: a.port(),
        },
        (a, _) => a.clone(),
    }
}

pub fn tx() -> String {
    format!("t{}", N.fetch_add(1, Ordering::Relaxed))
}

pub fn req(verb: &str, fields: Value) -> Value {
    let mut v = json!({"janus": verb, "transaction": tx()});
    if let (Some(m), Some(f)) = (v.as_object_mut(), fields.as_object()) {
        for (k, x) in f {
            m.insert(k.clone(), x.clone());
        }
    }
    v
}

pub fn code(v: &Value) -> u64 {
    if v["janus"] == "error" {
        v["error"]["code"].as_u64().unwrap_or(1)
    } else {
        0
    }
}

/// Waits for a message matching `pred`; others are stashed (checked first next time).
pub async fn wait_for(
    c: &mut PairClient,
    stash: &mut Vec<Value>,
    pred: impl Fn(&Value) -> bool,
) -> Option<Value> {
    if let Some(i) = stash.iter().position(&pred) {
        return Some(stash.remove(i));
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        let m = c.recv_json(left).await?;
        if pred(&m) {
            return Some(m);
        }
        stash.push(m);
    }
}

/// Sends `r` and returns its response (the first non-event with its transaction).
pub async fn call(c: &mut PairClient, stash: &mut Vec<Value>, r: Value) -> Value {
    let t = r["transaction"].clone();
    c.send_json(&r).await.expect("send");
    wait_for(c, stash, |m| m["transaction"] == t && m["janus"] != "event")
        .await
        .unwrap_or_else(|| panic!("no response to {r}"))
}

/// create → attach EchoTest → message (ack, then the event) → returns (session, handle).
pub async fn create_attach_message(c: &mut PairClient, stash: &mut Vec<Value>) -> (u64, u64) {
    let r = call(c, stash, req("create", json!({}))).await;
    assert_eq!(r["janus"], "success", "{r}");
    let sid = r["data"]["id"].as_u64().expect("sid");
    let r = call(
        c,
        stash,
        req("attach", json!({"session_id": sid, "plugin": ECHO})),
    )
    .await;
    assert_eq!(r["janus"], "success", "{r}");
    let hid = r["data"]["id"].as_u64().expect("hid");
    let m = req(
        "message",
        json!({"session_id": sid, "handle_id": hid, "body": {"audio": true}}),
    );
    let t = m["transaction"].clone();
    let r = call(c, stash, m).await;
    assert_eq!(r["janus"], "ack", "{r}");
    let ev = wait_for(c, stash, |v| v["janus"] == "event" && v["transaction"] == t)
        .await
        .expect("event for the message");
    assert_eq!(ev["sender"], hid, "{ev}");
    assert_eq!(ev["plugindata"]["data"]["result"], "ok", "{ev}");
    (sid, hid)
}

/// The whole conversation: create/attach/message/detach/destroy.
pub async fn conversation(c: &mut PairClient) {
    let mut st = Vec::new();
    let r = call(c, &mut st, req("info", json!({}))).await;
    assert_eq!(r["janus"], "server_info", "{r}");
    let (sid, hid) = create_attach_message(c, &mut st).await;
    let r = call(
        c,
        &mut st,
        req("detach", json!({"session_id": sid, "handle_id": hid})),
    )
    .await;
    assert_eq!(r["janus"], "success", "{r}");
    let d = wait_for(c, &mut st, |v| v["janus"] == "detached").await;
    assert!(d.is_some(), "detached event");
    let r = call(c, &mut st, req("destroy", json!({"session_id": sid}))).await;
    assert_eq!(r["janus"], "success", "{r}");
}

/// Dials until the server accepts us as its peer (it may still be letting the last one go).
pub async fn dial_retry(a: &Address) -> PairClient {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match PairClient::dial(a).await {
            Ok(mut c) => {
                // A refused connection is closed right away; a ping proves we are the peer.
                let p = req("ping", json!({}));
                if c.send_json(&p).await.is_ok() {
                    if let Some(r) = c.recv_json(Duration::from_secs(1)).await {
                        assert_eq!(r["janus"], "pong", "{r}");
                        return c;
                    }
                }
            }
            Err(e) if tokio::time::Instant::now() >= deadline => panic!("dial {a}: {e}"),
            Err(_) => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never took {a} as its peer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `f` holds (bounded).
pub async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
