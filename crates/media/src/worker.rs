//! Media worker threads: each runs a single-threaded tokio runtime whose tasks are the
//! PeerConnections assigned to it (and, on worker 0, the single-port readers).

use crate::net::Datagram;
use crate::{pc, PcLink, PcMsg, Shared};
use jano_core::MediaCommand;
use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;

enum WorkerMsg {
    Create {
        handle_id: u64,
        link: PcLink,
        ctrl: mpsc::UnboundedReceiver<PcMsg>,
        pkt: mpsc::Receiver<PcMsg>,
    },
    SinglePortReader(Arc<UdpSocket>),
    Stop,
}

pub(crate) struct WorkerHandle {
    tx: mpsc::UnboundedSender<WorkerMsg>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl WorkerHandle {
    pub fn spawn(index: usize, shared: Arc<Shared>) -> std::io::Result<WorkerHandle> {
        let (tx, rx) = mpsc::unbounded_channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(format!("jano-media-{index}"))
            .spawn(move || {
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, run(rx, shared));
            })?;
        Ok(WorkerHandle {
            tx,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn create(
        &self,
        handle_id: u64,
        link: PcLink,
        ctrl: mpsc::UnboundedReceiver<PcMsg>,
        pkt: mpsc::Receiver<PcMsg>,
    ) {
        let _ = self.tx.send(WorkerMsg::Create {
            handle_id,
            link,
            ctrl,
            pkt,
        });
    }

    pub fn spawn_single_port_reader(&self, socket: Arc<UdpSocket>) {
        let _ = self.tx.send(WorkerMsg::SinglePortReader(socket));
    }

    pub fn stop(&self) {
        let _ = self.tx.send(WorkerMsg::Stop);
    }

    /// Waits for the thread until `deadline` (it is left running past it, detached).
    pub fn join(&self, deadline: Instant) {
        let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<WorkerMsg>, shared: Arc<Shared>) {
    let mut pcs: Vec<(u64, PcLink, tokio::task::JoinHandle<()>)> = Vec::new();
    let mut readers = Vec::new();
    while let Some(msg) = rx.recv().await {
        pcs.retain(|(_, _, t)| !t.is_finished());
        match msg {
            WorkerMsg::Create {
                handle_id,
                link,
                ctrl,
                pkt,
            } => {
                let task = tokio::task::spawn_local(pc::run(
                    handle_id,
                    shared.clone(),
                    link.clone(),
                    ctrl,
                    pkt,
                ));
                pcs.push((handle_id, link, task));
            }
            WorkerMsg::SinglePortReader(sock) => {
                readers.push(tokio::task::spawn_local(single_port_reader(
                    sock,
                    shared.clone(),
                )));
            }
            WorkerMsg::Stop => break,
        }
    }
    for (handle_id, link, _) in &pcs {
        let _ = link.ctrl.send(PcMsg::Command(MediaCommand::Hangup {
            session_id: 0,
            handle_id: *handle_id,
            reason: "Shutdown",
            notify: false,
        }));
    }
    for (_, _, t) in pcs {
        let _ = t.await;
    }
    for r in readers {
        r.abort();
    }
}

/// Reads the shared port and hands each datagram to the PeerConnection it belongs to.
async fn single_port_reader(sock: Arc<UdpSocket>, shared: Arc<Shared>) {
    let Ok(local) = sock.local_addr() else {
        return;
    };
    let Ok(sock) = sock.try_clone().and_then(tokio::net::UdpSocket::from_std) else {
        tracing::error!("single port {local}: can't register the socket");
        return;
    };
    let Some(single) = shared.single.as_ref() else {
        return;
    };
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, source) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors from a peer that went away surface here; they are per datagram.
                tracing::trace!("single port {local}: {e}");
                continue;
            }
        };
        let Some(data) = buf.get(..n) else {
            continue;
        };
        let Some(link) = single.route(source, data).and_then(|h| shared.pcs.get(h)) else {
            shared.stats.unmatched.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let d = Datagram {
            at: Instant::now(),
            source,
            destination: local,
            data: data.to_vec(),
        };
        if link.pkt.try_send(PcMsg::Datagram(d)).is_err() {
            shared.stats.queue_drops.fetch_add(1, Ordering::Relaxed);
        }
    }
}
