//! The glue between the sans-IO gateway core and the world.
//!
//! - Owns the [`Gateway`] behind one short-held lock: every call feeds one input, delivers the
//!   response, then dispatches the queued outputs — all without IO (sinks only queue), so the
//!   lock is never held across a socket write. Plugin calls (`message`, the Admin API's
//!   `message_plugin`) run with the lock released, between the core's two steps of the request.
//! - Gives the core a real clock and runs its watchdog once a second.
//! - Implements the plugins' [`CoreServices`] as a queue that a task applies to the core, so a
//!   plugin can call back from anywhere without re-entering the core (no lock-order deadlocks).
//! - Routes events to the transport instance that owns a session through [`TransportSink`].

use jano_api::Value;
use jano_core::{
    CoreConfig, Gateway, Incoming, InstanceId, MediaBackend, MediaEvent, Now, Output, PluginEvent,
    Step,
};
use jano_plugin::{
    CoreServices, DataMessage, HandleRef, LocalJsep, Map, MediaRouter, PluginTask, PushError,
    RtpPacket,
};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

pub use jano_core::{PluginRegistry, TransportInfo};

/// How a transport receives what the core sends on its own: events and session notices.
/// Implementations must not block (they run with the gateway lock held): queue and return.
pub trait TransportSink: Send + Sync {
    /// An event for the client behind `conn`.
    fn send_event(&self, conn: u64, session_id: u64, event: Value);
    /// `conn` created `session_id`.
    fn session_created(&self, _conn: u64, _session_id: u64) {}
    /// `session_id` is no longer `conn`'s: destroyed, timed out, or claimed elsewhere.
    fn session_over(&self, _conn: u64, _session_id: u64, _timeout: bool, _claimed: bool) {}
    /// `conn` claimed `session_id`.
    fn session_claimed(&self, _conn: u64, _session_id: u64) {}
}

/// Called when the Admin API changes the log level.
type LogLevelHook = Box<dyn Fn(u8) + Send + Sync>;

struct Inner {
    gw: Mutex<Gateway>,
    sinks: RwLock<Vec<Arc<dyn TransportSink>>>,
    start: Instant,
    next_conn: AtomicU64,
    log_level: Mutex<Option<LogLevelHook>>,
    closed: AtomicBool,
    plugin_events: Arc<EventQueue>,
}

/// A cheap, clonable handle on the running gateway.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

/// What waits to be applied to the core: plugin requests and media engine reports.
enum Queued {
    Plugin(PluginEvent),
    Media(MediaEvent),
}

/// Plugin requests and media reports waiting to be applied to the core. A request's own plugin
/// events are applied right after its response, under the same lock (no task switch); the pump
/// task applies those pushed from elsewhere (plugins' own tasks, media threads).
#[derive(Default)]
struct EventQueue {
    events: Mutex<VecDeque<Queued>>,
    ready: Notify,
    closed: AtomicBool,
}

impl EventQueue {
    fn push(&self, ev: Queued) -> Result<(), PushError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(PushError::Closed);
        }
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(ev);
        self.ready.notify_one();
        Ok(())
    }

    fn take(&self) -> VecDeque<Queued> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The media engine, once the server has started one (plugins are built before it).
type MediaSlot = Arc<OnceLock<Arc<dyn MediaBackend>>>;

/// The tokio runtime plugins' tasks run on (the server's, not a media worker's), once started.
type TaskSlot = Arc<OnceLock<tokio::runtime::Handle>>;

/// The plugins' view of the gateway: a queue for signalling, the media engine for media.
struct Services {
    queue: Arc<EventQueue>,
    package: &'static str,
    media: MediaSlot,
    tasks: TaskSlot,
    configs: Option<std::path::PathBuf>,
    token_secret: Option<Arc<str>>,
}

impl CoreServices for Services {
    fn configs_folder(&self) -> Option<std::path::PathBuf> {
        self.configs.clone()
    }

