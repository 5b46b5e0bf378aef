//! Sessions and handles coming and going: attach, detach, destroy, claim, a transport
//! instance going away, the watchdog (session timeouts, reclaim windows) and shutdown.

use crate::gateway::{Gateway, Request};
use crate::media::MediaCommand;
use crate::session::Handle;
use crate::{InstanceId, Now, Output};
use jano_api::fields::{self, Kind};
use jano_api::{msg, ErrorCode, JanusError, Value};
use jano_plugin::HandleRef;
use std::collections::VecDeque;
use std::sync::Arc;

impl Gateway {
    pub(crate) fn attach(
        &mut self,
        now: Now,
        sid: u64,
        req: &Request,
    ) -> Result<Value, JanusError> {
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
            e2ee: false,
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
        let result = self.release_handle(sid, hid, &handle);
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
            if let Err(n) = self.release_handle(sid, hid, &handle) {
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

    /// What every handle that goes away needs: its id freed, its PeerConnection hung up, its
    /// plugin state destroyed (the plugin's answer is returned).
    fn release_handle(&mut self, sid: u64, hid: u64, handle: &Handle) -> Result<(), i32> {
        self.handle_ids.remove(&hid);
        if handle.pc {
            self.outputs.push_back(Output::Media(MediaCommand::Hangup {
                session_id: sid,
                handle_id: hid,
                reason: "Detach",
                notify: false,
            }));
        }
        handle.plugin.destroy_session(&handle.href, &handle.state)
    }

    pub(crate) fn claim(&mut self, sid: u64, origin: InstanceId) {
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
}
