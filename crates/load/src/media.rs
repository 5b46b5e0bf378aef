//! `jano-load media`: N WebRTC peers on the server's EchoTest, each sending synthetic Opus and
//! VP8 RTP; measures echoed packets, loss, server CPU per 1,000 echoed packets and the time from
//! offer to `webrtcup`. `--find-max` steps N up until loss reaches the limit. `--fanout` and
//! `--videoroom` measure forwarding instead: groups of peers (`--room-size`), the first of each
//! publishing, the others subscribed to it.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::peer::{self, Feed, Go, PeerCfg, PeerResult, Role, Schedule};
use crate::procfs::{self, Snapshot};
use crate::stats::{round3, Errors, Failure, Kind, Summary};
use crate::target::Target;

pub struct MediaOpts {
    pub target: Target,
    pub bind_ip: IpAddr,
    pub peers: usize,
    pub audio_pps: u32,
    pub video_pps: u32,
    pub audio_bytes: usize,
    pub video_bytes: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub drain: Duration,
    pub server_pid: Option<u32>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub keepalive: Duration,
    pub setup_parallel: usize,
    pub label: Option<String>,
    /// `--find-max`: the peer counts to try, ascending.
    pub steps: Option<Vec<usize>>,
    /// Loss (fraction) at or above which a step fails.
    pub max_loss: f64,
    pub settle: Duration,
    /// Fan-out instead of echo: peer 0 publishes on `jano.plugin.fanout`, every other peer
    /// subscribes to it; "echoed" then counts packets forwarded to subscribers, and the RTT
    /// samples are one-way latencies (publisher → subscriber).
    pub fanout: bool,
    /// Like `fanout`, on Janus's VideoRoom (`janus.plugin.videoroom`, which Janus has too): the
    /// publisher creates a room and joins it (`joinandconfigure` + offer); the subscribers
    /// `join` with `streams: [{feed}]`, answer the server's offer and `start`.
    pub videoroom: bool,
    /// Fan-out / VideoRoom: peers per group (1 publisher + the rest subscribers), each group
    /// its own room; `None` = one group of all the peers.
    pub room_size: Option<usize>,
    /// VideoRoom: the first group's room id (group g uses room + g); random if `None`.
    pub room: Option<u64>,
}

impl MediaOpts {
    /// One publisher and its subscribers (fan-out / VideoRoom).
    fn pubsub(&self) -> bool {
        self.fanout || self.videoroom
    }

    /// Peers per group of `n` (echo: every peer is its own).
    fn group_size(&self, n: usize) -> usize {
        if self.pubsub() {
            self.room_size.unwrap_or(n).clamp(1, n.max(1))
        } else {
            1
        }
    }

    fn plugin(&self) -> &'static str {
        if self.videoroom {
            "videoroom"
        } else if self.fanout {
            "fanout"
        } else {
            "echotest"
        }
    }
}

