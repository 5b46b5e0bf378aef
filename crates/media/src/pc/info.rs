//! The once-a-second work (`media` silence, `slowlink`, ICE give-up) and the `handle_info`
//! snapshot.

use super::{Counters, Pc};
use jano_core::MediaEvent;
use jano_plugin::{MediaKind, Value};
use serde_json::{json, Map};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::media::Direction;

impl Pc {
    pub(super) fn tick(&mut self, now: Instant) {
        let (sid, hid) = self.ids();
        // Read each tick: the Admin API may change them while PeerConnections run.
        let timer = self.shared.settings.no_media_timer.load(Ordering::Relaxed);
        let threshold = self
            .shared
            .settings
            .slowlink_threshold
            .load(Ordering::Relaxed);
        self.apply_nack_queue();
        let mut events = Vec::new();
        let mut slow = Vec::new();
        for (mindex, m) in self.mids.iter_mut().enumerate() {
            let Some(kind) = m.kind else { continue };
            let mid = m.mid.to_string();
            for (i, f) in m.flows.iter_mut().enumerate() {
                let substream = u8::try_from(i).ok().filter(|i| *i < 3);
                if timer > 0 && f.receiving {
                    let idle = f
                        .last_in
                        .map_or(0, |last| now.saturating_duration_since(last).as_secs());
                    if idle >= timer {
                        f.receiving = false;
                        events.push(MediaEvent::Media {
                            session_id: sid,
                            handle_id: hid,
                            mid: mid.clone(),
                            kind,
                            substream,
                            receiving: false,
                            seconds: (timer > 1).then_some(idle),
                        });
                    }
                }
                let Some(first) = f.window_first.take() else {
                    continue;
                };
                let expected = f.window_max.saturating_sub(first) + 1;
                let lost = expected.saturating_sub(f.window_received);
                f.window_received = 0;
                if threshold > 0 && lost >= threshold {
                    events.push(MediaEvent::SlowLink {
                        session_id: sid,
                        handle_id: hid,
                        mid: mid.clone(),
                        kind,
                        uplink: true,
                        lost,
                    });
                    slow.push((mindex, kind));
                }
            }
        }
        for e in events {
            self.emit(e);
        }
        for (mindex, kind) in slow {
            self.call(|s, ctx| s.slow_link(ctx, mindex, kind == MediaKind::Video, true));
        }
        // A connection that never comes up (or went away) is given up on, as Janus does when
        // ICE fails.
        let give_up = match self.disconnected_since {
            Some(t) => {
                now.saturating_duration_since(t)
                    >= Duration::from_secs(if self.connected { 5 } else { 15 })
            }
            None => {
                !self.connected
                    && self.rtc.is_some()
                    && now.saturating_duration_since(self.created) >= Duration::from_secs(60)
            }
        };
        if give_up {
            if self.connected {
                self.emit(MediaEvent::IceFailed {
                    session_id: sid,
                    handle_id: hid,
                });
            }
            self.end("ICE failed", true);
        }
        self.refresh_info();
    }

    /// Refreshes the `handle_info` snapshot: plain values and shared (`Arc`) texts, no JSON;
    /// the JSON is made only when the Admin API asks ([`PcInfo::to_json`]).
    pub(super) fn refresh_info(&mut self) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        // The remote fingerprint is known once the peer's SDP is in; ours and our DTLS role
        // are kept from when they were made (`fingerprint`, `dtls_role`), not rebuilt here.
        let remote_fp = rtc
            .direct_api()
            .remote_dtls_fingerprint()
            .map(|f| f.to_string());
        let media = self
            .mids
            .iter()
            .enumerate()
            .map(|(mindex, m)| {
                let dir = rtc.media(m.mid).map(|x| x.direction());
                let (send, recv) = match dir {
                    Some(Direction::SendRecv) => (true, true),
                    Some(Direction::SendOnly) => (true, false),
                    Some(Direction::RecvOnly) => (false, true),
                    _ => (false, false),
                };
                MediaInfo {
                    mindex,
                    mid: m.mid.to_string(),
                    kind: m.kind,
                    send,
                    recv,
                    rx: m.rx,
                    tx: m.tx,
                    codecs: m.out.pts.iter().map(|(n, pt, _)| (*n, *pt)).collect(),
                }
            })
            .collect();
        let selected = self.remote_addr.map(|(l, r)| {
            let rtype = self
                .remote_candidates
                .iter()
                .find(|c| c.contains(&format!(" {} {} ", r.ip(), r.port())))
                .and_then(|c| c.split(" typ ").nth(1))
                .and_then(|t| t.split(' ').next())
                .unwrap_or("prflx")
                .to_owned();
            format!("{} [host,udp] <-> {} [{rtype},udp]", l, r)
        });
        let has_kind = |k| self.mids.iter().any(|m| m.kind == Some(k));
        let info = PcInfo {
            live: true,
            got_offer: self.got_offer,
            got_answer: self.got_answer || self.got_offer,
            negotiated: self.local_sdp.is_some() && self.remote_sdp.is_some(),
            ready: self.connected,
            has_audio: has_kind(MediaKind::Audio),
            has_video: has_kind(MediaKind::Video),
            data_channels: self.mids.iter().any(|m| m.kind.is_none()),
            created: Some(self.created),
            ice_lite: self.shared.cfg.ice_lite,
            local_sdp: self.local_sdp.clone(),
            remote_sdp: self.remote_sdp.clone(),
            ice_state: self.ice_state,
            local_candidates: self.local_candidates.clone(),
            remote_candidates: self.remote_candidates.clone(),
            selected,
            fingerprint: self.fingerprint.clone(),
            remote_fp,
            setup: self.dtls_role,
            dtls_in: self.dtls_in,
            dtls_out: self.dtls_out,
            media,
            tx_dropped: self.tx_dropped,
            nack_queue_ms: self.nack_applied,
        };
        *self.link.info.lock().unwrap_or_else(|e| e.into_inner()) = info;
    }
}

