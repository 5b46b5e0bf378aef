//! A viewer: the handle that `watch`es a mountpoint. The plugin offers one m-line per stream
//! of the mountpoint (or of the `media` the viewer asked for); once the PeerConnection is up
//! its m-lines join the streams' fan-outs, `pause` takes them out, `stop` ends it.

use crate::error::{StError, StResult};
use crate::mountpoint::{Mountpoint, Source, StreamKind};
use jano_plugin::layers::{pick_layer, Link};
use jano_plugin::{
    CoreServices, HandleRef, LocalJsep, MediaCtx, MediaKind, MediaPrefs, OfferMedia, PluginSession,
};
use std::sync::{Arc, Mutex, MutexGuard};

/// How long a simulcast layer may be silent and still count as active (Janus's default
/// `fallback`, 250 ms).
pub const LAYER_ACTIVE_MS: u64 = 250;

/// One m-line of the viewer's PeerConnection and the source behind it.
pub struct Line {
    pub src: Arc<Source>,
    pub mindex: usize,
    /// `configure`'s `send` (or the legacy `audio`/`video`/`data`).
    pub send: bool,
    /// A simulcast source's hook for this m-line: the layer it gets and its switches.
    pub link: Option<Arc<Link>>,
}

impl Line {
    /// This m-line stops getting its source's media.
    fn unhook(&mut self, handle_id: u64) {
        match (&self.src.layers, self.link.take()) {
            (Some(sm), Some(link)) => {
                sm.detach(&link);
                self.src.forget_link(&link);
            }
            _ => self.src.remove_viewer(handle_id, self.mindex),
        }
    }
}

#[derive(Default)]
pub struct ViewerState {
    pub mp: Option<Arc<Mountpoint>>,
    /// The sources the offer carries, with the m-line index each has at the viewer.
    pub lines: Vec<Line>,
    pub pc_up: bool,
    pub paused: bool,
    /// `start` came (with the answer): media flows once the PeerConnection is up.
    pub started: bool,
    /// Bumped each time media starts flowing again (see [`Source::add_viewer`]).
    pub epoch: u32,
    /// `min_delay`/`max_delay` for the video streams (mountpoints with `playoutdelay_ext`).
    pub playout: jano_plugin::Playout,
    /// Simulcast: the layer (`substream`) and temporal layer (`temporal`) wanted; none: the
    /// highest.
    pub substream: Option<u8>,
    pub temporal: Option<u8>,
    flowing: bool,
}

/// A layer change as the Streaming plugin tells it: `{"streaming":"event","result":{key: value}}`.
fn layer_event(
    _mid: &str,
    key: &str,
    value: jano_plugin::Value,
) -> jano_plugin::Map<String, jano_plugin::Value> {
    let mut result = jano_plugin::Map::new();
    result.insert(key.into(), value);
    let mut ev = jano_plugin::Map::new();
    ev.insert("streaming".into(), serde_json::json!("event"));
    ev.insert("result".into(), jano_plugin::Value::Object(result));
    ev
}

pub struct Viewer {
    pub href: HandleRef,
    st: Mutex<ViewerState>,
    services: Arc<dyn CoreServices>,
}