/// One run with `n` peers; a JSON report (`mode: "media"`).
async fn step(o: &MediaOpts, n: usize) -> Result<Value, String> {
    let provider = Arc::new(str0m::crypto::from_feature_flags());
    // One certificate for all peers: generating one per peer would only cost load-tool CPU.
    let cert = provider
        .dtls_provider
        .generate_certificate()
        .ok_or("the crypto provider cannot generate a DTLS certificate")?;
    let epoch = Instant::now();
    let (go_tx, go_rx) = watch::channel(Go::Wait);
    let (ready_tx, mut ready_rx) = mpsc::channel::<bool>(n.max(1));
    let gate = Arc::new(Semaphore::new(o.setup_parallel.max(1)));
    let mut handles = Vec::with_capacity(n);
    // The server's memory and threads before any peer: the base of the per-peer figures.
    let idle = o.server_pid.and_then(|p| Snapshot::take(p).ok());
    let group = o.group_size(n);
    // Room ids below 2^53 (JSON numbers), far from the small ids of configured rooms.
    let base_room = o
        .room
        .unwrap_or_else(|| 1_000_000 + u64::from(rand::random::<u32>()));
    let mut feeds = Vec::new();
    for i in 0..n {
        let (g, first) = (i / group, i % group == 0);
        if o.pubsub() && first {
            let (tx, rx) = watch::channel(Feed::Pending);
            feeds.push((Arc::new(tx), rx));
        }
        let role = match (o.pubsub(), first) {
            (false, _) => Role::Echo,
            (true, true) => Role::Publisher(feeds[g].0.clone()),
            (true, false) => Role::Subscriber {
                feed: feeds[g].1.clone(),
                from: (g * group) as u32,
            },
        };
        let cfg = PeerCfg {
            index: i as u32,
            role,
            room: o.videoroom.then_some(base_room + g as u64),
            url: o.target.url.clone(),
            bind_ip: o.bind_ip,
            audio_pps: o.audio_pps,
            video_pps: o.video_pps,
            audio_bytes: o.audio_bytes,
            video_bytes: o.video_bytes,
            timeout: o.timeout,
            connect_timeout: o.connect_timeout,
            keepalive: o.keepalive,
            provider: provider.clone(),
            cert: cert.clone(),
        };
        handles.push(tokio::spawn(peer::run(
            cfg,
            go_rx.clone(),
            ready_tx.clone(),
            gate.clone(),
            epoch,
        )));
    }
    drop(ready_tx);

    // Wait for every peer to be up or failed. Each peer's setup is bounded by its own timeouts;
    // this bound only guards against a peer that never reports.
    let per_wave = o.connect_timeout + o.timeout * 4;
    let waves = n.div_ceil(o.setup_parallel.max(1)) as u32;
    let setup_deadline = Instant::now() + per_wave * waves.max(1) + Duration::from_secs(5);
    let (mut up, mut down) = (0usize, 0usize);
    while up + down < n {
        let left = setup_deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ready_rx.recv()).await {
            Ok(Some(true)) => up += 1,
            Ok(Some(false)) => down += 1,
            Ok(None) | Err(_) => break,
        }
    }
    let setup_s = epoch.elapsed().as_secs_f64();

    let start = Instant::now() + Duration::from_millis(200);
    let sched = Schedule {
        start,
        measure_from: start + o.warmup,
        measure_to: start + o.warmup + o.duration,
        drain_to: start + o.warmup + o.duration + o.drain,
    };
    let running = up > 0;
    let _ = go_tx.send(if running { Go::Run(sched) } else { Go::Abort });

    let mut s0 = None;
    let mut s1 = None;
    let (mut c0, mut c1) = (0.0, 0.0);
    let (mut m0, mut m1) = (Vec::new(), Vec::new());
    if running {
        tokio::time::sleep_until(tokio::time::Instant::from_std(sched.measure_from)).await;
        s0 = o.server_pid.and_then(|p| Snapshot::take(p).ok());
        c0 = procfs::self_cpu_s();
        m0 = procfs::read_cpu_times();
        tokio::time::sleep_until(tokio::time::Instant::from_std(sched.measure_to)).await;
        s1 = o.server_pid.and_then(|p| Snapshot::take(p).ok());
        c1 = procfs::self_cpu_s();
        m1 = procfs::read_cpu_times();
    }

    // Peers end by themselves after the drain (then destroy their session, bounded by
    // --timeout); the extra margin covers a slow teardown.
    let join_deadline = tokio::time::Instant::from_std(
        sched.drain_to.max(Instant::now()) + o.timeout * 2 + Duration::from_secs(5),
    );
    let mut results: Vec<PeerResult> = Vec::with_capacity(n);
    let mut errors = Errors::default();
    let mut lost_tasks = 0u64;
    for h in handles {
        let abort = h.abort_handle();
        match tokio::time::timeout_at(join_deadline, h).await {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => {
                errors.add(&Failure::new(
                    Kind::Connect,
                    "peer task died",
                    e.to_string(),
                ));
                lost_tasks += 1;
                // An empty result keeps the groups (publisher first) in place.
                results.push(PeerResult::default());
            }
            Err(_) => {
                abort.abort();
                errors.add(&Failure::new(
                    Kind::Destroy,
                    "peer did not finish",
                    "aborted",
                ));
                lost_tasks += 1;
                results.push(PeerResult::default());
            }
        }
    }

    Ok(summarise(
        o,
        n,
        &results,
        errors,
        lost_tasks,
        setup_s,
        running,
        (idle, s0, s1),
        (c0, c1),
        procfs::cpu_usage(&m0, &m1),
    ))
}

