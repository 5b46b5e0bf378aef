//! A small script language over fuzzer bytes that drives the jano gateway, and the invariants it
//! checks after every step (a panic is a bug).
//!
//! One copy, two users: the `cargo fuzz` targets in `fuzz/fuzz_targets/` (through the
//! `jano_fuzz` library) and the stable replay test `crates/core/tests/fuzz_corpus.rs`, which
//! includes this file with `#[path]`. It may therefore only use crates both have: `jano-core`,
//! `jano-api`, `jano-plugin`, `jano-echotest` and `serde_json`.
//!
//! # `run_script` input format (target `request_dispatch`)
//!
//! Byte 0 selects the configuration (see [`config`]). Then a sequence of operations, one opcode
//! byte each (taken modulo 7), until the input ends or [`MAX_OPS`] ran:
//!
//! | op | operands | effect |
//! |----|----------|--------|
//! | 0 | `inst`, `len: u16 LE`, `len` bytes | raw bytes → JSON → `handle_request` (parse errors as `Err`) |
//! | 1 | same | same, to `handle_admin` |
//! | 2 | `len: u8`, `len` bytes | a Janus API request built from those bytes, biased to valid |
//! | 3 | `len: u8`, `len` bytes | an Admin API request built the same way |
//! | 4 | `secs: u8` | advance the clock (255 = a whole day), then `handle_timeout` |
//! | 5 | `inst` | `transport_gone` for that instance |
//! | 6 | `n: u8` | deliver the next `n` queued plugin events (`0` = all) |
//!
//! Raw bytes may contain placeholders that are replaced before parsing, so a seed can talk about
//! ids the gateway made up: `$S<d>` (the d-th newest session id seen in a response), `$H<d>` (the
//! d-th newest handle id), `$P<d>` (the session of that handle) and `$T` (a currently valid
//! signed token for every plugin). A missing id becomes `0`.
//!
//! Structured requests read their choices from their own bytes; a byte of `0` (also what an
//! exhausted reader returns) always means "the valid choice", so short inputs get deep.
//!
//! # `run_frames` input format (target `json_frame`)
//!
//! WebSocket frames separated by NUL bytes; a frame starting with `#` goes to the Admin API.
//! Each frame is split into JSON values with `serde_json::Deserializer::into_iter`, as the
//! WebSocket transport does (any parse error: the frame is dropped), and every value is handed
//! to the gateway. The placeholders above work here too.

use jano_core::{
    sign_token, CoreConfig, Gateway, Incoming, InstanceId, Now, Output, PluginEvent,
    PluginRegistry, TransportInfo,
};
use jano_echotest::EchoTest;
use jano_plugin::{
    session_as, CoreServices, HandleRef, Jsep, LocalJsep, Map, Plugin, PluginInfo, PluginResult,
    PluginSession, PushError, SessionRef, Value,
};
use serde_json::json;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Operations per script at most (keeps every input fast).
pub const MAX_OPS: usize = 256;
/// Frames per `run_frames` input at most.
pub const MAX_FRAMES: usize = 64;

const API_SECRET: &str = "janusrocks";
const ADMIN_SECRET: &str = "janusoverlord";
const TOKEN_SECRET: &str = "hmac-key";
const ECHO: &str = "janus.plugin.echotest";
const STUB: &str = "jano.plugin.fuzzstub";
const SEED: u64 = 0x5eed;
/// Ids and tokens remembered from responses (oldest dropped first).
const MEMORY: usize = 64;

const INSTANCES: [InstanceId; 4] = [
    InstanceId {
        transport: 0,
        conn: 0,
    },
    InstanceId {
        transport: 1,
        conn: 1,
    },
    InstanceId {
        transport: 1,
        conn: 2,
    },
    InstanceId {
        transport: 1,
        conn: 3,
    },
];

const JANUS_VERBS: &[&str] = &[
    "create",
    "attach",
    "message",
    "trickle",
    "keepalive",
    "detach",
    "hangup",
    "destroy",
    "claim",
    "info",
    "ping",
];

const ADMIN_VERBS: &[&str] = &[
    "list_sessions",
    "list_handles",
    "handle_info",
    "get_status",
    "set_session_timeout",
    "set_log_level",
    "set_locking_debug",
    "set_refcount_debug",
    "set_libnice_debug",
    "set_log_timestamps",
    "set_log_colors",
    "set_min_nack_queue",
    "set_nack_optimizations",
    "set_no_media_timer",
    "set_slowlink_threshold",
    "accept_new_sessions",
    "message_plugin",
    "query_transport",
    "query_eventhandler",
    "query_logger",
    "custom_event",
    "custom_logline",
    "add_token",
    "list_tokens",
    "allow_token",
    "disallow_token",
    "remove_token",
    "resolve_address",
    "test_stun",
    "loops_info",
    "destroy_session",
    "detach_handle",
    "hangup_webrtc",
    "start_pcap",
    "stop_pcap",
    "start_text2pcap",
    "stop_text2pcap",
    "info",
    "ping",
];

/// Admin verbs that act on one handle (the others are global or session-scoped).
const ADMIN_HANDLE_VERBS: &[&str] = &[
    "handle_info",
    "detach_handle",
    "hangup_webrtc",
    "start_pcap",
    "stop_pcap",
    "start_text2pcap",
    "stop_text2pcap",
];
const ADMIN_SESSION_VERBS: &[&str] = &["list_handles", "destroy_session"];

/// Field names for random extra fields (every name the gateway or EchoTest reads).
const FIELD_NAMES: &[&str] = &[
    "janus",
    "transaction",
    "session_id",
    "handle_id",
    "id",
    "apisecret",
    "token",
    "admin_secret",
    "plugin",
    "opaque_id",
    "loop_index",
    "body",
    "jsep",
    "candidate",
    "candidates",
    "timeout",
    "level",
    "debug",
    "accept",
    "request",
    "plugins",
    "plugin_only",
    "type",
    "sdp",
    "sdpMid",
    "sdpMLineIndex",
    "completed",
    "audio",
    "video",
    "bitrate",
    "record",
    "op",
];

const WORDS: &[&str] = &[
    "",
    "create",
    "attach",
    "message",
    "offer",
    "answer",
    ECHO,
    STUB,
    API_SECRET,
    ADMIN_SECRET,
    "v=0",
    "0",
    "-1",
    "null",
    "\u{0}",
    "é\u{1F600}",
];

