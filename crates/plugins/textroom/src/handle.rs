//! A handle's state: whether its data channel was offered, and the rooms it is in. The media
//! callbacks run on the handle's media worker: a data-channel request is parsed and answered
//! there (room locks are short and nothing in it waits on IO; the HTTP `post` goes to a task).

use crate::requests;
use crate::room::Participant;
use crate::Shared;
use jano_plugin::ids::Id;
use jano_plugin::{DataMessage, HandleRef, MediaCtx, PluginSession};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

pub struct TrHandle {
    pub href: HandleRef,
    pub shared: Arc<Shared>,
    /// `setup` was answered with an offer (and no hang-up since).
    pub setup: AtomicBool,
    /// The rooms this handle joined, by room id.
    rooms: Mutex<HashMap<Id, Arc<Participant>>>,
    pub me: Weak<TrHandle>,
}

impl TrHandle {
    pub fn new(href: HandleRef, shared: Arc<Shared>) -> Arc<TrHandle> {
        Arc::new_cyclic(|me| TrHandle {
            href,
            shared,
            setup: AtomicBool::new(false),
            rooms: Mutex::new(HashMap::new()),
            me: me.clone(),
        })
    }

    pub fn rooms(&self) -> MutexGuard<'_, HashMap<Id, Arc<Participant>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves every room (hang-up, detach): the others hear `leave`.
    pub fn leave_all(&self) {
        let ids: Vec<Id> = self.rooms().keys().cloned().collect();
        for id in ids {
            requests::leave_room(&self.shared, self, &id, false);
        }
    }
}

impl PluginSession for TrHandle {
    fn incoming_data(&self, _ctx: &mut MediaCtx<'_>, message: &DataMessage<'_>) {
        // Chat requests are text; binary messages are dropped, as Janus does.
        if message.binary || message.buffer.is_empty() {
            return;
        }
        requests::from_data_channel(&self.shared, self, message.buffer);
    }

    fn hangup_media(&self, _handle: &HandleRef) {
        self.leave_all();
        // A new PeerConnection can be set up after a hang-up.
        self.setup.store(false, Ordering::Release);
    }
}
