//! Shared helpers: an in-process gateway with EchoTest, the transport on sockets in a private
//! temporary directory, and SEQPACKET/DGRAM clients. Every wait is bounded.

#![allow(dead_code)]

use jano_core::CoreConfig;
use jano_pfunix::{Endpoint, Server, Settings, SocketType};
use jano_runtime::{PluginQueue, PluginRegistry, Runtime};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::UnixDatagram;
use tokio_seqpacket::UnixSeqpacket;

pub const ADMIN_SECRET: &str = "unix-admin";
pub const ECHOTEST: &str = "janus.plugin.echotest";
pub const WAIT: Duration = Duration::from_secs(5);

static N: AtomicU64 = AtomicU64::new(1);

/// A fresh transaction.
pub fn tx() -> String {
    format!("t{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A request with a fresh transaction.
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

/// A private directory, removed on drop. Short, so socket paths stay under 108 bytes.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "jano-pfunix-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Gateway options a test may vary.
#[derive(Clone, Default)]
pub struct Core {
    pub session_timeout: u64,
    pub reclaim_session_timeout: u64,
}

pub fn runtime(core: Core) -> Runtime {
    let cfg = CoreConfig {
        session_timeout: core.session_timeout,
        reclaim_session_timeout: core.reclaim_session_timeout,
        admin_secret: Some(ADMIN_SECRET.into()),
        ..Default::default()
    };
    let queue = PluginQueue::new();
    let mut plugins = PluginRegistry::new();
    let echo = jano_echotest::EchoTest::factory(None, queue.services_for(jano_echotest::PACKAGE))
        .expect("echotest");
    plugins.add(echo);
    Runtime::start(cfg, plugins, queue, None)
}

/// A server: the gateway, the transport, and where its sockets are.
pub struct Srv {
    pub rt: Runtime,
    pub server: Server,
    pub api: PathBuf,
    pub admin: PathBuf,
    pub dir: TempDir,
}

impl Srv {
    /// The Janus API as `api`, the Admin API as `admin`.
    pub async fn start(api: SocketType, admin: SocketType, core: Core) -> Srv {
        Self::start_with(api, admin, core, |_| {}).await
    }

    pub async fn start_with(
        api: SocketType,
        admin: SocketType,
        core: Core,
        tweak: impl FnOnce(&mut Settings),
    ) -> Srv {
        let dir = TempDir::new();
        let api_path = dir.path("api.sock");
        let admin_path = dir.path("admin.sock");
        let mut settings = Settings {
            enabled: true,
            api: Some(Endpoint {
                path: api_path.clone(),
                kind: api,
                mode: jano_pfunix::DEFAULT_MODE,
            }),
            admin: Some(Endpoint {
                path: admin_path.clone(),
                kind: admin,
                mode: jano_pfunix::DEFAULT_ADMIN_MODE,
            }),
            ..Default::default()
        };
        tweak(&mut settings);
        let rt = runtime(core);
        let server = jano_pfunix::serve(&rt, settings)
            .await
            .expect("pfunix serve");
        Srv {
            rt,
            server,
            api: api_path,
            admin: admin_path,
            dir,
        }
    }

    pub async fn connect(&self, kind: SocketType, admin: bool) -> Client {
        let path = if admin { &self.admin } else { &self.api };
        Client::connect(kind, path, &self.dir).await
    }

    pub fn stop(self) {
        self.server.stop();
        self.rt.shutdown();
    }
}

/// A client of either type. Responses and events arrive in one stream.
pub enum Client {
    Seq(UnixSeqpacket),
    Dgram(UnixDatagram, PathBuf),
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Client::Dgram(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What a receive saw.
#[derive(Debug)]
pub enum Got {
    Msg(Value),
    /// The server closed the connection.
    Eof,
    Nothing,
}

impl Client {
    pub async fn connect(kind: SocketType, server: &Path, dir: &TempDir) -> Client {
        match kind {
            SocketType::SeqPacket => Client::Seq(
                UnixSeqpacket::connect(server)
                    .await
                    .unwrap_or_else(|e| panic!("connect {}: {e}", server.display())),
            ),
            SocketType::Dgram => {
                let me = dir.path(&format!("c{}.sock", N.fetch_add(1, Ordering::Relaxed)));
                let s = UnixDatagram::bind(&me).expect("bind client");
                s.connect(server).expect("connect dgram");
                Client::Dgram(s, me)
            }
        }
    }

    /// Raises the client's send buffer (the sender's buffer bounds a Unix packet's size);
    /// returns what the kernel granted.
    pub fn set_send_buffer(&self, size: usize) -> usize {
        let s = match self {
            Client::Seq(s) => socket2::SockRef::from(s),
            Client::Dgram(s, _) => socket2::SockRef::from(s),
        };
        let _ = s.set_send_buffer_size(size);
        s.send_buffer_size().unwrap_or(0)
    }

    pub async fn send_raw(&self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Client::Seq(s) => s.send(bytes).await.map(|_| ()),
            Client::Dgram(s, _) => s.send(bytes).await.map(|_| ()),
        }
    }

    pub async fn send(&self, v: &Value) {
        self.send_raw(v.to_string().as_bytes())
            .await
            .unwrap_or_else(|e| panic!("send {v}: {e}"));
    }

    pub async fn recv_within(&self, d: Duration) -> Got {
        let mut buf = vec![0u8; 2 << 20];
        let r = tokio::time::timeout(d, async {
            match self {
                Client::Seq(s) => s.recv(&mut buf).await.map(|i| i.bytes_read()),
                Client::Dgram(s, _) => s.recv(&mut buf).await,
            }
        })
        .await;
        match r {
            Err(_) => Got::Nothing,
            Ok(Err(_)) | Ok(Ok(0)) => Got::Eof,
            Ok(Ok(n)) => Got::Msg(
                serde_json::from_slice(&buf[..n])
                    .unwrap_or_else(|e| panic!("server sent non-JSON ({e}): {:?}", &buf[..n])),
            ),
        }
    }

    pub async fn recv(&self) -> Option<Value> {
        match self.recv_within(WAIT).await {
            Got::Msg(v) => Some(v),
            _ => None,
        }
    }

    /// Sends `r` and returns its response; events received meanwhile go to `stash`.
    pub async fn call(&self, stash: &mut Vec<Value>, r: Value) -> Value {
        let t = r["transaction"].clone();
        self.send(&r).await;
        self.wait(stash, |m| m["transaction"] == t && m["janus"] != "event")
            .await
            .unwrap_or_else(|| panic!("no response to {r}"))
    }

    /// The first message matching `pred` (the stash is looked at first).
    pub async fn wait(
        &self,
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
            match self.recv_within(left).await {
                Got::Msg(m) if pred(&m) => return Some(m),
                Got::Msg(m) => stash.push(m),
                _ => return None,
            }
        }
    }
}

/// Polls `f` until it is true, for at most `d`.
pub async fn eventually(d: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + d;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Admin `list_sessions` over `admin`.
pub async fn sessions(admin: &Client) -> Vec<u64> {
    let mut st = Vec::new();
    let r = admin
        .call(
            &mut st,
            req("list_sessions", json!({"admin_secret": ADMIN_SECRET})),
        )
        .await;
    r["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("list_sessions: {r}"))
        .iter()
        .filter_map(Value::as_u64)
        .collect()
}

/// create → attach EchoTest; returns (session, handle).
pub async fn session_with_echo(c: &Client, st: &mut Vec<Value>) -> (u64, u64) {
    let r = c.call(st, req("create", json!({}))).await;
    let sid = r["data"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("create: {r}"));
    let r = c
        .call(
            st,
            req("attach", json!({"session_id": sid, "plugin": ECHOTEST})),
        )
        .await;
    let hid = r["data"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("attach: {r}"));
    (sid, hid)
}