/// EchoTest's fields and the kind of value each takes.
const ECHO_FIELDS: &[(&str, u8)] = &[
    ("audio", B),
    ("video", B),
    ("bitrate", U),
    ("record", B),
    ("filename", S),
    ("substream", U),
    ("temporal", U),
    ("fallback", U),
    ("svc", B),
    ("spatial_layer", U),
    ("temporal_layer", U),
    ("audiocodec", S),
    ("videocodec", S),
    ("videoprofile", S),
    ("opusred", B),
    ("min_delay", I),
    ("max_delay", I),
];
const B: u8 = 0;
const U: u8 = 1;
const S: u8 = 2;
const I: u8 = 3;

const STUB_OPS: &[&str] = &[
    "push",
    "sync",
    "error",
    "end",
    "close",
    "faildetach",
    "stray",
    "late",
];

/// The configuration for a script's first byte.
///
/// bit 0 `api_secret`, bit 1 `token_auth`, bit 2 signed tokens (with bit 1), bit 3
/// `admin_secret`, bit 4 `reclaim_session_timeout = 10`, bit 5 `opaqueid_in_api`, bit 6
/// `full_trickle` (it once enabled media; the fuzzed gateway has no media engine, so JSEPs get
/// 490 either way), bit 7 `session_timeout = 5` (else the default 60).
pub fn config(flags: u8) -> CoreConfig {
    let mut c = CoreConfig::default();
    if flags & 1 != 0 {
        c.api_secret = Some(API_SECRET.into());
    }
    if flags & 2 != 0 {
        c.token_auth = true;
    }
    if flags & 4 != 0 {
        c.token_auth_secret = Some(TOKEN_SECRET.into());
    }
    if flags & 8 != 0 {
        c.admin_secret = Some(ADMIN_SECRET.into());
    }
    if flags & 16 != 0 {
        c.reclaim_session_timeout = 10;
    }
    if flags & 32 != 0 {
        c.opaqueid_in_api = true;
    }
    if flags & 64 != 0 {
        c.full_trickle = true;
    }
    if flags & 128 != 0 {
        c.session_timeout = 5;
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Byte reader

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0 once exhausted (0 always means "the valid choice").
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// Up to `n` bytes (fewer when the input ends).
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::from(self.u8()) % items.len()]
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 0
    }
}

fn instance(b: u8) -> InstanceId {
    INSTANCES[usize::from(b) % INSTANCES.len()]
}

/// The `n`-th newest element.
fn newest<T: Copy>(items: &[T], n: u8) -> Option<T> {
    if items.is_empty() {
        return None;
    }
    let i = items.len() - 1 - usize::from(n) % items.len();
    items.get(i).copied()
}

fn remember<T: PartialEq>(list: &mut Vec<T>, item: T) {
    list.retain(|x| *x != item);
    if list.len() >= MEMORY {
        list.remove(0);
    }
    list.push(item);
}

/// A random JSON value, nested at most `depth` levels.
fn gen_value(r: &mut Reader<'_>, depth: u8) -> Value {
    match r.u8() % 12 {
        0 => Value::Null,
        1 => Value::Bool(false),
        2 => Value::Bool(true),
        3 => json!(i64::from(r.u8()) - 128),
        4 => json!(r.u64() as i64),
        5 => json!(r.u64()),
        6 => serde_json::Number::from_f64(f64::from_bits(r.u64()))
            .map(Value::Number)
            .unwrap_or_else(|| json!(0.5)),
        7 => Value::String(r.pick(WORDS).to_owned()),
        8 => {
            let n = usize::from(r.u8() % 16);
            Value::String(String::from_utf8_lossy(r.take(n)).into_owned())
        }
        9 => {
            let specials = [
                json!(0),
                json!(-1),
                json!(1),
                json!(i64::MAX),
                json!(i64::MIN),
                json!(u64::MAX),
                json!(jano_api::MAX_ID),
                json!(jano_api::MAX_ID + 1),
                json!(1.0),
                json!(-0.0),
            ];
            specials[usize::from(r.u8()) % specials.len()].clone()
        }
        10 if depth > 0 => {
            let n = r.u8() % 4;
            Value::Array((0..n).map(|_| gen_value(r, depth - 1)).collect())
        }
        11 if depth > 0 => {
            let n = r.u8() % 4;
            let mut m = Map::new();
            for _ in 0..n {
                let k = r.pick(FIELD_NAMES).to_owned();
                m.insert(k, gen_value(r, depth - 1));
            }
            Value::Object(m)
        }
        _ => Value::Null,
    }
}

/// Sets `name` to `valid` (mostly), leaves it out, or sets a random value.
fn put(r: &mut Reader<'_>, m: &mut Map<String, Value>, name: &str, valid: Value) {
    match r.u8() {
        0..=191 => {
            m.insert(name.into(), valid);
        }
        192..=223 => {}
        _ => {
            m.insert(name.into(), gen_value(r, 2));
        }
    }
}

/// Like [`put`] but absent by default.
fn maybe(r: &mut Reader<'_>, m: &mut Map<String, Value>, name: &str, valid: Value) {
    match r.u8() {
        0..=127 => {}
        128..=223 => {
            m.insert(name.into(), valid);
        }
        _ => {
            m.insert(name.into(), gen_value(r, 2));
        }
    }
}

/// Up to three random extra fields (which may override the ones already set).
fn extras(r: &mut Reader<'_>, m: &mut Map<String, Value>) {
    for _ in 0..(r.u8() >> 6) {
        let name = if r.u8() < 224 {
            r.pick(FIELD_NAMES).to_owned()
        } else {
            let n = usize::from(r.u8() % 8);
            String::from_utf8_lossy(r.take(n)).into_owned()
        };
        m.insert(name, gen_value(r, 2));
    }
}

fn verb(r: &mut Reader<'_>, list: &[&str]) -> String {
    let b = r.u8();
    let v = list[usize::from(b) % list.len()];
    match b {
        0..=219 => v.to_owned(),
        220..=239 => v.to_ascii_uppercase(),
        _ => String::from_utf8_lossy(r.take(usize::from(b % 12))).into_owned(),
    }
}

