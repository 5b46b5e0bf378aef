//! A room: its settings and participants (signalling side), and what its mixer keeps between
//! ticks (mixing side).

use crate::announce::Announcement;
use crate::codec::{Encoder, EncoderSettings};
use crate::config::RoomConfig;
use crate::participant::Participant;
use crate::wav::WavRecorder;
use jano_plugin::ids::Id;
use jano_plugin::{CoreServices, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

pub struct RoomState {
    pub cfg: RoomConfig,
    pub participants: BTreeMap<Id, Arc<Participant>>,
    /// `mute_room`: everyone but participants who joined with the room's secret is muted.
    pub muted: bool,
}

/// The mixer's state between ticks (only the room's mixer thread locks it).
pub struct MixState {
    /// Ticks mixed so far: the outgoing sequence number, and ×(clock/50) the timestamp.
    pub ticks: u64,
    /// Encoders shared by the listeners who hear the whole mix, by their settings.
    pub shared: HashMap<EncoderSettings, Encoder>,
    /// A frame of silence per encoder setting, encoded once.
    pub silence: HashMap<EncoderSettings, Arc<[u8]>>,
    /// Files being played into the mix (`play_file`).
    pub announcements: Vec<Announcement>,
    /// The mix being recorded to a WAV file (`record`).
    pub recorder: Option<WavRecorder>,
    /// Starting the recording failed: not retried until the next `enable_recording`.
    pub record_failed: bool,
    /// RTP forwarders of the mix, and their encoders by (group, codec).
    pub forwarders: Vec<crate::forward::MixForwarder>,
    pub fwd_encoders: HashMap<(Option<usize>, crate::codec::Codec), Encoder>,
}

pub struct Room {
    pub id: Id,
    st: Mutex<RoomState>,
    /// The participants the mixer walks, rebuilt on every change (the mixer never takes the
    /// signalling lock).
    mixing: RwLock<Arc<[Arc<Participant>]>>,
    pub mix: Mutex<MixState>,
    /// The SSRC of every stream this room sends.
    pub ssrc: u32,
    destroyed: AtomicBool,
    /// Files playing (kept by the mixer): a room with only announcements is mixed too.
    pub announcing: AtomicUsize,
    /// `always_on` forwarders: they get the (silent) mix even when nobody is in the room.
    pub always_on: AtomicUsize,
}

impl Room {
    pub fn new(id: Id, cfg: RoomConfig) -> Room {
        Room {
            id,
            st: Mutex::new(RoomState {
                cfg,
                participants: BTreeMap::new(),
                muted: false,
            }),
            mixing: RwLock::new(Arc::from(Vec::new())),
            mix: Mutex::new(MixState {
                ticks: 0,
                shared: HashMap::new(),
                silence: HashMap::new(),
                announcements: Vec::new(),
                recorder: None,
                record_failed: false,
                forwarders: Vec::new(),
                fwd_encoders: HashMap::new(),
            }),
            announcing: AtomicUsize::new(0),
            always_on: AtomicUsize::new(0),
            ssrc: rand::random::<u32>().max(1),
            destroyed: AtomicBool::new(false),
        }
    }

    pub fn mix_state(&self) -> MutexGuard<'_, MixState> {
        self.mix.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the room has anything to mix (participants or files).
    pub fn busy(&self) -> bool {
        !self.mixing().is_empty()
            || self.announcing.load(Ordering::Acquire) > 0
            || self.always_on.load(Ordering::Acquire) > 0
    }

    pub fn state(&self) -> MutexGuard<'_, RoomState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn id_json(&self) -> Value {
        self.id.to_json()
    }

    pub fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    pub fn mark_destroyed(&self) {
        self.destroyed.store(true, Ordering::Release);
    }

    /// Adds a participant (the caller checked the id is free).
    pub fn add(&self, st: &mut RoomState, p: Arc<Participant>) {
        st.participants.insert(p.id.clone(), p);
        self.refresh(st);
    }

    pub fn remove(&self, st: &mut RoomState, id: &Id) -> Option<Arc<Participant>> {
        let p = st.participants.remove(id);
        self.refresh(st);
        p
    }

    fn refresh(&self, st: &RoomState) {
        let list: Vec<Arc<Participant>> = st.participants.values().cloned().collect();
        *self.mixing.write().unwrap_or_else(|e| e.into_inner()) = Arc::from(list);
    }

    /// The participants, as the mixer sees them.
    pub fn mixing(&self) -> Arc<[Arc<Participant>]> {
        self.mixing
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends an event to every participant except `except`.
    pub fn notify(
        &self,
        services: &dyn CoreServices,
        except: Option<&Id>,
        ev: &Map<String, Value>,
    ) {
        let targets: Vec<Arc<Participant>> = self
            .state()
            .participants
            .values()
            .filter(|p| Some(&p.id) != except)
            .filter(|p| !p.pause_events.load(Ordering::Acquire))
            .cloned()
            .collect();
        Room::notify_list(services, &targets, ev);
    }

    /// Sends an event to these participants (outside the room's lock).
    pub fn notify_list(
        services: &dyn CoreServices,
        to: &[Arc<Participant>],
        ev: &Map<String, Value>,
    ) {
        for p in to {
            let _ = services.push_event(&p.href, None, ev.clone(), None);
        }
    }
}
