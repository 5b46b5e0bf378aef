//! `cycles`: N clients looping create → attach echotest → message (ack + event) → detach → destroy.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use std::sync::Arc;

use crate::conn::{Conn, Endpoint, WireOpts};
use crate::http::{HttpApi, Poll};
use crate::janus::{self, Ids, Tx};
use crate::procfs::{self, Snapshot};
use crate::stats::{round3, Errors, Failure, Kind, Latencies, Unsolicited};
use crate::target::{Target, Transport};

pub struct CyclesOpts {
    pub target: Target,
    pub clients: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub server_pid: Option<u32>,
    /// The broker's process (RabbitMQ, Mosquitto): its CPU is reported beside the server's.
    pub broker_pid: Option<u32>,
    pub timeout: Duration,
    pub label: Option<String>,
    pub wire: WireOpts,
}

/// The run's time line. Samples count when they complete inside `[measure, end]`;
/// clients start no cycle after `end`; every request gives up at `hard_end` at the latest.
#[derive(Clone, Copy)]
struct Window {
    measure: Instant,
    end: Instant,
    hard_end: Instant,
    timeout: Duration,
}

impl Window {
    fn deadline(&self, from: Instant) -> Instant {
        (from + self.timeout).min(self.hard_end)
    }
    fn counts(&self, at: Instant) -> bool {
        at >= self.measure && at <= self.end
    }
}

#[derive(Default)]
struct ClientStats {
    lat: Latencies,
    errors: Errors,
    warmup_errors: Errors,
    cycles: u64,
    warmup_cycles: u64,
    polls: u64,
    keepalive_polls: u64,
    unsolicited: Unsolicited,
}

impl ClientStats {
    fn sample(&mut self, w: &Window, kind: Kind, started: Instant) {
        let now = Instant::now();
        if w.counts(now) {
            self.lat.record(kind, now - started);
        }
    }

    fn cycle_done(&mut self, w: &Window, started: Instant) {
        let now = Instant::now();
        if w.counts(now) {
            self.cycles += 1;
            self.lat.record_cycle(now - started);
        } else if now < w.measure {
            self.warmup_cycles += 1;
        }
    }

    /// A failure counts if its request started before the end and finished after warm-up.
    fn fail(&mut self, w: &Window, f: &Failure, started: Instant) {
        let now = Instant::now();
        if started <= w.end && now >= w.measure {
            self.errors.add(f);
        } else if now < w.measure {
            self.warmup_errors.add(f);
        }
    }
}

/// A failed cycle: the failure and when the failing request started.
type CycleErr = (Failure, Instant);

fn tag(started: Instant) -> impl FnOnce(Failure) -> CycleErr {
    move |f| (f, started)
}

async fn http_cycle(
    api: &HttpApi,
    tx: &mut Tx,
    st: &mut ClientStats,
    w: &Window,
    sid_out: &mut Option<u64>,
) -> Result<(), CycleErr> {
    let cycle_start = Instant::now();

    let t = Instant::now();
    let id = tx.next();
    let v = api
        .post(
            Kind::Create,
            "",
            janus::request(Kind::Create, &id, Ids::NONE),
            w.deadline(t),
        )
        .await
        .map_err(tag(t))?;
    let sid = janus::check_create(&v, &id).map_err(tag(t))?;
    *sid_out = Some(sid);
    st.sample(w, Kind::Create, t);

    let t = Instant::now();
    let id = tx.next();
    let v = api
        .post(
            Kind::Attach,
            &format!("/{sid}"),
            janus::request(Kind::Attach, &id, Ids::NONE),
            w.deadline(t),
        )
        .await
        .map_err(tag(t))?;
    let hid = janus::check_attach(&v, &id, sid).map_err(tag(t))?;
    st.sample(w, Kind::Attach, t);

    let t_msg = Instant::now();
    let id = tx.next();
    let v = api
        .post(
            Kind::Message,
            &format!("/{sid}/{hid}"),
            janus::request(Kind::Message, &id, Ids::NONE),
            w.deadline(t_msg),
        )
        .await
        .map_err(tag(t_msg))?;
    janus::check_ack(&v, &id, sid).map_err(tag(t_msg))?;
    st.sample(w, Kind::Message, t_msg);

    // The event comes on the session's long poll.
    let ev_deadline = w.deadline(t_msg);
    loop {
        let p = api
            .poll(Kind::Event, sid, ev_deadline)
            .await
            .map_err(tag(t_msg))?;
        st.polls += 1;
        let v = match p {
            Poll::NotFound => {
                return Err((
                    Failure::new(Kind::Event, "long poll HTTP 404", format!("session {sid}")),
                    t_msg,
                ))
            }
            Poll::Object(v) => v,
        };
        match (janus::janus_kind(&v), janus::transaction(&v)) {
            ("keepalive", _) => st.keepalive_polls += 1,
            ("event", Some(t)) if t == id => {
                janus::check_event(&v, &id, sid, hid).map_err(tag(t_msg))?;
                st.sample(w, Kind::Event, t_msg);
                break;
            }
            ("error", _) => {
                // Reported with the event validator's wording.
                janus::check_event(&v, &id, sid, hid).map_err(tag(t_msg))?;
            }
            _ => st.unsolicited.add(&v),
        }
        if Instant::now() >= ev_deadline {
            return Err((Failure::new(Kind::Event, "timeout", "no event"), t_msg));
        }
    }

    let t = Instant::now();
    let id = tx.next();
    let v = api
        .post(
            Kind::Detach,
            &format!("/{sid}/{hid}"),
            janus::request(Kind::Detach, &id, Ids::NONE),
            w.deadline(t),
        )
        .await
        .map_err(tag(t))?;
    janus::check_success(Kind::Detach, &v, &id, sid).map_err(tag(t))?;
    st.sample(w, Kind::Detach, t);

    let t = Instant::now();
    let id = tx.next();
    let v = api
        .post(
            Kind::Destroy,
            &format!("/{sid}"),
            janus::request(Kind::Destroy, &id, Ids::NONE),
            w.deadline(t),
        )
        .await
        .map_err(tag(t))?;
    janus::check_success(Kind::Destroy, &v, &id, sid).map_err(tag(t))?;
    *sid_out = None;
    st.sample(w, Kind::Destroy, t);

    st.cycle_done(w, cycle_start);
    Ok(())
}

