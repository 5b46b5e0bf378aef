//! What jano owes the broker: the outbox (messages not yet handed to the MQTT client), what is
//! in flight (handed over, not yet confirmed by the broker), and — for MQTT 5 — the reply
//! routes of requests whose events are still to come.
//!
//! Nothing here does IO: the transport's sink calls in with the gateway lock held.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// MQTT 5 properties of an outgoing message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props {
    pub correlation_data: Option<Bytes>,
    pub user_properties: Vec<(String, String)>,
}

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// MQTT 5 only.
    pub props: Option<Props>,
}

impl Out {
    /// An upper bound of the PUBLISH packet's size.
    pub fn wire_size(&self) -> usize {
        let props = self.props.as_ref().map_or(0, |p| {
            p.correlation_data.as_ref().map_or(0, |c| c.len() + 3)
                + p.user_properties
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 5)
                    .sum::<usize>()
        });
        // Fixed header (≤ 5), topic length and name, packet id, property length (≤ 4).
        5 + 2 + self.topic.len() + 2 + 4 + props + self.payload.len()
    }
}

/// A message handed to the client; `pkid` once the client said which packet carries it.
#[derive(Debug)]
struct Sent {
    out: Out,
    pkid: Option<u16>,
}

/// What happened to a message offered to [`Link::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The outbox was full: the message is dropped (and counted).
    Dropped,
}

/// The outbox and the in-flight window.
///
/// Messages stay here until the broker confirms them (QoS 1/2) or they are written (QoS 0):
/// when the connection drops, what was in flight goes back to the front of the outbox and is
/// published again after the reconnection, in order.
#[derive(Debug)]
pub struct Link {
    connected: bool,
    outbox: VecDeque<Out>,
    inflight: VecDeque<Sent>,
    /// The packet id the client is holding a publish for (it reused an id still in flight).
    collided: Option<u16>,
    max_inflight: usize,
    /// Outbox bound while disconnected (`max_buffered`).
    max_buffered: usize,
    /// Outbox bound while connected (a burst bigger than the in-flight window).
    max_queued: usize,
    /// The broker's packet size limit (MQTT 5 CONNACK).
    max_packet: Option<usize>,
    dropped_total: u64,
    /// Drops since the last report.
    dropped_recent: u64,
}

impl Link {
    pub fn new(max_inflight: usize, max_buffered: usize, max_queued: usize) -> Link {
        Link {
            connected: false,
            outbox: VecDeque::new(),
            inflight: VecDeque::new(),
            collided: None,
            max_inflight: max_inflight.max(1),
            max_buffered,
            max_queued: max_queued.max(max_buffered),
            max_packet: None,
            dropped_total: 0,
            dropped_recent: 0,
        }
    }

    pub fn connected(&self) -> bool {
        self.connected
    }

    /// Queues a message at the back; drops it if the outbox is full.
    pub fn push(&mut self, out: Out) -> Pushed {
        let limit = if self.connected {
            self.max_queued
        } else {
            self.max_buffered
        };
        if self.outbox.len() >= limit {
            self.dropped_total += 1;
            self.dropped_recent += 1;
            return Pushed::Dropped;
        }
        self.outbox.push_back(out);
        Pushed::Queued
    }

    /// Queues a message ahead of everything (status messages), whatever the bound.
    pub fn push_front(&mut self, out: Out) {
        self.outbox.push_front(out);
    }

    /// Hands messages to `send` while connected and the in-flight window has room. `send`
    /// returns false when the client cannot take more now. Messages bigger than the broker
    /// accepts are dropped (a client would fail the whole connection on them, again after
    /// every reconnection); returns how many.
    pub fn pump(&mut self, mut send: impl FnMut(&Out) -> bool) -> u64 {
        let mut too_large = 0;
        while self.connected && self.inflight.len() < self.max_inflight {
            let Some(out) = self.outbox.pop_front() else {
                break;
            };
            if self.max_packet.is_some_and(|max| out.wire_size() > max) {
                too_large += 1;
                self.dropped_total += 1;
                continue;
            }
            if !send(&out) {
                self.outbox.push_front(out);
                break;
            }
            self.inflight.push_back(Sent { out, pkid: None });
        }
        too_large
    }

    /// The client wrote the next handed message as packet `pkid` (0 for QoS 0: done).
    pub fn published(&mut self, pkid: u16) {
        if pkid != 0 && self.collided == Some(pkid) {
            // The publish the client was holding went out now: it is already tracked.
            self.collided = None;
            return;
        }
        if let Some(i) = self.inflight.iter().position(|s| s.pkid.is_none()) {
            if pkid == 0 {
                self.inflight.remove(i);
            } else if let Some(s) = self.inflight.get_mut(i) {
                s.pkid = Some(pkid);
            }
        }
    }

