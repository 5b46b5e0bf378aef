//! The Janus API over Nanomsg: one SP pair v0 connection for all clients (a pair socket has
//! exactly one peer), with jano-nanomsg's public pair v0 client.

use std::sync::Arc;
use std::time::Duration;

use jano_nanomsg::client::{PairClient, RecvError};
use jano_nanomsg::Address;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::mux::Router;
use crate::stats::{Failure, Kind};

/// A write that takes longer than this means the server stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct NanoLink {
    out: mpsc::Sender<Vec<u8>>,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// Dials `ipc:///path` or `tcp://host:port` and starts the task that owns the connection.
pub async fn open(url: &str, router: Arc<Router>, deadline: Instant) -> Result<NanoLink, String> {
    let addr = Address::parse(url)?;
    let mut client = match tokio::time::timeout_at(deadline, PairClient::dial(&addr)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(format!("nanomsg dial {addr}: {e}")),
        Err(_) => return Err(format!("nanomsg dial {addr}: timeout")),
    };
    let (out, mut out_rx) = mpsc::channel::<Vec<u8>>(4096);
    let (stop, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                m = out_rx.recv() => {
                    let Some(m) = m else { break };
                    match tokio::time::timeout(WRITE_TIMEOUT, client.send(&m)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            router.break_link(format!("nanomsg send: {e}"));
                            break;
                        }
                        Err(_) => {
                            router.break_link("nanomsg send: the server stopped reading".into());
                            break;
                        }
                    }
                }
                // PairClient::recv is a bounded wait on a queue: cancel-safe.
                r = client.recv(Duration::from_secs(3600)) => match r {
                    Ok(m) => router.dispatch(&m),
                    Err(RecvError::Timeout) => {}
                    Err(RecvError::Closed) => {
                        router.break_link("nanomsg: connection closed by the server".into());
                        break;
                    }
                },
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), client.close()).await;
    });
    Ok(NanoLink {
        out,
        stop,
        task: std::sync::Mutex::new(Some(task)),
    })
}

impl NanoLink {
    pub async fn publish(
        &self,
        kind: Kind,
        body: String,
        deadline: Instant,
    ) -> Result<(), Failure> {
        match tokio::time::timeout_at(deadline, self.out.send(body.into_bytes())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Failure::new(
                kind,
                "shared channel broken",
                "nanomsg connection task ended",
            )),
            Err(_) => Err(Failure::new(kind, "timeout", "sending")),
        }
    }

    pub async fn shutdown(&self, deadline: Instant) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(mut task) = task {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}