async fn http_client(api: HttpApi, w: Window) -> ClientStats {
    let mut st = ClientStats::default();
    let mut tx = Tx::new();
    while Instant::now() < w.end {
        let mut sid = None;
        if let Err((f, started)) = http_cycle(&api, &mut tx, &mut st, &w, &mut sid).await {
            st.fail(&w, &f, started);
            // Best effort: do not leave the session behind (not measured).
            if let Some(sid) = sid {
                let id = tx.next();
                let dl = (Instant::now() + Duration::from_secs(2)).min(w.hard_end);
                let _ = api
                    .post(
                        Kind::Destroy,
                        &format!("/{sid}"),
                        janus::request(Kind::Destroy, &id, Ids::NONE),
                        dl,
                    )
                    .await;
            }
            pause_after_error(&w).await;
        }
    }
    st
}

/// Avoids a hot loop against a server that refuses everything.
async fn pause_after_error(w: &Window) {
    let until = (Instant::now() + Duration::from_millis(50)).min(w.hard_end);
    tokio::time::sleep_until(until).await;
}

async fn msg_cycle(
    c: &mut Conn,
    tx: &mut Tx,
    st: &mut ClientStats,
    w: &Window,
    sid_out: &mut Option<u64>,
) -> Result<(), CycleErr> {
    let cycle_start = Instant::now();

    let t = Instant::now();
    let id = tx.next();
    let v = c
        .call(
            Kind::Create,
            &id,
            janus::request(Kind::Create, &id, Ids::NONE),
            w.deadline(t),
        )
        .await
        .map_err(tag(t))?;
    let sid = janus::check_create(&v, &id).map_err(tag(t))?;
    *sid_out = Some(sid);
    st.sample(w, Kind::Create, t);

    let t = Instant::now();
    let id = tx.next();
    let v = c
        .call(
            Kind::Attach,
            &id,
            janus::request(Kind::Attach, &id, Ids::session(sid)),
            w.deadline(t),
        )
        .await
        .map_err(tag(t))?;
    let hid = janus::check_attach(&v, &id, sid).map_err(tag(t))?;
    st.sample(w, Kind::Attach, t);

    // ack and event share the transaction; accept them in either order.
    let t_msg = Instant::now();
    let id = tx.next();
    c.send(
        Kind::Message,
        &id,
        janus::request(Kind::Message, &id, Ids::handle(sid, hid)),
        w.deadline(t_msg),
    )
    .await
    .map_err(tag(t_msg))?;
    let (mut got_ack, mut got_event) = (false, false);
    while !(got_ack && got_event) {
        let kind = if got_ack { Kind::Event } else { Kind::Message };
        let v = c
            .recv_tx(kind, &id, w.deadline(t_msg))
            .await
            .map_err(tag(t_msg))?;
        match janus::janus_kind(&v) {
            "ack" if !got_ack => {
                janus::check_ack(&v, &id, sid).map_err(tag(t_msg))?;
                st.sample(w, Kind::Message, t_msg);
                got_ack = true;
            }
            "event" if !got_event => {
                janus::check_event(&v, &id, sid, hid).map_err(tag(t_msg))?;
                st.sample(w, Kind::Event, t_msg);
                got_event = true;
            }
            _ if got_ack => janus::check_event(&v, &id, sid, hid).map_err(tag(t_msg))?,
            _ => janus::check_ack(&v, &id, sid).map_err(tag(t_msg))?,
        }
    }

    let t = Instant::now();
    let id = tx.next();
    let v = c
        .call(
            Kind::Detach,
            &id,
            janus::request(Kind::Detach, &id, Ids::handle(sid, hid)),
            w.deadline(t),
        )
        .await
        .map_err(tag(t))?;
    janus::check_success(Kind::Detach, &v, &id, sid).map_err(tag(t))?;
    st.sample(w, Kind::Detach, t);

    let t = Instant::now();
    let id = tx.next();
    let v = c
        .call(
            Kind::Destroy,
            &id,
            janus::request(Kind::Destroy, &id, Ids::session(sid)),
            w.deadline(t),
        )
        .await
        .map_err(tag(t))?;
    janus::check_success(Kind::Destroy, &v, &id, sid).map_err(tag(t))?;
    *sid_out = None;
    st.sample(w, Kind::Destroy, t);

    st.cycle_done(w, cycle_start);
    Ok(())
}

