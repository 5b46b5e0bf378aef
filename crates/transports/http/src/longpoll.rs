//! Per-session event queues for long polls. The gateway pushes into them (through
//! [`TransportSink`]) with its lock held, so pushing only queues and wakes.

use jano_runtime::TransportSink;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The most events kept for a session nobody polls; older ones are dropped (and counted) so an
/// abandoned session cannot grow memory without bound before it times out.
const MAX_QUEUED: usize = 1024;

#[derive(Default)]
pub(crate) struct SessionQueue {
    state: Mutex<QueueState>,
    pub(crate) notify: Notify,
}

#[derive(Default)]
struct QueueState {
    events: VecDeque<Value>,
    /// The session is over for this queue (destroyed, timed out or claimed elsewhere).
    closed: bool,
    dropped: u64,
}

impl SessionQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, ev: Value) {
        {
            let mut st = self.lock();
            if st.events.len() >= MAX_QUEUED {
                st.events.pop_front();
                st.dropped += 1;
                if st.dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = st.dropped,
                        "long-poll queue full, dropping oldest events"
                    );
                }
            }
            st.events.push_back(ev);
        }
        self.notify.notify_waiters();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }

    /// Up to `max` queued events.
    pub(crate) fn take(&self, max: usize) -> Vec<Value> {
        let mut st = self.lock();
        let n = st.events.len().min(max);
        st.events.drain(..n).collect()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// All HTTP sessions' queues: the HTTP transport's [`TransportSink`].
#[derive(Default)]
pub(crate) struct Queues {
    map: Mutex<HashMap<u64, Arc<SessionQueue>>>,
}

impl Queues {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<SessionQueue>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, sid: u64) -> Option<Arc<SessionQueue>> {
        self.lock().get(&sid).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

impl TransportSink for Queues {
    fn send_event(&self, _conn: u64, session_id: u64, event: Value) {
        if let Some(q) = self.get(session_id) {
            q.push(event);
        }
    }

    fn session_created(&self, _conn: u64, session_id: u64) {
        self.lock()
            .insert(session_id, Arc::new(SessionQueue::default()));
    }

    fn session_over(&self, _conn: u64, session_id: u64, _timeout: bool, _claimed: bool) {
        // A poll already waiting holds the queue and still gets what was pushed before
        // (the `timeout` event); new polls find no session.
        if let Some(q) = self.lock().remove(&session_id) {
            q.close();
        }
    }

    fn session_claimed(&self, _conn: u64, session_id: u64) {
        // Claiming over HTTP starts a fresh queue; polls on the old one end with a keepalive.
        let old = self
            .lock()
            .insert(session_id, Arc::new(SessionQueue::default()));
        if let Some(q) = old {
            q.close();
        }
    }
}