    fn auth_is_signed(&self) -> bool {
        self.token_secret.is_some()
    }

    fn signature_contains(&self, token: &str, descriptor: &str) -> bool {
        let Some(secret) = &self.token_secret else {
            return false;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        jano_core::signed_contains(token, secret, self.package, descriptor, now)
    }

    fn push_event(
        &self,
        handle: &HandleRef,
        transaction: Option<String>,
        message: Map<String, Value>,
        jsep: Option<LocalJsep>,
    ) -> Result<(), PushError> {
        self.queue.push(Queued::Plugin(PluginEvent::Push {
            plugin: self.package,
            handle: handle.clone(),
            transaction,
            message,
            jsep,
        }))
    }

    fn end_session(&self, handle: &HandleRef) {
        let _ = self.queue.push(Queued::Plugin(PluginEvent::EndSession {
            handle: handle.clone(),
        }));
    }

    fn close_pc(&self, handle: &HandleRef) {
        let _ = self.queue.push(Queued::Plugin(PluginEvent::ClosePc {
            handle: handle.clone(),
        }));
    }

    fn relay_rtp(&self, handle: &HandleRef, packet: &RtpPacket) {
        if let Some(m) = self.media.get() {
            m.relay_rtp(handle.handle_id, packet);
        }
    }

    fn relay_data(&self, handle: &HandleRef, message: &DataMessage<'_>) {
        if let Some(m) = self.media.get() {
            m.relay_data(handle.handle_id, message);
        }
    }

    fn relay_shared_data(&self, handle: &HandleRef, message: &jano_plugin::SharedData) {
        if let Some(m) = self.media.get() {
            m.relay_shared_data(handle.handle_id, message);
        }
    }

    fn send_pli(&self, handle: &HandleRef, mindex: Option<usize>) {
        if let Some(m) = self.media.get() {
            m.send_pli(handle.handle_id, mindex);
        }
    }

    fn send_remb(&self, handle: &HandleRef, bitrate: u64) {
        if let Some(m) = self.media.get() {
            m.send_remb(handle.handle_id, bitrate);
        }
    }

    fn media_router(&self) -> Option<Arc<dyn MediaRouter>> {
        self.media.get().and_then(|m| m.router())
    }

    fn spawn(&self, task: PluginTask) {
        match self.tasks.get() {
            Some(h) => {
                h.spawn(task);
            }
            None => tracing::warn!(plugin = self.package, "no runtime for plugin tasks yet"),
        }
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>) {
        match self.tasks.get() {
            Some(h) => {
                h.spawn_blocking(work);
            }
            None => {
                std::thread::spawn(work);
            }
        }
    }
}

/// Creates the plugin-services queue. Each plugin gets its own [`CoreServices`] from
/// [`PluginQueue::services_for`]; the queue goes to [`Runtime::start`].
#[derive(Default)]
pub struct PluginQueue {
    queue: Arc<EventQueue>,
    media: MediaSlot,
    tasks: TaskSlot,
    configs: Option<std::path::PathBuf>,
    token_secret: Option<Arc<str>>,
}

impl PluginQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// The configuration folder plugins write their files back to (`permanent` rooms).
    pub fn set_configs_folder(&mut self, folder: Option<std::path::PathBuf>) {
        self.configs = folder;
    }

    /// The core's `token_auth_secret` when it authenticates with signed tokens: plugins check
    /// their own signed tokens (VideoRoom's `signed_tokens` rooms) with it.
    pub fn set_token_secret(&mut self, secret: Option<String>) {
        self.token_secret = secret.map(Arc::from);
    }

    /// The runtime plugin tasks run on, before the plugins are built: a plugin starts tasks as
    /// it loads its configuration (a Streaming mountpoint's socket reader, a file playback).
    pub fn set_runtime(&self, handle: tokio::runtime::Handle) {
        let _ = self.tasks.set(handle);
    }

