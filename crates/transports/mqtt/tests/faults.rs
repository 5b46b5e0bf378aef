//! Broker faults against the real Mosquitto: a restart in the middle of a conversation, and a
//! start with the broker down. These stop the shared broker, so they run one at a time (one
//! lock) and always leave it running (a guard restarts it, even when a test fails).
//!
//! The broker is the one this machine runs: `mosquitto -d -c /etc/mosquitto/mosquitto.conf`,
//! its process id in the `pid_file` that configuration names. It is stopped with SIGTERM (so
//! it saves its persistent sessions, as a broker restart for maintenance does) and started
//! again with the same command.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CONF: &str = "/etc/mosquitto/mosquitto.conf";

/// The broker's pid, from its configuration's `pid_file`.
fn broker_pid() -> Option<String> {
    let conf = std::fs::read_to_string(CONF).ok()?;
    let pid_file = conf.lines().find_map(|l| {
        let l = l.trim();
        l.strip_prefix("pid_file").map(|p| p.trim().to_string())
    })?;
    let pid = std::fs::read_to_string(pid_file).ok()?.trim().to_string();
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
    (alive && pid.chars().all(|c| c.is_ascii_digit())).then_some(pid)
}

/// Restarts the broker if a test leaves it down.
struct BrokerGuard;

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        if !broker_answers() && !start_broker() {
            eprintln!("*** could not restart mosquitto after a fault test ***");
        }
    }
}

/// Stops the broker (SIGTERM by pid), bounded; None (with a message) if this machine's broker
/// cannot be controlled.
fn stop_broker() -> Option<()> {
    let Some(pid) = broker_pid() else {
        eprintln!("\n*** SKIPPED: no pid for mosquitto (is it running from {CONF}?) ***\n");
        return None;
    };
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("\n*** SKIPPED: cannot stop mosquitto (pid {pid}): not allowed? ***\n");
        return None;
    }
    assert!(
        wait_broker(false, Duration::from_secs(10)),
        "mosquitto still answers after SIGTERM"
    );
    // The process must be gone too before a new one can take the pid file and the port.
    let end = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(())
}

/// Waits until `f` holds, checking every 20 ms, up to `d`.
async fn until(d: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// Until a `ping` over the transport is answered (requests published while jano is not
/// subscribed are lost with a clean session, so an application retries: so does this).
async fn ping_until_pong(c: &mut Peer, topic: &str, d: Duration) -> bool {
    let end = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < end {
        let t = tx();
        c.send(topic, &json!({"janus": "ping", "transaction": t}))
            .await;
        let got = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                match c.recv(Duration::from_millis(500)).await {
                    Some(m) if m.json["transaction"] == t => return true,
                    Some(_) => {}
                    None => return false,
                }
            }
        })
        .await;
        if got == Ok(true) {
            return true;
        }
    }
    false
}

/// One jano transport (3.1.1 or 5) and its test client in the restart test.
struct Side {
    t: Topics,
    srv: jano_mqtt::Server,
    rt: jano_runtime::Runtime,
    c: Peer,
    sid: u64,
    hid: u64,
    doomed: u64,
}

async fn side(v5: bool) -> Side {
    let t = Topics::new(if v5 { "restart5" } else { "restart311" });
    // Sessions never time out by themselves here; one is given a short timeout below.
    let rt = runtime(0);
    let srv = serve(&rt, &t.jcfg(if v5 { "5" } else { "3.1.1" }, "", "")).await;
    // The application keeps its session with the broker, so what jano publishes while the
    // application is still reconnecting waits for it.
    let mut c = Peer::connect_with(PeerOpts {
        v5,
        id: unique("app").replace('/', "-"),
        subs: vec![t.from_janus.clone(), t.from_admin.clone()],
        persistent: true,
        ..Default::default()
    })
    .await;
    let sid = c.call(&t.to_janus, json!({"janus": "create"})).await["data"]["id"]
        .as_u64()
        .expect("sid");
    let hid = c
        .call(
            &t.to_janus,
            json!({"janus": "attach", "session_id": sid, "plugin": ECHO}),
        )
        .await["data"]["id"]
        .as_u64()
        .expect("hid");
    let doomed = c.call(&t.to_janus, json!({"janus": "create"})).await["data"]["id"]
        .as_u64()
        .expect("sid");
    let r = c
        .call(
            &t.to_admin,
            json!({"janus": "set_session_timeout", "session_id": doomed, "timeout": 2, "admin_secret": ADMIN_SECRET}),
        )
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    Side {
        t,
        srv,
        rt,
        c,
        sid,
        hid,
        doomed,
    }
}

