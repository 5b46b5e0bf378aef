//! The media engine: one WebRTC PeerConnection per handle, on a fixed pool of worker threads.
//!
//! - Each PeerConnection is a str0m [`str0m::Rtc`] (sans-IO: one input in, outputs drained until
//!   it asks for a timeout) owned by one task on one worker thread for its whole life, so its
//!   state needs no lock. Workers are threads with a single-threaded tokio runtime each; there is
//!   never a thread per handle.
//! - The core talks to it through [`jano_core::MediaBackend`]: commands go to the PeerConnection's
//!   control queue (unbounded: they are few and must not be lost), media from plugins to its
//!   packet queue (bounded: when a peer cannot keep up, packets are dropped and counted, never
//!   queued without end). Payloads are shared (`Arc<[u8]>`), so fan-out never copies.
//! - A plugin that relays to the very handle whose packet it is handling (EchoTest) takes a fast
//!   path: the relay is applied by the same task right after the plugin returns, no queue at all.
//! - Sockets: one UDP port per PeerConnection (from `rtp_port_range`, as Janus does), or every
//!   PeerConnection on one port (`single_port`), demultiplexed by ICE username, then by address.

pub mod ext;
mod mmsg;
mod net;
mod pc;
mod rewrite;
pub mod sdp;
mod worker;

pub use net::{candidate_ips, IpFilter};

use jano_core::{MediaBackend, MediaCommand, MediaEvent, MediaSetting};
use jano_plugin::{DataMessage, Dest, MediaRouter, RtpPacket, SharedData, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// How the engine is set up (the server fills this from `janus.jcfg`'s `nat` and `media`).
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    pub ice_lite: bool,
    /// Send server candidates as `trickle` events instead of only in the SDP.
    pub full_trickle: bool,
    /// Addresses the server gathers candidates on.
    pub ips: Vec<IpAddr>,
    /// Public addresses to advertise (`nat_1_1_mapping`), matched to `ips` by position (one
    /// entry maps them all).
    pub nat_1_1: Vec<IpAddr>,
    /// With `nat_1_1`, also advertise the private host candidate.
    pub keep_private_host: bool,
    /// `rtp_port_range`, inclusive.
    pub port_range: Option<(u16, u16)>,
    /// Every PeerConnection on this one UDP port.
    pub single_port: Option<u16>,
    /// Seconds without media before `media` says `receiving: false`; 0 = never.
    pub no_media_timer: u64,
    /// Lost packets per second that trigger `slowlink`; 0 = never.
    pub slowlink_threshold: u64,
    /// Depth of a PeerConnection's inbound packet queue.
    pub queue_packets: usize,
    /// Milliseconds of sent packets kept to answer NACKs (`min_nack_queue`).
    pub min_nack_queue: u64,
    /// Fan-out batches a worker may have queued from other threads before it drops.
    pub queue_batches: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            workers: 0,
            ice_lite: false,
            full_trickle: false,
            ips: Vec::new(),
            nat_1_1: Vec::new(),
            keep_private_host: false,
            port_range: None,
            single_port: None,
            no_media_timer: 1,
            slowlink_threshold: 0,
            queue_packets: 4096,
            min_nack_queue: 200,
            queue_batches: 8192,
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    #[error("no usable address to gather ICE candidates on (check interface/ice_enforce_list)")]
    NoAddress,
    #[error("couldn't bind the single media port {port}: {source}")]
    SinglePort { port: u16, source: std::io::Error },
    #[error("couldn't start a media worker: {0}")]
    Worker(std::io::Error),
    #[error("couldn't create the DTLS certificate")]
    Certificate,
}

/// Where engine reports go (the runtime feeds them to the core).
pub type EventSink = Arc<dyn Fn(MediaEvent) + Send + Sync>;

