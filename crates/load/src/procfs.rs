//! Reading a process's CPU time, RSS, thread and fd counts from /proc.

use std::fs;
use std::io;

use serde_json::{json, Value};

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of utime/stime in /proc/<pid>/stat.
pub fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Fields of /proc/<pid>/stat we need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    pub num_threads: u64,
}

/// Parses the content of /proc/<pid>/stat. The second field (comm) is in parentheses and may
/// contain spaces and ')' itself, so the remaining fields are read after the *last* ')'.
/// After it come field 3 (state), ..., 14 (utime), 15 (stime), ..., 20 (num_threads).
pub fn parse_stat(s: &str) -> Option<Stat> {
    let close = s.rfind(')')?;
    let rest: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3, so field k is rest[k - 3].
    let field = |k: usize| -> Option<u64> { rest.get(k - 3)?.parse().ok() };
    Some(Stat {
        cpu_ticks: field(14)?.checked_add(field(15)?)?,
        num_threads: field(20)?,
    })
}

pub fn read_stat(pid: u32) -> io::Result<Stat> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&s).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad /proc stat"))
}

/// Parses `VmRSS:   1234 kB` from /proc/<pid>/status; bytes.
pub fn parse_vmrss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut it = line["VmRSS:".len()..].split_whitespace();
    let n: u64 = it.next()?.parse().ok()?;
    let unit = it.next().unwrap_or("kB");
    let mult = match unit {
        "kB" => 1024,
        "mB" | "MB" => 1024 * 1024,
        _ => 1,
    };
    n.checked_mul(mult)
}

pub fn read_rss(pid: u32) -> io::Result<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vmrss(&s).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS"))
}

pub fn count_fds(pid: u32) -> io::Result<u64> {
    Ok(fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

/// Sum over the live threads of /proc/<pid>/task/*/schedstat: (ns on CPU, ns runnable but
/// waiting for a CPU). Threads that exited are missing, so deltas are approximate.
pub fn read_schedstat(pid: u32) -> (u64, u64) {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let (mut run, mut wait) = (0u64, 0u64);
    for e in dir.flatten() {
        if let Ok(s) = fs::read_to_string(e.path().join("schedstat")) {
            let mut it = s.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
            run += it.next().unwrap_or(0);
            wait += it.next().unwrap_or(0);
        }
    }
    (run, wait)
}

/// A point-in-time snapshot of a process.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub cpu_ticks: u64,
    pub threads: u64,
    pub rss: u64,
    pub fds: u64,
    /// See [`read_schedstat`].
    pub sched_wait_ns: u64,
}

impl Snapshot {
    pub fn take(pid: u32) -> io::Result<Snapshot> {
        let st = read_stat(pid)?;
        Ok(Snapshot {
            cpu_ticks: st.cpu_ticks,
            threads: st.num_threads,
            rss: read_rss(pid)?,
            fds: count_fds(pid).unwrap_or(0),
            sched_wait_ns: read_schedstat(pid).1,
        })
    }

    pub fn to_json(self) -> Value {
        json!({
            "cpu_s": self.cpu_ticks as f64 / clk_tck(),
            "rss_bytes": self.rss,
            "threads": self.threads,
            "fds": self.fds,
        })
    }
}

/// Per-CPU tick counters from /proc/stat (`cpuN user nice system idle iowait irq softirq steal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuTimes {
    pub name: String,
    pub busy: u64,
    pub steal: u64,
    pub total: u64,
}

pub fn parse_cpu_times(stat: &str) -> Vec<CpuTimes> {
    let mut out = Vec::new();
    for line in stat.lines() {
        let mut it = line.split_whitespace();
        let Some(name) = it.next() else { continue };
        if !name.starts_with("cpu") || name == "cpu" {
            continue;
        }
        // user nice system idle iowait irq softirq steal (guest time is included in user).
        let v: Vec<u64> = it.take(8).filter_map(|x| x.parse().ok()).collect();
        if v.len() < 8 {
            continue;
        }
        let total: u64 = v.iter().sum();
        let idle = v[3] + v[4];
        out.push(CpuTimes {
            name: name.to_string(),
            busy: total - idle - v[7],
            steal: v[7],
            total,
        });
    }
    out
}

pub fn read_cpu_times() -> Vec<CpuTimes> {
    fs::read_to_string("/proc/stat")
        .map(|s| parse_cpu_times(&s))
        .unwrap_or_default()
}

/// Busy and steal percentage of every CPU between two readings.
pub fn cpu_usage(a: &[CpuTimes], b: &[CpuTimes]) -> Value {
    let mut m = serde_json::Map::new();
    for y in b {
        if let Some(x) = a.iter().find(|x| x.name == y.name) {
            let total = y.total.saturating_sub(x.total).max(1) as f64;
            m.insert(
                y.name.clone(),
                json!({
                    "busy_pct": (y.busy.saturating_sub(x.busy) as f64 / total * 1000.0).round() / 10.0,
                    "steal_pct": (y.steal.saturating_sub(x.steal) as f64 / total * 1000.0).round() / 10.0,
                }),
            );
        }
    }
    Value::Object(m)
}

/// CPU seconds (utime+stime) of this process so far.
pub fn self_cpu_s() -> f64 {
    read_stat(std::process::id())
        .map(|s| s.cpu_ticks as f64 / clk_tck())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        let s = "1234 (we ird) (x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 7 0 12345 \
                 1000000 500 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 0 0 0 0 0 0";
        let st = parse_stat(s).unwrap();
        assert_eq!(st.cpu_ticks, 325);
        assert_eq!(st.num_threads, 7);
    }

    #[test]
    fn stat_of_self() {
        let st = read_stat(std::process::id()).unwrap();
        assert!(st.num_threads >= 1);
        assert!(read_rss(std::process::id()).unwrap() > 0);
        assert!(count_fds(std::process::id()).unwrap() > 0);
        assert!(clk_tck() > 0.0);
        assert!(read_schedstat(std::process::id()).0 > 0);
    }

    #[test]
    fn cpu_times() {
        let s = "cpu  10 0 10 100 0 0 0 5 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2\n";
        let v = parse_cpu_times(s);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].name, "cpu0");
        assert_eq!(v[0].total, 36);
        assert_eq!(v[0].steal, 8);
        assert_eq!(v[0].busy, 36 - 4 - 5 - 8);
        assert!(!read_cpu_times().is_empty());
    }

    #[test]
    fn vmrss() {
        assert_eq!(
            parse_vmrss("Name:\tx\nVmRSS:\t    2048 kB\nThreads:\t3\n"),
            Some(2048 * 1024)
        );
        assert_eq!(parse_vmrss("Name:\tx\n"), None);
    }
}