/// One m-line as `handle_info` shows it.
#[derive(Debug, Clone)]
pub(crate) struct MediaInfo {
    mindex: usize,
    mid: String,
    kind: Option<MediaKind>,
    send: bool,
    recv: bool,
    rx: Counters,
    tx: Counters,
    codecs: Vec<(&'static str, u8)>,
}

/// What the Admin API's `handle_info` shows of a PeerConnection: refreshed by its task (once a
/// second and on state changes), laid out as Janus does only when asked. The SDPs and candidate
/// lists are shared with the PeerConnection, not copied.
#[derive(Debug, Clone, Default)]
pub(crate) struct PcInfo {
    /// Set once the PeerConnection exists (before that there is nothing to show).
    pub live: bool,
    got_offer: bool,
    got_answer: bool,
    negotiated: bool,
    ready: bool,
    has_audio: bool,
    has_video: bool,
    data_channels: bool,
    created: Option<Instant>,
    ice_lite: bool,
    local_sdp: Option<Arc<str>>,
    remote_sdp: Option<Arc<str>>,
    ice_state: &'static str,
    local_candidates: Arc<Vec<String>>,
    remote_candidates: Arc<Vec<String>>,
    selected: Option<String>,
    fingerprint: Arc<str>,
    remote_fp: Option<String>,
    setup: &'static str,
    dtls_in: Counters,
    dtls_out: Counters,
    media: Vec<MediaInfo>,
    tx_dropped: u64,
    nack_queue_ms: Option<u64>,
}

impl PcInfo {
    /// The `handle_info` JSON; `queue_drops` = relayed packets lost before the task.
    pub fn to_json(&self, queue_drops: u64) -> Value {
        let mut media = Map::new();
        for m in &self.media {
            let mut v = json!({
                "type": m.kind.map_or("data", |k| k.as_str()),
                "mindex": m.mindex,
                "mid": m.mid,
            });
            if m.kind.is_some() {
                v["direction"] = json!({"send": m.send, "recv": m.recv});
                v["codecs"] = m
                    .codecs
                    .iter()
                    .map(|(name, pt)| json!({"codec": name, "pt": pt}))
                    .collect();
                v["stats"] = json!({
                    "in": {"packets": m.rx.packets, "bytes": m.rx.bytes},
                    "out": {"packets": m.tx.packets, "bytes": m.tx.bytes},
                });
            }
            media.insert(m.mid.clone(), v);
        }
        let mut ice = json!({
            "stream_id": 1,
            "component_id": 1,
            "state": self.ice_state,
            "local-candidates": *self.local_candidates,
            "remote-candidates": *self.remote_candidates,
            "ready": i32::from(self.ready),
        });
        if let Some(s) = &self.selected {
            ice["selected-pair"] = Value::String(s.clone());
        }
        let created = self.created.map_or(0, |c| c.elapsed().as_micros() as u64);
        json!({
            "flags": {
                "got-offer": self.got_offer,
                "got-answer": self.got_answer,
                "negotiated": self.negotiated,
                "ready": self.ready,
                "has-audio": self.has_audio,
                "has-video": self.has_video,
                "data-channels": self.data_channels,
                "trickle": true,
            },
            "agent-created": created,
            "ice-mode": if self.ice_lite { "lite" } else { "full" },
            "ice-role": if self.got_offer { "controlled" } else { "controlling" },
            "sdps": {"local": self.local_sdp.as_deref(), "remote": self.remote_sdp.as_deref()},
            "webrtc": {
                "ice": ice,
                "dtls": {
                    "fingerprint": &*self.fingerprint,
                    "remote-fingerprint": self.remote_fp,
                    "remote-fingerprint-hash": "sha-256",
                    "dtls-role": self.setup,
                    "dtls-state": if self.ready { "connected" } else { "trying" },
                    "retransmissions": 0,
                    "valid": self.ready,
                    "ready": i32::from(self.ready),
                    "stats": {
                        "in": {"packets": self.dtls_in.packets, "bytes": self.dtls_in.bytes},
                        "out": {"packets": self.dtls_out.packets, "bytes": self.dtls_out.bytes},
                    },
                },
                "media": media,
                // What the send streams keep for NACKs (min_nack_queue as applied).
                "nack-queue-ms": self.nack_queue_ms,
                // Relayed packets that never reached this peer: queues that were full, or no
                // m-line or agreed codec for them.
                "relay": {
                    "dropped-queue": queue_drops,
                    "dropped-unsendable": self.tx_dropped,
                },
            },
        })
    }
}