    /// The client holds the next handed message until packet id `pkid` is free again.
    pub fn held(&mut self, pkid: u16) {
        if let Some(s) = self.inflight.iter_mut().find(|s| s.pkid.is_none()) {
            s.pkid = Some(pkid);
        }
        self.collided = Some(pkid);
    }

    /// The broker confirmed packet `pkid`.
    pub fn confirmed(&mut self, pkid: u16) {
        if let Some(i) = self.inflight.iter().position(|s| s.pkid == Some(pkid)) {
            self.inflight.remove(i);
        }
    }

    /// Connected; `max_packet` is the largest packet the broker takes, if it said.
    pub fn set_connected(&mut self, max_packet: Option<usize>) {
        self.connected = true;
        self.max_packet = max_packet;
    }

    /// The connection dropped: what was in flight goes back to the front of the outbox.
    /// Returns whether it was connected.
    pub fn set_disconnected(&mut self) -> bool {
        let was = self.connected;
        self.connected = false;
        self.collided = None;
        while let Some(s) = self.inflight.pop_back() {
            self.outbox.push_front(s.out);
        }
        was
    }

    /// Nothing queued and nothing waiting for the broker.
    pub fn idle(&self) -> bool {
        self.outbox.is_empty() && self.inflight.is_empty()
    }

    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Drops since the last call (for a summary in the log).
    pub fn take_dropped_recent(&mut self) -> u64 {
        std::mem::take(&mut self.dropped_recent)
    }
}

/// MQTT 5: where a request wants its reply, as its properties say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    /// The request's user properties that `proxy_transaction_user_properties` names.
    pub user_properties: Vec<(String, String)>,
}

/// MQTT 5: reply routes of acknowledged requests, by transaction, so the plugin events that
/// carry the same transaction follow the reply. Entries expire after `vacuum_interval`; the
/// map is bounded (what does not fit is counted and its events go to the default topic).
#[derive(Debug)]
pub struct Routes {
    map: HashMap<String, (Instant, Route)>,
    order: VecDeque<(Instant, String)>,
    cap: usize,
    dropped: u64,
}

impl Routes {
    pub fn new(cap: usize) -> Routes {
        Routes {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
            dropped: 0,
        }
    }

    /// Remembers `route` for `transaction`; false if the table is full.
    pub fn insert(&mut self, transaction: &str, route: Route, now: Instant) -> bool {
        if self.map.len() >= self.cap && !self.map.contains_key(transaction) {
            self.dropped += 1;
            return false;
        }
        self.map.insert(transaction.to_string(), (now, route));
        self.order.push_back((now, transaction.to_string()));
        if self.order.len() > 2 * self.cap {
            // The same transactions were reused many times: drop the stale order entries.
            let map = &self.map;
            self.order
                .retain(|(t, tx)| map.get(tx).is_some_and(|(at, _)| at == t));
        }
        true
    }

    pub fn get(&self, transaction: &str) -> Option<&Route> {
        self.map.get(transaction).map(|(_, r)| r)
    }