#[allow(clippy::too_many_arguments)]
fn summarise(
    o: &MediaOpts,
    n: usize,
    results: &[PeerResult],
    mut errors: Errors,
    lost_tasks: u64,
    setup_s: f64,
    ran: bool,
    server: (Option<Snapshot>, Option<Snapshot>, Option<Snapshot>),
    self_cpu: (f64, f64),
    cpus: Value,
) -> Value {
    let mut kinds = [peer::Counts::default(), peer::Counts::default()];
    let (mut foreign, mut connected) = (0u64, 0u64);
    let mut up_us: Vec<u32> = Vec::new();
    let mut rtt: Vec<u32> = Vec::new();
    let mut events: std::collections::BTreeMap<String, u64> = Default::default();
    let mut worst_peer_loss: f64 = 0.0;
    let pubsub = o.pubsub();
    let group = o.group_size(n);
    let (mut keyframes, mut keyframe_requests) = (0u64, 0u64);
    for r in results {
        keyframes += r.keyframes_sent;
        keyframe_requests += r.keyframe_requests;
        if r.connected {
            connected += 1;
        }
        if let Some(f) = &r.failure {
            errors.add(f);
        }
        for f in &r.soft_failures {
            errors.add(f);
        }
        if let Some(u) = r.webrtcup_us {
            up_us.push(u);
        }
        for (k, c) in r.counts.iter().enumerate() {
            let a = &mut kinds[k];
            if !pubsub {
                a.sent += c.sent;
                a.sent_measured += c.sent_measured;
            }
            a.echoed_measured += c.echoed_measured;
            a.echoed_total += c.echoed_total;
            a.duplicates += c.duplicates;
            a.send_errors += c.send_errors;
        }
        let (s, e) = (
            r.counts[0].sent_measured + r.counts[1].sent_measured,
            r.counts[0].echoed_measured + r.counts[1].echoed_measured,
        );
        if s > 0 && !pubsub {
            worst_peer_loss = worst_peer_loss.max(1.0 - e as f64 / s as f64);
        }
        foreign += r.foreign;
        rtt.extend_from_slice(&r.rtt_us);
        for ev in &r.events {
            *events.entry(ev.clone()).or_default() += 1;
        }
    }
    let mut subscribers = 0u64;
    if pubsub {
        // What the subscribers should have got: every measured packet of their group's
        // publisher each.
        for g in results.chunks(group) {
            let Some((p, subs)) = g.split_first() else {
                continue;
            };
            let up = subs.iter().filter(|r| r.connected).count() as u64;
            subscribers += up;
            for (k, c) in kinds.iter_mut().enumerate() {
                c.sent_measured += p.counts[k].sent_measured * up;
                c.sent += p.counts[k].sent * up;
            }
            let expected = p.counts[0].sent_measured + p.counts[1].sent_measured;
            for r in subs.iter().filter(|r| r.connected) {
                let got = r.counts[0].echoed_measured + r.counts[1].echoed_measured;
                if expected > 0 {
                    worst_peer_loss = worst_peer_loss.max(1.0 - got as f64 / expected as f64);
                }
            }
        }
    }
    let sent: u64 = kinds.iter().map(|c| c.sent_measured).sum();
    let echoed: u64 = kinds.iter().map(|c| c.echoed_measured).sum();
    let loss = if sent > 0 {
        1.0 - echoed as f64 / sent as f64
    } else {
        1.0
    };
    let secs = o.duration.as_secs_f64().max(1e-9);
    let per_kind = |c: &peer::Counts| {
        let loss = if c.sent_measured > 0 {
            round3(100.0 * (1.0 - c.echoed_measured as f64 / c.sent_measured as f64))
        } else {
            0.0
        };
        json!({
            "sent": c.sent_measured,
            "echoed": c.echoed_measured,
            "loss_pct": loss,
            "sent_total": c.sent,
            "echoed_total": c.echoed_total,
            "duplicates": c.duplicates,
            "local_send_errors": c.send_errors,
        })
    };
    let server_json = match server {
        (idle, Some(a), Some(b)) => {
            let cpu = b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / procfs::clk_tck();
            let per_k = if echoed > 0 {
                Value::from(round3(cpu / (echoed as f64 / 1000.0)))
            } else {
                Value::Null
            };
            json!({
                "pid": o.server_pid,
                "cpu_s": round3(cpu),
                "cpu_utilisation": round3(cpu / secs),
                "cpu_s_per_1000_echoed": per_k,
                "cpus_allowed": o.server_pid.and_then(cpus_allowed),
                "threads": b.threads,
                "rss_bytes": b.rss,
                "threads_idle": idle.map(|i| i.threads),
                "rss_idle_bytes": idle.map(|i| i.rss),
                // Growth over the idle server, per connected peer (and per subscriber).
                "rss_kb_per_peer": idle.and_then(|i| per(b.rss.saturating_sub(i.rss) as f64 / 1024.0, connected)),
                "threads_per_peer": idle.and_then(|i| per(b.threads as f64 - i.threads as f64, connected)),
                "rss_kb_per_subscriber": idle.filter(|_| pubsub).and_then(|i| per(b.rss.saturating_sub(i.rss) as f64 / 1024.0, subscribers)),
                "threads_per_subscriber": idle.filter(|_| pubsub).and_then(|i| per(b.threads as f64 - i.threads as f64, subscribers)),
            })
        }
        _ => Value::Null,
    };
    let self_cpu_s = self_cpu.1 - self_cpu.0;
    let up = Summary::of(&up_us);
    json!({
        "mode": "media",
        // With fanout / videoroom: "echoed" = forwarded to subscribers, "echo_rtt_ms" = one-way
        // latency (publisher → subscriber).
        "fanout": o.fanout,
        "plugin": o.plugin(),
        // As given (`None`: one group of all the peers, whatever their number).
        "room_size": o.room_size.filter(|_| pubsub),
        "rooms": pubsub.then(|| n.div_ceil(group)),
        "subscribers_connected": pubsub.then_some(subscribers),
        "keyframes_sent": keyframes,
        "keyframe_requests": keyframe_requests,
        "label": o.label,
        "url": o.target.url,
        "bind_ip": o.bind_ip.to_string(),
        "peers": n,
        "peers_connected": connected,
        "ran": ran,
        "audio_pps": o.audio_pps,
        "video_pps": o.video_pps,
        "audio_bytes": o.audio_bytes,
        "video_bytes": o.video_bytes,
        "duration_s": o.duration.as_secs_f64(),
        "warmup_s": o.warmup.as_secs_f64(),
        "setup_s": round3(setup_s),
        "sent": sent,
        "echoed": echoed,
        "pps_sent": round3(sent as f64 / secs),
        "pps_echoed": round3(echoed as f64 / secs),
        "loss_pct": round3(100.0 * loss),
        "worst_peer_loss_pct": round3(100.0 * worst_peer_loss),
        "audio": per_kind(&kinds[0]),
        "video": per_kind(&kinds[1]),
        "foreign_packets": foreign,
        "webrtcup_ms": up.to_json(),
        "echo_rtt_ms": Summary::of(&rtt).to_json(),
        "server": server_json,
        "load_tool_cpu_s": round3(self_cpu_s),
        "load_tool_cpu_utilisation": round3(self_cpu_s / secs),
        "cpus": cpus,
        "events": events,
        "errors": errors.total(),
        "lost_peer_tasks": lost_tasks,
        "error_kinds": errors.to_json(),
    })
}

