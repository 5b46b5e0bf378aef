//! A room: its settings, its participants and the subscriptions made in it, and the
//! notifications sent to everyone in it.
//!
//! Lock order: a room's state, then a publisher's state, then a subscriber's state; the media
//! path takes none of them.

use crate::config::RoomConfig;
use crate::error::{VrError, VrResult};
use crate::json::Id;
use crate::publisher::Publisher;
use crate::subscriber::Subscriber;
use jano_plugin::{CoreServices, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub struct Room {
    pub id: Id,
    state: Mutex<RoomState>,
    destroyed: AtomicBool,
    /// The header extensions its SDPs leave out (its `*_ext` settings, fixed at creation):
    /// read without the room's lock, which a subscription's lock must not wait for.
    pub without_extensions: jano_plugin::Extensions,
}

pub struct RoomState {
    pub cfg: RoomConfig,
    /// Everyone who joined as a participant, publishing or not.
    pub participants: BTreeMap<Id, Arc<Publisher>>,
    /// Subscriptions by handle id.
    pub subscribers: HashMap<u64, Arc<Subscriber>>,
    /// Private ids of kicked participants: their subscriptions are refused.
    pub kicked: HashSet<u32>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room").field("id", &self.id).finish()
    }
}

impl Room {
    pub fn new(id: Id, cfg: RoomConfig) -> Room {
        Room {
            id,
            without_extensions: cfg.without_extensions(),
            state: Mutex::new(RoomState {
                cfg,
                participants: BTreeMap::new(),
                subscribers: HashMap::new(),
                kicked: HashSet::new(),
            }),
            destroyed: AtomicBool::new(false),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Sends an event to every participant but `except`.
    pub fn notify(
        &self,
        services: &dyn CoreServices,
        except: Option<&Id>,
        data: &Map<String, Value>,
    ) {
        let targets: Vec<Arc<Publisher>> = self
            .state()
            .participants
            .values()
            .filter(|p| Some(&p.id) != except && p.has_handle())
            .cloned()
            .collect();
        for p in targets {
            let _ = services.push_event(&p.href, None, data.clone(), None);
        }
    }

    /// Subscriptions of this room (a snapshot).
    pub fn subscribers(&self) -> Vec<Arc<Subscriber>> {
        self.state().subscribers.values().cloned().collect()
    }
}

impl RoomState {
    pub fn active_publishers(&self) -> usize {
        self.participants
            .values()
            .filter(|p| p.is_publishing() && !p.is_dummy())
            .count()
    }

    /// A participant that `keep` accepts, or 428 `No such publisher (<id>)`.
    pub fn publisher(
        &self,
        id: &Id,
        keep: impl Fn(&Publisher) -> bool,
    ) -> VrResult<Arc<Publisher>> {
        self.participants
            .get(id)
            .filter(|p| keep(p))
            .cloned()
            .ok_or_else(|| VrError::NoSuchFeed(format!("No such publisher ({id})")))
    }

    /// The id for a new participant: the one asked for if free (else 436), or a random free one.
    pub fn new_participant_id(&self, wanted: Option<Id>, strings: bool) -> VrResult<Id> {
        match wanted {
            Some(id) if self.participants.contains_key(&id) => {
                Err(VrError::IdExists(id.to_string()))
            }
            Some(id) => Ok(id),
            None => loop {
                let id = Id::random(strings);
                if !self.participants.contains_key(&id) {
                    break Ok(id);
                }
            },
        }
    }

    /// A participant by its private id.
    pub fn by_private_id(&self, private_id: u64) -> Option<&Arc<Publisher>> {
        self.participants
            .values()
            .find(|p| u64::from(p.private_id) == private_id)
    }
}
