//! Latency samples, error tallies and their summaries.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

/// The kinds of request a cycle is made of (plus the asynchronous plugin event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Create,
    Attach,
    /// `message` until its `ack`.
    Message,
    /// `message` sent until the plugin `event` with the same transaction arrived.
    Event,
    Detach,
    Destroy,
    Keepalive,
    Connect,
}

impl Kind {
    pub const CYCLE: [Kind; 6] = [
        Kind::Create,
        Kind::Attach,
        Kind::Message,
        Kind::Event,
        Kind::Detach,
        Kind::Destroy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Attach => "attach",
            Kind::Message => "message",
            Kind::Event => "event",
            Kind::Detach => "detach",
            Kind::Destroy => "destroy",
            Kind::Keepalive => "keepalive",
            Kind::Connect => "connect",
        }
    }

    /// Synchronous request/response round trips (what "overall" latency is made of).
    pub fn is_request(self) -> bool {
        !matches!(self, Kind::Event | Kind::Connect)
    }
}

/// A failed step: which request, a short category (aggregated) and a detail (one sample kept).
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub category: String,
    pub detail: String,
}

impl Failure {
    pub fn new(kind: Kind, category: impl Into<String>, detail: impl Into<String>) -> Self {
        Failure {
            kind,
            category: category.into(),
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            self.kind.name(),
            self.category,
            self.detail
        )
    }
}

/// Latency samples in microseconds for each kind.
#[derive(Default, Clone)]
pub struct Latencies {
    samples: HashMap<Kind, Vec<u32>>,
    cycle: Vec<u32>,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Latencies {
    pub fn record(&mut self, kind: Kind, d: Duration) {
        self.samples.entry(kind).or_default().push(micros(d));
    }

    pub fn record_cycle(&mut self, d: Duration) {
        self.cycle.push(micros(d));
    }

    pub fn merge(&mut self, other: Latencies) {
        for (k, mut v) in other.samples {
            self.samples.entry(k).or_default().append(&mut v);
        }
        let mut c = other.cycle;
        self.cycle.append(&mut c);
    }

    pub fn summary(&self, kind: Kind) -> Summary {
        Summary::of(self.samples.get(&kind).map(Vec::as_slice).unwrap_or(&[]))
    }

    pub fn overall(&self) -> Summary {
        let mut all: Vec<u32> = Vec::new();
        for (k, v) in &self.samples {
            if k.is_request() {
                all.extend_from_slice(v);
            }
        }
        Summary::of(&all)
    }

    pub fn cycle(&self) -> Summary {
        Summary::of(&self.cycle)
    }
}

/// Percentile summary, milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(samples: &[u32]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        let mut v = samples.to_vec();
        v.sort_unstable();
        let n = v.len();
        // Nearest-rank percentile.
        let pct = |p: f64| -> f64 {
            let rank = (p * n as f64).ceil() as usize;
            let idx = rank.clamp(1, n) - 1;
            f64::from(v[idx]) / 1000.0
        };
        let sum: u64 = v.iter().map(|&x| u64::from(x)).sum();
        Summary {
            count: n,
            p50: pct(0.50),
            p90: pct(0.90),
            p99: pct(0.99),
            mean: sum as f64 / n as f64 / 1000.0,
            max: f64::from(v[n - 1]) / 1000.0,
        }
    }

    pub fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "p50_ms": round3(self.p50),
            "p90_ms": round3(self.p90),
            "p99_ms": round3(self.p99),
            "mean_ms": round3(self.mean),
            "max_ms": round3(self.max),
        })
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Error tally: key "<kind>: <category>" → (count, one sample detail).
#[derive(Default, Clone)]
pub struct Errors {
    map: HashMap<String, (u64, String)>,
    total: u64,
}

impl Errors {
    pub fn add(&mut self, f: &Failure) {
        self.total += 1;
        let key = format!("{}: {}", f.kind.name(), f.category);
        let e = self.map.entry(key).or_insert_with(|| (0, f.detail.clone()));
        e.0 += 1;
    }

    pub fn merge(&mut self, other: Errors) {
        self.total += other.total;
        for (k, (n, d)) in other.map {
            let e = self.map.entry(k).or_insert((0, d));
            e.0 += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Sorted by count, descending.
    pub fn sorted(&self) -> Vec<(String, u64, String)> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .map(|(k, (n, d))| (k.clone(), *n, d.clone()))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    pub fn to_json(&self) -> Value {
        Value::Array(
            self.sorted()
                .into_iter()
                .map(|(k, n, d)| json!({"error": k, "count": n, "sample": d}))
                .collect(),
        )
    }
}

/// Messages that answered no pending request, counted by their `janus` kind (one sample kept).
#[derive(Default, Clone, Debug)]
pub struct Unsolicited(HashMap<String, (u64, String)>);

impl Unsolicited {
    pub fn add(&mut self, v: &Value) {
        let k = v.get("janus").and_then(Value::as_str).unwrap_or("?");
        let k = if v.get("transaction").is_some() {
            format!("{k} (other transaction)")
        } else {
            k.to_string()
        };
        self.0
            .entry(k)
            .or_insert_with(|| (0, crate::janus::short(v)))
            .0 += 1;
    }

    pub fn add_raw(&mut self, bytes: &[u8]) {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => self.add(&v),
            Err(_) => {
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
                self.0.entry("(invalid JSON)".into()).or_insert((0, text)).0 += 1;
            }
        }
    }

    /// How many messages of this key (`janus` kind, with " (other transaction)" if they had
    /// one) were skipped.
    pub fn count(&self, key: &str) -> u64 {
        self.0.get(key).map_or(0, |e| e.0)
    }

    pub fn merge(&mut self, other: &Unsolicited) {
        for (k, (n, d)) in &other.0 {
            self.0.entry(k.clone()).or_insert_with(|| (0, d.clone())).0 += n;
        }
    }

    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, (n, d))| (k.clone(), json!({"count": n, "sample": d})))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        let s = Summary::of(&v);
        assert_eq!(s.count, 100);
        assert!((s.p50 - 50.0).abs() < 1e-9);
        assert!((s.p99 - 99.0).abs() < 1e-9);
        assert!((s.max - 100.0).abs() < 1e-9);
        let one = Summary::of(&[2500]);
        assert!((one.p50 - 2.5).abs() < 1e-9 && (one.p99 - 2.5).abs() < 1e-9);
        assert_eq!(Summary::of(&[]).count, 0);
    }

    #[test]
    fn errors_aggregate() {
        let mut e = Errors::default();
        e.add(&Failure::new(Kind::Create, "timeout", "a"));
        e.add(&Failure::new(Kind::Create, "timeout", "b"));
        e.add(&Failure::new(Kind::Event, "bad", "c"));
        let s = e.sorted();
        assert_eq!(e.total(), 3);
        assert_eq!(s[0], ("create: timeout".to_string(), 2, "a".to_string()));
    }
}
