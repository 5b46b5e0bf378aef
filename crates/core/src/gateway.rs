//! Janus API dispatch: validation, authentication, session and handle lifecycle, plugin calls,
//! and the timers. See the crate docs for the input/output discipline.

use crate::auth::{secret_eq, signed_contains, signed_valid, TokenStore};
use crate::call::{PluginCall, Step};
use crate::jsep::validate_jsep;
use crate::media::MediaBackend;
use crate::registry::{PluginRegistry, TransportInfo};
use crate::rng::IdRng;
use crate::session::Session;
use crate::{CoreConfig, InstanceId, Now, Output};
use jano_api::fields::{self, Kind};
use jano_api::{msg, ErrorCode, JanusError, Map, Value};
use jano_plugin::{HandleRef, LocalJsep};
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

    pub(crate) fn token_allows_plugin(&self, now: Now, token: &str, plugin: &str) -> bool {
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

    pub(crate) fn fresh_handle_id(&mut self) -> u64 {
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

    /// All stored tokens (for tests and the Admin API).
    pub fn tokens(&self) -> &TokenStore {
        &self.tokens
    }
}

/// Token names of the plugins a token may use, for the Admin API.
pub(crate) fn plugin_names(set: &BTreeSet<String>) -> Value {
    Value::Array(set.iter().map(|p| Value::String(p.clone())).collect())
}