/// A client of a message-oriented transport (everything but HTTP).
async fn msg_client(ep: Arc<Endpoint>, w: Window) -> ClientStats {
    let mut st = ClientStats::default();
    let mut tx = Tx::new();
    let mut conn: Option<Conn> = None;
    while Instant::now() < w.end {
        let mut c = match conn.take() {
            Some(c) => c,
            None => {
                let t = Instant::now();
                match ep.connect(&tx, w.deadline(t)).await {
                    Ok(c) => c,
                    Err(f) => {
                        st.fail(&w, &f, t);
                        pause_after_error(&w).await;
                        continue;
                    }
                }
            }
        };
        let mut sid = None;
        match msg_cycle(&mut c, &mut tx, &mut st, &w, &mut sid).await {
            Ok(()) => conn = Some(c),
            Err((f, started)) => {
                st.fail(&w, &f, started);
                if c.owns_sessions() {
                    // Start afresh: closing the socket makes the server drop its sessions.
                    st.unsolicited.merge(&c.unsolicited);
                } else {
                    // Best effort: do not leave the session behind (not measured).
                    if let Some(sid) = sid {
                        let id = tx.next();
                        let dl = (Instant::now() + Duration::from_secs(2)).min(w.hard_end);
                        let body = janus::request(Kind::Destroy, &id, Ids::session(sid));
                        let _ = c.call(Kind::Destroy, &id, body, dl).await;
                    }
                    conn = Some(c);
                }
                pause_after_error(&w).await;
            }
        }
    }
    if let Some(c) = conn {
        st.unsolicited.merge(&c.unsolicited);
        c.close((Instant::now() + Duration::from_secs(1)).min(w.hard_end))
            .await;
    }
    st
}

struct Sampled {
    at_measure: Option<Snapshot>,
    at_end: Option<Snapshot>,
    broker: (Option<Snapshot>, Option<Snapshot>),
    self_cpu: (f64, f64),
    cpus: Value,
    window: Duration,
}

fn per_1000(cpu: f64, cycles: u64) -> Value {
    if cycles > 0 {
        Value::from((cpu * 1000.0 / cycles as f64 * 1e6).round() / 1e6)
    } else {
        Value::Null
    }
}