/// An id field: the natural id by default, else absent, another known id, 0, negative, a
/// string, or anything.
fn id_value(r: &mut Reader<'_>, natural: Option<u64>, pool: &[u64]) -> Option<Value> {
    match r.u8() {
        0..=191 => natural.map(Value::from),
        192..=207 => None,
        208..=223 => Some(json!(newest(pool, r.u8()).unwrap_or(1))),
        224..=231 => Some(json!(0)),
        232..=239 => Some(json!(-(i64::from(r.u8()) + 1))),
        240..=247 => Some(Value::String(natural.unwrap_or(1).to_string())),
        _ => Some(gen_value(r, 1)),
    }
}

fn candidate(r: &mut Reader<'_>) -> Value {
    const C: &str = "candidate:1 1 udp 2013266431 192.168.1.2 50000 typ host";
    match r.u8() % 10 {
        0 => json!({"candidate": C, "sdpMid": "0", "sdpMLineIndex": 0}),
        1 => json!({"candidate": C, "sdpMid": "1"}),
        2 => json!({"candidate": C, "sdpMLineIndex": 1}),
        3 => json!({"completed": true}),
        4 => Value::Null,
        5 => json!({"candidate": C}),
        6 => json!({"candidate": C, "sdpMid": 0}),
        7 => json!({"candidate": C, "sdpMLineIndex": -1}),
        8 => json!({"sdpMid": "0", "candidate": 5}),
        _ => gen_value(r, 2),
    }
}

fn jsep(r: &mut Reader<'_>) -> Value {
    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n";
    let kind = r.pick(&["offer", "answer", "OFFER", "pranswer"]);
    let mut m = Map::new();
    put(r, &mut m, "type", json!(kind));
    put(r, &mut m, "sdp", json!(SDP));
    let trickle = r.bool();
    maybe(r, &mut m, "trickle", json!(trickle));
    maybe(r, &mut m, "e2ee", json!(false));
    maybe(r, &mut m, "simulcast", json!({"ssrcs": [1, 2, 3]}));
    Value::Object(m)
}

fn echo_body(r: &mut Reader<'_>) -> Value {
    let mut m = Map::new();
    for _ in 0..(r.u8() % 4 + 1) {
        let (name, kind) = r.pick(ECHO_FIELDS);
        let c = r.u8();
        let v = if c >= 224 {
            gen_value(r, 1)
        } else {
            match kind {
                B => json!(c & 1 == 0),
                U => json!(u64::from(c) * 1000),
                I => json!(i64::from(c) - 100),
                _ => json!(r.pick(&["opus", "vp8", "h264", "", "x/y"])),
            }
        };
        m.insert(name.into(), v);
    }
    Value::Object(m)
}

fn stub_body(r: &mut Reader<'_>) -> Value {
    let mut m = Map::new();
    m.insert("op".into(), json!(r.pick(STUB_OPS)));
    maybe(r, &mut m, "text", json!("stub failure"));
    Value::Object(m)
}

// ---------------------------------------------------------------------------------------------
// Plugins: EchoTest and a stub with every result kind, both wrapped to track live handles.

type Queue = Arc<Mutex<VecDeque<PluginEvent>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `CoreServices` as the runtime implements it: a queue applied later by the caller.
struct Services {
    queue: Queue,
    package: &'static str,
}

impl CoreServices for Services {
    fn push_event(
        &self,
        handle: &HandleRef,
        transaction: Option<String>,
        message: Map<String, Value>,
        jsep: Option<LocalJsep>,
    ) -> Result<(), PushError> {
        lock(&self.queue).push_back(PluginEvent::Push {
            plugin: self.package,
            handle: handle.clone(),
            transaction,
            message,
            jsep,
        });
        Ok(())
    }

    fn end_session(&self, handle: &HandleRef) {
        lock(&self.queue).push_back(PluginEvent::EndSession {
            handle: handle.clone(),
        });
    }

    fn close_pc(&self, handle: &HandleRef) {
        lock(&self.queue).push_back(PluginEvent::ClosePc {
            handle: handle.clone(),
        });
    }
}

/// What the plugins saw: live handles, and protocol violations by the gateway.
#[derive(Default)]
struct Tracker {
    live: HashMap<u64, &'static str>,
    violations: Vec<String>,
}

/// Wraps a plugin and records which handles the gateway created and destroyed.
struct Tracked {
    inner: Arc<dyn Plugin>,
    tracker: Arc<Mutex<Tracker>>,
}

impl Tracked {
    fn expect_live(&self, handle: &HandleRef, call: &str) {
        let mut t = lock(&self.tracker);
        if !t.live.contains_key(&handle.handle_id) {
            t.violations
                .push(format!("{call} for dead handle {}", handle.handle_id));
        }
    }
}

impl Plugin for Tracked {
    fn info(&self) -> &PluginInfo {
        self.inner.info()
    }

    fn create_session(&self, handle: &HandleRef) -> Result<SessionRef, i32> {
        let result = self.inner.create_session(handle).map(|inner| {
            Arc::new(TrackedSession {
                inner,
                tracker: self.tracker.clone(),
            }) as SessionRef
        });
        if result.is_ok() {
            let mut t = lock(&self.tracker);
            let package = self.inner.info().package;
            if t.live.insert(handle.handle_id, package).is_some() {
                t.violations.push(format!(
                    "create_session twice for handle {}",
                    handle.handle_id
                ));
            }
        }
        result
    }

    fn handle_message(
        &self,
        handle: &HandleRef,
        session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        self.expect_live(handle, "handle_message");
        self.inner
            .handle_message(handle, inner_of(session), transaction, body, jsep)
    }

    fn handle_admin_message(&self, request: Value) -> Option<Value> {
        self.inner.handle_admin_message(request)
    }

    fn shutdown(&self) {
        self.inner.shutdown();
    }

    fn destroy_session(&self, handle: &HandleRef, session: &SessionRef) -> Result<(), i32> {
        {
            let mut t = lock(&self.tracker);
            if t.live.remove(&handle.handle_id).is_none() {
                t.violations.push(format!(
                    "destroy_session for unknown handle {}",
                    handle.handle_id
                ));
            }
        }
        self.inner.destroy_session(handle, inner_of(session))
    }

    fn query_session(&self, handle: &HandleRef, session: &SessionRef) -> Value {
        self.inner.query_session(handle, inner_of(session))
    }
}

