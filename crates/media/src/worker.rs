//! Media worker threads: each runs a single-threaded tokio runtime whose tasks are the
//! PeerConnections assigned to it (and, on worker 0, the single-port readers).
//!
//! Each worker also keeps, thread-locally, its PeerConnections by handle, so that a fan-out
//! batch ([`Batch`]: one shared packet, the destinations on this worker) is written into every
//! destination by the worker itself, in one pass: from another thread the batch crosses once
//! through the worker's bounded batch queue; from this worker's own thread (a publisher here)
//! it is delivered right after the current PeerConnection's work, with no queue at all.

use crate::net::Datagram;
use crate::pc::Pc;
use crate::{mmsg, pc, PcLink, PcMsg, Shared};
use jano_core::MediaCommand;
use jano_plugin::{Dest, RtpPacket};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::Interest;
use tokio::sync::mpsc;

/// One packet for the destinations that live on one worker.
pub(crate) struct Batch {
    pub packet: Arc<RtpPacket>,
    pub dests: Arc<[Dest]>,
}

thread_local! {
    /// Which worker this thread is (none on other threads).
    static WORKER: Cell<Option<usize>> = const { Cell::new(None) };
    /// This worker's PeerConnections.
    static PCS: RefCell<HashMap<u64, Rc<RefCell<Pc>>>> = RefCell::new(HashMap::new());
    /// Batches queued from this worker's own thread, delivered by `flush_local`.
    static LOCAL: RefCell<Vec<Batch>> = const { RefCell::new(Vec::new()) };
    /// The engine, for drop accounting.
    static SHARED: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

pub(crate) fn register(handle_id: u64, pc: Rc<RefCell<Pc>>) {
    PCS.with(|m| m.borrow_mut().insert(handle_id, pc));
}

pub(crate) fn unregister(handle_id: u64) {
    PCS.with(|m| m.borrow_mut().remove(&handle_id));
}

/// Queues a batch for delivery on this thread if this thread is `worker`; gives it back
/// otherwise.
pub(crate) fn queue_local(worker: usize, batch: Batch) -> Result<(), Batch> {
    if WORKER.with(Cell::get) != Some(worker) {
        return Err(batch);
    }
    LOCAL.with(|l| l.borrow_mut().push(batch));
    Ok(())
}

/// Delivers the batches queued on this thread (called when no PeerConnection is borrowed).
pub(crate) fn flush_local() {
    loop {
        let batches = LOCAL.with(|l| std::mem::take(&mut *l.borrow_mut()));
        if batches.is_empty() {
            return;
        }
        for b in batches {
            deliver(&b);
        }
    }
}

/// Writes one packet into each destination PeerConnection of this worker.
fn deliver(b: &Batch) {
    for d in b.dests.iter() {
        let pc = PCS.with(|m| m.borrow().get(&d.handle_id).cloned());
        let written = match pc.as_ref().map(|p| p.try_borrow_mut()) {
            Some(Ok(mut p)) => {
                p.relay(&b.packet, d);
                true
            }
            // Not negotiated yet, gone, or (never expected) busy: counted, not waited for.
            _ => false,
        };
        if !written {
            count_drop(d.handle_id);
        }
    }
}

fn count_drop(handle_id: u64) {
    SHARED.with(|s| {
        if let Some(shared) = s.borrow().as_ref() {
            shared.stats.queue_drops.fetch_add(1, Ordering::Relaxed);
            if let Some(link) = shared.pcs.get(handle_id) {
                link.drops.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}

/// Delivers the batches other threads send this worker.
async fn batches(mut rx: mpsc::Receiver<Batch>) {
    while let Some(b) = rx.recv().await {
        deliver(&b);
        // Take what else is queued without a trip through the scheduler.
        for _ in 0..256 {
            match rx.try_recv() {
                Ok(b) => deliver(&b),
                Err(_) => break,
            }
        }
    }
}

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
    batch_tx: mpsc::Sender<Batch>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl WorkerHandle {
    pub fn spawn(index: usize, shared: Arc<Shared>) -> std::io::Result<WorkerHandle> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (batch_tx, batch_rx) = mpsc::channel(shared.cfg.queue_batches.max(64));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(format!("jano-media-{index}"))
            .spawn(move || {
                WORKER.with(|w| w.set(Some(index)));
                SHARED.with(|s| *s.borrow_mut() = Some(shared.clone()));
                let local = tokio::task::LocalSet::new();
                local.spawn_local(batches(batch_rx));
                local.block_on(&rt, run(rx, shared));
                // Nothing of the engine outlives the thread.
                PCS.with(|m| m.borrow_mut().clear());
                SHARED.with(|s| s.borrow_mut().take());
            })?;
        Ok(WorkerHandle {
            tx,
            batch_tx,
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

    /// Hands a fan-out batch to this worker; gives it back when the queue is full.
    pub fn send_batch(&self, batch: Batch) -> Result<(), Batch> {
        self.batch_tx.try_send(batch).map_err(|e| match e {
            mpsc::error::TrySendError::Full(b) | mpsc::error::TrySendError::Closed(b) => b,
        })
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
    let mut batch = mmsg::RecvBatch::new();
    loop {
        // A batch of datagrams per system call; every one goes to its PeerConnection's queue.
        let r = async {
            sock.readable().await?;
            sock.try_io(Interest::READABLE, || batch.recv(sock.as_raw_fd()))
        }
        .await;
        if let Err(e) = r {
            // ICMP errors from a peer that went away surface here; they are per datagram.
            if e.kind() != std::io::ErrorKind::WouldBlock {
                tracing::trace!("single port {local}: {e}");
            }
            continue;
        }
        let at = Instant::now();
        for (source, data) in batch.iter() {
            let Some(link) = single.route(source, data).and_then(|h| shared.pcs.get(h)) else {
                shared.stats.unmatched.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let d = Datagram {
                at,
                source,
                destination: local,
                data: data.to_vec(),
            };
            if link.pkt.try_send(PcMsg::Datagram(d)).is_err() {
                shared.stats.queue_drops.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
