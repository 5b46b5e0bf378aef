//! Media in (from the peer to the plugin's session) and out (relays, rewritten per peer).

use super::negotiate::{codec_name, rid_index, size_rtx_cache};
use super::Pc;
use crate::ext::DdValue;
use crate::rewrite::Vp8Ids;
use jano_core::MediaEvent;
use jano_plugin::{Dest, MediaKind, Outbox, RtpExtensions, RtpPacket};
use std::sync::atomic::Ordering;
use std::time::Instant;
use str0m::bwe::Bitrate;
use str0m::media::{KeyframeRequestKind, MediaTime, Mid};
use str0m::rtp::{ExtensionValues, RtpWrite, Vp8Descriptor, Vp8Patch};

impl Pc {
    pub(super) fn on_rtp(&mut self, p: str0m::rtp::RtpPacket) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        let ssrc = p.header.ssrc;
        let Some((mid, rid)) = rtc
            .direct_api()
            .stream_rx(&ssrc)
            .map(|s| (s.mid(), s.rid()))
        else {
            return;
        };
        let Some(idx) = self.mids.iter().position(|m| m.mid == mid) else {
            return;
        };
        let now = Instant::now();
        let (sid, hid) = self.ids();
        let seq = *p.seq_no;
        // A rid names the layer; without one, the SSRC's place in the peer's SIM group does.
        let substream = rid.and_then(|r| rid_index(&r)).or_else(|| {
            let sim = &self.mids.get(idx)?.sim;
            sim.iter()
                .take(3)
                .position(|s| *s == *ssrc)
                .and_then(|i| u8::try_from(i).ok())
        });
        let pt = *p.header.payload_type;
        let codec = match self.mids.get(idx).and_then(|m| m.codec) {
            Some((cpt, name)) if cpt == pt => name,
            _ => self.rtc.as_ref().map_or("unknown", |r| codec_name(r, pt)),
        };
        let Some(m) = self.mids.get_mut(idx) else {
            return;
        };
        let Some(kind) = m.kind else { return };
        m.codec = Some((pt, codec));
        m.rx.packets += 1;
        m.rx.bytes += p.payload.len() as u64;
        let slot = substream.map_or(3, |l| usize::from(l.min(2)));
        let Some(f) = m.flows.get_mut(slot) else {
            return;
        };
        f.last_in = Some(now);
        match f.window_first {
            None => {
                f.window_first = Some(seq);
                f.window_max = seq;
            }
            Some(_) => f.window_max = f.window_max.max(seq),
        }
        f.window_received += 1;
        if !f.receiving {
            // Per simulcast layer, as Janus reports them.
            f.receiving = true;
            let ev = MediaEvent::Media {
                session_id: sid,
                handle_id: hid,
                mid: m.mid.to_string(),
                kind,
                substream,
                receiving: true,
                seconds: None,
            };
            self.emit(ev);
        }
        let ext = &p.header.ext_vals;
        // Only AV1's descriptor is kept: a VP8 publisher's would describe one simulcast
        // layer's frames, wrong for a receiver switched between layers.
        let dd = ext
            .user_values
            .get::<DdValue>()
            .filter(|_| codec == "av1")
            .map(|d| d.0.clone());
        // Layers are read once here, not per receiver; an AV1 descriptor needs the stream's
        // template structure, which this m-line keeps.
        let svc = match codec {
            "vp9" => jano_plugin::rtp::vp9_layers(&p.payload),
            "av1" => match (&dd, self.mids.get_mut(idx)) {
                (Some(d), Some(m)) => {
                    m.dd.read(d)
                        .map(|f| f.layers(f.begin && jano_plugin::rtp::av1_keyframe(&p.payload)))
                }
                _ => None,
            },
            _ => None,
        };
        let packet = RtpPacket {
            mindex: idx,
            kind,
            pt,
            codec,
            seq,
            timestamp: p.header.timestamp,
            marker: p.header.marker,
            ssrc: *ssrc,
            substream,
            ext: RtpExtensions {
                audio_level: ext.audio_level,
                voice_activity: ext.voice_activity,
                video_orientation: ext.video_orientation.map(|o| o as u8),
                min_delay: None,
                max_delay: None,
                dd,
            },
            payload: p.payload.clone(),
            svc,
        };
        self.call(|s, ctx| s.incoming_rtp(ctx, &packet));
    }

    /// Applies what a plugin callback asked of this PeerConnection, leaving `out` empty.
    pub(super) fn apply(&mut self, out: &mut Outbox) {
        for p in out.rtp.drain(..) {
            self.send_rtp(&p, None, 0);
        }
        for d in out.data.drain(..) {
            self.send_data(d.label.as_deref(), d.binary, &d.data);
        }
        for m in out.keyframe.drain(..) {
            self.request_keyframe(m);
        }
        if let Some(b) = out.remb.take() {
            self.send_remb(b);
        }
    }

    /// The m-line a relayed packet goes out on: the one it names if the kind matches, else the
    /// first of its kind.
    fn target_mid(&self, mindex: usize, kind: MediaKind) -> Option<usize> {
        match self.mids.get(mindex) {
            Some(m) if m.kind == Some(kind) => Some(mindex),
            _ => self.mids.iter().position(|m| m.kind == Some(kind)),
        }
    }

    /// A packet of a fan-out for this PeerConnection (written by its worker, outside the task):
    /// sent, and the task woken only if str0m now wants an earlier timeout than it is armed for.
    pub(crate) fn relay(&mut self, p: &RtpPacket, dest: &Dest) {
        let mindex = usize::try_from(dest.mindex).ok();
        let mut marker = p.marker;
        if p.codec == "vp8" && dest.temporal != u8::MAX {
            let tid = jano_plugin::rtp::vp8_tid(&p.payload).unwrap_or(0);
            if tid > dest.temporal {
                self.skip_rtp(p, mindex, dest.epoch);
                return;
            }
        } else if dest.temporal != u8::MAX || dest.spatial != u8::MAX {
            if let Some(l) = p.layers() {
                if l.sid > dest.spatial || l.tid > dest.temporal {
                    self.skip_rtp(p, mindex, dest.epoch);
                    return;
                }
                // The publisher marks the end of the whole picture; with the layers above
                // dropped, the end of this receiver's top layer is the end of its picture.
                marker |= l.end && l.sid == dest.spatial;
            }
        }
        let opts = WriteOpts {
            playout: dest.playout,
            marker,
        };
        if !self.write_rtp(p, mindex.unwrap_or(p.mindex), dest.epoch, false, opts) {
            self.tx_dropped += 1;
            return;
        }
        let next = self.drive();
        self.flush_tx();
        if next < self.armed {
            self.armed = next;
            self.wake.notify_one();
        }
    }

    /// Sends a relayed packet on `mindex` (or the packet's own m-line index) with this peer's
    /// payload type for its codec, this stream's SSRC, and sequence numbers and timestamps
    /// continuous for this peer. Returns whether it was written; what cannot be sent is counted.
    pub(crate) fn send_rtp(&mut self, p: &RtpPacket, mindex: Option<usize>, epoch: u32) -> bool {
        let sent = self.write_rtp(
            p,
            mindex.unwrap_or(p.mindex),
            epoch,
            false,
            WriteOpts::of(p),
        );
        if !sent {
            self.tx_dropped += 1;
        }
        sent
    }

    /// A relayed packet this destination does not get (above its temporal cap): its
    /// stream's sequence numbers close up over it.
    fn skip_rtp(&mut self, p: &RtpPacket, mindex: Option<usize>, epoch: u32) {
        self.write_rtp(p, mindex.unwrap_or(p.mindex), epoch, true, WriteOpts::of(p));
    }

    /// Writes `p` (or, with `skip`, only accounts for not writing it) as `opts` says.
    fn write_rtp(
        &mut self,
        p: &RtpPacket,
        mindex: usize,
        epoch: u32,
        skip: bool,
        opts: WriteOpts,
    ) -> bool {
        let playout = opts.playout;
        let Some(idx) = self.target_mid(mindex, p.kind) else {
            return false;
        };
        let Some(rtc) = self.rtc.as_mut() else {
            return false;
        };
        let Some(m) = self.mids.get_mut(idx) else {
            return false;
        };
        // The peer's payload type for this codec; a packet whose codec the peer did not agree
        // to is not sent (it could not decode it).
        let found = m
            .out
            .pts
            .iter()
            .find(|(name, _, _)| *name == p.codec)
            .or_else(|| m.out.pts.iter().find(|(_, pt, _)| *pt == p.pt));
        let Some(&(_, pt, clock)) = found else {
            return false;
        };
        let now = Instant::now();
        let mut api = rtc.direct_api();
        // A simulcast layer goes out on the stream of its rid when this m-line sends
        // simulcast; otherwise everything shares the m-line's one stream.
        let layer = p
            .substream
            .and_then(|l| layer_rid(l).map(|rid| (l, rid)))
            .filter(|(_, rid)| api.stream_tx_by_mid(m.mid, Some((*rid).into())).is_some());
        let (rid, slot) = match layer {
            Some((l, rid)) => (Some(rid.into()), usize::from(l.min(2))),
            None => (None, 3),
        };
        let Some(seq_state) = m.out.seq.get_mut(slot) else {
            return false;
        };
        if skip {
            seq_state.skip((p.ssrc, epoch));
            return true;
        }
        let (seq, ts) = seq_state.map((p.ssrc, epoch), p.seq, p.timestamp, clock, now);
        let vp8_patch = match m.out.vp8.get_mut(slot) {
            Some(ids) if p.codec == "vp8" => vp8_patch(ids, (p.ssrc, epoch), &p.payload),
            _ => None,
        };
        let Some(tx) = api.stream_tx_by_mid(m.mid, rid) else {
            return false;
        };
        let delay = |d: Option<u16>| d.map(|v| MediaTime::from_hundredths(u64::from(v)));
        let mut ev = ExtensionValues {
            audio_level: p.ext.audio_level,
            voice_activity: p.ext.voice_activity,
            play_delay_min: delay(playout.map(|d| d.0).or(p.ext.min_delay)),
            play_delay_max: delay(playout.map(|d| d.1).or(p.ext.max_delay)),
            ..ExtensionValues::default()
        };
        if let Some(dd) = &p.ext.dd {
            ev.user_values.set(DdValue(dd.clone()));
        }
        let w = RtpWrite::new(pt.into(), seq.into(), ts, now, p.payload.clone())
            .marker(opts.marker)
            .ext_vals(ev)
            .nackable(p.kind == MediaKind::Video);
        let w = match vp8_patch {
            Some(patch) => w.vp8_patch(patch),
            None => w,
        };
        tx.write_rtp(w);
        m.tx.packets += 1;
        m.tx.bytes += p.payload.len() as u64;
        true
    }

    /// Sends on the channel with the label (Janus's default one when none is named). A label
    /// the peer never opened is opened from here, as Janus does, and what is sent meanwhile
    /// waits for it (bounded).
    pub(super) fn send_data(&mut self, label: Option<&str>, binary: bool, data: &[u8]) {
        let label = label.unwrap_or(super::DEFAULT_CHANNEL);
        let Some(rtc) = self.rtc.as_mut() else { return };
        let id = self
            .channels
            .iter()
            .find(|(_, n)| n == label)
            .map(|(id, _)| *id);
        let Some(id) = id else {
            self.queue_data(label, binary, data);
            return;
        };
        if let Some(mut ch) = rtc.channel(id) {
            if let Err(e) = ch.write(binary, data) {
                tracing::debug!(handle = self.handle_id, "data channel write: {e}");
            }
        }
    }

    fn queue_data(&mut self, label: &str, binary: bool, data: &[u8]) {
        if self.pending_data.len() >= super::MAX_PENDING_DATA {
            tracing::debug!(
                handle = self.handle_id,
                "data channel {label} not open: message dropped"
            );
            return;
        }
        let Some(rtc) = self.rtc.as_mut() else { return };
        // Only once SCTP is up can a channel be opened; until then str0m has no association.
        if !self.opening.iter().any(|(_, n)| n == label) && rtc.is_connected() {
            let id = rtc
                .direct_api()
                .create_data_channel(str0m::channel::ChannelConfig {
                    label: label.to_owned(),
                    ..Default::default()
                });
            self.opening.push((id, label.to_owned()));
        }
        self.pending_data
            .push_back((label.to_owned(), binary, data.to_vec()));
    }

    /// Sends what waited for channels that are open now.
    pub(super) fn flush_pending_data(&mut self) {
        let waiting = std::mem::take(&mut self.pending_data);
        for (label, binary, data) in waiting {
            if self.channels.iter().any(|(_, n)| *n == label) {
                self.send_data(Some(&label), binary, &data);
            } else {
                self.pending_data.push_back((label, binary, data));
            }
        }
    }

    pub(super) fn request_keyframe(&mut self, mindex: Option<usize>) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        let mids: Vec<Mid> = self
            .mids
            .iter()
            .enumerate()
            .filter(|(i, m)| m.kind == Some(MediaKind::Video) && mindex.is_none_or(|x| x == *i))
            .map(|(_, m)| m.mid)
            .collect();
        for mid in mids {
            for rid in [None, Some("h".into()), Some("m".into()), Some("l".into())] {
                if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, rid) {
                    rx.request_keyframe(KeyframeRequestKind::Pli);
                }
            }
        }
    }

    pub(super) fn send_remb(&mut self, bitrate: u64) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        if bitrate == 0 {
            return;
        }
        let mids: Vec<Mid> = self
            .mids
            .iter()
            .filter(|m| m.kind == Some(MediaKind::Video))
            .map(|m| m.mid)
            .collect();
        for mid in mids {
            if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, None) {
                rx.request_remb(Bitrate::bps(bitrate));
            }
        }
    }

    /// The current `min_nack_queue`, in milliseconds.
    pub(super) fn nack_queue_ms(&self) -> u64 {
        self.shared.settings.min_nack_queue.load(Ordering::Relaxed)
    }

    /// `min_nack_queue` changed (Admin API): every send stream keeps that much for NACKs.
    /// (New streams are sized when they are created, in `ensure_send_streams`.)
    pub(super) fn apply_nack_queue(&mut self) {
        let gen = self.shared.settings.nack_gen.load(Ordering::Relaxed);
        if gen == self.nack_gen {
            return;
        }
        self.nack_gen = gen;
        let ms = self.nack_queue_ms();
        let Some(rtc) = self.rtc.as_mut() else { return };
        let mids: Vec<Mid> = self
            .mids
            .iter()
            .filter(|m| m.kind.is_some())
            .map(|m| m.mid)
            .collect();
        self.rtx_sized.clear();
        let mut api = rtc.direct_api();
        for mid in mids {
            if let Some(tx) = api.stream_tx_by_mid(mid, None) {
                size_rtx_cache(tx, ms);
                self.rtx_sized.push(tx.ssrc());
            }
        }
        self.nack_applied = Some(ms);
    }
}

