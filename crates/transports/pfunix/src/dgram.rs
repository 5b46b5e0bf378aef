//! SOCK_DGRAM: one reader and one writer task per socket; clients are sender paths.

use crate::recv::{self, Datagram, Packet};
use crate::{count, DgramOut, Shared};
use socket2::{SockAddr, SockRef};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixDatagram;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How long one message may wait for room in a client's receive queue.
const SEND_PATIENCE: Duration = Duration::from_millis(100);
/// After that, messages to that client are dropped (not waited for) for this long, so that one
/// stuck client cannot hold up the others sharing the socket.
const CONGESTION_PAUSE: Duration = Duration::from_secs(1);
/// Congested clients remembered at most (older entries are pruned first).
const CONGESTED_MAX: usize = 1024;

pub(crate) fn start(
    sock: Arc<UnixDatagram>,
    admin: bool,
    shared: Arc<Shared>,
    stopped: watch::Receiver<bool>,
) {
    let (tx, rx) = mpsc::channel::<DgramOut>(crate::DGRAM_QUEUE);
    tokio::spawn(writer(sock.clone(), rx, shared.clone(), stopped.clone()));
    tokio::spawn(reader(sock, admin, tx, shared, stopped));
}

async fn reader(
    sock: Arc<UnixDatagram>,
    admin: bool,
    tx: mpsc::Sender<DgramOut>,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    // Admin requests own no sessions, so one instance id serves every Admin API peer.
    let admin_conn = shared.handle.new_instance();
    let max = shared.max_message;
    let clients = &shared.clients;
    loop {
        let r = tokio::select! {
            r = std::future::poll_fn(|cx| recv::poll_datagram(&sock, cx, max)) => r,
            _ = stopped.changed() => return,
        };
        let (path, packet) = match r {
            Ok(Datagram::From(path, packet)) => (path, packet),
            Ok(Datagram::Unbound) => {
                // As Janus does: with no sender path there is nowhere to send the answer.
                count(
                    &clients.stats.refused,
                    "datagram from a socket with no path (unbound or abstract) refused",
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Unix DGRAM receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let input = match packet {
            Packet::Request(input) => input,
            Packet::TooLarge => {
                let err = shared.too_large();
                clients.dgram_send(&tx, Arc::from(path), err);
                continue;
            }
            Packet::Eof => continue,
        };
        if admin {
            let path: Arc<Path> = Arc::from(path);
            shared.handle.admin_request(admin_conn, input, |resp| {
                clients.dgram_send(&tx, path, resp)
            });
        } else {
            let (conn, path) = clients.dgram_pin(path, &tx, &shared.handle);
            shared
                .handle
                .request(conn, input, |resp| clients.dgram_send(&tx, path, resp));
            clients.dgram_unpin(conn);
        }
    }
}

enum Sent {
    Ok,
    /// Nobody is bound at the path any more.
    Gone,
    /// The client's queue stayed full.
    Congested,
    Failed(std::io::Error),
}

async fn writer(
    sock: Arc<UnixDatagram>,
    mut rx: mpsc::Receiver<DgramOut>,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let stats = &shared.clients.stats;
    let mut congested: HashMap<Arc<Path>, Instant> = HashMap::new();
    loop {
        let (path, v) = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => m,
                None => return,
            },
            _ = stopped.changed() => return,
        };
        let now = Instant::now();
        if let Some(until) = congested.get(&path) {
            if *until > now {
                count(
                    &stats.dropped,
                    "message to a congested DGRAM client dropped",
                );
                continue;
            }
            congested.remove(&path);
        }
        let bytes = shared.json.to_vec(&v);
        match send(&sock, &bytes, &path).await {
            Sent::Ok => {}
            Sent::Gone => {
                tracing::debug!(path = %path.display(), "Unix DGRAM client gone: message dropped");
                count(
                    &stats.dropped,
                    "message to a DGRAM client whose socket is gone dropped",
                );
            }
            Sent::Congested => {
                tracing::debug!(path = %path.display(), "Unix DGRAM client not reading: pausing it");
                if congested.len() >= CONGESTED_MAX {
                    congested.retain(|_, t| *t > now);
                    if congested.len() >= CONGESTED_MAX {
                        congested.clear();
                    }
                }
                congested.insert(path, now + CONGESTION_PAUSE);
                count(
                    &stats.dropped,
                    "message to a DGRAM client that does not read dropped",
                );
            }
            Sent::Failed(e) => {
                tracing::debug!(path = %path.display(), error = %e, "Unix DGRAM send failed");
                count(&stats.dropped, "DGRAM send failed: message dropped");
            }
        }
    }
}

/// Sends one datagram to `path`. The socket is non-blocking and the send is tried directly,
/// not through tokio's readiness: a full queue at the *receiver* raises no writable event on
/// our side, so waiting for one could wait forever; a short retry loop cannot.
async fn send(sock: &UnixDatagram, bytes: &[u8], path: &Path) -> Sent {
    let addr = match SockAddr::unix(path) {
        Ok(a) => a,
        Err(e) => return Sent::Failed(e),
    };
    let s = SockRef::from(sock);
    let deadline = Instant::now() + SEND_PATIENCE;
    loop {
        match s.send_to(bytes, &addr) {
            Ok(_) => return Sent::Ok,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Sent::Congested;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ECONNREFUSED | libc::ENOTDIR)
                ) =>
            {
                return Sent::Gone
            }
            Err(e) => return Sent::Failed(e),
        }
    }
}