/// `x / n`, rounded, if there is any `n`.
fn per(x: f64, n: u64) -> Option<f64> {
    (n > 0).then(|| round3(x / n as f64))
}

/// `Cpus_allowed_list` of a process (to show the server really was pinned).
fn cpus_allowed(pid: u32) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
}

/// Loss in percent of a step report (100 if it never ran).
fn loss_pct(r: &Value) -> f64 {
    r["loss_pct"].as_f64().unwrap_or(100.0)
}

/// Whether a step counts as "kept": ran with every peer up, no errors, loss under the limit.
fn step_ok(r: &Value, max_loss_pct: f64) -> bool {
    r["ran"] == true
        && r["errors"].as_u64() == Some(0)
        && r["peers_connected"] == r["peers"]
        && loss_pct(r) < max_loss_pct
}

pub async fn run(o: MediaOpts) -> Result<Value, String> {
    let Some(steps) = o.steps.clone() else {
        return step(&o, o.peers).await;
    };
    if let Some(pid) = o.server_pid {
        match cpus_allowed(pid) {
            Some(c) if !c.contains(['-', ',']) => {}
            c => eprintln!(
                "jano-load: warning: server {pid} may run on several CPUs ({}); --find-max is meant for a server pinned to one core",
                c.unwrap_or_else(|| "unknown".into())
            ),
        }
    }
    let max_loss_pct = o.max_loss * 100.0;
    let mut rows = Vec::new();
    let mut best: Option<usize> = None;
    let mut stop_reason = "all steps passed".to_string();
    for (i, &n) in steps.iter().enumerate() {
        if i > 0 {
            // Let the server finish tearing down the previous step's PeerConnections.
            tokio::time::sleep(o.settle).await;
        }
        let r = step(&o, n).await?;
        eprintln!(
            "jano-load media: {n} peers: loss {:.3} %, {} errors, {}/{} connected, server CPU {} s/1k echoed, load tool {:.0} % CPU",
            loss_pct(&r),
            r["errors"],
            r["peers_connected"],
            n,
            r.pointer("/server/cpu_s_per_1000_echoed").unwrap_or(&Value::Null),
            100.0 * r["load_tool_cpu_utilisation"].as_f64().unwrap_or(0.0)
        );
        let ok = step_ok(&r, max_loss_pct);
        if !ok {
            stop_reason = format!(
                "{n} peers: loss {:.3} %, {} errors, {}/{n} connected",
                loss_pct(&r),
                r["errors"],
                r["peers_connected"]
            );
        }
        rows.push(r);
        if !ok {
            break;
        }
        best = Some(n);
    }
    Ok(json!({
        "mode": "media-max",
        "label": o.label,
        "plugin": o.plugin(),
        "room_size": o.room_size.filter(|_| o.pubsub()),
        "url": o.target.url,
        "max_loss_pct": max_loss_pct,
        "max_peers_ok": best,
        "stopped_by": stop_reason,
        "steps": rows,
        "errors": 0,
    }))
}