    /// The media engine, before the plugins are built (their configured fan-outs need its
    /// router); [`Runtime::start`] hands it to the gateway.
    pub fn set_media(&self, media: Arc<dyn MediaBackend>) {
        let _ = self.media.set(media);
    }

    /// The services for the plugin with this package name.
    pub fn services_for(&self, package: &'static str) -> Arc<dyn CoreServices> {
        Arc::new(Services {
            queue: self.queue.clone(),
            package,
            media: self.media.clone(),
            tasks: self.tasks.clone(),
            configs: self.configs.clone(),
            token_secret: self.token_secret.clone(),
        })
    }

    /// Where the media engine's reports go: into the same queue, applied in order.
    pub fn media_sink(&self) -> Arc<dyn Fn(MediaEvent) + Send + Sync> {
        let q = self.queue.clone();
        Arc::new(move |ev| {
            let _ = q.push(Queued::Media(ev));
        })
    }
}

impl Runtime {
    /// Builds the gateway and starts its watchdog and plugin-event tasks on the current tokio
    /// runtime.
    pub fn start(
        cfg: CoreConfig,
        plugins: PluginRegistry,
        queue: PluginQueue,
        media: Option<Arc<dyn MediaBackend>>,
    ) -> Runtime {
        let start = Instant::now();
        let _ = queue.tasks.set(tokio::runtime::Handle::current());
        let mut gw = Gateway::new(cfg, plugins, rand::random());
        if let Some(m) = media {
            let _ = queue.media.set(m.clone());
            gw.set_media(m);
        }
        let rt = Runtime {
            inner: Arc::new(Inner {
                gw: Mutex::new(gw),
                sinks: RwLock::new(Vec::new()),
                start,
                next_conn: AtomicU64::new(1),
                log_level: Mutex::new(None),
                closed: AtomicBool::new(false),
                plugin_events: queue.queue,
            }),
        };
        let pump = rt.clone();
        tokio::spawn(async move {
            loop {
                pump.inner.plugin_events.ready.notified().await;
                if pump.inner.closed.load(Ordering::Relaxed) {
                    break;
                }
                let mut gw = pump.lock();
                pump.apply_plugin_events(&mut gw);
                pump.dispatch(&mut gw);
            }
        });
        let watchdog = Arc::downgrade(&rt.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = watchdog.upgrade() else {
                    break;
                };
                let rt = Runtime { inner };
                if rt.inner.closed.load(Ordering::Relaxed) {
                    break;
                }
                let now = rt.now();
                let mut gw = rt.lock();
                gw.handle_timeout(now);
                rt.apply_plugin_events(&mut gw);
                rt.dispatch(&mut gw);
            }
        });
        rt
    }

    /// Called when the Admin API changes the log level.
    pub fn on_log_level(&self, f: impl Fn(u8) + Send + Sync + 'static) {
        *self
            .inner
            .log_level
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Box::new(f));
    }

    fn now(&self) -> Now {
        now_at(self.inner.start)
    }

    fn lock(&self) -> MutexGuard<'_, Gateway> {
        // The core never panics on input; a poisoned lock would mean a bug in a plugin call.
        // Keep serving rather than taking the whole server down with it.
        self.inner.gw.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a transport; its requests go through the returned handle.
    pub fn register_transport(
        &self,
        info: TransportInfo,
        sink: Arc<dyn TransportSink>,
    ) -> TransportHandle {
        let id = self.lock().register_transport(info);
        let mut sinks = self.inner.sinks.write().unwrap_or_else(|e| e.into_inner());
        let idx = usize::from(id);
        if sinks.len() <= idx {
            // Indices are dense and assigned in order, so this only ever appends.
            sinks.push(sink);
        }
        TransportHandle {
            rt: self.clone(),
            id,
        }
    }

    /// Serves one request: the core's first step under the lock; the plugin call, if any, with
    /// the lock released (a slow plugin stalls only this request); the response built under the
    /// lock again and handed to `respond` before the outputs it caused are dispatched. Events the
    /// plugin pushes meanwhile are held by the core until then.
    fn serve<R>(
        &self,
        start: impl FnOnce(&mut Gateway, Now) -> Step,
        respond: impl FnOnce(Value) -> R,
    ) -> R {
        let mut gw = self.lock();
        let resp = match start(&mut gw, self.now()) {
            Step::Done(resp) => resp,
            Step::Call(call) => {
                // The first step of a plugin call queues no events, at most media commands (the
                // client's answer for the engine): they go now, not whenever another request
                // next drains the queue.
                self.dispatch(&mut gw);
                drop(gw);
                let done = call.run();
                gw = self.lock();
                gw.finish_call(self.now(), done)
            }
        };
        let r = respond(resp);
        // What the plugin queued while handling it (an async answer) goes out now, after the
        // response, without waiting for the pump task.
        self.apply_plugin_events(&mut gw);
        self.dispatch(&mut gw);
        r
    }

    /// Applies the queued plugin requests, in order.
    fn apply_plugin_events(&self, gw: &mut Gateway) {
        let events = self.inner.plugin_events.take();
        if events.is_empty() {
            return;
        }
        let now = self.now();
        for ev in events {
            match ev {
                Queued::Plugin(ev) => gw.handle_plugin_event(now, ev),
                Queued::Media(ev) => gw.handle_media_event(now, ev),
            }
        }
    }

    fn dispatch(&self, gw: &mut Gateway) {
        let sinks = self.inner.sinks.read().unwrap_or_else(|e| e.into_inner());
        let sink = |to: InstanceId| sinks.get(usize::from(to.transport));
        while let Some(out) = gw.poll_output() {
            match out {
                Output::Event {
                    to,
                    session_id,
                    event,
                } => {
                    if let Some(s) = sink(to) {
                        s.send_event(to.conn, session_id, event);
                    }
                }
                Output::SessionCreated { to, session_id } => {
                    if let Some(s) = sink(to) {
                        s.session_created(to.conn, session_id);
                    }
                }
                Output::SessionOver {
                    to,
                    session_id,
                    timeout,
                    claimed,
                } => {
                    if let Some(s) = sink(to) {
                        s.session_over(to.conn, session_id, timeout, claimed);
                    }
                }
                Output::SessionClaimed { to, session_id } => {
                    if let Some(s) = sink(to) {
                        s.session_claimed(to.conn, session_id);
                    }
                }
                Output::Media(cmd) => {
                    if let Some(m) = gw.media() {
                        m.command(cmd);
                    }
                }
                Output::SetLogLevel(level) => {
                    if let Some(f) = self
                        .inner
                        .log_level
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .as_ref()
                    {
                        f(level);
                    }
                }
            }
        }
    }

    /// Numbers of live sessions and handles.
    pub fn counts(&self) -> (usize, usize) {
        let gw = self.lock();
        (gw.session_count(), gw.handle_count())
    }

    /// Destroys every session (owners are told) and stops the watchdog.
    pub fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Relaxed);
        let mut gw = self.lock();
        gw.shutdown();
        self.apply_plugin_events(&mut gw);
        self.dispatch(&mut gw);
        self.inner
            .plugin_events
            .closed
            .store(true, Ordering::Relaxed);
        self.inner.plugin_events.ready.notify_one();
    }

    /// Runs `f` on the gateway (tests and diagnostics).
    pub fn with_gateway<R>(&self, f: impl FnOnce(&mut Gateway) -> R) -> R {
        let mut gw = self.lock();
        let r = f(&mut gw);
        self.apply_plugin_events(&mut gw);
        self.dispatch(&mut gw);
        r
    }
}

