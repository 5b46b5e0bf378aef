//! The Admin API: the same envelope as the Janus API, its own dispatch, `admin_secret`, and no
//! effect on session activity.

use crate::auth::secret_eq;
use crate::call::{PluginCall, Step};
use crate::gateway::{first_level, int_field, plugin_names, Incoming, Request};
use crate::media::{MediaCommand, MediaSetting};
use crate::{Gateway, InstanceId, Now, Output};
use jano_api::fields::{self, Kind};
use jano_api::{msg, ErrorCode, JanusError, Map, Value};
use serde_json::json;
use std::collections::BTreeSet;

fn with(mut base: Map<String, Value>, extra: &[(&str, Value)]) -> Value {
    for (k, v) in extra {
        base.insert((*k).into(), v.clone());
    }
    Value::Object(base)
}

impl Gateway {
    /// Handles one Admin API request and returns its response, calling the plugin (for
    /// `message_plugin`) right here; see [`Gateway::handle_request`].
    pub fn handle_admin(&mut self, now: Now, origin: InstanceId, input: Incoming) -> Value {
        let step = self.start_admin(now, origin, input);
        self.complete(now, step)
    }

    /// Handles one Admin API request up to the plugin, as [`Gateway::start_request`] does.
    pub fn start_admin(&mut self, now: Now, _origin: InstanceId, input: Incoming) -> Step {
        let req = match first_level(input) {
            Ok(r) => r,
            Err(resp) => return Step::Done(resp),
        };
        let sid = int_field(&req.root, "session_id");
        let hid = int_field(&req.root, "handle_id");
        let handle_present = req.root.contains_key("handle_id");
        let echo = u64::try_from(sid).unwrap_or(0);
        let verb = req.verb.to_ascii_lowercase();
        let tx = req.transaction.clone();
        let result = if sid == 0 && hid == 0 && verb == "message_plugin" {
            self.message_plugin(&req).map(Step::Call)
        } else if sid == 0 && hid == 0 {
            self.admin_global(now, &req, &verb).map(Step::Done)
        } else {
            self.admin_scoped(now, &req, &verb, sid, handle_present, hid)
                .map(Step::Done)
        };
        match result {
            Ok(step) => step,
            Err(e) => Step::Done(msg::error(echo, Some(&tx), &e)),
        }
    }

    /// `message_plugin`: checked here, answered by [`Gateway::finish_call`] once the plugin
    /// has run.
    fn message_plugin(&self, req: &Request) -> Result<PluginCall, JanusError> {
        let root = &req.root;
        if !self.admin_authorized(root) {
            return Err(JanusError::unauthorized());
        }
        let package = fields::req_str(root, "plugin")?;
        let request = fields::check(root, "request", Kind::Object, false)?
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let plugin = self
            .plugins
            .get(package)
            .cloned()
            .ok_or_else(|| JanusError::new(ErrorCode::PluginNotFound, "Invalid plugin"))?;
        Ok(PluginCall::admin(plugin, &req.transaction, request))
    }

    fn admin_authorized(&self, root: &Map<String, Value>) -> bool {
        match &self.cfg.admin_secret {
            None => true,
            Some(s) => root
                .get("admin_secret")
                .and_then(Value::as_str)
                .is_some_and(|given| secret_eq(s, given)),
        }
    }

    fn stored_tokens_enabled(&self) -> Result<(), JanusError> {
        if self.cfg.token_auth && self.cfg.token_auth_secret.is_none() {
            Ok(())
        } else {
            Err(JanusError::new(
                ErrorCode::Unknown,
                "Stored-Token based authentication disabled",
            ))
        }
    }