fn f(v: &Value, p: &str) -> Option<f64> {
    v.pointer(p).and_then(Value::as_f64)
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |x| format!("{x:.digits$}"))
}

/// The plugin a report measured (older reports have only `fanout`).
pub fn plugin_of(r: &Value) -> &str {
    match r["plugin"].as_str() {
        Some(p) => p,
        None if r["fanout"] == true => "fanout",
        None => "echotest",
    }
}

/// Human summary of one report (`media` or `media-max`).
pub fn human(r: &Value) -> String {
    let mut out = String::new();
    if r["mode"] == "media-max" {
        let _ = writeln!(out, "find-max (loss < {} %):", r["max_loss_pct"]);
        for s in r["steps"].as_array().into_iter().flatten() {
            out.push_str(&human(s));
        }
        let _ = writeln!(
            out,
            "max peers kept at < {} % loss: {} (stopped by: {})",
            r["max_loss_pct"],
            r["max_peers_ok"]
                .as_u64()
                .map_or("none".into(), |n| n.to_string()),
            r["stopped_by"].as_str().unwrap_or("")
        );
        return out;
    }
    let plugin = plugin_of(r);
    let fanout = plugin != "echotest";
    let (echoed, rtt) = if fanout {
        ("forwarded", "publisher→subscriber latency")
    } else {
        ("echoed", "echo RTT")
    };
    let groups = match (plugin, r["rooms"].as_u64(), r["room_size"].as_u64()) {
        ("videoroom", Some(k), Some(size)) => format!(
            "; VideoRoom: {k} room(s) of up to {size} peers, 1 publisher + subscribers each"
        ),
        ("videoroom", _, None) => "; VideoRoom: 1 publisher, the rest subscribers".into(),
        ("fanout", Some(k), Some(size)) => {
            format!("; fan-out: {k} group(s) of up to {size} peers, 1 publisher + subscribers each")
        }
        ("fanout", _, _) => "; 1 publisher, the rest subscribers".into(),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "{} peers ({} connected{groups}) on {} — {} s measured after {} s warm-up",
        r["peers"], r["peers_connected"], r["url"], r["duration_s"], r["warmup_s"]
    );
    let _ = writeln!(
        out,
        "  expected {} ({} pps), {echoed} {} ({} pps), loss {} % (audio {} %, video {} %; worst peer {} %)",
        r["sent"],
        num(f(r, "/pps_sent"), 0),
        r["echoed"],
        num(f(r, "/pps_echoed"), 0),
        num(f(r, "/loss_pct"), 3),
        num(f(r, "/audio/loss_pct"), 3),
        num(f(r, "/video/loss_pct"), 3),
        num(f(r, "/worst_peer_loss_pct"), 3),
    );
    let _ = writeln!(
        out,
        "  server CPU {} s ({} % of a core), {} CPU-s per 1,000 {echoed}; load tool {} % of a core",
        num(f(r, "/server/cpu_s"), 2),
        num(f(r, "/server/cpu_utilisation").map(|x| x * 100.0), 0),
        num(f(r, "/server/cpu_s_per_1000_echoed"), 4),
        num(f(r, "/load_tool_cpu_utilisation").map(|x| x * 100.0), 0),
    );
    let per = if fanout { "subscriber" } else { "peer" };
    let _ = writeln!(
        out,
        "  server RSS {} MB ({} KB more per {per}), {} threads ({} more per {per}); VP8 keyframes sent {}, PLI/FIR received {}",
        num(f(r, "/server/rss_bytes").map(|b| b / 1048576.0), 1),
        num(f(r, &format!("/server/rss_kb_per_{per}")), 0),
        r.pointer("/server/threads").unwrap_or(&Value::Null),
        num(f(r, &format!("/server/threads_per_{per}")), 2),
        r["keyframes_sent"],
        r["keyframe_requests"],
    );
    let _ = writeln!(
        out,
        "  offer→webrtcup p50 {} ms, p99 {} ms; {rtt} p50 {} ms, p90 {} ms, p99 {} ms; errors {}",
        num(f(r, "/webrtcup_ms/p50_ms"), 1),
        num(f(r, "/webrtcup_ms/p99_ms"), 1),
        num(f(r, "/echo_rtt_ms/p50_ms"), 2),
        num(f(r, "/echo_rtt_ms/p90_ms"), 2),
        num(f(r, "/echo_rtt_ms/p99_ms"), 2),
        r["errors"]
    );
    for e in r["error_kinds"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "    {} × {} (e.g. {})",
            e["count"],
            e["error"].as_str().unwrap_or(""),
            e["sample"].as_str().unwrap_or("")
        );
    }
    out
}

