//! Building the `Rtc`, offers and answers, trickled candidates, and what was agreed.

use super::{spawn_reader, Counters, Flow, MidState, Pc, SendSocket, TxState};
use crate::rewrite::SeqTs;
use crate::sdp;
use jano_core::MediaEvent;
use jano_core::{LocalSdp, RemoteSdp};
use jano_plugin::{
    LocalJsep, MediaKind, MediaPrefs, NegotiatedCodec, NegotiatedMedia, OfferMedia, Value,
};
use serde_json::json;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, Mid};
use str0m::rtp::{Extension, Ssrc};
use str0m::{Candidate, Rtc, RtcConfig};

impl Pc {
    pub(super) fn build_rtc(&mut self, prefs: &MediaPrefs) -> Result<(), String> {
        let cfg = &self.shared.cfg;
        let mut rc = RtcConfig::new()
            // Janus negotiates playout-delay too; the id is only used when we offer.
            .set_extension(6, Extension::PlayoutDelay)
            // AV1 SVC: what layer each packet is, and relayed so receivers can decode.
            .set_extension(crate::ext::DD_ID, crate::ext::dd_extension())
            .set_rtp_mode(true)
            .set_ice_lite(cfg.ice_lite)
            .set_dtls_cert(self.shared.cert.clone())
            .set_stats_interval(None);
        if prefs.audio_codec.is_some() || prefs.video_codec.is_some() || prefs.opus_red {
            rc = codec_config(rc, prefs);
        }
        let mut rtc = rc.build(Instant::now());
        // Sockets: the shared single port, or a port of our own from the range.
        if let Some(single) = &self.shared.single {
            for s in single.sockets() {
                let local = s.local_addr().map_err(|e| e.to_string())?;
                self.sockets.push((local, SendSocket::Shared(s)));
            }
        } else {
            let socks = self
                .shared
                .ports
                .bind(&self.shared.cfg.ips)
                .map_err(|e| format!("can't bind a media port: {e}"))?;
            let one = socks.len() == 1;
            for s in socks {
                let local = s.local_addr().map_err(|e| e.to_string())?;
                if one {
                    // One descriptor per PeerConnection: the task reads and writes it.
                    let tokio_sock = tokio::net::UdpSocket::from_std(s)
                        .map_err(|e| format!("can't register the media socket: {e}"))?;
                    let tokio_sock = Rc::new(tokio_sock);
                    self.direct = Some((local, tokio_sock.clone()));
                    self.sockets.push((local, SendSocket::Own(tokio_sock)));
                } else {
                    let s = Arc::new(s);
                    self.readers.push(spawn_reader(
                        &s,
                        local,
                        self.link.pkt.clone(),
                        self.shared.clone(),
                    ));
                    self.sockets.push((local, SendSocket::Shared(s)));
                }
            }
        }
        for (i, (local, _)) in self.sockets.iter().enumerate() {
            let public = cfg
                .nat_1_1
                .get(i)
                .or_else(|| (cfg.nat_1_1.len() == 1).then(|| &cfg.nat_1_1[0]))
                .copied();
            let mut cands = Vec::new();
            if public.is_none() || cfg.keep_private_host {
                cands.push(Candidate::host(*local, "udp"));
            }
            if let Some(ip) = public {
                cands.push(Candidate::server_reflexive(
                    SocketAddr::new(ip, local.port()),
                    *local,
                    "udp",
                ));
            }
            for c in cands.into_iter().flatten() {
                if let Some(added) = rtc.add_local_candidate(c) {
                    Arc::make_mut(&mut self.local_candidates).push(added.to_sdp_string());
                }
            }
        }
        if let Some(single) = &self.shared.single {
            let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
            single.register(&ufrag, self.handle_id);
        }
        self.fingerprint = Arc::from(rtc.direct_api().local_dtls_fingerprint().to_string());
        self.rtc = Some(rtc);
        Ok(())
    }