fn now_at(start: Instant) -> Now {
    let mono_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    let unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Now { mono_us, unix_s }
}

/// Where and how one listener of a transport serves.
#[derive(Debug, Clone)]
pub struct Listener {
    pub addr: std::net::SocketAddr,
    /// Address prefixes allowed to connect (empty = everyone), like Janus's `acl` options.
    pub acl: Vec<String>,
}

/// Janus's ACL rule: the peer's address must start with one of the prefixes.
pub fn acl_allows(acl: &[String], peer: &std::net::SocketAddr) -> bool {
    if acl.is_empty() {
        return true;
    }
    let ip = peer.ip().to_string();
    acl.iter().any(|p| ip.starts_with(p.as_str()))
}

/// A transport's handle on the gateway.
#[derive(Clone)]
pub struct TransportHandle {
    rt: Runtime,
    id: u16,
}

impl TransportHandle {
    /// A fresh instance id for a new client context (a WebSocket, a Unix peer…).
    pub fn new_instance(&self) -> u64 {
        self.rt.inner.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    fn instance(&self, conn: u64) -> InstanceId {
        InstanceId {
            transport: self.id,
            conn,
        }
    }

    /// A Janus API request from `conn`. `respond` receives the response before any event the
    /// request caused is dispatched, so a transport that queues both on one connection keeps
    /// Janus's order (e.g. `success` of `detach` before `detached`).
    pub fn request<R>(&self, conn: u64, input: Incoming, respond: impl FnOnce(Value) -> R) -> R {
        let origin = self.instance(conn);
        self.rt
            .serve(|gw, now| gw.start_request(now, origin, input), respond)
    }

    /// An Admin API request from `conn`.
    pub fn admin_request<R>(
        &self,
        conn: u64,
        input: Incoming,
        respond: impl FnOnce(Value) -> R,
    ) -> R {
        let origin = self.instance(conn);
        self.rt
            .serve(|gw, now| gw.start_admin(now, origin, input), respond)
    }

    /// `conn` went away (a socket closed).
    pub fn gone(&self, conn: u64) {
        let now = self.rt.now();
        let mut gw = self.rt.lock();
        gw.transport_gone(now, self.instance(conn));
        self.rt.apply_plugin_events(&mut gw);
        self.rt.dispatch(&mut gw);
    }

    /// An HTTP long poll starting: credentials checked and the session refreshed in one step.
    pub fn touch_session(
        &self,
        session_id: u64,
        apisecret: Option<&str>,
        token: Option<&str>,
    ) -> bool {
        let now = self.rt.now();
        self.rt
            .lock()
            .touch_session(now, session_id, apisecret, token)
    }

    /// A random transaction for synthetic requests.
    pub fn random_transaction(&self) -> String {
        self.rt.lock().random_transaction()
    }

    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }
}

/// Binds `spec` and accepts TCP connections on a task of its own until `stopped` changes:
/// the ACL is checked, at most `limit` connections are open at once, sockets get `TCP_NODELAY`
/// and keepalive probes (a peer that vanished without closing must not hold its socket and
/// sessions forever), and each connection is served by `serve` on its own task. Returns the
/// bound address (useful with port 0).
pub async fn listen<F, Fut>(
    spec: &Listener,
    what: &'static str,
    limit: usize,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    serve: F,
) -> std::io::Result<std::net::SocketAddr>
where
    F: Fn(tokio::net::TcpStream, std::net::SocketAddr) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(spec.addr).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "{what} listening");
    let acl = spec.acl.clone();
    let slots = Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = stopped.changed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "{what}: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if !acl_allows(&acl, &peer) {
                tracing::debug!(%peer, "{what}: connection refused by ACL");
                continue;
            }
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "{what}: connection limit reached");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(30))
                .with_interval(Duration::from_secs(10));
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
            let conn = serve(stream, peer);
            tokio::spawn(async move {
                conn.await;
                drop(slot);
            });
        }
    });
    Ok(addr)
}