/// Counters for the engine as a whole (for logs, `handle_info` and tests).
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Packets dropped because a PeerConnection's queue was full.
    pub queue_drops: AtomicU64,
    /// Datagrams on the single port that matched no PeerConnection.
    pub unmatched: AtomicU64,
    /// Datagrams a PeerConnection refused (garbage, wrong keys).
    pub rejected: AtomicU64,
    /// PeerConnections alive now.
    pub peerconnections: AtomicU64,
}

/// The engine settings the Admin API may change while PeerConnections run; each
/// PeerConnection reads them once a second.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    pub no_media_timer: AtomicU64,
    pub slowlink_threshold: AtomicU64,
    pub min_nack_queue: AtomicU64,
    /// Bumped when `min_nack_queue` changes, so send streams are reconfigured once.
    pub nack_gen: AtomicU64,
}

/// A message for one PeerConnection task.
pub(crate) enum PcMsg {
    Command(MediaCommand),
    /// A datagram the single-port reader received for this PeerConnection.
    Datagram(net::Datagram),
    Rtp(RtpPacket),
    Data(SharedData),
    Pli(Option<usize>),
    Remb(u64),
}

/// The engine side of one PeerConnection, as other threads reach it.
#[derive(Clone)]
pub(crate) struct PcLink {
    pub ctrl: mpsc::UnboundedSender<PcMsg>,
    pub pkt: mpsc::Sender<PcMsg>,
    /// Refreshed by the task for the Admin API's `handle_info`.
    pub info: Arc<Mutex<pc::PcInfo>>,
    /// Packets for this peer dropped before reaching its task (full queues).
    pub drops: Arc<AtomicU64>,
}

/// The map from handle to PeerConnection, in shards so that relays from many threads rarely
/// meet on one lock (and never hold it while doing anything else).
pub(crate) struct PcMap {
    shards: Vec<RwLock<HashMap<u64, PcLink>>>,
}

