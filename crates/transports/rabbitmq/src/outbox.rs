//! The bounded queue of outgoing messages. It survives reconnections: what the core sends while
//! the broker is away waits here, and the oldest is dropped (counted, logged) when it is full.

use jano_api::Value;
use jano_runtime::TransportSink;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// One message to publish.
#[derive(Debug, Clone)]
pub(crate) struct Out {
    /// Published with the admin routing key (`from_janus_admin`).
    pub admin: bool,
    /// The request's AMQP `correlation_id` (responses only, never events).
    pub correlation_id: Option<String>,
    pub msg: Value,
}

pub(crate) struct Outbox {
    q: Mutex<VecDeque<Out>>,
    cap: usize,
    dropped: AtomicU64,
    pub notify: Notify,
}

impl Outbox {
    pub fn new(cap: usize) -> Self {
        Outbox {
            q: Mutex::new(VecDeque::new()),
            cap: cap.max(1),
            dropped: AtomicU64::new(0),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Out>> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count_drop(&self, n: u64) {
        let before = self.dropped.fetch_add(n, Ordering::Relaxed);
        // Log the first loss, then every thousandth: the counter has the exact number.
        if before == 0 || (before + n) / 1000 != before / 1000 {
            tracing::warn!(
                dropped_total = before + n,
                capacity = self.cap,
                "RabbitMQ outgoing buffer full: oldest messages dropped"
            );
        }
    }

    /// Queues a message; never blocks (the core calls this with its lock held).
    pub fn push(&self, out: Out) {
        let overflow = {
            let mut q = self.lock();
            let overflow = q.len() >= self.cap;
            if overflow {
                q.pop_front();
            }
            q.push_back(out);
            overflow
        };
        if overflow {
            self.count_drop(1);
        }
        self.notify.notify_one();
    }

    /// Takes up to `max` messages from the front.
    pub fn take(&self, max: usize) -> Vec<Out> {
        let mut q = self.lock();
        let n = q.len().min(max);
        q.drain(..n).collect()
    }

    /// Puts back, in order and in front, messages whose delivery was not confirmed.
    pub fn requeue(&self, back: Vec<Out>) {
        if back.is_empty() {
            return;
        }
        let dropped = {
            let mut q = self.lock();
            for m in back.into_iter().rev() {
                q.push_front(m);
            }
            let excess = q.len().saturating_sub(self.cap);
            q.drain(..excess);
            excess
        };
        if dropped > 0 {
            self.count_drop(u64::try_from(dropped).unwrap_or(u64::MAX));
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl TransportSink for Outbox {
    fn send_event(&self, _conn: u64, _session_id: u64, event: Value) {
        self.push(Out {
            admin: false,
            correlation_id: None,
            msg: event,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn out(n: u64) -> Out {
        Out {
            admin: false,
            correlation_id: None,
            msg: json!(n),
        }
    }

    fn values(v: &[Out]) -> Vec<u64> {
        v.iter().filter_map(|o| o.msg.as_u64()).collect()
    }

    #[test]
    fn overflow_drops_oldest_and_counts() {
        let b = Outbox::new(3);
        for n in 0..5 {
            b.push(out(n));
        }
        assert_eq!(b.dropped(), 2);
        assert_eq!(values(&b.take(10)), vec![2, 3, 4]);
    }

    #[test]
    fn requeue_keeps_order_and_bound() {
        let b = Outbox::new(4);
        for n in 0..4 {
            b.push(out(n));
        }
        let first = b.take(2);
        b.push(out(4));
        b.push(out(5));
        b.requeue(first);
        // 0,1 back in front of 2,3,4,5: two too many, the oldest (0,1) go.
        assert_eq!(b.dropped(), 2);
        assert_eq!(values(&b.take(10)), vec![2, 3, 4, 5]);
        b.push(out(6));
        let x = b.take(1);
        b.requeue(x);
        assert_eq!(values(&b.take(10)), vec![6]);
    }
}