/// A tracked plugin's handle state: the wrapped plugin's, plus the liveness check.
struct TrackedSession {
    inner: SessionRef,
    tracker: Arc<Mutex<Tracker>>,
}

impl PluginSession for TrackedSession {
    fn hangup_media(&self, handle: &HandleRef) {
        {
            let mut t = lock(&self.tracker);
            if !t.live.contains_key(&handle.handle_id) {
                t.violations
                    .push(format!("hangup_media for dead handle {}", handle.handle_id));
            }
        }
        self.inner.hangup_media(handle);
    }
}

/// The wrapped plugin's state behind a tracked handle's.
fn inner_of(session: &SessionRef) -> &SessionRef {
    match session_as::<TrackedSession>(session) {
        Some(t) => &t.inner,
        None => session,
    }
}

const STUB_INFO: PluginInfo = PluginInfo {
    package: STUB,
    name: "fuzz stub",
    author: "jano",
    description: "Answers with every PluginResult and calls back every CoreServices method.",
    version: 1,
    version_string: "0.0.1",
};

/// A plugin whose behaviour the message body picks (`{"op": ...}`): synchronous answers,
/// severe errors, `end_session`, `close_pc`, events for a handle that is not the caller's,
/// refused attaches (`opaque_id: "refuse"`) and failed detaches.
struct Stub {
    services: Arc<dyn CoreServices>,
    fail_detach: Mutex<BTreeSet<u64>>,
}

impl Plugin for Stub {
    fn info(&self) -> &PluginInfo {
        &STUB_INFO
    }

    fn create_session(&self, handle: &HandleRef) -> Result<SessionRef, i32> {
        if handle.opaque_id.as_deref() == Some("refuse") {
            return Err(-7);
        }
        Ok(Arc::new(StubSession {
            services: self.services.clone(),
        }))
    }

    fn handle_message(
        &self,
        handle: &HandleRef,
        _session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        let op = body.get("op").and_then(Value::as_str).unwrap_or("push");
        match op {
            "sync" => PluginResult::Ok(body),
            "error" => PluginResult::Error(
                body.get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            "end" => {
                self.services.end_session(handle);
                PluginResult::Ok(Map::new())
            }
            "close" => {
                self.services.close_pc(handle);
                PluginResult::OkWait(None)
            }
            "faildetach" => {
                lock(&self.fail_detach).insert(handle.handle_id);
                PluginResult::Ok(Map::new())
            }
            "stray" => {
                let mut other = handle.clone();
                other.handle_id ^= 1;
                let _ = self.services.push_event(&other, None, body, None);
                PluginResult::OkWait(None)
            }
            "late" => {
                let _ = self.services.push_event(handle, None, body, answer(&jsep));
                PluginResult::OkWait(Some("later".into()))
            }
            _ => {
                let _ = self.services.push_event(
                    handle,
                    Some(transaction.to_owned()),
                    body,
                    answer(&jsep),
                );
                PluginResult::OkWait(None)
            }
        }
    }

    fn destroy_session(&self, handle: &HandleRef, _session: &SessionRef) -> Result<(), i32> {
        if lock(&self.fail_detach).remove(&handle.handle_id) {
            Err(-3)
        } else {
            Ok(())
        }
    }
}

/// The stub's handle state: on a hang-up it pushes an event and closes the PeerConnection.
struct StubSession {
    services: Arc<dyn CoreServices>,
}

impl PluginSession for StubSession {
    fn hangup_media(&self, handle: &HandleRef) {
        let mut m = Map::new();
        m.insert("stub".into(), json!("hungup"));
        let _ = self.services.push_event(handle, None, m, None);
        self.services.close_pc(handle);
    }
}

// ---------------------------------------------------------------------------------------------
// The harness: a gateway, its plugin queue, what was learnt from responses, and the checks.

fn transport(package: &'static str) -> TransportInfo {
    TransportInfo {
        package,
        name: package,
        author: "jano",
        description: "fuzz",
        version: 1,
        version_string: "0.0.1",
    }
}

struct Harness {
    gw: Gateway,
    cfg: CoreConfig,
    queue: Queue,
    tracker: Arc<Mutex<Tracker>>,
    now_s: u64,
    sessions: Vec<u64>,
    handles: Vec<(u64, u64)>,
    tokens: Vec<String>,
    tx: u64,
    /// Which instance owns each session, as told by the outputs.
    owners: HashMap<u64, InstanceId>,
    /// `JANO_FUZZ_TRACE` set: print every request, response and output to stderr.
    trace: bool,
}

impl Harness {
    fn new(flags: u8) -> Self {
        let queue = Queue::default();
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let services = |package| -> Arc<dyn CoreServices> {
            Arc::new(Services {
                queue: queue.clone(),
                package,
            })
        };
        let mut reg = PluginRegistry::new();
        reg.add(Arc::new(Tracked {
            inner: Arc::new(EchoTest::new(services(ECHO))),
            tracker: tracker.clone(),
        }));
        reg.add(Arc::new(Tracked {
            inner: Arc::new(Stub {
                services: services(STUB),
                fail_detach: Mutex::default(),
            }),
            tracker: tracker.clone(),
        }));
        let cfg = config(flags);
        let mut gw = Gateway::new(cfg.clone(), reg, SEED);
        gw.register_transport(transport("janus.transport.http"));
        gw.register_transport(transport("janus.transport.websockets"));
        Harness {
            gw,
            cfg,
            queue,
            tracker,
            now_s: 0,
            sessions: Vec::new(),
            handles: Vec::new(),
            tokens: vec!["tok-a".into()],
            tx: 0,
            owners: HashMap::new(),
            trace: std::env::var_os("JANO_FUZZ_TRACE").is_some(),
        }
    }

    fn now(&self) -> Now {
        Now::from_secs(self.now_s)
    }

    fn next_tx(&mut self) -> String {
        self.tx += 1;
        format!("tx-{}", self.tx)
    }

    fn signed_token(&self, expiry_offset: i64, plugins: &[&str], secret: &str) -> String {
        let expiry = self.now().unix_s.saturating_add_signed(expiry_offset);
        sign_token(secret, expiry, "janus", plugins)
    }