pub async fn run(opts: CyclesOpts) -> Result<Value, String> {
    // Shared channels (broker connections, the pair socket) are set up before the clock starts.
    let endpoint = match opts.target.transport {
        Transport::Http => None,
        _ => {
            let dl = Instant::now() + opts.timeout;
            Some(Arc::new(
                Endpoint::open(&opts.target, &opts.wire, dl).await?,
            ))
        }
    };

    let start = Instant::now();
    let measure = start + opts.warmup;
    let end = measure + opts.duration;
    let w = Window {
        measure,
        end,
        hard_end: end + opts.timeout + Duration::from_secs(1),
        timeout: opts.timeout,
    };

    let pid = opts.server_pid;
    let broker_pid = opts.broker_pid;
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(measure).await;
        let t0 = Instant::now();
        let s0 = pid.and_then(|p| Snapshot::take(p).ok());
        let b0 = broker_pid.and_then(|p| Snapshot::take(p).ok());
        let c0 = procfs::self_cpu_s();
        let m0 = procfs::read_cpu_times();
        tokio::time::sleep_until(end).await;
        let t1 = Instant::now();
        let s1 = pid.and_then(|p| Snapshot::take(p).ok());
        let b1 = broker_pid.and_then(|p| Snapshot::take(p).ok());
        let c1 = procfs::self_cpu_s();
        let m1 = procfs::read_cpu_times();
        Sampled {
            cpus: procfs::cpu_usage(&m0, &m1),
            at_measure: s0,
            at_end: s1,
            broker: (b0, b1),
            self_cpu: (c0, c1),
            window: t1 - t0,
        }
    });

    let mut handles = Vec::with_capacity(opts.clients);
    match &endpoint {
        None => {
            let api = HttpApi::new(&opts.target.url, opts.timeout);
            for _ in 0..opts.clients {
                handles.push(tokio::spawn(http_client(api.clone(), w)));
            }
        }
        Some(ep) => {
            for _ in 0..opts.clients {
                handles.push(tokio::spawn(msg_client(Arc::clone(ep), w)));
            }
        }
    }

    let mut total = ClientStats::default();
    let mut panicked = 0u64;
    for h in handles {
        match h.await {
            Ok(st) => {
                total.lat.merge(st.lat);
                total.errors.merge(st.errors);
                total.warmup_errors.merge(st.warmup_errors);
                total.cycles += st.cycles;
                total.warmup_cycles += st.warmup_cycles;
                total.polls += st.polls;
                total.keepalive_polls += st.keepalive_polls;
                total.unsolicited.merge(&st.unsolicited);
            }
            Err(_) => panicked += 1,
        }
    }
    if let Some(ep) = &endpoint {
        let u = ep.shutdown(Instant::now() + Duration::from_secs(3)).await;
        total.unsolicited.merge(&u);
    }
    let sampled = match sampler.await {
        Ok(s) => s,
        Err(_) => Sampled {
            at_measure: None,
            at_end: None,
            broker: (None, None),
            self_cpu: (0.0, 0.0),
            cpus: Value::Null,
            window: opts.duration,
        },
    };

    let secs = sampled.window.as_secs_f64().max(1e-9);
    let mut latency = serde_json::Map::new();
    for k in Kind::CYCLE {
        latency.insert(k.name().into(), total.lat.summary(k).to_json());
    }
    latency.insert("overall".into(), total.lat.overall().to_json());
    latency.insert("cycle".into(), total.lat.cycle().to_json());

    let server = match (opts.server_pid, sampled.at_measure, sampled.at_end) {
        (Some(pid), Some(a), Some(b)) => {
            let cpu = b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / procfs::clk_tck();
            json!({
                "pid": pid,
                "cpu_s": round3(cpu),
                "cpu_s_per_1000_cycles": per_1000(cpu, total.cycles),
                "cpu_utilisation": round3(cpu / secs),
                // Time the server's (live) threads were runnable but waiting for a CPU, summed.
                "runqueue_wait_s": round3(b.sched_wait_ns.saturating_sub(a.sched_wait_ns) as f64 / 1e9),
                "rss_bytes": b.rss,
                "threads": b.threads,
                "fds": b.fds,
            })
        }
        (Some(pid), _, _) => json!({"pid": pid, "error": "could not read /proc for the server"}),
        _ => Value::Null,
    };
    let broker = match (opts.broker_pid, sampled.broker) {
        (Some(pid), (Some(a), Some(b))) => {
            let cpu = b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / procfs::clk_tck();
            json!({
                "pid": pid,
                "cpu_s": round3(cpu),
                "cpu_s_per_1000_cycles": per_1000(cpu, total.cycles),
                "cpu_utilisation": round3(cpu / secs),
            })
        }
        (Some(pid), _) => json!({"pid": pid, "error": "could not read /proc for the broker"}),
        _ => Value::Null,
    };

    Ok(json!({
        "mode": "cycles",
        "label": opts.label,
        "transport": opts.target.transport.name(),
        "url": opts.target.url,
        "clients": opts.clients,
        "warmup_s": opts.warmup.as_secs_f64(),
        "duration_s": round3(secs),
        "cycles": total.cycles,
        "cycles_per_s": round3(total.cycles as f64 / secs),
        "errors": total.errors.total(),
        "error_kinds": total.errors.to_json(),
        "warmup_cycles": total.warmup_cycles,
        "warmup_errors": total.warmup_errors.total(),
        "long_polls": total.polls,
        "long_poll_keepalives": total.keepalive_polls,
        "unsolicited_messages": total.unsolicited.to_json(),
        "client_tasks_panicked": panicked,
        "latency_ms": Value::Object(latency),
        "server": server,
        "broker": broker,
        "load_tool_cpu_s": round3(sampled.self_cpu.1 - sampled.self_cpu.0),
        "machine_cpus": sampled.cpus,
    }))
}