    /// Forgets routes older than `ttl`.
    pub fn vacuum(&mut self, now: Instant, ttl: Duration) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < ttl {
                break;
            }
            if let Some((at, tx)) = self.order.pop_front() {
                if self.map.get(&tx).is_some_and(|(t, _)| *t == at) {
                    self.map.remove(&tx);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// MQTT topic filter matching (`+` one level, `#` the rest). Topics starting with `$` only
/// match filters that start with `$` too, as brokers do.
pub fn topic_matches(topic: &str, filter: &str) -> bool {
    if topic.starts_with('$') != filter.starts_with('$') {
        return false;
    }
    let mut t = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return true;
        }
        match t.next() {
            Some(level) if f == "+" || f == level => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(n: u8) -> Out {
        Out {
            topic: "t".into(),
            payload: Bytes::from(vec![n]),
            qos: 1,
            retain: false,
            props: None,
        }
    }

    fn take_all(link: &mut Link) -> Vec<u8> {
        let mut got = Vec::new();
        link.pump(|o| {
            got.push(o.payload[0]);
            true
        });
        got
    }

    #[test]
    fn window_and_confirmations() {
        let mut l = Link::new(2, 10, 100);
        for n in 1..=4 {
            assert_eq!(l.push(out(n)), Pushed::Queued);
        }
        assert!(
            take_all(&mut l).is_empty(),
            "nothing goes out while disconnected"
        );
        l.set_connected(None);
        assert_eq!(take_all(&mut l), [1, 2]);
        l.published(1);
        l.published(2);
        assert_eq!(take_all(&mut l), Vec::<u8>::new(), "window full");
        l.confirmed(1);
        assert_eq!(take_all(&mut l), [3]);
        l.published(3);
        l.confirmed(2);
        l.confirmed(3);
        assert_eq!(take_all(&mut l), [4]);
        l.published(1);
        l.confirmed(1);
        assert!(l.idle());
    }

    #[test]
    fn reconnect_resends_in_order() {
        let mut l = Link::new(3, 10, 100);
        for n in 1..=5 {
            l.push(out(n));
        }
        l.set_connected(None);
        assert_eq!(take_all(&mut l), [1, 2, 3]);
        l.published(1);
        l.published(2);
        l.confirmed(1);
        assert!(l.set_disconnected());
        assert!(!l.set_disconnected());
        assert_eq!(l.queued(), 4);
        l.set_connected(None);
        assert_eq!(take_all(&mut l), [2, 3, 4]);
    }

    #[test]
    fn too_large_for_the_broker_is_dropped() {
        let mut l = Link::new(5, 10, 100);
        let mut big = out(1);
        big.payload = Bytes::from(vec![1; 1000]);
        l.push(big);
        l.push(out(2));
        l.set_connected(Some(500));
        let mut got = Vec::new();
        assert_eq!(
            l.pump(|o| {
                got.push(o.payload[0]);
                true
            }),
            1
        );
        assert_eq!(got, [2]);
        assert_eq!(l.dropped_total(), 1);
    }

    #[test]
    fn qos0_done_when_written() {
        let mut l = Link::new(1, 10, 100);
        let mut o = out(1);
        o.qos = 0;
        l.push(o);
        l.push(out(2));
        l.set_connected(None);
        assert_eq!(take_all(&mut l), [1]);
        l.published(0);
        assert_eq!(take_all(&mut l), [2]);
    }

    #[test]
    fn bounded_while_disconnected() {
        let mut l = Link::new(1, 2, 5);
        assert_eq!(l.push(out(1)), Pushed::Queued);
        assert_eq!(l.push(out(2)), Pushed::Queued);
        assert_eq!(l.push(out(3)), Pushed::Dropped);
        assert_eq!(l.dropped_total(), 1);
        assert_eq!(l.take_dropped_recent(), 1);
        assert_eq!(l.take_dropped_recent(), 0);
        l.set_connected(None);
        for n in 3..=5 {
            assert_eq!(l.push(out(n)), Pushed::Queued);
        }
        assert_eq!(l.push(out(6)), Pushed::Dropped);
        // Status messages are never dropped.
        l.push_front(out(0));
        assert_eq!(take_all(&mut l), [0]);
    }

    #[test]
    fn collision_is_tracked() {
        let mut l = Link::new(3, 10, 100);
        for n in 1..=3 {
            l.push(out(n));
        }
        l.set_connected(None);
        take_all(&mut l);
        l.published(1);
        l.published(2);
        l.held(1); // message 3 waits for packet id 1
        l.confirmed(1); // message 1 done; the client now sends message 3 as packet 1
        l.published(1);
        l.push(out(4));
        assert_eq!(take_all(&mut l), [4]);
        l.published(2 + 1);
        l.confirmed(2);
        l.confirmed(1);
        l.confirmed(3);
        assert!(l.idle());
    }

    #[test]
    fn refused_send_keeps_order() {
        let mut l = Link::new(5, 10, 100);
        l.push(out(1));
        l.push(out(2));
        l.set_connected(None);
        let mut first = true;
        l.pump(|_| std::mem::take(&mut first));
        assert_eq!(l.in_flight(), 1);
        assert_eq!(take_all(&mut l), [2]);
    }

    #[test]
    fn routes_expire_and_are_bounded() {
        let t0 = Instant::now();
        let mut r = Routes::new(2);
        let route = Route {
            response_topic: Some("reply".into()),
            ..Default::default()
        };
        assert!(r.insert("a", route.clone(), t0));
        assert!(r.insert("b", route.clone(), t0 + Duration::from_secs(5)));
        assert!(!r.insert("c", route.clone(), t0));
        assert_eq!(r.dropped(), 1);
        // Re-inserting refreshes the entry's age.
        assert!(r.insert("a", route.clone(), t0 + Duration::from_secs(8)));
        r.vacuum(t0 + Duration::from_secs(10), Duration::from_secs(4));
        assert!(r.get("b").is_none());
        assert_eq!(r.get("a"), Some(&route));
        r.vacuum(t0 + Duration::from_secs(20), Duration::from_secs(4));
        assert_eq!(r.len(), 0);
        for i in 0..10 {
            r.insert("x", route.clone(), t0 + Duration::from_millis(i));
        }
        assert!(r.order.len() <= 4);
    }

    #[test]
    fn filters() {
        assert!(topic_matches("to-janus", "to-janus"));
        assert!(!topic_matches("to-janus/x", "to-janus"));
        assert!(topic_matches("a/b/c", "a/+/c"));
        assert!(topic_matches("a/b/c", "a/#"));
        assert!(topic_matches("a", "a/#"));
        assert!(!topic_matches("$SYS/x", "#"));
        assert!(topic_matches("é/x", "+/x"));
        assert!(!topic_matches("a/b", "a/b/c"));
    }
}
