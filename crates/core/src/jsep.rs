//! The client's side of negotiation: JSEP and trickle validation, the client's offers and
//! answers kept on the handle, hang-ups, and the `Negotiate` command built when the plugin
//! answers or offers.

use crate::gateway::{Gateway, Request};
use crate::media::{MediaCommand, Negotiation, RemoteSdp};
use crate::session::{PendingTrickle, MAX_PENDING_TRICKLES};
use crate::{Now, Output};
use jano_api::fields::Kind;
use jano_api::{msg, ErrorCode, JanusError, Map, Value};
use jano_plugin::{HandleRef, Jsep, JsepType, LocalJsep};

impl Gateway {
    /// Checks a client JSEP and records it on the handle: an offer waits for the plugin's
    /// answer; an answer completes our offer and goes to the engine now.
    pub(crate) fn take_remote_jsep(
        &mut self,
        sid: u64,
        hid: u64,
        j: &mut Jsep,
    ) -> Result<(), JanusError> {
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
        // Plugins see `e2ee` only when it is set, and it sticks to the PeerConnection.
        if j.extra.remove("e2ee") == Some(Value::Bool(true)) {
            h.e2ee = true;
        }
        if h.e2ee {
            j.extra.insert("e2ee".into(), Value::Bool(true));
        }
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
        } else if notify && h.remote_offer.is_some() {
            // A client offer the plugin will now never answer (a VideoCall caller whose
            // callee is busy): for the client the PeerConnection exists, so it hears the
            // hang-up, as from Janus (whose PeerConnection starts with the offer).
            h.remote_offer = None;
            h.pending_trickles.clear();
            h.e2ee = false;
            let href = h.href.clone();
            let (to, gone) = match self.sessions.get(&sid) {
                Some(s) => (s.source, s.transport_gone),
                None => return,
            };
            if !gone {
                let mut e = self.media_envelope("hangup", sid, &href);
                e.insert("reason".into(), Value::String(reason.into()));
                self.outputs.push_back(Output::Event {
                    to,
                    session_id: sid,
                    event: Value::Object(e),
                });
            }
        } else if tell_plugin {
            h.state.hangup_media(&h.href);
        }
    }

    pub(crate) fn trickle(
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

    /// Turns a plugin's JSEP into work for the media engine; `None` when there is nothing to
    /// negotiate (the event then goes out without a JSEP, and the reason is logged).
    pub(crate) fn negotiate(
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
        let prefs = match &jsep {
            LocalJsep::Answer(p) | LocalJsep::Offer { prefs: p, .. } => p,
        };
        h.e2ee |= prefs.e2ee;
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
}

/// Validates a `jsep` object as Janus does before any SDP work.
pub(crate) fn validate_jsep(j: &Map<String, Value>) -> Result<Jsep, JanusError> {
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
            "Invalid SDP (doesn't start with v=)",
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