    fn admin_global(&mut self, _now: Now, req: &Request, verb: &str) -> Result<Value, JanusError> {
        let tx = req.transaction.as_str();
        let root = &req.root;
        match verb {
            "info" => return Ok(self.server_info(tx)),
            "ping" => return Ok(Value::Object(msg::envelope("pong", 0, Some(tx)))),
            _ => {}
        }
        if !self.admin_authorized(root) {
            return Err(JanusError::unauthorized());
        }
        let ok = || msg::envelope("success", 0, Some(tx));
        match verb {
            "get_status" => {
                let c = &self.cfg;
                Ok(with(
                    ok(),
                    &[(
                        "status",
                        json!({
                            "token_auth": c.token_auth,
                            "session_timeout": c.session_timeout,
                            "reclaim_session_timeout": c.reclaim_session_timeout,
                            "candidates_timeout": c.candidates_timeout,
                            "log_level": c.log_level,
                            "log_timestamps": c.log_timestamps,
                            "log_colors": c.log_colors,
                            "locking_debug": false,
                            "refcount_debug": false,
                            "libnice_debug": false,
                            "min_nack_queue": c.min_nack_queue,
                            "nack-optimizations": c.nack_optimizations,
                            "no_media_timer": c.no_media_timer,
                            "slowlink_threshold": c.slowlink_threshold,
                        }),
                    )],
                ))
            }
            "set_session_timeout" => {
                let t = fields::check(root, "timeout", Kind::PositiveInteger, true)?
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                self.cfg.session_timeout = t;
                Ok(with(ok(), &[("timeout", t.into())]))
            }
            "set_log_level" => {
                let level = fields::check(root, "level", Kind::Integer, true)?
                    .and_then(Value::as_i64)
                    .unwrap_or(-1);
                if !(0..=7).contains(&level) {
                    return Err(JanusError::invalid("level", "between 0 and 7"));
                }
                self.cfg.log_level = level as u8;
                self.outputs.push_back(Output::SetLogLevel(level as u8));
                Ok(with(ok(), &[("level", level.into())]))
            }
            "set_locking_debug" | "set_refcount_debug" | "set_libnice_debug" => {
                let d = fields::check(root, "debug", Kind::Bool, true)?
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let key = match verb {
                    "set_locking_debug" => "locking_debug",
                    "set_refcount_debug" => "refcount_debug",
                    _ => "libnice_debug",
                };
                Ok(with(ok(), &[(key, d.into())]))
            }
            "set_log_timestamps" => {
                let b = req_bool(root, "timestamps")?;
                self.cfg.log_timestamps = b;
                Ok(with(ok(), &[("log_timestamps", b.into())]))
            }
            "set_log_colors" => {
                let b = req_bool(root, "colors")?;
                self.cfg.log_colors = b;
                Ok(with(ok(), &[("log_colors", b.into())]))
            }
            "set_min_nack_queue" => {
                let n = req_u64(root, "min_nack_queue")?;
                self.cfg.min_nack_queue = n;
                self.tell_engine(MediaSetting::MinNackQueue(n));
                Ok(with(ok(), &[("min_nack_queue", n.into())]))
            }
            "set_nack_optimizations" => {
                let b = req_bool(root, "nack_optimizations")?;
                self.cfg.nack_optimizations = b;
                Ok(with(ok(), &[("nack-optimizations", b.into())]))
            }
            "set_no_media_timer" => {
                let n = req_u64(root, "no_media_timer")?;
                self.cfg.no_media_timer = n;
                self.tell_engine(MediaSetting::NoMediaTimer(n));
                Ok(with(ok(), &[("no_media_timer", n.into())]))
            }
            "set_slowlink_threshold" => {
                let n = req_u64(root, "slowlink_threshold")?;
                self.cfg.slowlink_threshold = n;
                self.tell_engine(MediaSetting::SlowlinkThreshold(n));
                Ok(with(ok(), &[("slowlink_threshold", n.into())]))
            }
            "accept_new_sessions" => {
                let b = req_bool(root, "accept")?;
                self.cfg.accept_new_sessions = b;
                Ok(with(ok(), &[("accept", b.into())]))
            }
            "list_sessions" => {
                let mut ids: Vec<u64> = self.sessions.keys().copied().collect();
                ids.sort_unstable();
                Ok(with(ok(), &[("sessions", json!(ids))]))
            }
            "query_transport" => {
                let package = fields::req_str(root, "transport")?;
                fields::check(root, "request", Kind::Object, false)?;
                if self.transports.iter().any(|t| t.package == package) {
                    Err(JanusError::new(
                        ErrorCode::Unknown,
                        "Transport plugin doesn't support queries",
                    ))
                } else {
                    Err(JanusError::new(
                        ErrorCode::PluginNotFound,
                        "Invalid transport",
                    ))
                }
            }
            "query_eventhandler" => {
                fields::req_str(root, "handler")?;
                Err(JanusError::new(
                    ErrorCode::PluginNotFound,
                    "Invalid event handler",
                ))
            }
            "query_logger" => {
                fields::req_str(root, "logger")?;
                Err(JanusError::new(ErrorCode::PluginNotFound, "Invalid logger"))
            }
            "custom_event" => {
                fields::req_str(root, "schema")?;
                fields::check(root, "data", Kind::Object, true)?;
                // No event handlers are loaded: the event has nowhere to go.
                Ok(Value::Object(ok()))
            }
            "custom_logline" => {
                let line = fields::req_str(root, "line")?;
                let level = fields::check(root, "level", Kind::PositiveInteger, false)?
                    .and_then(Value::as_u64)
                    .unwrap_or(4);
                match level {
                    0..=2 => tracing::error!(target: "custom", "{line}"),
                    3 => tracing::warn!(target: "custom", "{line}"),
                    4 => tracing::info!(target: "custom", "{line}"),
                    _ => tracing::debug!(target: "custom", "{line}"),
                }
                Ok(Value::Object(ok()))
            }
            "add_token" => {
                self.stored_tokens_enabled()?;
                let token = fields::req_str(root, "token")?.to_owned();
                let listed = fields::check(root, "plugins", Kind::Array, false)?
                    .and_then(Value::as_array)
                    .filter(|a| !a.is_empty());
                let plugins: BTreeSet<String> = match listed {
                    None => self
                        .plugins
                        .iter()
                        .map(|p| p.info().package.to_owned())
                        .collect(),
                    Some(list) => list
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|p| self.plugins.get(p).is_some())
                        .map(str::to_owned)
                        .collect(),
                };
                let names = plugin_names(&plugins);
                self.tokens.add(&token, plugins);
                Ok(with(ok(), &[("data", json!({ "plugins": names }))]))
            }
            "list_tokens" => {
                self.stored_tokens_enabled()?;
                let tokens: Vec<Value> = self
                    .tokens
                    .listed()
                    .map(|(t, p)| json!({"token": t, "allowed_plugins": plugin_names(p)}))
                    .collect();
                Ok(with(ok(), &[("data", json!({ "tokens": tokens }))]))
            }
            "allow_token" | "disallow_token" => {
                self.stored_tokens_enabled()?;
                let token = fields::req_str(root, "token")?.to_owned();
                let list = fields::check(root, "plugins", Kind::NonEmptyArray, true)?
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !self.tokens.contains(&token) {
                    return Err(JanusError::new(
                        ErrorCode::TokenNotFound,
                        format!("Token {token} not found"),
                    ));
                }
                let mut names = Vec::with_capacity(list.len());
                for p in &list {
                    match p.as_str().filter(|p| self.plugins.get(p).is_some()) {
                        Some(p) => names.push(p.to_owned()),
                        None => {
                            return Err(JanusError::invalid(
                                "some of the provided plugins",
                                "valid",
                            )
                            .with_reason(
                                "Invalid element type (some of the provided plugins are invalid)",
                            ))
                        }
                    }
                }
                let allow = verb == "allow_token";
                let current = match self.tokens.plugins_mut(&token) {
                    Some(set) => {
                        for n in names {
                            if allow {
                                set.insert(n);
                            } else {
                                set.remove(&n);
                            }
                        }
                        plugin_names(set)
                    }
                    None => Value::Array(Vec::new()),
                };
                Ok(with(ok(), &[("data", json!({ "plugins": current }))]))
            }
            "remove_token" => {
                self.stored_tokens_enabled()?;
                let token = fields::req_str(root, "token")?;
                if !self.tokens.remove(token) {
                    return Err(JanusError::new(ErrorCode::Unknown, "Error removing token"));
                }
                Ok(Value::Object(ok()))
            }
            "resolve_address" => {
                fields::req_str(root, "address")?;
                // Name resolution is IO; the core does none.
                Err(JanusError::new(
                    ErrorCode::Unknown,
                    "Could not resolve address",
                ))
            }
            "test_stun" => {
                fields::req_str(root, "address")?;
                fields::check(root, "port", Kind::PositiveInteger, true)?;
                Err(JanusError::new(ErrorCode::Unknown, "STUN request failed"))
            }
            "loops_info" => Ok(with(ok(), &[("loops", json!([]))])),
            _ => Err(JanusError::unhandled_at_path(&req.verb)),
        }
    }

    fn admin_scoped(
        &mut self,
        now: Now,
        req: &Request,
        verb: &str,
        sid: i128,
        handle_present: bool,
        hid: i128,
    ) -> Result<Value, JanusError> {
        let tx = req.transaction.as_str();
        let root = &req.root;
        if sid < 1 {
            return Err(JanusError::of(ErrorCode::SessionNotFound));
        }
        if handle_present && hid < 1 {
            return Err(JanusError::of(ErrorCode::SessionNotFound));
        }
        if !self.admin_authorized(root) {
            return Err(JanusError::unauthorized());
        }
        let sid = u64::try_from(sid).unwrap_or(0);
        let hid = u64::try_from(hid).unwrap_or(0);
        let session = self
            .sessions
            .get(&sid)
            .ok_or_else(|| JanusError::no_such_session(sid))?;
        if hid == 0 {
            return match verb {
                "destroy_session" => {
                    self.destroy_session(sid, false);
                    Ok(msg::success(sid, tx))
                }
                "set_session_timeout" => {
                    let t = fields::check(root, "timeout", Kind::Integer, true)?
                        .and_then(Value::as_i64)
                        .unwrap_or(-2);
                    if t < -1 {
                        return Err(JanusError::invalid(
                            "timeout",
                            "a non-negative integer or -1",
                        ));
                    }
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.timeout_override = u64::try_from(t).ok();
                    }
                    let mut m = msg::envelope("success", 0, Some(tx));
                    m.insert("timeout".into(), t.into());
                    m.insert("session_id".into(), sid.into());
                    Ok(Value::Object(m))
                }
                "list_handles" => {
                    let mut ids: Vec<u64> = session.handles.keys().copied().collect();
                    ids.sort_unstable();
                    let mut m = msg::envelope("success", sid, Some(tx));
                    m.insert("handles".into(), json!(ids));
                    Ok(Value::Object(m))
                }
                _ => Err(JanusError::unhandled_at_path(&req.verb)),
            };
        }
        let handle = session
            .handles
            .get(&hid)
            .ok_or_else(|| JanusError::no_such_handle(hid, sid))?;
        match verb {
            "detach_handle" => {
                self.detach(sid, hid, true)?;
                Ok(msg::success(sid, tx))
            }
            "hangup_webrtc" => {
                self.hangup_pc(sid, hid, "Admin API", true, false);
                Ok(msg::success(sid, tx))
            }
            "start_pcap" | "start_text2pcap" => {
                fields::opt_str(root, "folder")?;
                fields::opt_str(root, "filename")?;
                fields::opt_u64(root, "truncate")?;
                Err(JanusError::new(
                    ErrorCode::Unknown,
                    if verb == "start_pcap" {
                        "Error starting pcap dump"
                    } else {
                        "Error starting text2pcap dump"
                    },
                ))
            }
            "stop_pcap" | "stop_text2pcap" => {
                Err(JanusError::new(ErrorCode::Unknown, "Capture not started"))
            }
            "handle_info" => {
                let plugin_only = fields::opt_bool(root, "plugin_only")?.unwrap_or(false);
                let timeout = session.timeout_override.unwrap_or(self.cfg.session_timeout);
                let transport = self
                    .transports
                    .get(usize::from(session.source.transport))
                    .map(|t| t.package)
                    .unwrap_or("unknown");
                let mut info = Map::new();
                info.insert("session_id".into(), sid.into());
                info.insert(
                    "session_last_activity".into(),
                    session.last_activity_us.into(),
                );
                info.insert("session_timeout".into(), timeout.into());
                info.insert("session_transport".into(), transport.into());
                info.insert("handle_id".into(), hid.into());
                if let Some(o) = &handle.href.opaque_id {
                    info.insert("opaque_id".into(), o.to_string().into());
                }
                if let Some(t) = &handle.href.token {
                    info.insert("token".into(), t.to_string().into());
                }
                info.insert("loop-running".into(), true.into());
                info.insert("created".into(), handle.created_us.into());
                info.insert("current_time".into(), now.mono_us.into());
                info.insert("plugin".into(), handle.plugin.info().package.into());
                info.insert(
                    "plugin_specific".into(),
                    handle.plugin.query_session(&handle.href, &handle.state),
                );
                if !plugin_only {
                    let flags: Map<String, Value> = [
                        "got-offer",
                        "got-answer",
                        "negotiated",
                        "processing-offer",
                        "starting",
                        "ice-restart",
                        "ready",
                        "stopped",
                        "alert",
                        "trickle",
                        "all-trickles",
                        "resend-trickles",
                        "trickle-synced",
                        "data-channels",
                        "has-audio",
                        "has-video",
                        "new-datachan-sdp",
                        "rfc4588-rtx",
                        "cleaning",
                        "e2ee",
                    ]
                    .iter()
                    .map(|f| ((*f).to_owned(), Value::Bool(*f == "e2ee" && handle.e2ee)))
                    .collect();
                    info.insert("flags".into(), Value::Object(flags));
                    info.insert("sdps".into(), json!({}));
                    info.insert(
                        "pending-trickles".into(),
                        handle.pending_trickles.len().into(),
                    );
                    info.insert("queued-packets".into(), 0.into());
                    // The engine reports the PeerConnection (`webrtc`, `sdps`, and the flags
                    // it knows) the way Janus lays them out; its keys win.
                    let pc = self
                        .media
                        .as_ref()
                        .filter(|_| handle.pc)
                        .and_then(|m| m.handle_info(hid));
                    if let Some(Value::Object(pc)) = pc {
                        for (k, v) in pc {
                            match (k.as_str(), v, info.get_mut(&k)) {
                                ("flags", Value::Object(f), Some(Value::Object(cur))) => {
                                    cur.extend(f);
                                }
                                (_, v, _) => {
                                    info.insert(k, v);
                                }
                            }
                        }
                    }
                }
                let mut m = msg::envelope("success", sid, Some(tx));
                m.insert("handle_id".into(), hid.into());
                m.insert("info".into(), Value::Object(info));
                Ok(Value::Object(m))
            }
            _ => Err(JanusError::unhandled_at_path(&req.verb)),
        }
    }
}

fn req_bool(root: &Map<String, Value>, name: &str) -> Result<bool, JanusError> {
    Ok(fields::check(root, name, Kind::Bool, true)?
        .and_then(Value::as_bool)
        .unwrap_or(false))
}

fn req_u64(root: &Map<String, Value>, name: &str) -> Result<u64, JanusError> {
    Ok(fields::check(root, name, Kind::PositiveInteger, true)?
        .and_then(Value::as_u64)
        .unwrap_or(0))
}

impl Gateway {
    /// An Admin API setter that running PeerConnections take at once (in Janus some of these
    /// only reach PeerConnections created afterwards).
    fn tell_engine(&mut self, setting: MediaSetting) {
        if self.media.is_some() {
            self.outputs
                .push_back(Output::Media(MediaCommand::Settings(setting)));
        }
    }
}
