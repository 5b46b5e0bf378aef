//! The Janus API over Nanomsg: one pair v0 (`NN_PAIR`) connection on `ipc://` for the Janus
//! API and one for the Admin API, speaking the Scalability Protocols wire format directly
//! (8-byte protocol header each way, then frames of type byte 1 + 64-bit length + payload).
//! Each test gets its own socket files, which the server removes when it stops.

use crate::clients::Setup;
use crate::server::{Options, TestServer};
use crate::Client;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const PACKAGE: &str = "janus.transport.nanomsg";
/// `\0SP\0`, protocol 0x0010 (pair v0), reserved.
const PAIR_V0_HEADER: [u8; 8] = [0, b'S', b'P', 0, 0x00, 0x10, 0, 0];
/// The in-band message type nanomsg and nng put before each ipc frame.
const IPC_MSG: u8 = 1;

pub struct NanomsgSetup;

/// Socket paths unique to this process and test.
fn unique_paths() -> (PathBuf, PathBuf) {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let base = std::env::temp_dir();
    let pid = std::process::id();
    (
        base.join(format!("jano-conf-nn-{pid}-{n}.ipc")),
        base.join(format!("jano-conf-nn-{pid}-{n}-admin.ipc")),
    )
}

fn ipc_path(srv: &TestServer, cat: &str, key: &str) -> PathBuf {
    let address = srv
        .running
        .config
        .transports
        .get(PACKAGE)
        .and_then(|j| j.get_str(cat, key))
        .unwrap_or_else(|| panic!("the nanomsg test config has no {cat}.{key}"));
    let path = address
        .strip_prefix("ipc://")
        .unwrap_or_else(|| panic!("not an ipc:// address: {address}"));
    PathBuf::from(path)
}

impl Setup for NanomsgSetup {
    type C = NanomsgClient;

    fn configure(&self, opts: &mut Options) {
        let (api, admin) = unique_paths();
        opts.transports.push((
            PACKAGE.into(),
            format!(
                "general: {{\n  enabled = true\n  mode = \"bind\"\n  address = \"ipc://{}\"\n}}\n\
                 admin: {{\n  admin_enabled = true\n  admin_mode = \"bind\"\n  admin_address = \"ipc://{}\"\n}}\n",
                api.display(),
                admin.display()
            ),
        ));
    }

    async fn connect(&self, srv: &TestServer) -> NanomsgClient {
        let api = ipc_path(srv, "general", "address");
        let admin = ipc_path(srv, "admin", "admin_address");
        NanomsgClient::connect(&api, &admin).await
    }
}

pub struct NanomsgClient {
    api: OwnedWriteHalf,
    admin: OwnedWriteHalf,
    /// What both sockets receive, in arrival order.
    rx: mpsc::Receiver<Value>,
    readers: Vec<JoinHandle<()>>,
}

/// Connects, exchanges protocol headers, and starts a reader feeding `tx`.
async fn open(path: &Path, tx: mpsc::Sender<Value>) -> (OwnedWriteHalf, JoinHandle<()>) {
    let mut s = UnixStream::connect(path)
        .await
        .unwrap_or_else(|e| panic!("nanomsg connect {}: {e}", path.display()));
    s.write_all(&PAIR_V0_HEADER).await.expect("send header");
    let mut h = [0u8; 8];
    tokio::time::timeout(crate::WAIT, s.read_exact(&mut h))
        .await
        .expect("the server's protocol header in time")
        .expect("the server's protocol header");
    assert_eq!(h, PAIR_V0_HEADER, "pair v0 peer");
    let (mut r, w) = s.into_split();
    let reader = tokio::spawn(async move {
        loop {
            let mut prefix = [0u8; 9];
            if r.read_exact(&mut prefix).await.is_err() {
                break;
            }
            let [ty, len @ ..] = prefix;
            assert_eq!(ty, IPC_MSG, "ipc message type");
            let mut payload = vec![0u8; u64::from_be_bytes(len) as usize];
            if r.read_exact(&mut payload).await.is_err() {
                break;
            }
            let Ok(v) = serde_json::from_slice::<Value>(&payload) else {
                panic!(
                    "the server sent a message that is not JSON: {}",
                    String::from_utf8_lossy(&payload)
                );
            };
            if tx.send(v).await.is_err() {
                break;
            }
        }
    });
    (w, reader)
}

impl NanomsgClient {
    pub async fn connect(api: &Path, admin: &Path) -> NanomsgClient {
        let (tx, rx) = mpsc::channel(1024);
        let (api, r1) = open(api, tx.clone()).await;
        let (admin, r2) = open(admin, tx).await;
        NanomsgClient {
            api,
            admin,
            rx,
            readers: vec![r1, r2],
        }
    }
}

impl Drop for NanomsgClient {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

impl Client for NanomsgClient {
    fn name(&self) -> &'static str {
        "nanomsg"
    }

    async fn send(&mut self, req: Value, admin: bool) -> Result<(), String> {
        self.send_raw(req.to_string().into_bytes(), admin).await
    }

    async fn send_raw(&mut self, bytes: Vec<u8>, admin: bool) -> Result<(), String> {
        let sock = if admin {
            &mut self.admin
        } else {
            &mut self.api
        };
        let mut frame = Vec::with_capacity(9 + bytes.len());
        frame.push(IPC_MSG);
        frame.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        frame.extend_from_slice(&bytes);
        sock.write_all(&frame).await.map_err(|e| e.to_string())
    }

    async fn recv(&mut self, timeout: Duration) -> Option<Value> {
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()
    }
}
