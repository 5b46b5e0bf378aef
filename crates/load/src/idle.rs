//! `idle`: open many sessions (each with one echotest handle), keep them alive, measure the
//! server's RSS before and after, then destroy them all.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::http::HttpApi;
use crate::janus::{self, Ids, Tx};
use crate::procfs::Snapshot;
use crate::stats::{round3, Errors, Failure, Kind};
use crate::target::{Target, Transport};
use crate::ws::WsConn;

pub struct IdleOpts {
    pub target: Target,
    pub sessions: usize,
    pub server_pid: u32,
    /// WS: number of sockets the sessions are spread over. HTTP: concurrent request workers.
    pub parallel: usize,
    pub settle: Duration,
    pub keepalive: Duration,
    pub timeout: Duration,
    pub max_time: Duration,
    pub label: Option<String>,
}

#[derive(Default)]
struct TaskStats {
    opened: u64,
    destroyed: u64,
    keepalives: u64,
    errors: Errors,
}

/// Per task: how many sessions to open, the phase deadlines and the channels.
struct Plan {
    count: usize,
    open_deadline: Instant,
    keepalive: Duration,
    timeout: Duration,
    teardown_budget: Duration,
}

impl Plan {
    fn deadline(&self, limit: Instant) -> Instant {
        (Instant::now() + self.timeout).min(limit)
    }
}

/// One request/answer over either transport.
enum Chan {
    Http(HttpApi),
    Ws(WsConn),
}

impl Chan {
    async fn call(
        &mut self,
        kind: Kind,
        tx: &str,
        ids: Ids,
        deadline: Instant,
    ) -> Result<Value, Failure> {
        match self {
            Chan::Http(api) => {
                let path = match (ids.session, ids.handle) {
                    (Some(s), Some(h)) => format!("/{s}/{h}"),
                    (Some(s), None) => format!("/{s}"),
                    _ => String::new(),
                };
                api.post(kind, &path, janus::request(kind, tx, Ids::NONE), deadline)
                    .await
            }
            Chan::Ws(c) => {
                c.send(kind, janus::request(kind, tx, ids), deadline)
                    .await?;
                c.recv_tx(kind, tx, deadline).await
            }
        }
    }

    fn is_ws(&self) -> bool {
        matches!(self, Chan::Ws(_))
    }
}

async fn open_one(
    chan: &mut Chan,
    tx: &mut Tx,
    limit: Instant,
    plan: &Plan,
) -> Result<(u64, u64), Failure> {
    let id = tx.next();
    let v = chan
        .call(Kind::Create, &id, Ids::NONE, plan.deadline(limit))
        .await?;
    let sid = janus::check_create(&v, &id)?;
    let id = tx.next();
    let v = chan
        .call(Kind::Attach, &id, Ids::session(sid), plan.deadline(limit))
        .await?;
    let hid = janus::check_attach(&v, &id, sid)?;
    Ok((sid, hid))
}

async fn sweep(
    chan: &mut Chan,
    tx: &mut Tx,
    sessions: &[(u64, u64)],
    plan: &Plan,
    st: &mut TaskStats,
) -> bool {
    for &(sid, _) in sessions {
        let id = tx.next();
        let limit = Instant::now() + plan.timeout;
        let r = chan
            .call(
                Kind::Keepalive,
                &id,
                Ids::session(sid),
                plan.deadline(limit),
            )
            .await
            .and_then(|v| janus::check_keepalive(&v, &id, sid));
        st.keepalives += 1;
        if let Err(f) = r {
            st.errors.add(&f);
            if chan.is_ws() {
                return false;
            }
        }
    }
    true
}

async fn idle_task(
    mut chan: Chan,
    plan: Plan,
    opened_tx: mpsc::UnboundedSender<u64>,
    mut teardown: watch::Receiver<bool>,
) -> TaskStats {
    let mut st = TaskStats::default();
    let mut tx = Tx::new();
    let mut sessions: Vec<(u64, u64)> = Vec::with_capacity(plan.count);
    let mut next_ka = Instant::now() + plan.keepalive;
    let mut alive = true;

    // Open.
    for _ in 0..plan.count {
        if Instant::now() >= plan.open_deadline {
            st.errors.add(&Failure::new(
                Kind::Create,
                "run time limit reached while opening",
                "--max-time",
            ));
            break;
        }
        match open_one(&mut chan, &mut tx, plan.open_deadline, &plan).await {
            Ok(s) => {
                sessions.push(s);
                st.opened += 1;
            }
            Err(f) => {
                st.errors.add(&f);
                if chan.is_ws() {
                    // The socket state is unknown now; stop using it.
                    alive = false;
                    break;
                }
            }
        }
        if Instant::now() >= next_ka {
            alive = sweep(&mut chan, &mut tx, &sessions, &plan, &mut st).await;
            next_ka = Instant::now() + plan.keepalive;
            if !alive {
                break;
            }
        }
    }
    let _ = opened_tx.send(st.opened);
    drop(opened_tx);

    // Hold: keepalives until told to tear down.
    while alive && !*teardown.borrow() {
        let wait = async {
            match &mut chan {
                Chan::Ws(c) => c.drain_until(next_ka).await,
                Chan::Http(_) => {
                    tokio::time::sleep_until(next_ka).await;
                    Ok(())
                }
            }
        };
        tokio::select! {
            _ = teardown.changed() => {}
            r = wait => {
                if let Err(f) = r {
                    st.errors.add(&f);
                    alive = false;
                } else if Instant::now() >= next_ka {
                    alive = sweep(&mut chan, &mut tx, &sessions, &plan, &mut st).await;
                    next_ka = Instant::now() + plan.keepalive;
                }
            }
        }
    }

    // Teardown.
    let limit = Instant::now() + plan.teardown_budget;
    if alive {
        for &(sid, _) in &sessions {
            let id = tx.next();
            let r = chan
                .call(Kind::Destroy, &id, Ids::session(sid), plan.deadline(limit))
                .await
                .and_then(|v| janus::check_success(Kind::Destroy, &v, &id, sid));
            match r {
                Ok(()) => st.destroyed += 1,
                Err(f) => {
                    st.errors.add(&f);
                    if chan.is_ws() {
                        break;
                    }
                }
            }
        }
    }
    if let Chan::Ws(c) = chan {
        c.close(Instant::now() + Duration::from_secs(1)).await;
    }
    st
}