impl PcMap {
    fn new() -> Self {
        PcMap {
            shards: (0..32).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, id: u64) -> &RwLock<HashMap<u64, PcLink>> {
        // The shard count is a constant above zero, so the modulo always indexes in range.
        &self.shards[(id % self.shards.len() as u64) as usize]
    }

    pub(crate) fn get(&self, id: u64) -> Option<PcLink> {
        self.shard(id)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    pub(crate) fn insert(&self, id: u64, link: PcLink) {
        self.shard(id)
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, link);
    }

    pub(crate) fn remove(&self, id: u64) {
        self.shard(id)
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

pub(crate) struct Shared {
    pub cfg: MediaConfig,
    pub settings: Settings,
    pub pcs: PcMap,
    pub events: EventSink,
    pub stats: EngineStats,
    pub ports: net::PortPool,
    pub single: Option<net::SinglePort>,
    pub cert: str0m::config::DtlsCert,
}

/// The running engine. Cheap to clone.
#[derive(Clone)]
pub struct MediaEngine {
    shared: Arc<Shared>,
    workers: Arc<Vec<worker::WorkerHandle>>,
}

impl MediaEngine {
    /// Starts the workers (and the single-port readers); reports go to `events`.
    pub fn start(cfg: MediaConfig, events: EventSink) -> Result<MediaEngine, MediaError> {
        if cfg.ips.is_empty() {
            return Err(MediaError::NoAddress);
        }
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or(MediaError::Certificate)?;
        let n = if cfg.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            cfg.workers
        };
        let single = match cfg.single_port {
            Some(port) => Some(
                net::SinglePort::bind(&cfg.ips, port)
                    .map_err(|source| MediaError::SinglePort { port, source })?,
            ),
            None => None,
        };
        let settings = Settings {
            no_media_timer: AtomicU64::new(cfg.no_media_timer),
            slowlink_threshold: AtomicU64::new(cfg.slowlink_threshold),
            min_nack_queue: AtomicU64::new(cfg.min_nack_queue),
            nack_gen: AtomicU64::new(1),
        };
        let shared = Arc::new(Shared {
            ports: net::PortPool::new(cfg.port_range),
            settings,
            cfg,
            pcs: PcMap::new(),
            events,
            stats: EngineStats::default(),
            single,
            cert,
        });
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            workers
                .push(worker::WorkerHandle::spawn(i, shared.clone()).map_err(MediaError::Worker)?);
        }
        if let (Some(single), Some(w)) = (&shared.single, workers.first()) {
            for sock in single.sockets() {
                w.spawn_single_port_reader(sock);
            }
        }
        tracing::info!(
            workers = n,
            ips = ?shared.cfg.ips,
            single_port = ?shared.cfg.single_port,
            "media engine started"
        );
        Ok(MediaEngine {
            shared,
            workers: Arc::new(workers),
        })
    }

    /// Engine-wide counters.
    pub fn stats(&self) -> &EngineStats {
        &self.shared.stats
    }

    /// PeerConnections alive now.
    pub fn peerconnections(&self) -> u64 {
        self.shared.stats.peerconnections.load(Ordering::Relaxed)
    }

    /// Hangs up every PeerConnection and stops the workers, waiting up to `grace` for them.
    pub fn shutdown(&self, grace: Duration) {
        for w in self.workers.iter() {
            w.stop();
        }
        let deadline = std::time::Instant::now() + grace;
        for w in self.workers.iter() {
            w.join(deadline);
        }
    }

    fn worker_for(&self, handle_id: u64) -> Option<&worker::WorkerHandle> {
        self.workers
            .get(worker_index(handle_id, self.workers.len()))
    }

    fn to_pc(&self, handle_id: u64, msg: PcMsg) {
        let Some(link) = self.shared.pcs.get(handle_id) else {
            return;
        };
        if link.pkt.try_send(msg).is_err() {
            link.drops.fetch_add(1, Ordering::Relaxed);
            self.shared
                .stats
                .queue_drops
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Applies an Admin API setter: stored for running PeerConnections to read.
    fn apply_setting(&self, s: MediaSetting) {
        let st = &self.shared.settings;
        match s {
            MediaSetting::NoMediaTimer(n) => st.no_media_timer.store(n, Ordering::Relaxed),
            MediaSetting::SlowlinkThreshold(n) => st.slowlink_threshold.store(n, Ordering::Relaxed),
            MediaSetting::MinNackQueue(n) => {
                st.min_nack_queue.store(n, Ordering::Relaxed);
                st.nack_gen.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl MediaBackend for MediaEngine {
    fn check_sdp(&self, offer: bool, text: &str) -> Result<(), String> {
        sdp::check(offer, text)
    }

    fn command(&self, cmd: MediaCommand) {
        let handle_id = match &cmd {
            MediaCommand::Negotiate(n) => n.handle.handle_id,
            MediaCommand::RemoteAnswer { handle_id, .. }
            | MediaCommand::Trickle { handle_id, .. }
            | MediaCommand::Hangup { handle_id, .. } => *handle_id,
            MediaCommand::Settings(s) => {
                self.apply_setting(*s);
                return;
            }
        };
        if let Some(link) = self.shared.pcs.get(handle_id) {
            let _ = link.ctrl.send(PcMsg::Command(cmd));
            return;
        }
        match cmd {
            MediaCommand::Negotiate(_) => {
                // First negotiation: the PeerConnection is registered here, before its task
                // runs, so whatever follows (trickles, relays) queues behind this command.
                let (ctrl, ctrl_rx) = mpsc::unbounded_channel();
                let (pkt, pkt_rx) = mpsc::channel(self.shared.cfg.queue_packets.max(16));
                let link = PcLink {
                    ctrl,
                    pkt,
                    info: Arc::new(Mutex::new(pc::PcInfo::default())),
                    drops: Arc::new(AtomicU64::new(0)),
                };
                self.shared.pcs.insert(handle_id, link.clone());
                let _ = link.ctrl.send(PcMsg::Command(cmd));
                match self.worker_for(handle_id) {
                    Some(w) => w.create(handle_id, link, ctrl_rx, pkt_rx),
                    None => self.shared.pcs.remove(handle_id),
                }
            }
            MediaCommand::Hangup {
                session_id,
                handle_id,
                reason,
                ..
            } => {
                // Nothing to tear down (it failed or is already gone): the core still learns
                // there is no PeerConnection, so the handle can negotiate again.
                tracing::debug!(
                    handle = handle_id,
                    reason,
                    "hangup without a PeerConnection"
                );
                (self.shared.events)(MediaEvent::Hangup {
                    session_id,
                    handle_id,
                    reason: reason.to_owned(),
                    notify: false,
                });
            }
            MediaCommand::RemoteAnswer { .. }
            | MediaCommand::Trickle { .. }
            | MediaCommand::Settings(_) => {}
        }
    }

    fn handle_info(&self, handle_id: u64) -> Option<Value> {
        let link = self.shared.pcs.get(handle_id)?;
        // Cloned out of the lock (cheap: counters and shared texts), laid out as JSON outside it.
        let info = link.info.lock().unwrap_or_else(|e| e.into_inner()).clone();
        info.live
            .then(|| info.to_json(link.drops.load(Ordering::Relaxed)))
    }

    fn relay_rtp(&self, handle_id: u64, packet: &RtpPacket) {
        self.to_pc(handle_id, PcMsg::Rtp(packet.clone()));
    }

    fn relay_data(&self, handle_id: u64, message: &DataMessage<'_>) {
        self.to_pc(
            handle_id,
            PcMsg::Data(SharedData {
                label: message.label.map(Arc::from),
                binary: message.binary,
                data: Arc::from(message.buffer),
            }),
        );
    }

    fn relay_shared_data(&self, handle_id: u64, message: &SharedData) {
        self.to_pc(handle_id, PcMsg::Data(message.clone()));
    }

    fn send_pli(&self, handle_id: u64, mindex: Option<usize>) {
        self.to_pc(handle_id, PcMsg::Pli(mindex));
    }

    fn send_remb(&self, handle_id: u64, bitrate: u64) {
        self.to_pc(handle_id, PcMsg::Remb(bitrate));
    }

    fn router(&self) -> Option<Arc<dyn MediaRouter>> {
        Some(Arc::new(self.clone()))
    }
}

impl MediaRouter for MediaEngine {
    fn workers(&self) -> usize {
        self.workers.len()
    }

    fn worker_of(&self, handle_id: u64) -> usize {
        worker_index(handle_id, self.workers.len())
    }

    fn send_batch(&self, worker: usize, packet: Arc<RtpPacket>, dests: Arc<[Dest]>) {
        let batch = worker::Batch { packet, dests };
        // On the worker's own thread (a publisher on the same worker) the copies are written
        // right after the current callback, with no queue or wake-up.
        let batch = match worker::queue_local(worker, batch) {
            Ok(()) => return,
            Err(b) => b,
        };
        let Some(w) = self.workers.get(worker) else {
            return;
        };
        if let Err(b) = w.send_batch(batch) {
            for d in b.dests.iter() {
                if let Some(link) = self.shared.pcs.get(d.handle_id) {
                    link.drops.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.shared
                .stats
                .queue_drops
                .fetch_add(b.dests.len() as u64, Ordering::Relaxed);
        }
    }

    fn dropped(&self, handle_id: u64) -> u64 {
        self.shared
            .pcs
            .get(handle_id)
            .map_or(0, |l| l.drops.load(Ordering::Relaxed))
    }
}

/// The worker a handle's PeerConnection lives on: fixed by its id, so a fan-out can group
/// destinations before their PeerConnections exist.
fn worker_index(handle_id: u64, workers: usize) -> usize {
    if workers == 0 {
        return 0;
    }
    (handle_id % workers as u64) as usize
}