/// The rid janus.js and browsers give a simulcast layer (0 lowest).
fn layer_rid(layer: u8) -> Option<&'static str> {
    match layer {
        0 => Some("l"),
        1 => Some("m"),
        2 => Some("h"),
        _ => None,
    }
}

/// The patch that keeps a relayed VP8 packet's picture ID and TL0PICIDX continuous for this
/// destination, when they differ from the packet's own.
fn vp8_patch(ids: &mut Vp8Ids, source: (u32, u32), payload: &[u8]) -> Option<Vp8Patch> {
    let (pid, tl0) = jano_plugin::rtp::vp8_ids(payload);
    let (out_pid, out_tl0) = ids.map(source, pid, tl0);
    if ids.unchanged() {
        return None;
    }
    let d = Vp8Descriptor::parse(payload).ok()?;
    let mut b = d.patch();
    if let Some(v) = out_pid {
        b = b.picture_id(v);
    }
    if let Some(v) = out_tl0 {
        b = b.tl0_pic_idx(v);
    }
    b.build().ok()
}

/// What a destination changes in a packet it is sent.
#[derive(Debug, Clone, Copy)]
struct WriteOpts {
    /// Playout delay (min, max) instead of the packet's own.
    playout: Option<(u16, u16)>,
    marker: bool,
}

impl WriteOpts {
    /// The packet as it is.
    fn of(p: &RtpPacket) -> WriteOpts {
        WriteOpts {
            playout: None,
            marker: p.marker,
        }
    }
}