impl Viewer {
    pub fn new(href: HandleRef, services: Arc<dyn CoreServices>) -> Viewer {
        Viewer {
            href,
            st: Mutex::new(ViewerState::default()),
            services,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, ViewerState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins or leaves the fan-outs as the state says (flowing: started, up, not paused).
    pub fn sync(&self, st: &mut ViewerState) {
        let flowing = st.started && st.pc_up && !st.paused;
        if flowing && !st.flowing {
            st.epoch = st.epoch.wrapping_add(1);
            // A viewer that starts (or resumes, or switches) needs a keyframe to decode from.
            for l in st
                .lines
                .iter()
                .filter(|l| l.src.cfg.kind == StreamKind::Video)
            {
                l.src.request_keyframe();
            }
        }
        st.flowing = flowing;
        let (playout, substream, temporal) = (st.playout.ext(), st.substream, st.temporal);
        for l in st.lines.iter_mut() {
            let on = flowing && l.send;
            let playout = match l.src.cfg.kind {
                StreamKind::Video => playout,
                _ => None,
            };
            if let Some(sm) = &l.src.layers {
                if on && l.link.is_none() {
                    let link = Arc::new(Link::new(
                        self.href.clone(),
                        l.mindex,
                        l.src.cfg.mid.clone(),
                        Arc::new(layer_event),
                    ));
                    let want = usize::from(substream.unwrap_or(2));
                    let layer = pick_layer(want, |x| sm.layer_active(x, LAYER_ACTIVE_MS));
                    sm.attach(&link, layer);
                    sm.set_temporal(&link, temporal.unwrap_or(2));
                    sm.set_link_playout(&link, playout);
                    link.tell(&*self.services, "substream", serde_json::json!(layer));
                    l.src.want_layer(&link, want as u8);
                    l.link = Some(link);
                } else if !on {
                    l.unhook(self.href.handle_id);
                }
                continue;
            }
            if on {
                l.src.add_viewer(&self.href, l.mindex, st.epoch, playout);
            } else {
                l.src.remove_viewer(self.href.handle_id, l.mindex);
            }
        }
    }

    /// `configure`'s `substream`/`temporal` for the simulcast streams: a layer switch waits
    /// for a keyframe of the new layer (asked of the source), a temporal one for a frame the
    /// receiver can decode from; the viewer hears each change.
    pub fn set_layers(&self, substream: Option<u8>, temporal: Option<u8>) {
        let mut st = self.state();
        if let Some(v) = substream {
            st.substream = Some(v.min(2));
        }
        if let Some(v) = temporal {
            st.temporal = Some(v.min(2));
        }
        for l in &st.lines {
            let (Some(sm), Some(link)) = (&l.src.layers, &l.link) else {
                continue;
            };
            if let Some(v) = substream {
                l.src.want_layer(link, v.min(2));
                let want = pick_layer(usize::from(v.min(2)), |x| {
                    sm.layer_active(x, LAYER_ACTIVE_MS)
                });
                if link.current() == Some(want) {
                    // Already there: Janus tells it right away.
                    link.tell(&*self.services, "substream", serde_json::json!(want));
                } else {
                    sm.switch_to(link, want);
                    l.src.request_keyframe();
                }
            }
            if let Some(v) = temporal {
                sm.set_temporal(link, v.min(2));
            }
        }
    }

    /// `watch`: the offer for the chosen streams of `mp`.
    pub fn watch(&self, mp: &Arc<Mountpoint>, mids: Option<Vec<String>>) -> StResult<LocalJsep> {
        let mut st = self.state();
        self.forget_destroyed(&mut st);
        if let Some(cur) = &st.mp {
            return Err(StError::InvalidState(format!(
                "Already watching mountpoint {}",
                cur.id
            )));
        }
        let chosen: Vec<Arc<Source>> = mp
            .sources
            .iter()
            .filter(|s| mids.as_ref().is_none_or(|m| m.contains(&s.cfg.mid)))
            .cloned()
            .collect();
        if chosen.is_empty() {
            return Err(StError::UnknownRequest(
                "Can't offer an SDP with no audio, video or data for this mountpoint".into(),
            ));
        }
        let mut media = Vec::new();
        let mut lines = Vec::new();
        let mut data = false;
        for s in chosen {
            let kind = match s.cfg.kind {
                StreamKind::Audio => MediaKind::Audio,
                StreamKind::Video => MediaKind::Video,
                StreamKind::Data => {
                    data = true;
                    lines.push(Line {
                        src: s,
                        mindex: usize::MAX,
                        send: true,
                        link: None,
                    });
                    continue;
                }
            };
            lines.push(Line {
                src: s.clone(),
                mindex: media.len(),
                send: true,
                link: None,
            });
            media.push(OfferMedia {
                kind,
                send: true,
                recv: false,
                mid: None,
                stream_id: Some(format!("janus{}", mp.id)),
                track_id: Some(format!("janus{}{}", mp.id, s.cfg.mid)),
                codec: s.cfg.codec.map(str::to_owned),
                profile: None,
                extensions: None,
                simulcast: None,
            });
        }
        // The engine's PeerConnection must know the codecs it is to send (G.711 is not among
        // its defaults): when every stream of a kind has one codec, that is the one.
        let only = |kind: MediaKind| {
            let mut codecs = media
                .iter()
                .filter(|m| m.kind == kind)
                .filter_map(|m| m.codec.clone());
            let first = codecs.next()?;
            codecs.all(|c| c == first).then_some(first)
        };
        let prefs = MediaPrefs {
            audio_codec: only(MediaKind::Audio),
            video_codec: only(MediaKind::Video),
            ..MediaPrefs::default()
        };
        st.mp = Some(mp.clone());
        st.lines = lines;
        mp.add_viewer(&self.href);
        Ok(LocalJsep::Offer {
            media,
            data,
            prefs,
            restart: false,
            fill: None,
        })
    }

    /// A mountpoint destroyed under the viewer is no longer watched.
    fn forget_destroyed(&self, st: &mut ViewerState) {
        if st.mp.as_ref().is_some_and(|m| m.is_destroyed()) {
            st.mp = None;
            st.lines.clear();
            st.started = false;
            st.paused = false;
            st.flowing = false;
        }
    }

    /// Whether it watches a mountpoint.
    pub fn watching(&self) -> bool {
        let mut st = self.state();
        self.forget_destroyed(&mut st);
        st.mp.is_some()
    }

    /// `start` (with the viewer's answer, or to resume).
    pub fn start(&self) -> StResult<()> {
        let mut st = self.state();
        self.forget_destroyed(&mut st);
        if st.mp.is_none() {
            return Err(StError::NoMountpoint(
                "Can't start: no mountpoint set".into(),
            ));
        }
        st.started = true;
        st.paused = false;
        self.sync(&mut st);
        Ok(())
    }

    /// `configure`: which m-lines send (`mid` → `send`, or a whole kind for the legacy keys).
    pub fn configure(
        &self,
        changes: &[(Option<String>, Option<StreamKind>, bool)],
        delay: (Option<i64>, Option<i64>),
    ) -> StResult<()> {
        let mut st = self.state();
        self.forget_destroyed(&mut st);
        let Some(mp) = st.mp.clone() else {
            return Err(StError::NoMountpoint(
                "Can't configure: not on a mountpoint".into(),
            ));
        };
        // As Janus: only where the mountpoint negotiates the playout-delay extension.
        if mp.cfg().playoutdelay_ext {
            st.playout.apply(delay.0, delay.1);
        }
        for (mid, kind, send) in changes {
            for l in st.lines.iter_mut() {
                let hit = match (mid, kind) {
                    (Some(m), _) => &l.src.cfg.mid == m,
                    (None, Some(k)) => l.src.cfg.kind == *k,
                    (None, None) => false,
                };
                if hit {
                    l.send = *send;
                }
            }
        }
        self.sync(&mut st);
        Ok(())
    }

    /// `switch`: the same m-lines, fed by another mountpoint whose streams match them one by
    /// one (kind and codec), without renegotiating.
    pub fn switch(&self, to: &Arc<Mountpoint>) -> StResult<()> {
        let mut st = self.state();
        self.forget_destroyed(&mut st);
        let Some(from) = st.mp.clone() else {
            return Err(StError::NoMountpoint(
                "Can't switch: not on a mountpoint".into(),
            ));
        };
        if Arc::ptr_eq(&from, to) {
            return Ok(());
        }
        let fits = to.sources.len() == st.lines.len()
            && to
                .sources
                .iter()
                .zip(&st.lines)
                .all(|(s, l)| s.cfg.kind == l.src.cfg.kind && s.cfg.codec == l.src.cfg.codec);
        if !fits {
            return Err(StError::CantSwitch(
                "Can't switch: the target mountpoint's streams differ".into(),
            ));
        }
        for l in st.lines.iter_mut() {
            l.unhook(self.href.handle_id);
        }
        from.remove_viewer(self.href.handle_id);
        for (l, s) in st.lines.iter_mut().zip(&to.sources) {
            l.src = s.clone();
        }
        to.add_viewer(&self.href);
        st.mp = Some(to.clone());
        // A new sequence segment: the viewer's decoder sees one stream going on.
        st.flowing = false;
        self.sync(&mut st);
        Ok(())
    }

    pub fn pause(&self) {
        let mut st = self.state();
        st.paused = true;
        self.sync(&mut st);
    }

    /// Leaves the mountpoint (stop, hang-up, detach, mountpoint destroyed).
    pub fn leave(&self) -> bool {
        let mut st = self.state();
        let Some(mp) = st.mp.take() else {
            return false;
        };
        mp.remove_viewer(self.href.handle_id);
        for mut l in st.lines.drain(..) {
            l.unhook(self.href.handle_id);
        }
        st.started = false;
        st.paused = false;
        st.flowing = false;
        true
    }

    pub fn services(&self) -> &dyn CoreServices {
        &*self.services
    }
}

impl PluginSession for Viewer {
    fn setup_media(&self, _ctx: &mut MediaCtx<'_>) {
        let mut st = self.state();
        st.pc_up = true;
        self.sync(&mut st);
        if st.mp.is_some() {
            let mut ev = jano_plugin::Map::new();
            ev.insert("streaming".into(), serde_json::json!("event"));
            ev.insert("result".into(), serde_json::json!({"status": "started"}));
            let _ = self.services.push_event(&self.href, None, ev, None);
        }
    }

    /// The data channel opened: `buffermsg` streams send their latest message.
    fn data_ready(&self, _ctx: &mut MediaCtx<'_>) {
        let st = self.state();
        if !st.started {
            return;
        }
        for l in st
            .lines
            .iter()
            .filter(|l| l.send && l.src.cfg.kind == StreamKind::Data)
        {
            l.src.send_last_msg(&self.href, &*self.services);
        }
    }

    /// A viewer's keyframe request goes to the source of that m-line (throttled there).
    fn incoming_rtcp(&self, _ctx: &mut MediaCtx<'_>, feedback: &jano_plugin::RtcpFeedback) {
        if let jano_plugin::RtcpFeedback::KeyframeRequest { mindex, .. } = feedback {
            let st = self.state();
            if let Some(l) = st.lines.iter().find(|l| l.mindex == *mindex) {
                l.src.request_keyframe();
            }
        }
    }

    fn hangup_media(&self, _handle: &jano_plugin::HandleRef) {
        self.state().pc_up = false;
        self.leave();
    }
}