    /// Replaces `$S<d>`, `$H<d>`, `$P<d>` and `$T` (see the module docs).
    fn substitute(&self, raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let rest = &raw[i..];
            let digit = rest.get(2).filter(|d| d.is_ascii_digit()).map(|d| d - b'0');
            let id = match (rest.first(), rest.get(1), digit) {
                (Some(b'$'), Some(b'S'), Some(d)) => Some(newest(&self.sessions, d).unwrap_or(0)),
                (Some(b'$'), Some(b'H'), Some(d)) => {
                    Some(newest(&self.handles, d).map(|h| h.1).unwrap_or(0))
                }
                (Some(b'$'), Some(b'P'), Some(d)) => {
                    Some(newest(&self.handles, d).map(|h| h.0).unwrap_or(0))
                }
                _ => None,
            };
            if let Some(id) = id {
                out.extend_from_slice(id.to_string().as_bytes());
                i += 3;
            } else if rest.starts_with(b"$T") {
                out.extend_from_slice(
                    self.signed_token(3600, &[ECHO, STUB], TOKEN_SECRET)
                        .as_bytes(),
                );
                i += 2;
            } else {
                out.push(raw[i]);
                i += 1;
            }
        }
        out
    }

    fn janus(&mut self, origin: InstanceId, input: Incoming) -> Value {
        let req = input.as_ref().ok().cloned();
        let resp = self.gw.handle_request(self.now(), origin, input);
        self.after(req.as_ref(), &resp);
        resp
    }

    fn admin(&mut self, origin: InstanceId, input: Incoming) -> Value {
        let req = input.as_ref().ok().cloned();
        let resp = self.gw.handle_admin(self.now(), origin, input);
        self.after(req.as_ref(), &resp);
        resp
    }

    fn after(&mut self, req: Option<&Value>, resp: &Value) {
        if self.trace {
            eprintln!("t={}s  -> {req:?}\n       <- {resp}", self.now_s);
        }
        check_response(req, resp);
        self.learn(req, resp);
        self.drain();
    }

    /// Remembers the ids and tokens a successful response reveals.
    fn learn(&mut self, req: Option<&Value>, resp: &Value) {
        if resp.get("janus").and_then(Value::as_str) != Some("success") {
            return;
        }
        if let Some(id) = resp.pointer("/data/id").and_then(Value::as_u64) {
            match resp.get("session_id").and_then(Value::as_u64) {
                Some(sid) => remember(&mut self.handles, (sid, id)),
                None => remember(&mut self.sessions, id),
            }
        }
        let verb = req
            .and_then(|r| r.get("janus"))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        if verb.as_deref() == Some("add_token") {
            if let Some(t) = req.and_then(|r| r.get("token")).and_then(Value::as_str) {
                remember(&mut self.tokens, t.to_owned());
            }
        }
    }

    /// Drains the gateway's outputs, checking each against the ownership model.
    fn drain(&mut self) {
        while let Some(o) = self.gw.poll_output() {
            self.check_output(o);
        }
    }

    fn check_output(&mut self, o: Output) {
        if let Output::Media(cmd) = &o {
            // Without a media engine the core never asks for one.
            panic!("media command without a media engine: {cmd:?}");
        }
        if self.trace {
            eprintln!("       output {o:?}");
        }
        match o {
            Output::Media(_) => {}
            Output::Event {
                to,
                session_id,
                event,
            } => {
                let kind = event.get("janus").and_then(Value::as_str);
                assert!(
                    matches!(
                        kind,
                        Some(
                            "event"
                                | "detached"
                                | "timeout"
                                | "hangup"
                                | "webrtcup"
                                | "media"
                                | "slowlink"
                                | "trickle"
                        )
                    ),
                    "bad event kind: {event}"
                );
                assert_eq!(
                    event.get("session_id").and_then(Value::as_u64),
                    Some(session_id),
                    "event's session_id differs from its routing: {event}"
                );
                assert_eq!(
                    self.owners.get(&session_id),
                    Some(&to),
                    "event for session {session_id} routed to {to:?}, which does not own it: {event}"
                );
                if kind == Some("event") {
                    assert!(
                        event.get("sender").is_some_and(Value::is_u64),
                        "event without sender: {event}"
                    );
                    assert!(
                        event
                            .pointer("/plugindata/data")
                            .is_some_and(Value::is_object),
                        "event without plugindata.data object: {event}"
                    );
                }
            }
            Output::SessionCreated { to, session_id } => {
                let prev = self.owners.insert(session_id, to);
                assert!(
                    prev.is_none(),
                    "session {session_id} created for {to:?} but already owned by {prev:?}"
                );
            }
            Output::SessionOver { to, session_id, .. } => {
                let prev = self.owners.remove(&session_id);
                assert_eq!(
                    prev,
                    Some(to),
                    "SessionOver for session {session_id} sent to {to:?}, owner was {prev:?}"
                );
            }
            Output::SessionClaimed { to, session_id } => {
                let prev = self.owners.insert(session_id, to);
                assert!(
                    prev.is_none(),
                    "session {session_id} claimed by {to:?} while still owned by {prev:?}"
                );
            }
            Output::SetLogLevel(level) => assert!(level <= 7, "log level {level}"),
        }
    }

    /// Delivers queued plugin events (at most `limit`, 0 = all), as the runtime's task does.
    fn flush_plugin_events(&mut self, limit: usize) {
        let mut n = 0;
        while limit == 0 || n < limit {
            let Some(ev) = lock(&self.queue).pop_front() else {
                break;
            };
            n += 1;
            self.gw.handle_plugin_event(self.now(), ev);
            self.drain();
        }
    }

    fn transport_gone(&mut self, inst: InstanceId) {
        // A gone instance is told nothing more: forget what it owned.
        self.owners.retain(|_, owner| *owner != inst);
        self.gw.transport_gone(self.now(), inst);
        self.drain();
    }

    fn advance(&mut self, secs: u64) {
        self.now_s += secs;
        self.gw.handle_timeout(self.now());
        self.drain();
    }

    fn admin_call(&mut self, body: Value) -> Value {
        let resp = self
            .gw
            .handle_admin(self.now(), INSTANCES[0], Ok(body.clone()));
        check_response(Some(&body), &resp);
        resp
    }

