//! A participant: its settings (signalling side) and its media state (what the packet path
//! queues and the mixer decodes, mixes and encodes).

use crate::codec::{Codec, Decoder, Encoder, EncoderSettings};
use crate::jitter::Jitter;
use crate::room::Room;
use jano_plugin::ids::Id;
use jano_plugin::talk::{TalkCfg, TalkDetector};
use jano_plugin::{HandleRef, Map, Value};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A participant's signalling-side settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub display: Option<String>,
    pub muted: bool,
    pub suspended: bool,
    /// Joined with the room's secret: `mute_room` does not mute it.
    pub admin: bool,
    pub codec: Codec,
    pub bitrate: u32,
    pub quality: u8,
    pub expected_loss: u8,
    pub volume: u32,
    pub spatial_position: u8,
    pub prebuffer: u64,
    pub group: Option<String>,
    /// The group's position in the room's `groups`.
    pub group_index: Option<usize>,
    /// `record` / `filename` of `join` and `configure`: its own `.mjr`.
    pub record: bool,
    pub filename: Option<String>,
    pub talk: TalkCfg,
    /// The room raises `talking` events (`audiolevel_event`).
    pub talk_events: bool,
}

/// What the mixer needs of a participant's settings, copied in on every change.
#[derive(Debug, Clone, Copy)]
pub struct MixParams {
    /// Its audio is left out of the mix (muted, room muted, suspended, no PeerConnection).
    pub silent: bool,
    /// It gets the mix (PeerConnection up, not suspended).
    pub listening: bool,
    pub volume: u32,
    pub spatial_position: u8,
    pub encoder: EncoderSettings,
    /// Talk detection thresholds, when the room raises `talking` events.
    pub talk: Option<TalkCfg>,
    /// The group its voice also goes to (for the groups' forwarders).
    pub group: Option<usize>,
}

/// The participant's packet path and mixer state.
pub struct Media {
    pub params: MixParams,
    pub jitter: Jitter,
    pub decoder: Decoder,
    /// The encoder of this participant's own stream (only while it contributes to the mix:
    /// whoever hears the whole mix shares one of the room's).
    pub encoder: Option<Encoder>,
    /// The last tick's decoded frame (mono, room rate) and its contribution to the sum.
    pub pcm: Vec<i16>,
    pub contribution: Vec<i32>,
    pub contributed: bool,
    /// The m-line the mix goes out on.
    pub mindex: usize,
    /// The audio-level extension was negotiated (`talking` then shows in the events).
    pub has_audio_level: bool,
    /// A plain-RTP participant: where its mix goes.
    pub plain: Option<crate::plainrtp::PlainOut>,
    /// Its `.mjr` recording, when one runs.
    pub mjr: Option<crate::mjrs::Mjr>,
    pub talk: TalkDetector,
}

pub struct Participant {
    pub id: Id,
    pub href: HandleRef,
    pub room: Arc<Room>,
    st: Mutex<Settings>,
    media: Mutex<Media>,
    /// The PeerConnection is up (`setup` in the events).
    setup: AtomicBool,
    /// The participant does not want room events.
    pub pause_events: AtomicBool,
    left: AtomicBool,
}

impl Participant {
    pub fn new(
        id: Id,
        href: HandleRef,
        room: Arc<Room>,
        settings: Settings,
        stereo: bool,
        rate: u32,
    ) -> Result<Participant, crate::codec::CodecError> {
        let decoder = Decoder::new(settings.codec, rate)?;
        let frame = (rate / 50) as usize;
        let channels = if stereo { 2 } else { 1 };
        let params = params_of(&settings, false, false, stereo);
        let media = Media {
            params,
            jitter: Jitter::new(settings.prebuffer as usize),
            decoder,
            encoder: None,
            pcm: vec![0; frame],
            contribution: vec![0; frame * channels],
            contributed: false,
            mindex: 0,
            has_audio_level: false,
            plain: None,
            mjr: None,
            talk: TalkDetector::default(),
        };
        Ok(Participant {
            id,
            href,
            room,
            st: Mutex::new(settings),
            media: Mutex::new(media),
            setup: AtomicBool::new(false),
            pause_events: AtomicBool::new(false),
            left: AtomicBool::new(false),
        })
    }

    pub fn settings(&self) -> MutexGuard<'_, Settings> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn media(&self) -> MutexGuard<'_, Media> {
        self.media.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_setup(&self) -> bool {
        self.setup.load(Ordering::Acquire)
    }

    pub fn set_setup(&self, on: bool) {
        self.setup.store(on, Ordering::Release);
    }

    pub fn has_left(&self) -> bool {
        self.left.load(Ordering::Acquire)
    }

    pub fn mark_left(&self) {
        self.left.store(true, Ordering::Release);
    }

    /// Copies the settings the mixer reads into the media state (after any change of the
    /// settings, the room's mute or the PeerConnection).
    pub fn sync_params(&self, room_muted: bool) {
        let st = self.settings().clone();
        let stereo = self.media().params.encoder.stereo;
        let params = params_of(&st, room_muted, self.is_setup(), stereo);
        let mut m = self.media();
        if m.params.encoder != params.encoder {
            m.encoder = None;
        }
        m.jitter.set_prebuffer(st.prebuffer as usize);
        if params.silent {
            m.talk.reset();
        }
        m.params = params;
    }

    /// How the participant appears in room events and `listparticipants`.
    pub fn to_json(&self, spatial: bool) -> Value {
        let (with_talking, talking) = {
            let m = self.media();
            (m.has_audio_level, m.talk.talking())
        };
        let st = self.settings();
        let mut m = Map::new();
        m.insert("id".into(), self.id.to_json());
        if let Some(d) = &st.display {
            m.insert("display".into(), json!(d));
        }
        m.insert("setup".into(), json!(self.is_setup()));
        m.insert("muted".into(), json!(st.muted));
        if st.suspended {
            m.insert("suspended".into(), json!(true));
        }
        if with_talking {
            m.insert("talking".into(), json!(talking));
        }
        if spatial {
            m.insert("spatial_position".into(), json!(st.spatial_position));
        }
        Value::Object(m)
    }
}

impl Participant {
    /// How the participant appears in the room's update events (no `talking` there).
    pub fn update_json(&self, spatial: bool) -> Value {
        let mut v = self.to_json(spatial);
        if let Value::Object(m) = &mut v {
            m.remove("talking");
        }
        v
    }
}

fn params_of(st: &Settings, room_muted: bool, setup: bool, stereo: bool) -> MixParams {
    MixParams {
        silent: st.muted || (room_muted && !st.admin) || st.suspended || !setup,
        listening: setup && !st.suspended,
        volume: st.volume,
        spatial_position: st.spatial_position,
        encoder: EncoderSettings {
            codec: st.codec,
            bitrate: st.bitrate,
            complexity: st.quality,
            expected_loss: st.expected_loss,
            stereo,
        },
        talk: st.talk_events.then_some(st.talk),
        group: st.group_index,
    }
}