/// Side-by-side markdown tables of `media` and `media-max` reports, one per plugin and group
/// size (EchoTest; fan-out / VideoRoom 1 → N or rooms of K); `janus` is the baseline.
pub fn markdown(runs: &[&Value]) -> String {
    let mut out = String::new();
    let kind = |r: &Value| (plugin_of(r).to_string(), r["room_size"].as_u64());
    let mut kinds: Vec<(String, Option<u64>)> = Vec::new();
    for r in runs {
        let k = kind(r);
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let several = kinds.len() > 1;
    for k in &kinds {
        let group: Vec<&Value> = runs.iter().copied().filter(|r| &kind(r) == k).collect();
        if k.0 != "echotest" || several {
            let what = match (k.0.as_str(), k.1) {
                ("videoroom", Some(s)) => format!(
                    "VideoRoom, rooms of {s} (1 publisher + {} subscribers each)",
                    s.saturating_sub(1)
                ),
                ("videoroom", None) => {
                    "VideoRoom, one room: 1 publisher → N − 1 subscribers".into()
                }
                ("fanout", Some(s)) => format!(
                    "jano.plugin.fanout, groups of {s} (1 publisher + {} subscribers each)",
                    s.saturating_sub(1)
                ),
                ("fanout", None) => "jano.plugin.fanout: 1 publisher → N − 1 subscribers".into(),
                (p, _) => p.to_string(),
            };
            if !out.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "**{what}**\n");
        }
        if k.0 == "echotest" {
            table_echo(&mut out, &group);
        } else {
            table_forward(&mut out, &group);
        }
    }
    out
}

fn label(r: &Value) -> String {
    r["label"].as_str().unwrap_or("?").to_string()
}

