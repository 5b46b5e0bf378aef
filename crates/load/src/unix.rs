//! The Janus API over Unix sockets: SOCK_SEQPACKET (one connection per client; closing it
//! makes the server drop the client's sessions) and SOCK_DGRAM (one socket per client, bound
//! to its own path: the server answers to the sender's path). One JSON object per packet.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::net::UnixDatagram;
use tokio::time::Instant;
use tokio_seqpacket::UnixSeqpacket;

use crate::janus;
use crate::stats::{Failure, Kind};

/// Receive buffer: Janus sends at most 8192 bytes per packet; jano may send more.
const RECV_BUF: usize = 1 << 20;

pub struct SeqConn {
    sock: UnixSeqpacket,
    buf: Vec<u8>,
}

impl SeqConn {
    pub async fn connect(path: &Path, deadline: Instant) -> Result<SeqConn, Failure> {
        let k = Kind::Connect;
        match tokio::time::timeout_at(deadline, UnixSeqpacket::connect(path)).await {
            Ok(Ok(sock)) => Ok(SeqConn {
                sock,
                buf: vec![0; RECV_BUF],
            }),
            Ok(Err(e)) => Err(Failure::new(
                k,
                "SEQPACKET connect failed",
                format!("{}: {e}", path.display()),
            )),
            Err(_) => Err(Failure::new(k, "timeout", "connecting")),
        }
    }

    pub async fn send(&mut self, kind: Kind, body: &str, deadline: Instant) -> Result<(), Failure> {
        match tokio::time::timeout_at(deadline, self.sock.send(body.as_bytes())).await {
            Ok(Ok(n)) if n == body.len() => Ok(()),
            Ok(Ok(n)) => Err(Failure::new(
                kind,
                "short SEQPACKET send",
                format!("{n} of {} bytes", body.len()),
            )),
            Ok(Err(e)) => Err(Failure::new(kind, "SEQPACKET send failed", e.to_string())),
            Err(_) => Err(Failure::new(kind, "timeout", "sending")),
        }
    }

    pub async fn recv(&mut self, kind: Kind, deadline: Instant) -> Result<Value, Failure> {
        match tokio::time::timeout_at(deadline, self.sock.recv(&mut self.buf)).await {
            Err(_) => Err(Failure::new(kind, "timeout", "waiting for an answer")),
            Ok(Err(e)) => Err(Failure::new(kind, "SEQPACKET recv failed", e.to_string())),
            Ok(Ok(info)) if info.bytes_read() == 0 => Err(Failure::new(
                kind,
                "SEQPACKET closed by server",
                "end of stream",
            )),
            Ok(Ok(info)) if info.truncated() => Err(Failure::new(
                kind,
                "SEQPACKET packet truncated",
                format!("more than {} bytes", self.buf.len()),
            )),
            Ok(Ok(info)) => janus::parse(kind, &self.buf[..info.bytes_read()]),
        }
    }
}

pub struct DgramConn {
    sock: UnixDatagram,
    /// Our bound path (removed on drop).
    path: PathBuf,
    buf: Vec<u8>,
}

impl DgramConn {
    /// Binds `own` and connects to the server's socket at `server`.
    pub fn open(own: PathBuf, server: &Path) -> Result<DgramConn, Failure> {
        let k = Kind::Connect;
        let _ = std::fs::remove_file(&own);
        let sock = UnixDatagram::bind(&own)
            .map_err(|e| Failure::new(k, "DGRAM bind failed", format!("{}: {e}", own.display())))?;
        let conn = DgramConn {
            sock,
            path: own,
            buf: vec![0; RECV_BUF],
        };
        conn.sock.connect(server).map_err(|e| {
            Failure::new(
                k,
                "DGRAM connect failed",
                format!("{}: {e}", server.display()),
            )
        })?;
        Ok(conn)
    }

    pub async fn send(&mut self, kind: Kind, body: &str, deadline: Instant) -> Result<(), Failure> {
        match tokio::time::timeout_at(deadline, self.sock.send(body.as_bytes())).await {
            Ok(Ok(n)) if n == body.len() => Ok(()),
            Ok(Ok(n)) => Err(Failure::new(
                kind,
                "short DGRAM send",
                format!("{n} of {} bytes", body.len()),
            )),
            Ok(Err(e)) => Err(Failure::new(kind, "DGRAM send failed", e.to_string())),
            Err(_) => Err(Failure::new(kind, "timeout", "sending")),
        }
    }

    pub async fn recv(&mut self, kind: Kind, deadline: Instant) -> Result<Value, Failure> {
        match tokio::time::timeout_at(deadline, self.sock.recv(&mut self.buf)).await {
            Err(_) => Err(Failure::new(kind, "timeout", "waiting for an answer")),
            Ok(Err(e)) => Err(Failure::new(kind, "DGRAM recv failed", e.to_string())),
            Ok(Ok(n)) => janus::parse(kind, &self.buf[..n]),
        }
    }
}

impl Drop for DgramConn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A private directory for the clients' DGRAM socket files, removed on drop.
pub struct SocketDir(PathBuf);

impl SocketDir {
    pub fn create() -> Result<SocketDir, String> {
        use rand::distributions::Alphanumeric;
        use rand::Rng;
        let suffix: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(8)
            .map(char::from)
            .collect();
        // Short: sun_path holds 108 bytes.
        let dir = std::env::temp_dir().join(format!("jano-load-{}-{suffix}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(SocketDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
