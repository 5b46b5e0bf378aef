//! What comes back to the core: plugin events (pushes, end-session, close-PC) and the media
//! engine's reports, turned into Janus events for the session's owner.

use crate::gateway::{Gateway, PluginEvent};
use crate::media::MediaEvent;
use crate::{Now, Output};
use jano_api::{msg, ErrorCode, JanusError, Map, Value};
use jano_plugin::HandleRef;

impl Gateway {
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
                        if h.e2ee {
                            j.insert("e2ee".into(), Value::Bool(true));
                        }
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
                    h.e2ee = false;
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

    pub(crate) fn media_envelope(
        &self,
        kind: &str,
        sid: u64,
        href: &HandleRef,
    ) -> Map<String, Value> {
        let mut e = msg::envelope(kind, sid, None);
        e.insert("sender".into(), href.handle_id.into());
        self.add_opaque(&mut e, href);
        e
    }

    pub(crate) fn add_opaque(&self, ev: &mut Map<String, Value>, href: &HandleRef) {
        if self.cfg.opaqueid_in_api {
            if let Some(o) = &href.opaque_id {
                ev.insert("opaque_id".into(), Value::String(o.to_string()));
            }
        }
    }
}