/// Labels in the order they first appear.
fn labels(runs: &[&Value]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for r in runs {
        let l = label(r);
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    labels
}

/// The `--find-max` result of a label.
fn max_of(runs: &[&Value], l: &str) -> String {
    runs.iter()
        .filter(|r| r["mode"] == "media-max" && label(r) == l)
        .map(|r| {
            r["max_peers_ok"]
                .as_u64()
                .map_or("none".to_string(), |n| n.to_string())
        })
        .next()
        .unwrap_or_else(|| "–".into())
}

/// jano / Janus of CPU-s per 1k (the Janus run with the same peers is the baseline).
fn ratio(media: &[&Value], r: &Value) -> String {
    if label(r) == "janus" {
        return "1.00 (baseline)".to_string();
    }
    let base = media
        .iter()
        .find(|b| label(b) == "janus" && b["peers"] == r["peers"])
        .and_then(|b| f(b, "/server/cpu_s_per_1000_echoed"));
    match (f(r, "/server/cpu_s_per_1000_echoed"), base) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

fn table_echo(out: &mut String, runs: &[&Value]) {
    let media: Vec<&Value> = runs
        .iter()
        .copied()
        .filter(|r| r["mode"] == "media")
        .collect();
    let _ = writeln!(
        out,
        "| server | peers | pps sent | echoed | loss % | CPU-s per 1k echoed | ratio jano/Janus | webrtcup p50/p99 ms | max peers < 0.5 % loss |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for l in &labels(runs) {
        let rows: Vec<&&Value> = media.iter().filter(|r| &label(r) == l).collect();
        if rows.is_empty() {
            let _ = writeln!(
                out,
                "| {l} | – | – | – | – | – | – | – | {} |",
                max_of(runs, l)
            );
        }
        for r in rows {
            let _ = writeln!(
                out,
                "| {l} | {} | {} | {} | {} | {} | {} | {} / {} | {} |",
                r["peers"],
                num(f(r, "/pps_sent"), 0),
                r["echoed"],
                num(f(r, "/loss_pct"), 3),
                num(f(r, "/server/cpu_s_per_1000_echoed"), 4),
                ratio(&media, r),
                num(f(r, "/webrtcup_ms/p50_ms"), 0),
                num(f(r, "/webrtcup_ms/p99_ms"), 0),
                max_of(runs, l),
            );
        }
    }
}

/// Fan-out / VideoRoom: forwarded packets, one-way latency, server memory and threads per
/// subscriber.
fn table_forward(out: &mut String, runs: &[&Value]) {
    let media: Vec<&Value> = runs
        .iter()
        .copied()
        .filter(|r| r["mode"] == "media")
        .collect();
    let _ = writeln!(
        out,
        "| server | peers (rooms) | expected pps | forwarded | loss % | CPU-s per 1k forwarded | ratio jano/Janus | latency p50/p99 ms | webrtcup p50/p99 ms | RSS MB (KB per subscriber) | threads (per subscriber) | max peers < 0.5 % loss |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for l in &labels(runs) {
        let rows: Vec<&&Value> = media.iter().filter(|r| &label(r) == l).collect();
        if rows.is_empty() {
            let _ = writeln!(
                out,
                "| {l} | – | – | – | – | – | – | – | – | – | – | {} |",
                max_of(runs, l)
            );
        }
        for r in rows {
            let _ = writeln!(
                out,
                "| {l} | {} ({}) | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} ({}) | {} ({}) | {} |",
                r["peers"],
                r["rooms"].as_u64().unwrap_or(1),
                num(f(r, "/pps_sent"), 0),
                r["echoed"],
                num(f(r, "/loss_pct"), 3),
                num(f(r, "/server/cpu_s_per_1000_echoed"), 4),
                ratio(&media, r),
                num(f(r, "/echo_rtt_ms/p50_ms"), 2),
                num(f(r, "/echo_rtt_ms/p99_ms"), 2),
                num(f(r, "/webrtcup_ms/p50_ms"), 0),
                num(f(r, "/webrtcup_ms/p99_ms"), 0),
                num(f(r, "/server/rss_bytes").map(|b| b / 1048576.0), 1),
                num(f(r, "/server/rss_kb_per_subscriber"), 0),
                r.pointer("/server/threads").unwrap_or(&Value::Null),
                num(f(r, "/server/threads_per_subscriber"), 2),
                max_of(runs, l),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_compares_against_janus() {
        let j: Value = serde_json::from_str(r#"{"mode":"media","label":"janus","peers":10,"pps_sent":1500,"echoed":29000,"loss_pct":0.1,"server":{"cpu_s_per_1000_echoed":0.02},"webrtcup_ms":{"p50_ms":40,"p99_ms":90}}"#).unwrap();
        let k: Value = serde_json::from_str(r#"{"mode":"media","label":"jano","peers":10,"pps_sent":1500,"echoed":29900,"loss_pct":0.0,"server":{"cpu_s_per_1000_echoed":0.01},"webrtcup_ms":{"p50_ms":20,"p99_ms":30}}"#).unwrap();
        let m: Value =
            serde_json::from_str(r#"{"mode":"media-max","label":"janus","max_peers_ok":100}"#)
                .unwrap();
        let t = markdown(&[&j, &k, &m]);
        assert!(
            t.contains(
                "| janus | 10 | 1500 | 29000 | 0.100 | 0.0200 | 1.00 (baseline) | 40 / 90 | 100 |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| jano | 10 | 1500 | 29900 | 0.000 | 0.0100 | 0.50 | 20 / 30 | – |"),
            "{t}"
        );
    }

    #[test]
    fn forwarding_tables_per_room_size() {
        let j: Value = serde_json::from_str(r#"{"mode":"media","label":"janus","plugin":"videoroom","room_size":11,"rooms":2,"peers":22,"pps_sent":3000,"echoed":30000,"loss_pct":0.0,"server":{"cpu_s_per_1000_echoed":0.02,"rss_bytes":52428800,"rss_kb_per_subscriber":800,"threads":40,"threads_per_subscriber":1.0},"echo_rtt_ms":{"p50_ms":0.5,"p99_ms":2},"webrtcup_ms":{"p50_ms":40,"p99_ms":90}}"#).unwrap();
        let k: Value = serde_json::from_str(r#"{"mode":"media","label":"jano","plugin":"videoroom","room_size":11,"rooms":2,"peers":22,"pps_sent":3000,"echoed":30000,"loss_pct":0.0,"server":{"cpu_s_per_1000_echoed":0.01,"rss_bytes":10485760,"rss_kb_per_subscriber":100,"threads":5,"threads_per_subscriber":0.0},"echo_rtt_ms":{"p50_ms":0.25,"p99_ms":1},"webrtcup_ms":{"p50_ms":20,"p99_ms":30}}"#).unwrap();
        let one: Value = serde_json::from_str(
            r#"{"mode":"media-max","label":"jano","plugin":"videoroom","max_peers_ok":300}"#,
        )
        .unwrap();
        let t = markdown(&[&j, &k, &one]);
        assert!(
            t.contains("**VideoRoom, rooms of 11 (1 publisher + 10 subscribers each)**"),
            "{t}"
        );
        assert!(
            t.contains("**VideoRoom, one room: 1 publisher → N − 1 subscribers**"),
            "{t}"
        );
        assert!(
            t.contains("| jano | 22 (2) | 3000 | 30000 | 0.000 | 0.0100 | 0.50 | 0.25 / 1.00 | 20 / 30 | 10.0 (100) | 5 (0.00) | – |"),
            "{t}"
        );
        assert!(
            t.contains("| jano | – | – | – | – | – | – | – | – | – | – | 300 |"),
            "{t}"
        );
        let h = human(&k);
        assert!(h.contains("VideoRoom: 2 room(s) of up to 11 peers"), "{h}");
        assert!(h.contains("forwarded 30000"), "{h}");
        assert!(h.contains("100 KB more per subscriber"), "{h}");
    }

    #[test]
    fn step_verdict() {
        let ok: Value = serde_json::from_str(
            r#"{"ran":true,"errors":0,"peers":10,"peers_connected":10,"loss_pct":0.2}"#,
        )
        .unwrap();
        assert!(step_ok(&ok, 0.5));
        assert!(!step_ok(&ok, 0.1));
        let half: Value = serde_json::from_str(
            r#"{"ran":true,"errors":0,"peers":10,"peers_connected":9,"loss_pct":0.0}"#,
        )
        .unwrap();
        assert!(!step_ok(&half, 0.5));
    }
}