    pub(super) fn negotiate(
        &mut self,
        remote: Option<RemoteSdp>,
        jsep: &LocalJsep,
    ) -> Result<LocalSdp, String> {
        let prefs = match jsep {
            LocalJsep::Answer(p) => p,
            LocalJsep::Offer { prefs, .. } => prefs,
        };
        if self.rtc.is_none() {
            self.build_rtc(prefs)?;
        }
        let single = self.shared.single.is_some();
        let Some(rtc) = self.rtc.as_mut() else {
            return Err("no PeerConnection".into());
        };
        let (kind, text) = match (jsep, remote) {
            (LocalJsep::Answer(_), Some(remote)) => {
                let offer = SdpOffer::from_sdp_string(&remote.sdp)
                    .map_err(|e| format!("Error parsing offer: {e}"))?;
                let answer = rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .map_err(|e| format!("Error processing SDP: {e}"))?;
                self.got_offer = true;
                self.remote_sdp = Some(Arc::from(remote.sdp.as_str()));
                Arc::make_mut(&mut self.remote_candidates).extend(sdp::candidates(&remote.sdp));
                let text = sdp::dd_only_for_av1(&answer.to_sdp_string());
                let text = sdp::without_extensions(&text, &prefs.without_extensions.uris());
                let text = if prefs.opus_stereo {
                    sdp::opus_stereo(&text)
                } else {
                    text
                };
                if prefs.recv_only {
                    ("answer", sdp::receive_only(&text))
                } else {
                    ("answer", text)
                }
            }
            (LocalJsep::Answer(_), None) => return Err("no offer to answer".into()),
            (
                LocalJsep::Offer {
                    media,
                    data,
                    restart,
                    ..
                },
                _,
            ) => {
                let has_data = self.mids.iter().any(|m| m.kind.is_none());
                let plan = plan_offer(rtc, &self.mids, media);
                let mut api = rtc.sdp_api();
                if *restart {
                    api.ice_restart(true);
                }
                let mut mids = Vec::with_capacity(media.len());
                for (m, slot) in media.iter().zip(&plan.slots) {
                    let dir = direction(m.send, m.recv);
                    let mid = match slot {
                        Some(mid) => {
                            api.set_direction(*mid, dir);
                            *mid
                        }
                        None => api.add_media(
                            str0m_kind(m.kind),
                            dir,
                            m.stream_id.clone(),
                            m.track_id.clone(),
                            simulcast_send(m.simulcast.as_deref()),
                        ),
                    };
                    mids.push(mid.to_string());
                }
                for mid in &plan.unused {
                    api.set_direction(*mid, Direction::Inactive);
                }
                if *data && !has_data {
                    // str0m writes the application m-line only for a channel. An out-of-band
                    // one is never announced to the peer, so the peer sees exactly the
                    // channels it opens itself, as with Janus; the engine opens a real one
                    // when it has something to send and the peer opened none.
                    let id = api.add_channel_with_config(str0m::channel::ChannelConfig {
                        label: super::DEFAULT_CHANNEL.into(),
                        negotiated: Some(super::PLACEHOLDER_STREAM),
                        ..Default::default()
                    });
                    self.placeholder = Some(id);
                }
                let Some((offer, pending)) = api.apply() else {
                    return Err("nothing to offer".into());
                };
                self.pending_offer = Some(pending);
                let mut text = offer.to_sdp_string();
                for (m, mid) in media.iter().zip(&mids) {
                    if m.codec.is_some() || m.extensions.is_some() {
                        let r = sdp::Restrict {
                            codec: m.codec.as_deref(),
                            profile: m.profile.as_deref(),
                            extensions: m.extensions.as_deref(),
                        };
                        text = sdp::restrict(&text, mid, &r);
                    }
                }
                // After the codecs are narrowed: the first one decides.
                let text = sdp::dd_only_for_av1(&text);
                let text = sdp::without_extensions(&text, &prefs.without_extensions.uris());
                let text = if prefs.opus_stereo {
                    sdp::opus_stereo(&text)
                } else {
                    text
                };
                self.offer_mids = mids;
                ("offer", text)
            }
        };
        // New local ICE credentials (an answer may carry the peer's ICE restart; our own restart
        // offer is registered again when its answer comes): the single port must know them.
        let new_creds = matches!(
            jsep,
            LocalJsep::Answer(_) | LocalJsep::Offer { restart: true, .. }
        );
        if single && new_creds {
            let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
            if let Some(s) = &self.shared.single {
                s.register(&ufrag, self.handle_id);
            }
        }
        // Every new local description has a higher version than the last (RFC 3264 §5;
        // clients compare them), including an ICE restart with nothing else changed.
        let (text, version) = sdp::next_origin_version(&text, self.sdp_version);
        self.sdp_version = Some(version);
        self.set_mids(&text);
        if let Some(remote) = self.remote_sdp.clone().filter(|_| kind == "answer") {
            self.set_sim(&remote);
        }
        let nack_ms = self.nack_queue_ms();
        if let Some(rtc) = self.rtc.as_mut() {
            ensure_send_streams(rtc, &self.mids, nack_ms, &mut self.rtx_sized);
            self.nack_applied = Some(nack_ms);
        }
        self.refresh_pts();
        tracing::debug!(handle = self.handle_id, "local {kind}:\n{text}");
        self.dtls_role = match text
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("a=setup:"))
        {
            Some("active") => "active",
            Some("passive") => "passive",
            _ => "actpass",
        };
        self.local_sdp = Some(Arc::from(text.as_str()));
        Ok(LocalSdp { kind, sdp: text })
    }

    pub(super) fn remote_answer(&mut self, remote: &RemoteSdp) -> Result<(), String> {
        let nack_ms = self.nack_queue_ms();
        let (Some(rtc), Some(pending)) = (self.rtc.as_mut(), self.pending_offer.take()) else {
            return Err("no offer of ours is pending".into());
        };
        let answer = SdpAnswer::from_sdp_string(&remote.sdp).map_err(|e| e.to_string())?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| e.to_string())?;
        ensure_send_streams(rtc, &self.mids, nack_ms, &mut self.rtx_sized);
        self.nack_applied = Some(nack_ms);
        self.refresh_pts();
        let Some(rtc) = self.rtc.as_mut() else {
            return Err("no PeerConnection".into());
        };
        // An ICE restart we offered takes its new credentials only now.
        if let Some(s) = &self.shared.single {
            s.register(
                &rtc.direct_api().local_ice_credentials().ufrag,
                self.handle_id,
            );
        }
        self.got_answer = true;
        self.remote_sdp = Some(Arc::from(remote.sdp.as_str()));
        Arc::make_mut(&mut self.remote_candidates).extend(sdp::candidates(&remote.sdp));
        Ok(())
    }

    /// Takes the ssrc-based simulcast groups of the peer's SDP.
    pub(super) fn set_sim(&mut self, remote: &str) {
        for l in sdp::m_lines(remote) {
            let Some(mid) = l.mid.as_deref() else {
                continue;
            };
            if let Some(m) = self.mids.iter_mut().find(|m| m.mid.to_string() == mid) {
                m.sim = l.sim;
            }
        }
    }

    pub(super) fn set_mids(&mut self, local: &str) {
        let lines = sdp::m_lines(local);
        let mut next = Vec::with_capacity(lines.len());
        for l in lines {
            let Some(mid) = l.mid.as_deref() else {
                continue;
            };
            let mid = Mid::from(mid);
            match self.mids.iter().position(|m| m.mid == mid) {
                Some(i) => next.push(self.mids.swap_remove(i)),
                None => next.push(MidState {
                    mid,
                    kind: l.kind(),
                    flows: [Flow::default(); 4],
                    rx: Counters::default(),
                    tx: Counters::default(),
                    codec: None,
                    out: TxState {
                        pts: Vec::new(),
                        seq: {
                            let seed =
                                self.handle_id ^ (next.len() as u64).wrapping_mul(0x9e37_79b9);
                            [0u64, 1, 2, 3].map(|l| SeqTs::new(seed.wrapping_add(l * 7919)))
                        },
                        vp8: Default::default(),
                    },
                    sim: Vec::new(),
                    dd: Default::default(),
                }),
            }
        }
        self.mids = next;
    }

    pub(super) fn trickle(&mut self, candidates: &[Value]) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        for c in candidates {
            match sdp::trickle(c) {
                sdp::Trickle::Candidate(s) => match Candidate::from_sdp_string(&s) {
                    Ok(cand) => {
                        Arc::make_mut(&mut self.remote_candidates).push(s);
                        rtc.add_remote_candidate(cand);
                    }
                    Err(e) => {
                        tracing::debug!(handle = self.handle_id, "bad remote candidate {s:?}: {e}");
                    }
                },
                sdp::Trickle::Completed | sdp::Trickle::Ignored => {}
            }
        }
    }

    /// `full_trickle`: our candidates as `trickle` events, then end-of-candidates.
    pub(super) fn trickle_local(&self) {
        let (sid, hid) = self.ids();
        let mid = self
            .mids
            .first()
            .map(|m| m.mid.to_string())
            .unwrap_or_else(|| "0".into());
        for c in self.local_candidates.iter() {
            self.emit(MediaEvent::LocalCandidate {
                session_id: sid,
                handle_id: hid,
                candidate: json!({"sdpMid": mid, "sdpMLineIndex": 0, "candidate": c}),
            });
        }
        self.emit(MediaEvent::LocalCandidate {
            session_id: sid,
            handle_id: hid,
            candidate: json!({"completed": true}),
        });
    }

    /// The payload types the peer agreed to per codec on each m-line we send on: what relayed
    /// packets are mapped to.
    fn refresh_pts(&mut self) {
        let Some(rtc) = self.rtc.as_ref() else { return };
        for m in &mut self.mids {
            m.out.pts = rtc
                .media(m.mid)
                .map(|media| {
                    media
                        .remote_pts()
                        .iter()
                        .filter_map(|pt| {
                            let p = rtc.codec_config().find(|p| p.pt() == *pt)?;
                            Some((codec_name(rtc, **pt), **pt, p.spec().clock_rate.get()))
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
    }

    /// What was agreed per m-line, for the plugin's `negotiated` callback.
    fn negotiated_media(&self) -> Vec<NegotiatedMedia> {
        let Some(rtc) = self.rtc.as_ref() else {
            return Vec::new();
        };
        self.mids
            .iter()
            .enumerate()
            .map(|(mindex, m)| {
                let media = rtc.media(m.mid);
                let (send, recv) = media.map_or((false, false), |x| {
                    (x.direction().is_sending(), x.direction().is_receiving())
                });
                let codecs = media
                    .map(|x| {
                        x.remote_pts()
                            .iter()
                            .filter_map(|pt| {
                                let p = rtc.codec_config().find(|p| p.pt() == *pt)?;
                                Some(NegotiatedCodec {
                                    name: codec_name(rtc, **pt),
                                    pt: **pt,
                                    clock_rate: p.spec().clock_rate.get(),
                                    rtx: p.resend().map(|r| *r),
                                    fmtp: p.spec().format.to_string(),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let extensions = media
                    .map(|x| {
                        x.remote_extmap()
                            .iter()
                            .map(|(id, e)| (id, e.as_uri().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let rids = media
                    .map(|x| match x.rids_rx() {
                        str0m::media::Rids::Specific(v) => {
                            v.iter().map(|r| r.to_string()).collect()
                        }
                        _ => Vec::new(),
                    })
                    .unwrap_or_default();
                NegotiatedMedia {
                    mindex,
                    mid: m.mid.to_string(),
                    kind: m.kind,
                    send,
                    recv,
                    codecs,
                    extensions,
                    rids,
                }
            })
            .collect()
    }

    /// Tells the plugin's session what a completed negotiation agreed.
    pub(super) fn tell_negotiated(&mut self) {
        let media = self.negotiated_media();
        self.call(|s, ctx| s.negotiated(ctx, &media));
    }
}

/// Simulcast layer index (0 lowest) from janus.js's and Chrome's conventional rids.
pub(super) fn rid_index(rid: &str0m::media::Rid) -> Option<u8> {
    match rid.to_string().as_str() {
        "h" => Some(2),
        "m" => Some(1),
        "l" => Some(0),
        _ => None,
    }
}

/// Gives every m-line we send on a stream to send with. str0m makes none for an m-line whose
/// peer offered simulcast (it only makes one per layer *we* send), yet plugins echo or forward
/// one layer back on it; the peer finds that stream by its mid.
///
/// Every send stream's retransmission cache is sized from `min_nack_queue_ms` as soon as it
/// exists (str0m's default keeps 3 s of packets, up to 2,000, per stream); `sized` lists the
/// streams already done, so a renegotiation does not empty their caches.
pub(super) fn ensure_send_streams(
    rtc: &mut Rtc,
    mids: &[MidState],
    min_nack_queue_ms: u64,
    sized: &mut Vec<Ssrc>,
) {
    for m in mids {
        let Some(media) = rtc.media(m.mid) else {
            continue;
        };
        if m.kind.is_none() || !media.direction().is_sending() {
            continue;
        }
        let video = m.kind == Some(MediaKind::Video);
        let mut api = rtc.direct_api();
        if api.stream_tx_by_mid(m.mid, None).is_none() {
            let ssrc = api.new_ssrc();
            let rtx = video.then(|| api.new_ssrc());
            api.declare_stream_tx(ssrc, rtx, m.mid, None);
        }
        if let Some(tx) = api.stream_tx_by_mid(m.mid, None) {
            let ssrc = tx.ssrc();
            if !sized.contains(&ssrc) {
                size_rtx_cache(tx, min_nack_queue_ms);
                sized.push(ssrc);
            }
        }
    }
}

/// Keeps `ms` milliseconds of sent packets for NACKs (bounded in count too).
pub(super) fn size_rtx_cache(tx: &mut str0m::rtp::StreamTx, ms: u64) {
    tx.set_rtx_cache(
        rtx_packets(ms),
        Duration::from_millis(ms),
        DEFAULT_RTX_RATIO_CAP,
    );
}

/// str0m's default cap on retransmitted bytes (a share of what is sent).
const DEFAULT_RTX_RATIO_CAP: Option<f32> = Some(0.15);

/// Packets kept for retransmission over `ms` milliseconds: up to one a millisecond (a video
/// stream at several Mbit/s), at least 64, never unbounded. The cache only grows to what the
/// stream actually sent in `ms`.
pub(super) fn rtx_packets(ms: u64) -> usize {
    ms.clamp(64, 2000) as usize
}

/// Janus's lowercase name of the codec behind a payload type (RTX resolves to its codec).
pub(super) fn codec_name(rtc: &Rtc, pt: u8) -> &'static str {
    use str0m::format::Codec;
    let params = rtc
        .codec_config()
        .find(|p| *p.pt() == pt || p.resend().is_some_and(|r| *r == pt));
    match params.map(|p| p.spec().codec) {
        Some(Codec::Opus) => "opus",
        Some(Codec::PCMU) => "pcmu",
        Some(Codec::PCMA) => "pcma",
        Some(Codec::G722) => "g722",
        Some(Codec::Vp8) => "vp8",
        Some(Codec::Vp9) => "vp9",
        Some(Codec::H264) => "h264",
        Some(Codec::H265) => "h265",
        Some(Codec::Av1) => "av1",
        _ => "unknown",
    }
}

/// A codec set honouring a plugin's preferences; the other kind keeps str0m's defaults.
pub(super) fn codec_config(rc: RtcConfig, prefs: &MediaPrefs) -> RtcConfig {
    let audio = prefs.audio_codec.as_deref().map(str::to_ascii_lowercase);
    let video = prefs.video_codec.as_deref().map(str::to_ascii_lowercase);
    let a = |n: &str| audio.as_deref().is_none_or(|x| x == n);
    let v = |n: &str| video.as_deref().is_none_or(|x| x == n);
    rc.clear_codecs()
        .enable_opus(a("opus"), prefs.opus_red)
        .enable_pcmu(a("pcmu"), false)
        .enable_pcma(a("pcma"), false)
        .enable_g722(a("g722"), false)
        .enable_vp8(v("vp8"))
        .enable_h264(v("h264"))
        .enable_vp9(v("vp9"))
        .enable_av1(v("av1"))
}

/// Which existing m-line each entry of a plugin's offer takes (`None`: a new one), and the
/// existing m-lines no entry took (they become inactive). See [`jano_plugin::OfferMedia`].
struct OfferPlan {
    slots: Vec<Option<Mid>>,
    unused: Vec<Mid>,
}

fn plan_offer(rtc: &Rtc, mids: &[MidState], media: &[OfferMedia]) -> OfferPlan {
    // Existing audio/video m-lines with whether they are active now.
    let existing: Vec<(Mid, MediaKind, bool)> = mids
        .iter()
        .filter_map(|m| {
            let kind = m.kind?;
            let active = rtc
                .media(m.mid)
                .is_some_and(|x| x.direction() != Direction::Inactive);
            Some((m.mid, kind, active))
        })
        .collect();
    let mut taken: Vec<Mid> = Vec::new();
    let mut slots: Vec<Option<Mid>> = vec![None; media.len()];
    // Named m-lines first.
    for (i, m) in media.iter().enumerate() {
        let Some(name) = m.mid.as_deref() else {
            continue;
        };
        if let Some((mid, _, _)) = existing
            .iter()
            .find(|(mid, kind, _)| mid.to_string() == name && *kind == m.kind)
        {
            if !taken.contains(mid) {
                slots[i] = Some(*mid);
                taken.push(*mid);
            }
        }
    }
    // Unnamed entries keep the active m-lines of their kind, in order; then recycle inactive
    // ones; what is left is added.
    for want_active in [true, false] {
        for (i, m) in media.iter().enumerate() {
            if slots[i].is_some() || m.mid.is_some() && want_active {
                continue;
            }
            if let Some((mid, _, _)) = existing.iter().find(|(mid, kind, active)| {
                *kind == m.kind && *active == want_active && !taken.contains(mid)
            }) {
                slots[i] = Some(*mid);
                taken.push(*mid);
            }
        }
    }
    let unused = existing
        .iter()
        .filter(|(mid, _, active)| *active && !taken.contains(mid))
        .map(|(mid, _, _)| *mid)
        .collect();
    OfferPlan { slots, unused }
}

fn direction(send: bool, recv: bool) -> Direction {
    match (send, recv) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

fn str0m_kind(kind: MediaKind) -> str0m::media::MediaKind {
    match kind {
        MediaKind::Audio => str0m::media::MediaKind::Audio,
        MediaKind::Video => str0m::media::MediaKind::Video,
    }
}

/// str0m's simulcast description for the layers a plugin sends on a new m-line.
fn simulcast_send(rids: Option<&[String]>) -> Option<str0m::media::Simulcast> {
    let rids = rids.filter(|r| !r.is_empty())?;
    let mut s = str0m::media::Simulcast::new();
    for rid in rids {
        s.add_send_layer(str0m::media::SimulcastLayer::new(rid));
    }
    Some(s)
}
