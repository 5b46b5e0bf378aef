//! The rooms of a room plugin (VideoRoom, AudioBridge, TextRoom…) by id: looked up from the
//! signalling path and, for some plugins, from media callbacks, so reads are cheap and never
//! wait on a write for long (the map holds `Arc`s; a room's own state has its own lock).

use crate::ids::Id;
use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub struct Registry<R> {
    map: RwLock<HashMap<Id, Arc<R>>>,
}

impl<R> Default for Registry<R> {
    fn default() -> Self {
        Registry {
            map: RwLock::new(HashMap::new()),
        }
    }
}

impl<R> Registry<R> {
    pub fn new() -> Self {
        Self::default()
    }

    /// With the rooms a configuration file made.
    pub fn from_map(map: HashMap<Id, Arc<R>>) -> Self {
        Registry {
            map: RwLock::new(map),
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, HashMap<Id, Arc<R>>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, HashMap<Id, Arc<R>>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &Id) -> Option<Arc<R>> {
        self.read().get(id).cloned()
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.read().contains_key(id)
    }

    /// Adds a room unless the id is taken (`false` then).
    pub fn insert_new(&self, id: Id, room: Arc<R>) -> bool {
        let mut map = self.write();
        if map.contains_key(&id) {
            return false;
        }
        map.insert(id, room);
        true
    }

    pub fn remove(&self, id: &Id) -> Option<Arc<R>> {
        self.write().remove(id)
    }

    /// Every room, cloned out of the lock (for `list` and shutdown).
    pub fn all(&self) -> Vec<Arc<R>> {
        self.read().values().cloned().collect()
    }

    /// A fresh random id of the configured kind that no room has.
    pub fn free_id(&self, string_ids: bool) -> Id {
        let map = self.read();
        loop {
            let id = Id::random(string_ids);
            if !map.contains_key(&id) {
                return id;
            }
        }
    }
}