    /// Session ids according to the Admin API, with the counts cross-checked.
    fn check_state(&mut self) -> Vec<u64> {
        let resp = self.admin_call(json!({
            "janus": "list_sessions", "transaction": "check", "admin_secret": ADMIN_SECRET,
        }));
        let ids: Vec<u64> = match resp.get("sessions").and_then(Value::as_array) {
            Some(a) => a
                .iter()
                .map(|v| v.as_u64().expect("list_sessions: non-integer id"))
                .collect(),
            None => panic!("list_sessions failed: {resp}"),
        };
        assert_eq!(
            ids.len(),
            self.gw.session_count(),
            "list_sessions and session_count disagree: {resp}"
        );
        let mut handles = BTreeSet::new();
        for &sid in &ids {
            assert!(self.gw.has_session(sid), "listed session {sid} not found");
            let resp = self.admin_call(json!({
                "janus": "list_handles", "transaction": "check", "session_id": sid,
                "admin_secret": ADMIN_SECRET,
            }));
            let list = resp
                .get("handles")
                .and_then(Value::as_array)
                .unwrap_or_else(|| panic!("list_handles {sid} failed: {resp}"));
            for h in list {
                let hid = h.as_u64().expect("list_handles: non-integer id");
                assert!(handles.insert(hid), "handle {hid} listed twice");
            }
        }
        assert_eq!(
            handles.len(),
            self.gw.handle_count(),
            "list_handles total and handle_count disagree"
        );
        {
            let t = lock(&self.tracker);
            assert!(
                t.violations.is_empty(),
                "plugin contract violated: {:?}",
                t.violations
            );
            let live: BTreeSet<u64> = t.live.keys().copied().collect();
            assert_eq!(
                live, handles,
                "plugins' live handles differ from the gateway's"
            );
        }
        for sid in self.owners.keys() {
            assert!(
                ids.contains(sid),
                "session {sid} is owned by an instance but does not exist"
            );
        }
        assert!(
            self.gw.poll_output().is_none(),
            "listing sessions produced output"
        );
        ids
    }

    /// Destroys every session and checks that nothing is left over.
    fn finish(&mut self) {
        self.flush_plugin_events(0);
        let ids = self.check_state();
        for sid in ids {
            let body = json!({
                "janus": "destroy_session", "transaction": "end", "session_id": sid,
                "admin_secret": ADMIN_SECRET,
            });
            let resp = self.admin(INSTANCES[0], Ok(body));
            assert_eq!(
                resp.get("janus").and_then(Value::as_str),
                Some("success"),
                "destroy_session {sid}: {resp}"
            );
        }
        self.flush_plugin_events(0);
        assert_eq!(
            self.gw.session_count(),
            0,
            "sessions left after destroying all"
        );
        assert_eq!(
            self.gw.handle_count(),
            0,
            "handles left after destroying all sessions"
        );
        assert!(self.owners.is_empty(), "owners left: {:?}", self.owners);
        let t = lock(&self.tracker);
        assert!(
            t.live.is_empty(),
            "plugins still hold handles: {:?}",
            t.live
        );
        assert!(t.violations.is_empty(), "{:?}", t.violations);
    }

    // -- structured requests ------------------------------------------------------------------

    fn auth(&self, r: &mut Reader<'_>, m: &mut Map<String, Value>) {
        let c = r.u8();
        match c & 3 {
            0 if self.cfg.api_secret.is_some() => {
                m.insert("apisecret".into(), json!(API_SECRET));
            }
            2 => {
                m.insert("apisecret".into(), json!("nope"));
            }
            3 => {
                m.insert("apisecret".into(), gen_value(r, 1));
            }
            _ => {}
        }
        let all = [ECHO, STUB];
        let token = match (c >> 2) & 7 {
            0 if self.cfg.token_auth => Some(if self.cfg.token_auth_secret.is_some() {
                json!(self.signed_token(600, &all, TOKEN_SECRET))
            } else {
                json!(self.token(0))
            }),
            2 => Some(json!(self.signed_token(-1, &all, TOKEN_SECRET))),
            3 => Some(json!(self.signed_token(600, &[STUB], TOKEN_SECRET))),
            4 => Some(json!(self.signed_token(600, &all, "wrong-key"))),
            5 => Some(gen_value(r, 1)),
            6 => Some(json!(self.token(r.u8()))),
            7 => Some(json!("tok-unknown")),
            _ => None,
        };
        if let Some(t) = token {
            m.insert("token".into(), t);
        }
    }

    /// The `n`-th newest stored token we know of.
    fn token(&self, n: u8) -> String {
        match self.tokens.len() {
            0 => String::new(),
            len => self.tokens[len - 1 - usize::from(n) % len].clone(),
        }
    }

    fn admin_auth(&self, r: &mut Reader<'_>, m: &mut Map<String, Value>) {
        match r.u8() & 3 {
            0 if self.cfg.admin_secret.is_some() => {
                m.insert("admin_secret".into(), json!(ADMIN_SECRET));
            }
            2 => {
                m.insert("admin_secret".into(), json!("nope"));
            }
            3 => {
                m.insert("admin_secret".into(), gen_value(r, 1));
            }
            _ => {}
        }
    }

    fn transaction(&mut self, r: &mut Reader<'_>, m: &mut Map<String, Value>) {
        let tx = self.next_tx();
        match r.u8() {
            0..=229 => {
                m.insert("transaction".into(), json!(tx));
            }
            230..=239 => {}
            _ => {
                m.insert("transaction".into(), gen_value(r, 1));
            }
        }
    }

    fn ids(
        &self,
        r: &mut Reader<'_>,
        m: &mut Map<String, Value>,
        needs_session: bool,
        needs_handle: bool,
    ) {
        let pick = r.u8();
        let (sid, hid) = if needs_handle {
            match newest(&self.handles, pick) {
                Some((s, h)) => (Some(s), Some(h)),
                None => (newest(&self.sessions, 0), None),
            }
        } else if needs_session {
            (newest(&self.sessions, pick), None)
        } else {
            (None, None)
        };
        let session_pool = self.sessions.clone();
        let handle_pool: Vec<u64> = self.handles.iter().map(|h| h.1).collect();
        if let Some(v) = id_value(r, sid, &session_pool) {
            m.insert("session_id".into(), v);
        }
        if let Some(v) = id_value(r, hid, &handle_pool) {
            m.insert("handle_id".into(), v);
        }
    }