/// (a) The broker restarts in the middle of a conversation, over 3.1.1 and 5 at once: what jano
/// produced while the broker was down (a session's `timeout` event) is delivered after the
/// reconnection, jano subscribes again, and the conversation goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_conversation() {
    let _serial = SERIAL.lock().await;
    if !ensure_broker() {
        return;
    }
    let _guard = BrokerGuard;
    let mut sides = vec![side(false).await, side(true).await];
    let before: Vec<u64> = sides.iter().map(|s| s.srv.stats().connections).collect();
    // The doomed sessions time out 2 s from now: while the broker is away.
    for s in &mut sides {
        let r =
            s.c.call(
                &s.t.to_janus,
                json!({"janus": "keepalive", "session_id": s.doomed}),
            )
            .await;
        assert_eq!(r["janus"], "ack");
    }

    if stop_broker().is_none() {
        return;
    }
    let stopped_at = Instant::now();
    // The session watchdog runs every second.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    for s in &sides {
        let st = s.srv.stats();
        assert!(!st.connected, "jano noticed the broker went away");
        assert!(
            st.queued >= 1,
            "the timeout event waits in the outbox: {st:?}"
        );
    }
    assert!(start_broker(), "mosquitto came back");
    let started_at = Instant::now();
    let down = started_at - stopped_at;

    // When each transport is connected again.
    let mut back: Vec<Option<Duration>> = vec![None; sides.len()];
    let all = until(Duration::from_secs(15), || {
        for (i, s) in sides.iter().enumerate() {
            if back[i].is_none() && s.srv.stats().connections > before[i] {
                back[i] = Some(started_at.elapsed());
            }
        }
        back.iter().all(Option::is_some)
    })
    .await;
    assert!(all, "jano reconnected: {back:?}");
    for (s, t) in sides.iter().zip(&back) {
        eprintln!(
            "[{}] broker down {down:?}; jano reconnected {t:?} after the broker was back",
            s.t.prefix
        );
    }

    for s in sides.iter_mut() {
        // The event produced while the broker was down arrives.
        let doomed = s.doomed;
        let m = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                if let Some(m) = s.c.recv(Duration::from_secs(15)).await {
                    if m.json["janus"] == "timeout" && m.json["session_id"] == doomed {
                        return m;
                    }
                }
            }
        })
        .await
        .expect("the timeout event produced during the outage");
        assert_eq!(m.topic, s.t.from_janus);
        assert!(ping_until_pong(&mut s.c, &s.t.to_janus, Duration::from_secs(10)).await);
        // The conversation goes on.
        let tm = tx();
        s.c.send(
            &s.t.to_janus,
            &json!({"janus": "message", "transaction": tm, "session_id": s.sid, "handle_id": s.hid, "body": {"audio": false}}),
        )
        .await;
        let ack =
            s.c.wait(|m| m.json["transaction"] == tm)
                .await
                .expect("ack");
        assert_eq!(ack.json["janus"], "ack");
        let ev =
            s.c.wait(|m| m.json["transaction"] == tm)
                .await
                .expect("event");
        assert_eq!(ev.json["janus"], "event");
        let r =
            s.c.call(
                &s.t.to_janus,
                json!({"janus": "destroy", "session_id": s.sid}),
            )
            .await;
        assert_eq!(r["janus"], "success");
        let r =
            s.c.call(
                &s.t.to_janus,
                json!({"janus": "keepalive", "session_id": doomed}),
            )
            .await;
        assert_eq!(code(&r), 458);
        let st = s.srv.stats();
        assert_eq!(st.dropped, 0, "{st:?}");
    }
    for s in sides {
        s.c.forget().await;
        s.srv.shutdown().await;
        s.rt.shutdown();
    }
}

/// (b) jano starts while the broker is down: `serve` returns, and once the broker is started
/// jano connects and subscribes by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_with_broker_down() {
    let _serial = SERIAL.lock().await;
    if !ensure_broker() {
        return;
    }
    let _guard = BrokerGuard;
    if stop_broker().is_none() {
        return;
    }
    let t3 = Topics::new("late311");
    let t5 = Topics::new("late5");
    let rt = runtime(60);
    let t0 = Instant::now();
    let s3 = serve(&rt, &t3.jcfg("3.1.1", "", "")).await;
    let s5 = serve(&rt, &t5.jcfg("5", "", "")).await;
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "serve returned at once: {:?}",
        t0.elapsed()
    );
    assert!(!s3.stats().connected && !s5.stats().connected);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(start_broker(), "mosquitto came back");
    let up = Instant::now();
    for (srv, t, v5) in [(&s3, &t3, false), (&s5, &t5, true)] {
        assert!(
            until(Duration::from_secs(15), || srv.stats().connected).await,
            "jano connected by itself"
        );
        eprintln!(
            "[{}] connected {:?} after the broker started",
            t.prefix,
            up.elapsed()
        );
        let mut c = Peer::connect(v5, &[&t.from_janus]).await;
        assert!(ping_until_pong(&mut c, &t.to_janus, Duration::from_secs(10)).await);
        let r = c.call(&t.to_janus, json!({"janus": "create"})).await;
        assert_eq!(r["janus"], "success");
        c.close().await;
    }
    s3.shutdown().await;
    s5.shutdown().await;
    rt.shutdown();
}
