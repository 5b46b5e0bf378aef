//! A room: its settings and participants (signalling side), and what its mixer keeps between
//! ticks (mixing side).

use crate::codec::{Encoder, EncoderSettings};
use crate::config::RoomConfig;
use crate::participant::Participant;
use jano_plugin::ids::Id;
use jano_plugin::{CoreServices, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
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
            }),
            ssrc: rand::random::<u32>().max(1),
            destroyed: AtomicBool::new(false),
        }
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