    fn build_janus(&mut self, r: &mut Reader<'_>) -> (InstanceId, Value) {
        let inst = instance(r.u8());
        let verb = verb(r, JANUS_VERBS);
        let mut m = Map::new();
        m.insert("janus".into(), json!(verb));
        self.transaction(r, &mut m);
        let v = verb.to_ascii_lowercase();
        let needs_session = !matches!(v.as_str(), "create" | "info" | "ping");
        let needs_handle = matches!(v.as_str(), "message" | "trickle" | "detach" | "hangup");
        self.ids(r, &mut m, needs_session, needs_handle);
        self.auth(r, &mut m);
        match v.as_str() {
            "create" => match r.u8() {
                0..=191 => {}
                192..=215 => {
                    m.insert(
                        "id".into(),
                        json!(newest(&self.sessions, r.u8()).unwrap_or(1)),
                    );
                }
                216..=231 => {
                    m.insert("id".into(), json!(r.u64() & jano_api::MAX_ID));
                }
                232..=239 => {
                    // Beyond what JavaScript (and jansson, for > i64::MAX) can represent.
                    m.insert("id".into(), json!(r.u64() | (1 << 53)));
                }
                _ => {
                    m.insert("id".into(), gen_value(r, 1));
                }
            },
            "attach" => {
                let plugin = match r.u8() {
                    0..=127 => json!(ECHO),
                    128..=223 => json!(STUB),
                    224..=239 => json!("janus.plugin.nope"),
                    _ => gen_value(r, 1),
                };
                m.insert("plugin".into(), plugin);
                let opaque = if r.bool() { "refuse" } else { "opaque-1" };
                maybe(r, &mut m, "opaque_id", json!(opaque));
                maybe(r, &mut m, "loop_index", json!(0));
            }
            "message" => {
                match r.u8() {
                    0..=127 => {
                        let b = echo_body(r);
                        m.insert("body".into(), b);
                    }
                    128..=207 => {
                        let b = stub_body(r);
                        m.insert("body".into(), b);
                    }
                    208..=223 => {
                        m.insert("body".into(), json!({}));
                    }
                    224..=239 => {}
                    _ => {
                        m.insert("body".into(), gen_value(r, 2));
                    }
                }
                match r.u8() {
                    0..=159 => {}
                    160..=239 => {
                        let j = jsep(r);
                        m.insert("jsep".into(), j);
                    }
                    _ => {
                        m.insert("jsep".into(), gen_value(r, 2));
                    }
                }
            }
            "trickle" => match r.u8() % 6 {
                0 | 1 => {
                    let c = candidate(r);
                    m.insert("candidate".into(), c);
                }
                2 => {
                    let n = match r.u8() {
                        250..=255 => 300,
                        b => usize::from(b % 6),
                    };
                    let list: Vec<Value> = (0..n).map(|_| candidate(r)).collect();
                    m.insert("candidates".into(), Value::Array(list));
                }
                3 => {
                    m.insert("candidate".into(), candidate(r));
                    m.insert("candidates".into(), json!([]));
                }
                4 => {}
                _ => {
                    m.insert("candidates".into(), gen_value(r, 2));
                }
            },
            _ => {}
        }
        extras(r, &mut m);
        (inst, Value::Object(m))
    }

    fn build_admin(&mut self, r: &mut Reader<'_>) -> (InstanceId, Value) {
        let inst = instance(r.u8());
        let verb = verb(r, ADMIN_VERBS);
        let v = verb.to_ascii_lowercase();
        let mut m = Map::new();
        m.insert("janus".into(), json!(verb));
        self.transaction(r, &mut m);
        let scoped_timeout = v == "set_session_timeout" && r.bool();
        let needs_handle = ADMIN_HANDLE_VERBS.contains(&v.as_str());
        let needs_session =
            needs_handle || scoped_timeout || ADMIN_SESSION_VERBS.contains(&v.as_str());
        self.ids(r, &mut m, needs_session, needs_handle);
        self.admin_auth(r, &mut m);
        let b = r.bool();
        let n = u64::from(r.u8());
        match v.as_str() {
            "set_session_timeout" => {
                let t = if scoped_timeout {
                    json!(i64::from(r.u8() % 122) - 1)
                } else {
                    json!(n % 121)
                };
                put(r, &mut m, "timeout", t);
            }
            "set_log_level" => put(r, &mut m, "level", json!(n % 10)),
            "set_locking_debug" | "set_refcount_debug" | "set_libnice_debug" => {
                put(r, &mut m, "debug", json!(b))
            }
            "set_log_timestamps" => put(r, &mut m, "timestamps", json!(b)),
            "set_log_colors" => put(r, &mut m, "colors", json!(b)),
            "set_min_nack_queue" => put(r, &mut m, "min_nack_queue", json!(n * 10)),
            "set_nack_optimizations" => put(r, &mut m, "nack_optimizations", json!(b)),
            "set_no_media_timer" => put(r, &mut m, "no_media_timer", json!(n)),
            "set_slowlink_threshold" => put(r, &mut m, "slowlink_threshold", json!(n)),
            "accept_new_sessions" => put(r, &mut m, "accept", json!(b || n > 64)),
            "message_plugin" => {
                let p = r.pick(&[ECHO, STUB, "janus.plugin.nope"]);
                put(r, &mut m, "plugin", json!(p));
                maybe(r, &mut m, "request", json!({"request": "list", "n": n}));
            }
            "query_transport" => {
                let t = r.pick(&[
                    "janus.transport.http",
                    "janus.transport.websockets",
                    "janus.transport.nope",
                ]);
                put(r, &mut m, "transport", json!(t));
                maybe(r, &mut m, "request", json!({}));
            }
            "query_eventhandler" => put(r, &mut m, "handler", json!("janus.eventhandler.x")),
            "query_logger" => put(r, &mut m, "logger", json!("janus.logger.x")),
            "custom_event" => {
                put(r, &mut m, "schema", json!("my.schema"));
                put(r, &mut m, "data", json!({"k": n}));
            }
            "custom_logline" => {
                put(r, &mut m, "line", json!("hello"));
                maybe(r, &mut m, "level", json!(n % 8));
            }
            "add_token" | "allow_token" | "disallow_token" | "remove_token" => {
                let token = if b {
                    format!("tok-{}", n % 8)
                } else {
                    self.token(r.u8())
                };
                put(r, &mut m, "token", json!(token));
                let plugins = match r.u8() % 6 {
                    0 => json!([ECHO]),
                    1 => json!([STUB]),
                    2 => json!([ECHO, STUB]),
                    3 => json!([ECHO, "janus.plugin.nope"]),
                    4 => json!([]),
                    _ => json!([7]),
                };
                if v == "add_token" {
                    maybe(r, &mut m, "plugins", plugins);
                } else if v != "remove_token" {
                    put(r, &mut m, "plugins", plugins);
                }
            }
            "resolve_address" => put(r, &mut m, "address", json!("localhost")),
            "test_stun" => {
                put(r, &mut m, "address", json!("127.0.0.1"));
                put(r, &mut m, "port", json!(3478));
            }
            "handle_info" => maybe(r, &mut m, "plugin_only", json!(b)),
            "start_pcap" | "start_text2pcap" => {
                maybe(r, &mut m, "folder", json!("/tmp"));
                maybe(r, &mut m, "filename", json!("x.pcap"));
                maybe(r, &mut m, "truncate", json!(n));
            }
            _ => {}
        }
        extras(r, &mut m);
        (inst, Value::Object(m))
    }