fn snap(pid: u32) -> Result<Snapshot, String> {
    Snapshot::take(pid).map_err(|e| format!("cannot read /proc/{pid}: {e}"))
}

pub async fn run(opts: IdleOpts) -> Result<Value, String> {
    let pid = opts.server_pid;
    eprintln!(
        "idle: settling {:.0} s before measuring",
        opts.settle.as_secs_f64()
    );
    tokio::time::sleep(opts.settle).await;
    let before = snap(pid)?;

    let start = Instant::now();
    let open_deadline = start + opts.max_time;
    let parallel = opts.parallel.clamp(1, opts.sessions.max(1));
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel();
    let (teardown_tx, teardown_rx) = watch::channel(false);
    let api = match opts.target.transport {
        Transport::Http => Some(HttpApi::new(&opts.target.url, opts.timeout)),
        // Only HTTP and WS are accepted for `idle` (checked in main).
        _ => None,
    };

    let mut handles = Vec::with_capacity(parallel);
    let mut connect_errors = Errors::default();
    for i in 0..parallel {
        let count = opts.sessions / parallel + usize::from(i < opts.sessions % parallel);
        let chan = match &api {
            Some(api) => Chan::Http(api.clone()),
            None => {
                let dl = (Instant::now() + opts.timeout).min(open_deadline);
                match WsConn::connect(&opts.target.url, dl).await {
                    Ok(c) => Chan::Ws(c),
                    Err(f) => {
                        connect_errors.add(&f);
                        continue;
                    }
                }
            }
        };
        let plan = Plan {
            count,
            open_deadline,
            keepalive: opts.keepalive,
            timeout: opts.timeout,
            teardown_budget: opts.max_time,
        };
        handles.push(tokio::spawn(idle_task(
            chan,
            plan,
            opened_tx.clone(),
            teardown_rx.clone(),
        )));
    }
    drop(opened_tx);

    // Wait until every task has opened its share.
    // (A task sends once, or drops its sender early if it panicked.)
    let mut opened = 0u64;
    for _ in 0..handles.len() {
        match opened_rx.recv().await {
            Some(n) => opened += n,
            None => break,
        }
    }
    let open_secs = start.elapsed().as_secs_f64();
    eprintln!(
        "idle: {opened} sessions open in {open_secs:.1} s; settling {:.0} s",
        opts.settle.as_secs_f64()
    );
    tokio::time::sleep(opts.settle).await;
    let after = snap(pid)?;

    let _ = teardown_tx.send(true);
    let mut total = TaskStats::default();
    total.errors.merge(connect_errors);
    let mut panicked = 0u64;
    for h in handles {
        match h.await {
            Ok(st) => {
                total.destroyed += st.destroyed;
                total.keepalives += st.keepalives;
                total.errors.merge(st.errors);
            }
            Err(_) => panicked += 1,
        }
    }
    tokio::time::sleep(opts.settle).await;
    let after_destroy = snap(pid).ok();

    let delta = after.rss as i64 - before.rss as i64;
    let per_session = if opened > 0 {
        delta as f64 / opened as f64
    } else {
        0.0
    };
    Ok(json!({
        "mode": "idle",
        "label": opts.label,
        "transport": opts.target.transport.name(),
        "url": opts.target.url,
        "sessions_requested": opts.sessions,
        "sessions_opened": opened,
        "sessions_destroyed": total.destroyed,
        "parallel": parallel,
        "open_time_s": round3(open_secs),
        "keepalives_sent": total.keepalives,
        "errors": total.errors.total(),
        "error_kinds": total.errors.to_json(),
        "client_tasks_panicked": panicked,
        "server": {
            "pid": pid,
            "before": before.to_json(),
            "after_open": after.to_json(),
            "after_destroy": after_destroy.map(Snapshot::to_json),
            "rss_delta_bytes": delta,
            "rss_bytes_per_session": round3(per_session),
            "rss_bytes_per_10k_sessions": (per_session * 10_000.0).round(),
        },
    }))
}
