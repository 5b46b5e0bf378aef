//! Janus API dispatch: validation, authentication, session and handle lifecycle, plugin calls,
//! and the timers. See the crate docs for the input/output discipline.

use crate::auth::{secret_eq, signed_contains, signed_valid, TokenStore};
use crate::call::{PluginCall, Step};
use crate::media::{MediaBackend, MediaCommand, MediaEvent, Negotiation, RemoteSdp};
use crate::registry::{PluginRegistry, TransportInfo};
use crate::rng::IdRng;
use crate::session::{Handle, PendingTrickle, Session, MAX_PENDING_TRICKLES};
use crate::{CoreConfig, InstanceId, Now, Output};
use jano_api::fields::{self, Kind};
use jano_api::{msg, ErrorCode, JanusError, Map, Value};
use jano_plugin::{HandleRef, Jsep, JsepType, LocalJsep};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// A request as a transport hands it over: parsed JSON, or the parser's complaint, written
/// `<source>(<line>,<column>): <text>` (it becomes the reason of error 454).
pub type Incoming = Result<Value, String>;

/// What a plugin asked of the gateway through its `CoreServices`; applied in order by
/// [`Gateway::handle_plugin_event`].
#[derive(Debug, Clone, PartialEq)]
pub enum PluginEvent {
    Push {
        plugin: &'static str,
        handle: HandleRef,
        transaction: Option<String>,
        message: Map<String, Value>,
        jsep: Option<LocalJsep>,
    },
    EndSession {
        handle: HandleRef,
    },
    ClosePc {
        handle: HandleRef,
    },
}

impl PluginEvent {
    /// The handle the event is about.
    pub fn handle(&self) -> &HandleRef {
        match self {
            PluginEvent::Push { handle, .. }
            | PluginEvent::EndSession { handle }
            | PluginEvent::ClosePc { handle } => handle,
        }
    }
}

/// The gateway state machine.
pub struct Gateway {
    pub(crate) cfg: CoreConfig,
    pub(crate) plugins: PluginRegistry,
    pub(crate) transports: Vec<TransportInfo>,
    pub(crate) sessions: HashMap<u64, Session>,
    /// Sessions owned by each transport instance, so an instance going away is O(its sessions).
    pub(crate) by_source: HashMap<InstanceId, HashSet<u64>>,
    /// Every live handle id, so ids are unique server-wide as in Janus.
    pub(crate) handle_ids: HashSet<u64>,
    pub(crate) tokens: TokenStore,
    pub(crate) rng: IdRng,
    pub(crate) outputs: VecDeque<Output>,
    /// The media engine, when this build runs one.
    pub(crate) media: Option<Arc<dyn MediaBackend>>,
    /// The next [`Handle::serial`](crate::session::Handle).
    pub(crate) next_serial: u64,
}

/// Ids as the Janus core reads them: only JSON integers count; anything else is "absent".
#[derive(Debug, Clone, Copy)]
struct RequestIds {
    session: i128,
    handle: i128,
    handle_present: bool,
}

/// Reads an id as the Janus core does (any JSON integer; other types read as 0). Shared by the
/// Janus and Admin APIs so both address the same sessions.
pub(crate) fn int_field(obj: &Map<String, Value>, name: &str) -> i128 {
    match obj.get(name) {
        Some(v) => v
            .as_i64()
            .map(i128::from)
            .or_else(|| v.as_u64().map(i128::from))
            .unwrap_or(0),
        None => 0,
    }
}

impl RequestIds {
    fn read(obj: &Map<String, Value>) -> Self {
        RequestIds {
            session: int_field(obj, "session_id"),
            handle: int_field(obj, "handle_id"),
            handle_present: obj.contains_key("handle_id"),
        }
    }

    /// The session id as it is echoed in envelopes (only positive ids are echoed).
    fn echo(&self) -> u64 {
        u64::try_from(self.session).unwrap_or(0)
    }
}

/// The request after first-level validation: what every path needs.
pub(crate) struct Request {
    pub(crate) root: Map<String, Value>,
    pub(crate) transaction: String,
    pub(crate) verb: String,
}

/// First-level validation shared by the Janus and Admin APIs. Errors here carry no
/// transaction, as Janus does.
pub(crate) fn first_level(input: Incoming) -> Result<Request, Value> {
    let root = match input {
        Err(detail) => {
            let e = JanusError::new(
                ErrorCode::InvalidJson,
                format!("Invalid Janus API request - {detail}"),
            );
            return Err(msg::error(0, None, &e));
        }
        Ok(Value::Object(m)) => m,
        // Like Janus's core, a non-object simply has no `transaction` (the HTTP transport
        // answers 455 itself before getting here).
        Ok(_) => return Err(msg::error(0, None, &JanusError::missing("transaction"))),
    };
    let ids = RequestIds::read(&root);
    let fail = |e: JanusError| msg::error(ids.echo(), None, &e);
    let transaction = match fields::req_str(&root, "transaction") {
        Ok(t) => t.to_owned(),
        Err(e) => return Err(fail(e)),
    };
    let verb = match fields::req_str(&root, "janus") {
        Ok(v) => v.to_owned(),
        Err(e) => return Err(fail(e)),
    };
    // Janus's JSON integers are signed 64-bit: a larger `id` is no valid id at all (and would
    // make a session the Admin API cannot address).
    let id_ok = match root.get("id") {
        None => true,
        Some(v) => v.as_u64().is_some_and(|id| i64::try_from(id).is_ok()),
    };
    if !id_ok {
        return Err(fail(JanusError::invalid(
            "id",
            Kind::PositiveInteger.phrase(),
        )));
    }
    Ok(Request {
        root,
        transaction,
        verb,
    })
}

