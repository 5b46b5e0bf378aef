//! Time sources. The recorder needs two clocks, as Janus does: wall-clock time for the `s`/`u`
//! header keys and the data frame prefix, and a monotonic clock for the relative frame
//! timestamps and the RTP timestamp gap after a source switch. Injecting them keeps tests
//! byte-exact.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Where a recorder gets its time from.
pub trait Clock: Send + Sync + 'static {
    /// Microseconds since the UNIX epoch.
    fn real_time_us(&self) -> i64;
    /// Microseconds on a clock that never goes backwards (any origin).
    fn monotonic_us(&self) -> i64;
}

/// The system clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn real_time_us(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(_) => 0,
        }
    }

    fn monotonic_us(&self) -> i64 {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let origin = *ORIGIN.get_or_init(Instant::now);
        // Start at 1 s so that no real reading is ever 0.
        i64::try_from(origin.elapsed().as_micros()).unwrap_or(i64::MAX) + 1_000_000
    }
}

/// A clock moved by hand, for deterministic tests. Clones share the same time, so a test can
/// keep one and give another to a recorder.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    real: Arc<AtomicI64>,
    mono: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock reading `real_us` (wall clock) and `mono_us` (monotonic).
    pub fn new(real_us: i64, mono_us: i64) -> Self {
        ManualClock {
            real: Arc::new(AtomicI64::new(real_us)),
            mono: Arc::new(AtomicI64::new(mono_us)),
        }
    }

    /// Moves both clocks forward by `us`.
    pub fn advance_us(&self, us: i64) {
        self.real.fetch_add(us, Ordering::SeqCst);
        self.mono.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn real_time_us(&self) -> i64 {
        self.real.load(Ordering::SeqCst)
    }

    fn monotonic_us(&self) -> i64 {
        self.mono.load(Ordering::SeqCst)
    }
}