    fn raw(&self, r: &mut Reader<'_>) -> (InstanceId, Incoming) {
        let inst = instance(r.u8());
        let len = usize::from(r.u16());
        let bytes = self.substitute(r.take(len));
        let input = serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string());
        (inst, input)
    }
}

/// The invariants every response must satisfy, given the request (`None`: unparseable).
fn check_response(req: Option<&Value>, resp: &Value) {
    let obj = resp
        .as_object()
        .unwrap_or_else(|| panic!("response is not an object: {resp}"));
    let kind = obj.get("janus").and_then(Value::as_str);
    assert!(
        matches!(
            kind,
            Some("success" | "ack" | "error" | "server_info" | "pong")
        ),
        "bad response kind: {resp}"
    );
    let code = if kind == Some("error") {
        let err = obj
            .get("error")
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("error without error object: {resp}"));
        let code = err
            .get("code")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("error code not an integer: {resp}"));
        assert!(
            (403..=490).contains(&code),
            "error code out of range: {resp}"
        );
        assert!(
            err.get("reason").is_some_and(Value::is_string),
            "error reason not a string: {resp}"
        );
        Some(code)
    } else {
        None
    };
    if let Some(id) = obj.get("data").and_then(|d| d.get("id")) {
        // Gateway-made ids are JS-safe; a client may pick any positive id with `create`.
        assert!(
            id.as_u64().is_some_and(|id| id > 0),
            "bad created id: {resp}"
        );
    }
    let first_level = matches!(code, Some(454 | 455 | 456 | 467));
    let req_tx = req
        .and_then(|r| r.get("transaction"))
        .and_then(Value::as_str);
    match (req_tx, obj.get("transaction")) {
        (Some(tx), Some(echoed)) => assert_eq!(
            echoed.as_str(),
            Some(tx),
            "transaction not echoed verbatim: request {req:?}, response {resp}"
        ),
        (Some(_), None) => {
            assert!(
                first_level,
                "transaction dropped from a non-validation response: request {req:?}, response {resp}"
            );
            let r = req.and_then(Value::as_object);
            let bad_verb = !r
                .and_then(|r| r.get("janus"))
                .is_some_and(Value::is_string);
            // Ids are signed 64-bit integers on the wire (Janus's JSON library).
            let bad_id = r
                .and_then(|r| r.get("id"))
                .is_some_and(|v| v.as_u64().is_none_or(|id| i64::try_from(id).is_err()));
            assert!(
                bad_verb || bad_id,
                "transaction dropped but the request passes first-level validation: request {req:?}, response {resp}"
            );
        }
        (None, Some(_)) => panic!(
            "transaction in the response of a request without one: request {req:?}, response {resp}"
        ),
        (None, None) => assert!(
            first_level,
            "request without a (string) transaction got past validation: request {req:?}, response {resp}"
        ),
    }
}

/// Runs one `request_dispatch` script (see the module docs). Panics on a broken invariant.
pub fn run_script(data: &[u8]) {
    let mut r = Reader::new(data);
    let mut h = Harness::new(r.u8());
    let mut ops = 0;
    while !r.is_empty() && ops < MAX_OPS {
        ops += 1;
        match r.u8() % 7 {
            0 => {
                let (inst, input) = h.raw(&mut r);
                h.janus(inst, input);
            }
            1 => {
                let (inst, input) = h.raw(&mut r);
                h.admin(inst, input);
            }
            2 => {
                let len = usize::from(r.u8());
                let mut sub = Reader::new(r.take(len));
                let (inst, req) = h.build_janus(&mut sub);
                h.janus(inst, Ok(req));
            }
            3 => {
                let len = usize::from(r.u8());
                let mut sub = Reader::new(r.take(len));
                let (inst, req) = h.build_admin(&mut sub);
                h.admin(inst, Ok(req));
            }
            4 => {
                let secs = match r.u8() {
                    255 => 86_400,
                    s => u64::from(s),
                };
                h.advance(secs);
            }
            5 => {
                let inst = instance(r.u8());
                h.transport_gone(inst);
            }
            _ => {
                let n = usize::from(r.u8());
                h.flush_plugin_events(n);
            }
        }
        h.check_state();
    }
    h.finish();
}

/// Runs one `json_frame` input (see the module docs). Panics on a broken invariant.
pub fn run_frames(data: &[u8]) {
    let mut h = Harness::new(0);
    let conn = INSTANCES[1];
    for frame in data.split(|b| *b == 0).take(MAX_FRAMES) {
        let (admin, frame) = match frame.split_first() {
            Some((b'#', rest)) => (true, rest),
            _ => (false, frame),
        };
        let bytes = h.substitute(frame);
        let mut values = Vec::new();
        let mut failed = false;
        for item in serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>() {
            match item {
                Ok(v) => values.push(v),
                Err(e) => {
                    // The transport answers 454 with the position; that must not panic either.
                    let _ = (e.line(), e.column(), e.classify(), e.to_string());
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            continue;
        }
        for v in values {
            if admin {
                h.admin(conn, Ok(v));
            } else {
                h.janus(conn, Ok(v));
            }
        }
        h.flush_plugin_events(0);
        h.check_state();
    }
    h.finish();
}

/// The stub plugin answers every offer it is given.
fn answer(jsep: &Option<Jsep>) -> Option<LocalJsep> {
    jsep.as_ref().map(|_| LocalJsep::Answer(Default::default()))
}
