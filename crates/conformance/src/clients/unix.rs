//! The Janus API over Unix sockets (`janus.transport.pfunix`), SOCK_SEQPACKET or SOCK_DGRAM:
//! one socket for the Janus API and one for the Admin API, in a private temporary directory.

use crate::clients::Setup;
use crate::server::{Options, TestServer};
use crate::Client;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::UnixDatagram;
use tokio_seqpacket::UnixSeqpacket;

const PACKAGE: &str = "janus.transport.pfunix";
/// Larger than any message the server sends (its limit is 1 MiB by default).
const RECV_BUF: usize = 2 << 20;

static N: AtomicU64 = AtomicU64::new(1);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    SeqPacket,
    Dgram,
}

/// A Unix-socket transport for the suite. Each instance has its own directory (removed on
/// drop), so scenarios running in parallel never share a path.
pub struct UnixSetup {
    kind: Kind,
    dir: PathBuf,
}

impl UnixSetup {
    pub fn seqpacket() -> UnixSetup {
        Self::new(Kind::SeqPacket)
    }

    pub fn dgram() -> UnixSetup {
        Self::new(Kind::Dgram)
    }

    fn new(kind: Kind) -> UnixSetup {
        let dir = std::env::temp_dir().join(format!(
            "jano-conf-ux-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        UnixSetup { kind, dir }
    }

    pub fn api_path(&self) -> PathBuf {
        self.dir.join("api.sock")
    }

    pub fn admin_path(&self) -> PathBuf {
        self.dir.join("admin.sock")
    }

    fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::SeqPacket => "SOCK_SEQPACKET",
            Kind::Dgram => "SOCK_DGRAM",
        }
    }
}

impl Drop for UnixSetup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Setup for UnixSetup {
    type C = UnixClient;

    fn configure(&self, opts: &mut Options) {
        let t = self.type_name();
        let text = format!(
            "general: {{\n  enabled = true\n  path = \"{}\"\n  type = \"{t}\"\n}}\nadmin: {{\n  admin_enabled = true\n  admin_path = \"{}\"\n  admin_type = \"{t}\"\n}}\n",
            self.api_path().display(),
            self.admin_path().display()
        );
        opts.transports.push((PACKAGE.into(), text));
    }

    async fn connect(&self, _srv: &TestServer) -> UnixClient {
        UnixClient::connect(self.kind, &self.dir, self.api_path(), self.admin_path()).await
    }
}

enum Sock {
    Seq(UnixSeqpacket),
    /// A datagram socket bound to its own path (the server answers to it).
    Dgram(UnixDatagram, PathBuf),
}

impl Sock {
    async fn open(kind: Kind, dir: &Path, server: &Path) -> Result<Sock, String> {
        match kind {
            Kind::SeqPacket => UnixSeqpacket::connect(server)
                .await
                .map(Sock::Seq)
                .map_err(|e| format!("connect {}: {e}", server.display())),
            Kind::Dgram => {
                let me = dir.join(format!("c{}.sock", N.fetch_add(1, Ordering::Relaxed)));
                let s =
                    UnixDatagram::bind(&me).map_err(|e| format!("bind {}: {e}", me.display()))?;
                s.connect(server)
                    .map_err(|e| format!("connect {}: {e}", server.display()))?;
                Ok(Sock::Dgram(s, me))
            }
        }
    }

    async fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sock::Seq(s) => s.send(bytes).await.map(|_| ()),
            Sock::Dgram(s, _) => s.send(bytes).await.map(|_| ()),
        }
    }

    /// One packet; `None` when the connection closed.
    async fn recv(&self, buf: &mut [u8]) -> Option<usize> {
        let n = match self {
            Sock::Seq(s) => s.recv(buf).await.map(|i| i.bytes_read()),
            Sock::Dgram(s, _) => s.recv(buf).await,
        };
        match n {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        }
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        if let Sock::Dgram(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub struct UnixClient {
    kind: Kind,
    dir: PathBuf,
    api_path: PathBuf,
    /// `None` after the server closed it (SEQPACKET, when a session timed out): the next send
    /// opens a new connection, as an application would.
    api: Option<Sock>,
    admin: Sock,
    api_buf: Vec<u8>,
    admin_buf: Vec<u8>,
}

impl UnixClient {
    async fn connect(kind: Kind, dir: &Path, api: PathBuf, admin: PathBuf) -> UnixClient {
        let a = Sock::open(kind, dir, &api)
            .await
            .unwrap_or_else(|e| panic!("[unix] {e}"));
        let b = Sock::open(kind, dir, &admin)
            .await
            .unwrap_or_else(|e| panic!("[unix] {e}"));
        UnixClient {
            kind,
            dir: dir.to_path_buf(),
            api_path: api,
            api: Some(a),
            admin: b,
            api_buf: vec![0; RECV_BUF],
            admin_buf: vec![0; RECV_BUF],
        }
    }

    async fn send_bytes(&mut self, bytes: &[u8], admin: bool) -> Result<(), String> {
        if admin {
            return self.admin.send(bytes).await.map_err(|e| e.to_string());
        }
        if let Some(s) = &self.api {
            match s.send(bytes).await {
                Ok(()) => return Ok(()),
                // The server closed it meanwhile: reconnect and send again.
                Err(_) if self.kind == Kind::SeqPacket => self.api = None,
                Err(e) => return Err(e.to_string()),
            }
        }
        let s = Sock::open(self.kind, &self.dir, &self.api_path).await?;
        let r = s.send(bytes).await.map_err(|e| e.to_string());
        self.api = Some(s);
        r
    }
}

impl Client for UnixClient {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::SeqPacket => "unix-seqpacket",
            Kind::Dgram => "unix-dgram",
        }
    }

    fn reports_gone(&self) -> bool {
        // A SEQPACKET connection that closes is reported; a DGRAM peer never is.
        self.kind == Kind::SeqPacket
    }

    async fn send(&mut self, req: Value, admin: bool) -> Result<(), String> {
        self.send_bytes(req.to_string().as_bytes(), admin).await
    }

    async fn send_raw(&mut self, bytes: Vec<u8>, admin: bool) -> Result<(), String> {
        self.send_bytes(&bytes, admin).await
    }

    async fn recv(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (n, from_api) = {
                let UnixClient {
                    api,
                    admin,
                    api_buf,
                    admin_buf,
                    ..
                } = self;
                match api {
                    Some(api) => tokio::select! {
                        n = api.recv(api_buf) => (n, true),
                        n = admin.recv(admin_buf) => (n, false),
                        _ = tokio::time::sleep_until(deadline) => return None,
                    },
                    None => tokio::select! {
                        n = admin.recv(admin_buf) => (n, false),
                        _ = tokio::time::sleep_until(deadline) => return None,
                    },
                }
            };
            let Some(n) = n else {
                if from_api {
                    // The server closed the Janus API connection; the next send reconnects.
                    self.api = None;
                    continue;
                }
                return None;
            };
            let buf = if from_api {
                &self.api_buf
            } else {
                &self.admin_buf
            };
            let Ok(v) = serde_json::from_slice::<Value>(buf.get(..n).unwrap_or_default()) else {
                continue;
            };
            if from_api && self.kind == Kind::SeqPacket && v["janus"] == "timeout" {
                // The server closes a connection whose session timed out (as Janus does):
                // drop it now so that the next request goes out on a fresh one, never into a
                // connection about to close.
                self.api = None;
            }
            return Some(v);
        }
    }
}
