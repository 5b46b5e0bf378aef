//! SOCK_SEQPACKET: one task per connection, reading requests and writing what is queued for it.

use crate::recv::{self, Packet};
use crate::{Out, SeqClient, Shared};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use tokio_seqpacket::{UnixSeqpacket, UnixSeqpacketListener};

pub(crate) async fn accept_loop(
    mut listener: UnixSeqpacketListener,
    admin: bool,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stopped.changed() => return,
        };
        match accepted {
            Ok(sock) => {
                tokio::spawn(connection(sock, admin, shared.clone(), stopped.clone()));
            }
            Err(e) => {
                // E.g. out of file descriptors: keep serving the others, retry shortly.
                tracing::warn!(error = %e, "Unix socket accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(
    sock: UnixSeqpacket,
    admin: bool,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let conn = shared.handle.new_instance();
    let (tx, mut rx) = mpsc::channel::<Out>(crate::OUTBOUND_QUEUE);
    let kill = Arc::new(Notify::new());
    shared.clients.lock().seq.insert(
        conn,
        SeqClient {
            tx: tx.clone(),
            kill: kill.clone(),
        },
    );
    tracing::debug!(conn, admin, "Unix socket client connected");
    let max = shared.max_message;
    let queue = |out: Out| {
        if tx.try_send(out).is_err() {
            tracing::warn!(conn, "Unix socket client too slow: closing its connection");
            kill.notify_one();
        }
    };
    let reason = loop {
        tokio::select! {
            // Writes first: responses and events go out before more requests are read.
            biased;
            _ = stopped.changed() => break "server stopping",
            _ = kill.notified() => break "too slow",
            out = rx.recv() => match out {
                Some(Out::Json(v)) => {
                    let bytes = shared.json.to_vec(&v);
                    let mut grown = false;
                    let outcome = loop {
                        let sent = tokio::select! {
                            r = sock.send(&bytes) => r,
                            _ = stopped.changed() => break Err("server stopping"),
                            _ = kill.notified() => break Err("too slow"),
                        };
                        match sent {
                            Ok(_) => break Ok(()),
                            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) && !grown => {
                                // Connections keep the default (small) send buffer; one that
                                // must carry a larger message gets a buffer that fits it.
                                grown = true;
                                crate::bind::set_send_buffer(&sock, bytes.len().saturating_mul(2).saturating_add(65536));
                            }
                            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                                crate::count(&shared.clients.stats.dropped, "message larger than the socket's send buffer (net.core.wmem_max) dropped");
                                break Ok(());
                            }
                            Err(_) => break Err("write failed"),
                        }
                    };
                    if let Err(reason) = outcome {
                        break reason;
                    }
                }
                Some(Out::Close) => break "a session timed out",
                None => break "closed",
            },
            r = std::future::poll_fn(|cx| recv::poll_packet(&sock, cx, max)) => match r {
                Ok(Packet::Request(input)) => shared.request(conn, admin, input, |resp| queue(Out::Json(resp))),
                Ok(Packet::TooLarge) => queue(Out::Json(shared.too_large())),
                Ok(Packet::Eof) => break "disconnected",
                Err(_) => break "read failed",
            },
        }
    };
    shared.clients.lock().seq.remove(&conn);
    if !admin {
        // Its sessions die now or wait for a claim: the core decides.
        shared.handle.gone(conn);
    }
    let _ = sock.shutdown(std::net::Shutdown::Both);
    tracing::debug!(conn, admin, reason, "Unix socket client closed");
}
