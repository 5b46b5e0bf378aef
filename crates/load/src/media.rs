//! `jano-load media`: N WebRTC peers on the server's EchoTest, each sending synthetic Opus and
//! VP8 RTP; measures echoed packets, loss, server CPU per 1,000 echoed packets and the time from
//! offer to `webrtcup`. `--find-max` steps N up until loss reaches the limit. `--fanout` and
//! `--videoroom` measure forwarding instead: groups of peers (`--room-size`), the first of each
//! publishing, the others subscribed to it.

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
    /// AudioBridge (`janus.plugin.audiobridge`, jano's and Janus's): every peer of a group
    /// joins the group's room and sends real Opus; "echoed" counts the mixed packets each gets
    /// back (one per 20 ms), and the latency samples are their arrival jitter.
    pub audiobridge: bool,
    /// Fan-out / VideoRoom / AudioBridge: peers per group (1 publisher + the rest subscribers), each group
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
        if self.pubsub() || self.audiobridge {
            self.room_size.unwrap_or(n).clamp(1, n.max(1))
        } else {
            1
        }
    }

    fn plugin(&self) -> &'static str {
        if self.audiobridge {
            "audiobridge"
        } else if self.videoroom {
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
    let mut bursts: Vec<Arc<std::sync::Mutex<Vec<Instant>>>> = Vec::new();
    for i in 0..n {
        let (g, first) = (i / group, i % group == 0);
        if o.pubsub() && first {
            let (tx, rx) = watch::channel(Feed::Pending);
            feeds.push((Arc::new(tx), rx));
        }
        let role = match (o.pubsub(), first) {
            _ if o.audiobridge => Role::Mixer,
            (false, _) => Role::Echo,
            (true, true) => Role::Publisher(feeds[g].0.clone()),
            (true, false) => Role::Subscriber {
                feed: feeds[g].1.clone(),
                from: (g * group) as u32,
            },
        };
        if o.audiobridge && first {
            bursts.push(Arc::new(std::sync::Mutex::new(Vec::new())));
        }
        let cfg = PeerCfg {
            index: i as u32,
            role,
            bursts: o.audiobridge.then(|| bursts.get(g).cloned()).flatten(),
            // One listener per room times the talker's bursts (decoding costs the load tool).
            ear: o.audiobridge && i % group == 1,
            // AudioBridge: one talker per room (the first peer), the others listen (they send
            // Opus-encoded silence), as in a call where one speaks at a time.
            talker: !o.audiobridge || first,
            room: (o.videoroom || o.audiobridge).then_some(base_room + g as u64),
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
    let mut ear: Vec<u32> = Vec::new();
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
        ear.extend_from_slice(&r.ear_us);
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
        "room_size": o.room_size.filter(|_| pubsub || o.audiobridge),
        "rooms": (pubsub || o.audiobridge).then(|| n.div_ceil(group)),
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
        // AudioBridge: a talker's burst → its onset in a listener's mix (mouth to ear).
        "mouth_to_ear_ms": o.audiobridge.then(|| Summary::of(&ear).to_json()),
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

#[cfg(test)]
mod tests {
    use super::*;

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