impl Gateway {
    /// A gateway with these settings and plugins; `seed` makes ids reproducible in tests.
    pub fn new(cfg: CoreConfig, plugins: PluginRegistry, seed: u64) -> Self {
        Gateway {
            cfg,
            plugins,
            transports: Vec::new(),
            sessions: HashMap::new(),
            by_source: HashMap::new(),
            handle_ids: HashSet::new(),
            tokens: TokenStore::default(),
            rng: IdRng::new(seed),
            outputs: VecDeque::new(),
            media: None,
            next_serial: 1,
        }
    }

    /// The media engine, if one is wired in.
    pub fn media(&self) -> Option<Arc<dyn MediaBackend>> {
        self.media.clone()
    }

    /// Wires in the media engine: from now on JSEPs are negotiated instead of refused.
    pub fn set_media(&mut self, media: Arc<dyn MediaBackend>) {
        self.media = Some(media);
    }

    /// Registers a transport for `info`; the index is the `transport` of its [`InstanceId`]s.
    pub fn register_transport(&mut self, info: TransportInfo) -> u16 {
        self.transports.push(info);
        u16::try_from(self.transports.len() - 1).unwrap_or(u16::MAX)
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    pub fn plugins(&self) -> &PluginRegistry {
        &self.plugins
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn handle_count(&self) -> usize {
        self.handle_ids.len()
    }

    pub fn has_session(&self, session_id: u64) -> bool {
        self.sessions.contains_key(&session_id)
    }

    /// The next queued output; drain after delivering the response of each call.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// A random 11-character alphanumeric transaction, as Janus makes up for synthetic
    /// requests (e.g. `GET /janus/info`).
    pub fn random_transaction(&mut self) -> String {
        self.rng.alnum(11)
    }

    /// What an HTTP long poll does before waiting: check the query-string credentials and, if
    /// they pass, count the poll as activity of the session (Janus injects a synthetic
    /// `keepalive` for this; the effect is the same without building one). Returns whether the
    /// credentials passed.
    pub fn touch_session(
        &mut self,
        now: Now,
        session_id: u64,
        apisecret: Option<&str>,
        token: Option<&str>,
    ) -> bool {
        if !self.authorized(now, apisecret, token) {
            return false;
        }
        if let Some(s) = self.sessions.get_mut(&session_id) {
            s.last_activity_us = now.mono_us;
        }
        true
    }

    fn auth_enabled(&self) -> bool {
        self.cfg.api_secret.is_some() || self.cfg.token_auth
    }

    fn token_valid(&self, now: Now, token: &str) -> bool {
        if !self.cfg.token_auth {
            return false;
        }
        match &self.cfg.token_auth_secret {
            Some(secret) => signed_valid(token, secret, "janus", now.unix_s),
            None => self.tokens.contains(token),
        }
    }

    fn authorized(&self, now: Now, apisecret: Option<&str>, token: Option<&str>) -> bool {
        if !self.auth_enabled() {
            return true;
        }
        let secret_ok = match (&self.cfg.api_secret, apisecret) {
            (Some(s), Some(given)) => secret_eq(s, given),
            _ => false,
        };
        secret_ok || token.is_some_and(|t| self.token_valid(now, t))
    }

    fn request_authorized(&self, now: Now, root: &Map<String, Value>) -> bool {
        let apisecret = root.get("apisecret").and_then(Value::as_str);
        let token = root.get("token").and_then(Value::as_str);
        self.authorized(now, apisecret, token)
    }

    fn token_allows_plugin(&self, now: Now, token: &str, plugin: &str) -> bool {
        match &self.cfg.token_auth_secret {
            Some(secret) => signed_contains(token, secret, "janus", plugin, now.unix_s),
            None => self.tokens.allows(token, plugin),
        }
    }

    /// Handles one Janus API request from `origin` and returns its response, calling the plugin
    /// (for a `message`) right here. Side effects are queued as [`Output`]s. For drivers that
    /// run everything on one thread (tests, fuzzing); a server that must not hold its lock over
    /// a plugin call uses [`Gateway::start_request`] and [`Gateway::finish_call`].
    pub fn handle_request(&mut self, now: Now, origin: InstanceId, input: Incoming) -> Value {
        let step = self.start_request(now, origin, input);
        self.complete(now, step)
    }

    /// Handles one Janus API request from `origin` up to the plugin: either its response
    /// ([`Step::Done`]) or a [`PluginCall`] to [run](PluginCall::run) (with no lock held) and
    /// hand back to [`Gateway::finish_call`], which gives the response. Side effects are queued
    /// as [`Output`]s.
    pub fn start_request(&mut self, now: Now, origin: InstanceId, input: Incoming) -> Step {
        let req = match first_level(input) {
            Ok(r) => r,
            Err(resp) => return Step::Done(resp),
        };
        let ids = RequestIds::read(&req.root);
        let tx = req.transaction.as_str();
        let verb = req.verb.to_ascii_lowercase();
        let result = if ids.session == 0 && ids.handle == 0 {
            self.root_request(now, origin, &req, &verb).map(Step::Done)
        } else {
            self.session_request(now, origin, &req, &verb, ids)
        };
        match result {
            Ok(step) => step,
            Err(e) => Step::Done(msg::error(ids.echo(), Some(tx), &e)),
        }
    }

    fn root_request(
        &mut self,
        now: Now,
        origin: InstanceId,
        req: &Request,
        verb: &str,
    ) -> Result<Value, JanusError> {
        let tx = req.transaction.as_str();
        match verb {
            "info" => Ok(self.server_info(tx)),
            "ping" => Ok(Value::Object(msg::envelope("pong", 0, Some(tx)))),
            "create" => {
                if !self.cfg.accept_new_sessions {
                    return Err(JanusError::of(ErrorCode::NotAcceptingSessions));
                }
                if !self.request_authorized(now, &req.root) {
                    return Err(JanusError::unauthorized());
                }
                let wanted = fields::opt_u64(&req.root, "id")?.unwrap_or(0);
                let sid = if wanted > 0 {
                    if self.sessions.contains_key(&wanted) {
                        // Janus names the taken id as the error's session_id.
                        let e = JanusError::of(ErrorCode::SessionConflict);
                        return Ok(msg::error(wanted, Some(tx), &e));
                    }
                    wanted
                } else {
                    self.fresh_session_id()
                };
                self.sessions
                    .insert(sid, Session::new(sid, origin, now.mono_us));
                self.by_source.entry(origin).or_default().insert(sid);
                self.outputs.push_back(Output::SessionCreated {
                    to: origin,
                    session_id: sid,
                });
                tracing::debug!(session = sid, "session created");
                Ok(msg::success_id(0, tx, sid))
            }
            _ => Err(JanusError::unhandled_at_path(&req.verb)),
        }
    }

    fn fresh_session_id(&mut self) -> u64 {
        loop {
            let id = self.rng.next_id();
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    fn fresh_handle_id(&mut self) -> u64 {
        loop {
            let id = self.rng.next_id();
            if !self.handle_ids.contains(&id) {
                return id;
            }
        }
    }

    fn session_request(
        &mut self,
        now: Now,
        origin: InstanceId,
        req: &Request,
        verb: &str,
        ids: RequestIds,
    ) -> Result<Step, JanusError> {
        if ids.session < 1 {
            return Err(JanusError::of(ErrorCode::SessionNotFound));
        }
        if ids.handle_present && ids.handle < 1 {
            return Err(JanusError::of(ErrorCode::HandleNotFound));
        }
        if !self.request_authorized(now, &req.root) {
            return Err(JanusError::unauthorized());
        }
        let sid = u64::try_from(ids.session).unwrap_or(0);
        let hid = u64::try_from(ids.handle).unwrap_or(0);
        let session = self
            .sessions
            .get_mut(&sid)
            .ok_or_else(|| JanusError::no_such_session(sid))?;
        // Any request that reaches a live session counts as activity.
        session.last_activity_us = now.mono_us;
        if hid > 0 && !session.handles.contains_key(&hid) {
            return Err(JanusError::no_such_handle(hid, sid));
        }
        let tx = req.transaction.as_str();
        let response = match verb {
            "keepalive" => Ok(msg::ack(sid, tx)),
            "attach" => {
                if hid > 0 {
                    return Err(JanusError::unhandled_at_path(&req.verb));
                }
                self.attach(now, sid, req)
            }
            "destroy" => {
                if hid > 0 {
                    return Err(JanusError::unhandled_at_path(&req.verb));
                }
                self.destroy_session(sid, false);
                Ok(msg::success(sid, tx))
            }
            "detach" => {
                if hid == 0 {
                    return Err(JanusError::unhandled_at_path(&req.verb));
                }
                self.detach(sid, hid, true)?;
                Ok(msg::success(sid, tx))
            }
            "hangup" => {
                if hid == 0 {
                    return Err(JanusError::unhandled_at_path(&req.verb));
                }
                // With a PeerConnection the engine tears it down, tells the plugin and reports
                // back (then the `hangup` event goes out). Without one the plugin is still told,
                // as Janus 1.1.2 does (EchoTest answers with its "done" event).
                self.hangup_pc(sid, hid, "Janus API", true, true);
                Ok(msg::success(sid, tx))
            }
            "claim" => {
                self.claim(sid, origin);
                Ok(msg::success(sid, tx))
            }
            "message" => {
                if hid == 0 {
                    return Err(JanusError::unhandled_at_path(&req.verb));
                }
                return self.message(sid, hid, req).map(Step::Call);
            }
            "trickle" => {
                if hid == 0 {
                    return Err(JanusError::unhandled_at_path(&req.verb));
                }
                self.trickle(now, sid, hid, req)
            }
            _ => Err(JanusError::unknown_request(&req.verb)),
        };
        response.map(Step::Done)
    }

    fn attach(&mut self, now: Now, sid: u64, req: &Request) -> Result<Value, JanusError> {
        let root = &req.root;
        let package = fields::req_str(root, "plugin")?;
        let opaque_id = fields::opt_str(root, "opaque_id")?;
        fields::check(root, "loop_index", Kind::PositiveInteger, false)?;
        let plugin = self.plugins.get(package).cloned().ok_or_else(|| {
            JanusError::new(
                ErrorCode::PluginNotFound,
                format!("No such plugin '{package}'"),
            )
        })?;
        let token = root.get("token").and_then(Value::as_str);
        if self.cfg.token_auth {
            if let Some(t) = token {
                if !self.token_allows_plugin(now, t, package) {
                    return Err(JanusError::new(
                        ErrorCode::UnauthorizedPlugin,
                        format!("Provided token can't access plugin '{package}'"),
                    ));
                }
            }
        }
        let hid = self.fresh_handle_id();
        let href = HandleRef {
            session_id: sid,
            handle_id: hid,
            opaque_id: opaque_id.map(Arc::from),
            token: token.map(Arc::from),
        };
        let state = plugin.create_session(&href).map_err(|n| {
            JanusError::new(
                ErrorCode::PluginAttach,
                format!("Couldn't attach to plugin: error '{n}'"),
            )
        })?;
        let serial = self.next_serial;
        self.next_serial += 1;
        let handle = Handle {
            href,
            plugin,
            state,
            created_us: now.mono_us,
            pending_trickles: Vec::new(),
            dropped_trickles: 0,
            pc: false,
            remote_offer: None,
            offered: false,
            serial,
            calls: 0,
            held: VecDeque::new(),
            dropped_events: 0,
        };
        match self.sessions.get_mut(&sid) {
            Some(s) => {
                s.handles.insert(hid, handle);
                self.handle_ids.insert(hid);
            }
            None => {
                // Unreachable in practice (checked by the caller); undo the plugin side.
                let _ = handle.plugin.destroy_session(&handle.href, &handle.state);
                return Err(JanusError::no_such_session(sid));
            }
        }
        tracing::debug!(session = sid, handle = hid, plugin = package, "attached");
        Ok(msg::success_id(sid, &req.transaction, hid))
    }

    /// Removes a handle. With `notify`, the owner gets a `detached` event (not when the whole
    /// session is going away: there is nobody left to tell).
    pub(crate) fn detach(&mut self, sid: u64, hid: u64, notify: bool) -> Result<(), JanusError> {
        let session = self
            .sessions
            .get_mut(&sid)
            .ok_or_else(|| JanusError::no_such_session(sid))?;
        let handle = session
            .handles
            .remove(&hid)
            .ok_or_else(|| JanusError::no_such_handle(hid, sid))?;
        let source = session.source;
        let gone = session.transport_gone;
        self.handle_ids.remove(&hid);
        if handle.pc {
            self.outputs.push_back(Output::Media(MediaCommand::Hangup {
                session_id: sid,
                handle_id: hid,
                reason: "Detach",
                notify: false,
            }));
        }
        let result = handle.plugin.destroy_session(&handle.href, &handle.state);
        if notify && !gone {
            let mut ev = msg::envelope("detached", sid, None);
            ev.insert("sender".into(), hid.into());
            self.add_opaque(&mut ev, &handle.href);
            self.outputs.push_back(Output::Event {
                to: source,
                session_id: sid,
                event: Value::Object(ev),
            });
        }
        result.map_err(|n| {
            JanusError::new(
                ErrorCode::PluginDetach,
                format!("Couldn't detach from plugin: error '{n}'"),
            )
        })
    }

    pub(crate) fn add_opaque(&self, ev: &mut Map<String, Value>, href: &HandleRef) {
        if self.cfg.opaqueid_in_api {
            if let Some(o) = &href.opaque_id {
                ev.insert("opaque_id".into(), Value::String(o.to_string()));
            }
        }
    }

    /// Destroys a session and its handles; the owner is told the session is over.
    pub(crate) fn destroy_session(&mut self, sid: u64, timeout: bool) {
        let Some(mut session) = self.sessions.remove(&sid) else {
            return;
        };
        if let Some(set) = self.by_source.get_mut(&session.source) {
            set.remove(&sid);
            if set.is_empty() {
                self.by_source.remove(&session.source);
            }
        }
        if !session.transport_gone {
            if timeout {
                self.outputs.push_back(Output::Event {
                    to: session.source,
                    session_id: sid,
                    event: Value::Object(msg::envelope("timeout", sid, None)),
                });
            }
            self.outputs.push_back(Output::SessionOver {
                to: session.source,
                session_id: sid,
                timeout,
                claimed: false,
            });
        }
        for (hid, handle) in session.handles.drain() {
            self.handle_ids.remove(&hid);
            if handle.pc {
                self.outputs.push_back(Output::Media(MediaCommand::Hangup {
                    session_id: sid,
                    handle_id: hid,
                    reason: "Detach",
                    notify: false,
                }));
            }
            if let Err(n) = handle.plugin.destroy_session(&handle.href, &handle.state) {
                tracing::warn!(
                    session = sid,
                    handle = hid,
                    error = n,
                    "plugin detach failed"
                );
            }
        }
        tracing::debug!(session = sid, timeout, "session destroyed");
    }

    fn claim(&mut self, sid: u64, origin: InstanceId) {
        let Some(session) = self.sessions.get_mut(&sid) else {
            return;
        };
        let old = session.source;
        let was_gone = session.transport_gone;
        session.transport_gone = false;
        if old == origin && !was_gone {
            return;
        }
        session.source = origin;
        if let Some(set) = self.by_source.get_mut(&old) {
            set.remove(&sid);
            if set.is_empty() {
                self.by_source.remove(&old);
            }
        }
        self.by_source.entry(origin).or_default().insert(sid);
        if old != origin && !was_gone {
            self.outputs.push_back(Output::SessionOver {
                to: old,
                session_id: sid,
                timeout: false,
                claimed: true,
            });
        }
        self.outputs.push_back(Output::SessionClaimed {
            to: origin,
            session_id: sid,
        });
        tracing::debug!(session = sid, "session claimed");
    }

    /// Validates a `message` and prepares its plugin call; the handle counts it as in flight
    /// until [`Gateway::finish_call`].
    fn message(&mut self, sid: u64, hid: u64, req: &Request) -> Result<PluginCall, JanusError> {
        let root = &req.root;
        if !self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.handles.contains_key(&hid))
        {
            return Err(JanusError::no_such_handle(hid, sid));
        }
        let body = match fields::check(root, "body", Kind::Object, true)? {
            Some(Value::Object(b)) => b.clone(),
            _ => return Err(JanusError::missing("body")),
        };
        let mut jsep = match root.get("jsep") {
            None => None,
            Some(Value::Object(j)) => Some(validate_jsep(j)?),
            Some(_) => {
                return Err(JanusError::new(
                    ErrorCode::InvalidJsonObject,
                    "Invalid jsep object",
                ))
            }
        };
        if let Some(j) = jsep.as_mut() {
            self.take_remote_jsep(sid, hid, j)?;
        }
        let h = self
            .sessions
            .get_mut(&sid)
            .and_then(|s| s.handles.get_mut(&hid))
            .ok_or_else(|| JanusError::no_such_handle(hid, sid))?;
        h.calls += 1;
        Ok(PluginCall::message(h, &req.transaction, body, jsep))
    }

    /// Checks a client JSEP and records it on the handle: an offer waits for the plugin's
    /// answer; an answer completes our offer and goes to the engine now.
    fn take_remote_jsep(&mut self, sid: u64, hid: u64, j: &mut Jsep) -> Result<(), JanusError> {
        let Some(media) = self.media.clone() else {
            return Err(JanusError::new(
                ErrorCode::Unknown,
                "No media engine in this build of jano: can't negotiate a PeerConnection",
            ));
        };
        let h = self
            .sessions
            .get_mut(&sid)
            .and_then(|s| s.handles.get_mut(&hid))
            .ok_or_else(|| JanusError::no_such_handle(hid, sid))?;
        let offer = j.kind == JsepType::Offer;
        if !offer && !h.offered {
            return Err(JanusError::new(
                ErrorCode::UnexpectedAnswer,
                "Unexpected ANSWER (did we offer?)",
            ));
        }
        media
            .check_sdp(offer, &j.sdp)
            .map_err(|e| JanusError::new(ErrorCode::JsepInvalidSdp, e))?;
        let remote = RemoteSdp {
            sdp: j.sdp.clone(),
            trickle: j
                .extra
                .get("trickle")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        };
        // Janus hands plugins the JSEP without these transport details.
        j.extra.remove("trickle");
        j.extra.remove("rid_order");
        j.extra.remove("force_relay");
        if offer {
            if h.pc {
                j.extra.insert("update".into(), Value::Bool(true));
            }
            h.remote_offer = Some(remote);
        } else {
            h.offered = false;
            self.outputs
                .push_back(Output::Media(MediaCommand::RemoteAnswer {
                    handle_id: hid,
                    sdp: remote,
                }));
        }
        Ok(())
    }

    /// Hangs up the handle's PeerConnection if it has one; otherwise, with `tell_plugin`, only
    /// tells the plugin (what Janus 1.1.2 does for a `hangup` without media).
    pub(crate) fn hangup_pc(
        &mut self,
        sid: u64,
        hid: u64,
        reason: &'static str,
        notify: bool,
        tell_plugin: bool,
    ) {
        let Some(h) = self
            .sessions
            .get_mut(&sid)
            .and_then(|s| s.handles.get_mut(&hid))
        else {
            return;
        };
        if h.pc {
            self.outputs.push_back(Output::Media(MediaCommand::Hangup {
                session_id: sid,
                handle_id: hid,
                reason,
                notify,
            }));
        } else if tell_plugin {
            h.state.hangup_media(&h.href);
        }
    }

    fn trickle(
        &mut self,
        now: Now,
        sid: u64,
        hid: u64,
        req: &Request,
    ) -> Result<Value, JanusError> {
        let root = &req.root;
        let candidate = root.get("candidate");
        let candidates = root.get("candidates");
        let mut accepted: Vec<Value> = Vec::new();
        match (candidate, candidates) {
            (None, None) => return Err(JanusError::missing("candidate|candidates")),
            (Some(_), Some(_)) => {
                return Err(JanusError::new(
                    ErrorCode::InvalidJson,
                    "Can't have both candidate and candidates",
                ))
            }
            (Some(c), None) => accepted.push(c.clone()),
            (None, Some(Value::Array(list))) => accepted.extend(list.iter().cloned()),
            // Janus 1.1.2 queues whatever came while there is no PeerConnection and
            // validates when applying it; a non-array `candidates` is queued as one item.
            (None, Some(other)) => accepted.push(other.clone()),
        }
        let single = candidate.is_some();
        if let Some(h) = self
            .sessions
            .get_mut(&sid)
            .and_then(|s| s.handles.get_mut(&hid))
        {
            if h.pc && h.remote_offer.is_none() {
                // A single bad candidate is an error; bad ones in an array are skipped.
                if single {
                    if let Some(c) = accepted.first() {
                        validate_candidate(c)?;
                    }
                } else {
                    accepted.retain(|c| validate_candidate(c).is_ok());
                }
                self.outputs.push_back(Output::Media(MediaCommand::Trickle {
                    handle_id: hid,
                    candidates: accepted,
                }));
                return Ok(msg::ack(sid, &req.transaction));
            }
            // No PeerConnection yet, or an offer still waits for its answer: keep the
            // candidates for when one exists, as Janus does, and check them then.
            for c in accepted {
                if h.pending_trickles.len() >= MAX_PENDING_TRICKLES {
                    h.dropped_trickles += 1;
                    continue;
                }
                h.pending_trickles.push(PendingTrickle {
                    received_us: now.mono_us,
                    candidate: c,
                });
            }
        }
        Ok(msg::ack(sid, &req.transaction))
    }

    /// A plugin's request, taken from the queue its `CoreServices` fills. While the handle has
    /// `message`s in the plugin, it is held back and applied after their responses (see
    /// [`Gateway::finish_call`]), so an event never overtakes the `ack` of the request that
    /// caused it.
    pub fn handle_plugin_event(&mut self, now: Now, ev: PluginEvent) {
        let href = ev.handle();
        if let Some(h) = self
            .sessions
            .get_mut(&href.session_id)
            .and_then(|s| s.handles.get_mut(&href.handle_id))
            .filter(|h| h.calls > 0)
        {
            h.hold(ev);
            return;
        }
        self.apply_plugin_event(now, ev);
    }

    pub(crate) fn apply_plugin_event(&mut self, now: Now, ev: PluginEvent) {
        match ev {
            PluginEvent::Push {
                plugin,
                handle,
                transaction,
                message,
                jsep,
            } => {
                let Some(session) = self.sessions.get(&handle.session_id) else {
                    return;
                };
                if !session.handles.contains_key(&handle.handle_id) || session.transport_gone {
                    return;
                }
                let to = session.source;
                let mut ev = msg::envelope("event", handle.session_id, transaction.as_deref());
                ev.insert("sender".into(), handle.handle_id.into());
                self.add_opaque(&mut ev, &handle);
                let mut pd = Map::new();
                pd.insert("plugin".into(), Value::String(plugin.into()));
                pd.insert("data".into(), Value::Object(message));
                ev.insert("plugindata".into(), Value::Object(pd));
                if let Some(j) = jsep {
                    if let Some(cmd) = self.negotiate(now, &handle, j, Value::Object(ev.clone())) {
                        self.outputs.push_back(Output::Media(cmd));
                        return;
                    }
                }
                self.outputs.push_back(Output::Event {
                    to,
                    session_id: handle.session_id,
                    event: Value::Object(ev),
                });
            }
            PluginEvent::EndSession { handle } => {
                let _ = self.detach(handle.session_id, handle.handle_id, true);
            }
            PluginEvent::ClosePc { handle } => {
                self.hangup_pc(handle.session_id, handle.handle_id, "Close PC", true, false);
            }
        }
    }

    /// Turns a plugin's JSEP into work for the media engine; `None` when there is nothing to
    /// negotiate (the event then goes out without a JSEP, and the reason is logged).
    fn negotiate(
        &mut self,
        now: Now,
        href: &HandleRef,
        jsep: LocalJsep,
        event: Value,
    ) -> Option<MediaCommand> {
        self.media.as_ref()?;
        let max_age = self.cfg.candidates_timeout.saturating_mul(1_000_000);
        let h = self
            .sessions
            .get_mut(&href.session_id)
            .and_then(|s| s.handles.get_mut(&href.handle_id))?;
        let remote_offer = match &jsep {
            LocalJsep::Answer(_) => {
                let Some(offer) = h.remote_offer.take() else {
                    tracing::warn!(
                        handle = href.handle_id,
                        "plugin answered, but there is no offer to answer"
                    );
                    return None;
                };
                Some(offer)
            }
            LocalJsep::Offer { .. } => {
                h.offered = true;
                None
            }
        };
        h.pc = true;
        let candidates = h
            .pending_trickles
            .drain(..)
            .filter(|t| max_age == 0 || now.mono_us.saturating_sub(t.received_us) < max_age)
            .map(|t| t.candidate)
            .filter(|c| validate_candidate(c).is_ok())
            .collect();
        Some(MediaCommand::Negotiate(Box::new(Negotiation {
            handle: h.href.clone(),
            session: h.state.clone(),
            remote_offer,
            jsep,
            candidates,
            event,
        })))
    }

    /// What the media engine reports about a PeerConnection becomes Janus events.
    pub fn handle_media_event(&mut self, _now: Now, ev: MediaEvent) {
        let (sid, hid) = match &ev {
            MediaEvent::Negotiated {
                session_id,
                handle_id,
                ..
            }
            | MediaEvent::WebrtcUp {
                session_id,
                handle_id,
            }
            | MediaEvent::Media {
                session_id,
                handle_id,
                ..
            }
            | MediaEvent::SlowLink {
                session_id,
                handle_id,
                ..
            }
            | MediaEvent::LocalCandidate {
                session_id,
                handle_id,
                ..
            }
            | MediaEvent::IceFailed {
                session_id,
                handle_id,
            }
            | MediaEvent::Hangup {
                session_id,
                handle_id,
                ..
            } => (*session_id, *handle_id),
        };
        let Some(session) = self.sessions.get_mut(&sid) else {
            return;
        };
        let to = session.source;
        let gone = session.transport_gone;
        let Some(h) = session.handles.get_mut(&hid) else {
            return;
        };
        let href = h.href.clone();
        let event = match ev {
            MediaEvent::Negotiated { result, event, .. } => {
                let Value::Object(mut e) = event else {
                    return;
                };
                match result {
                    Ok(local) => {
                        let mut j = Map::new();
                        j.insert("type".into(), Value::String(local.kind.into()));
                        j.insert("sdp".into(), Value::String(local.sdp));
                        e.insert("jsep".into(), Value::Object(j));
                    }
                    Err(text) => {
                        // The client was already acked; what Janus would have answered
                        // synchronously (465) goes to it as an error tied to its request, in
                        // place of an event without the JSEP it waits for.
                        tracing::warn!(handle = hid, "negotiation failed: {text}");
                        h.offered = false;
                        let tx = e
                            .get("transaction")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        let err = JanusError::new(
                            ErrorCode::JsepInvalidSdp,
                            format!("Error processing SDP: {text}"),
                        );
                        e = match msg::error(sid, tx.as_deref(), &err) {
                            Value::Object(m) => m,
                            _ => return,
                        };
                    }
                }
                Some(e)
            }
            MediaEvent::WebrtcUp { .. } => Some(self.media_envelope("webrtcup", sid, &href)),
            MediaEvent::Media {
                mid,
                kind,
                substream,
                receiving,
                seconds,
                ..
            } => {
                let mut e = self.media_envelope("media", sid, &href);
                e.insert("mid".into(), Value::String(mid));
                e.insert("type".into(), Value::String(kind.as_str().into()));
                if let Some(s) = substream {
                    e.insert("substream".into(), s.into());
                }
                e.insert("receiving".into(), Value::Bool(receiving));
                if let Some(s) = seconds {
                    e.insert("seconds".into(), s.into());
                }
                Some(e)
            }
            MediaEvent::SlowLink {
                mid,
                kind,
                uplink,
                lost,
                ..
            } => {
                let mut e = self.media_envelope("slowlink", sid, &href);
                e.insert("mid".into(), Value::String(mid));
                e.insert("media".into(), Value::String(kind.as_str().into()));
                e.insert("uplink".into(), Value::Bool(uplink));
                e.insert("lost".into(), lost.into());
                Some(e)
            }
            MediaEvent::LocalCandidate { candidate, .. } => {
                let mut e = self.media_envelope("trickle", sid, &href);
                e.insert("candidate".into(), candidate);
                Some(e)
            }
            MediaEvent::IceFailed { .. } => Some(self.media_envelope("ice-failed", sid, &href)),
            MediaEvent::Hangup { reason, notify, .. } => {
                if let Some(h) = self
                    .sessions
                    .get_mut(&sid)
                    .and_then(|s| s.handles.get_mut(&hid))
                {
                    h.pc = false;
                    h.offered = false;
                    h.remote_offer = None;
                }
                notify.then(|| {
                    let mut e = self.media_envelope("hangup", sid, &href);
                    e.insert("reason".into(), Value::String(reason));
                    e
                })
            }
        };
        if let (Some(e), false) = (event, gone) {
            self.outputs.push_back(Output::Event {
                to,
                session_id: sid,
                event: Value::Object(e),
            });
        }
    }

    fn media_envelope(&self, kind: &str, sid: u64, href: &HandleRef) -> Map<String, Value> {
        let mut e = msg::envelope(kind, sid, None);
        e.insert("sender".into(), href.handle_id.into());
        self.add_opaque(&mut e, href);
        e
    }

    /// The transport instance went away (a WebSocket closed): its sessions die now, or wait
    /// `reclaim_session_timeout` for a `claim`.
    pub fn transport_gone(&mut self, now: Now, instance: InstanceId) {
        let Some(sids) = self.by_source.get(&instance).cloned() else {
            return;
        };
        for sid in sids {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.transport_gone = true;
                s.last_activity_us = now.mono_us;
            }
            if self.cfg.reclaim_session_timeout == 0 {
                self.destroy_session(sid, false);
            }
        }
    }

    /// Runs the session watchdog; call it about once a second.
    pub fn handle_timeout(&mut self, now: Now) {
        let global = self.cfg.session_timeout;
        let reclaim = self.cfg.reclaim_session_timeout;
        let expired: Vec<(u64, bool)> = self
            .sessions
            .values()
            .filter_map(|s| {
                let idle = now.mono_us.saturating_sub(s.last_activity_us);
                if s.transport_gone {
                    (idle >= reclaim.saturating_mul(1_000_000)).then_some((s.id, false))
                } else {
                    let t = s.timeout_override.unwrap_or(global);
                    (t > 0 && idle >= t.saturating_mul(1_000_000)).then_some((s.id, true))
                }
            })
            .collect();
        // Early candidates older than `candidates_timeout` would be stale by the time a
        // PeerConnection exists; drop them as Janus does.
        let max_age = self.cfg.candidates_timeout.saturating_mul(1_000_000);
        if max_age > 0 {
            for s in self.sessions.values_mut() {
                for h in s.handles.values_mut() {
                    h.pending_trickles
                        .retain(|t| now.mono_us.saturating_sub(t.received_us) < max_age);
                }
            }
        }
        for (sid, timeout) in expired {
            tracing::info!(session = sid, "session timed out");
            self.destroy_session(sid, timeout);
        }
    }

    /// Tears everything down for a clean shutdown: every session destroyed (owners told), then
    /// every plugin told.
    pub fn shutdown(&mut self) {
        let sids: Vec<u64> = self.sessions.keys().copied().collect();
        for sid in sids {
            self.destroy_session(sid, false);
        }
        for p in self.plugins.iter() {
            p.shutdown();
        }
    }

    /// All stored tokens (for tests and the Admin API).
    pub fn tokens(&self) -> &TokenStore {
        &self.tokens
    }
}

/// Validates a `jsep` object as Janus does before any SDP work.
fn validate_jsep(j: &Map<String, Value>) -> Result<Jsep, JanusError> {
    let jsep_missing = |n: &str| {
        JanusError::new(
            ErrorCode::MissingMandatoryElement,
            format!("JSEP error: missing mandatory element ({n})"),
        )
    };
    let jsep_invalid = |n: &str, k: &str| {
        JanusError::new(
            ErrorCode::InvalidElementType,
            format!("JSEP error: invalid element type ({n} should be {k})"),
        )
    };
    let kind = match j.get("type") {
        None => return Err(jsep_missing("type")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(jsep_invalid("type", "a string")),
    };
    let sdp = match j.get("sdp") {
        None => return Err(jsep_missing("sdp")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(jsep_invalid("sdp", "a string")),
    };
    for (name, kind) in [
        ("trickle", Kind::Bool),
        ("rid_order", Kind::String),
        ("force_relay", Kind::Bool),
        ("e2ee", Kind::Bool),
    ] {
        if j.get(name).is_some_and(|v| !kind.accepts(v)) {
            return Err(jsep_invalid(name, kind.phrase()));
        }
    }
    let kind = if kind.eq_ignore_ascii_case("offer") {
        jano_plugin::JsepType::Offer
    } else if kind.eq_ignore_ascii_case("answer") {
        jano_plugin::JsepType::Answer
    } else {
        return Err(JanusError::new(
            ErrorCode::JsepUnknownType,
            format!("JSEP error: unknown message type '{kind}'"),
        ));
    };
    if !sdp.trim_start().starts_with("v=") {
        return Err(JanusError::new(
            ErrorCode::JsepInvalidSdp,
            "JSEP error: invalid SDP",
        ));
    }
    let mut extra = j.clone();
    extra.remove("type");
    extra.remove("sdp");
    Ok(Jsep { kind, sdp, extra })
}

/// Validates one trickle candidate; `{"completed":true}`, `null` and other non-objects mean
/// end-of-candidates. Applied when candidates reach a PeerConnection.
pub(crate) fn validate_candidate(c: &Value) -> Result<(), JanusError> {
    let Value::Object(o) = c else {
        return Ok(());
    };
    if o.contains_key("completed") {
        return Ok(());
    }
    let te = |code, text: &str| JanusError::new(code, format!("Trickle error: {text}"));
    let mid = o.get("sdpMid");
    let mline = o.get("sdpMLineIndex");
    if mid.is_none() && mline.is_none() {
        return Err(te(
            ErrorCode::MissingMandatoryElement,
            "missing mandatory element (sdpMid or sdpMLineIndex)",
        ));
    }
    if mid.is_some_and(|m| !m.is_string()) {
        return Err(te(
            ErrorCode::InvalidElementType,
            "invalid element type (sdpMid should be a string)",
        ));
    }
    if mline.is_some_and(|m| !m.is_u64()) {
        return Err(te(
            ErrorCode::InvalidElementType,
            "invalid element type (sdpMLineIndex should be a positive integer)",
        ));
    }
    match o.get("candidate") {
        None => Err(te(
            ErrorCode::MissingMandatoryElement,
            "missing mandatory element (candidate)",
        )),
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err(te(
            ErrorCode::InvalidElementType,
            "invalid element type (candidate should be a string)",
        )),
    }
}

/// Token names of the plugins a token may use, for the Admin API.
pub(crate) fn plugin_names(set: &BTreeSet<String>) -> Value {
    Value::Array(set.iter().map(|p| Value::String(p.clone())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reason(v: Value) -> String {
        validate_candidate(&v)
            .err()
            .map(|e| e.reason)
            .unwrap_or_default()
    }

    #[test]
    fn candidate_validation_wording() {
        let ok = json!({"sdpMid":"0","sdpMLineIndex":0,"candidate":"candidate:1 1 udp 1 10.0.0.1 5000 typ host"});
        assert!(validate_candidate(&ok).is_ok());
        assert!(validate_candidate(&json!({"completed": true})).is_ok());
        assert!(validate_candidate(&Value::Null).is_ok());
        assert_eq!(
            reason(json!({"candidate":"x"})),
            "Trickle error: missing mandatory element (sdpMid or sdpMLineIndex)"
        );
        assert_eq!(
            reason(json!({"sdpMid":1,"candidate":"x"})),
            "Trickle error: invalid element type (sdpMid should be a string)"
        );
        assert_eq!(
            reason(json!({"sdpMLineIndex":-1,"candidate":"x"})),
            "Trickle error: invalid element type (sdpMLineIndex should be a positive integer)"
        );
        assert_eq!(
            reason(json!({"sdpMid":"0"})),
            "Trickle error: missing mandatory element (candidate)"
        );
        assert_eq!(
            reason(json!({"sdpMid":"0","candidate":5})),
            "Trickle error: invalid element type (candidate should be a string)"
        );
    }
}
