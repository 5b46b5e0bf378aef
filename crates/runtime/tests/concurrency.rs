//! The gateway lock is not held over plugin calls: while one plugin call blocks, other
//! requests complete; once it returns, its response still precedes the events it caused.
//! Deterministic: the test holds the plugin until it has proven the rest is served (no timing;
//! every wait is bounded so a regression fails instead of hanging).

use jano_core::{CoreConfig, PluginRegistry, TransportInfo};
use jano_plugin::{
    CoreServices, HandleRef, Jsep, Map, NoState, Plugin, PluginInfo, PluginResult, SessionRef,
    Value,
};
use jano_runtime::{PluginQueue, Runtime, TransportHandle, TransportSink};
use serde_json::json;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PACKAGE: &str = "janus.plugin.gate";
const WAIT: Duration = Duration::from_secs(30);

/// A plugin that, for `{"block":true}`, pushes an event, says it is in, waits for the test to
/// release it, pushes another event and answers `OkWait`; otherwise it pushes one event and
/// answers `OkWait`. The Admin API hook blocks the same way.
struct Gate {
    services: Arc<dyn CoreServices>,
    entered: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

const INFO: PluginInfo = PluginInfo {
    package: PACKAGE,
    name: "Gate",
    author: "tests",
    description: "blocks until released",
    version: 1,
    version_string: "0.0.1",
};

impl Gate {
    fn block(&self) {
        self.entered.lock().unwrap().send(()).unwrap();
        // Bounded: if the test fails (and drops the sender), the plugin returns.
        let _ = self.release.lock().unwrap().recv_timeout(WAIT);
    }

    fn push(&self, handle: &HandleRef, tx: &str, n: u64) {
        let mut m = Map::new();
        m.insert("n".into(), n.into());
        self.services
            .push_event(handle, Some(tx.into()), m, None)
            .unwrap();
    }
}

impl Plugin for Gate {
    fn info(&self) -> &PluginInfo {
        &INFO
    }
    fn create_session(&self, _handle: &HandleRef) -> Result<SessionRef, i32> {
        Ok(Arc::new(NoState))
    }
    fn handle_message(
        &self,
        handle: &HandleRef,
        _session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        _jsep: Option<Jsep>,
    ) -> PluginResult {
        self.push(handle, transaction, 1);
        if body.get("block") == Some(&Value::Bool(true)) {
            self.block();
            self.push(handle, transaction, 2);
        }
        PluginResult::OkWait(None)
    }
    fn handle_admin_message(&self, request: Value) -> Option<Value> {
        self.block();
        Some(request)
    }
    fn destroy_session(&self, _handle: &HandleRef, _session: &SessionRef) -> Result<(), i32> {
        Ok(())
    }
}

/// What reached the transport, in order: responses (via `respond`) and events (via the sink).
#[derive(Debug, Clone)]
enum Seen {
    Response(u64, Value),
    Event(u64, Value),
}

#[derive(Default)]
struct Log(Mutex<Vec<Seen>>);

impl Log {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl TransportSink for Log {
    fn send_event(&self, conn: u64, _session_id: u64, event: Value) {
        self.0.lock().unwrap().push(Seen::Event(conn, event));
    }
}

struct Setup {
    _tokio: tokio::runtime::Runtime,
    rt: Runtime,
    th: TransportHandle,
    log: Arc<Log>,
    release: Sender<()>,
    entered: Receiver<()>,
}

fn setup() -> Setup {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _in = tokio.enter();
    let queue = PluginQueue::new();
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let mut plugins = PluginRegistry::new();
    plugins.add(Arc::new(Gate {
        services: queue.services_for(PACKAGE),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    }));
    let rt = Runtime::start(CoreConfig::default(), plugins, queue, None);
    let log = Arc::new(Log::default());
    let th = rt.register_transport(
        TransportInfo {
            package: "janus.transport.test",
            name: "test",
            author: "tests",
            description: "test transport",
            version: 1,
            version_string: "0.0.1",
        },
        log.clone(),
    );
    Setup {
        _tokio: tokio,
        rt,
        th,
        log,
        release,
        entered,
    }
}

/// A request whose response is logged where the transport would queue it.
fn request(th: &TransportHandle, log: &Log, conn: u64, v: Value) -> Value {
    th.request(conn, Ok(v), |r| {
        log.0.lock().unwrap().push(Seen::Response(conn, r.clone()));
        r
    })
}

/// A session with a handle on the gate plugin, for `conn`.
fn session(th: &TransportHandle, log: &Log, conn: u64) -> (u64, u64) {
    let r = request(th, log, conn, json!({"janus":"create","transaction":"c"}));
    let sid = r["data"]["id"].as_u64().unwrap();
    let r = request(
        th,
        log,
        conn,
        json!({"janus":"attach","transaction":"a","session_id":sid,"plugin":PACKAGE}),
    );
    (sid, r["data"]["id"].as_u64().unwrap())
}

fn message(sid: u64, hid: u64, tx: &str, body: Value) -> Value {
    json!({"janus":"message","transaction":tx,"session_id":sid,"handle_id":hid,"body":body})
}

/// Runs `f` on another thread and waits for it, boundedly: a stall fails the test.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{what}: stalled behind the blocked plugin call"))
}

#[test]
fn a_blocked_plugin_call_does_not_stall_other_requests() {
    let s = setup();
    let (conn_a, conn_b) = (s.th.new_instance(), s.th.new_instance());
    let (sid_a, hid_a) = session(&s.th, &s.log, conn_a);
    let (sid_b, hid_b) = session(&s.th, &s.log, conn_b);
    s.log.take();

    // Session A's message blocks inside the plugin, on its own thread.
    let slow = {
        let (th, log) = (s.th.clone(), s.log.clone());
        std::thread::spawn(move || {
            request(
                &th,
                &log,
                conn_a,
                message(sid_a, hid_a, "slow", json!({"block":true})),
            )
        })
    };
    s.entered
        .recv_timeout(WAIT)
        .expect("the plugin was not called");

    // Meanwhile: ping, info, and a message on session B all complete.
    let (th, log, rt) = (s.th.clone(), s.log.clone(), s.rt.clone());
    let (pong, info, ack_b) = within("ping/info/message", move || {
        let pong = request(&th, &log, conn_b, json!({"janus":"ping","transaction":"p"}));
        let info = request(&th, &log, conn_b, json!({"janus":"info","transaction":"i"}));
        let ack = request(&th, &log, conn_b, message(sid_b, hid_b, "fast", json!({})));
        // Applies whatever plugin events are queued — including the one session A's plugin
        // pushed before blocking, which must be held back until A's response.
        rt.with_gateway(|_| ());
        (pong, info, ack)
    });
    assert_eq!(pong["janus"], "pong");
    assert_eq!(info["janus"], "server_info");
    assert_eq!(ack_b["janus"], "ack");
    let seen = s.log.take();
    let for_a: Vec<&Seen> = seen
        .iter()
        .filter(|x| matches!(x, Seen::Response(c, _) | Seen::Event(c, _) if *c == conn_a))
        .collect();
    assert!(
        for_a.is_empty(),
        "A got something before its response: {for_a:?}"
    );
    // B's own event came after B's ack.
    let b_tail: Vec<&str> = seen
        .iter()
        .filter_map(|x| match x {
            Seen::Response(_, v) | Seen::Event(_, v) if v["transaction"] == "fast" => {
                v["janus"].as_str()
            }
            _ => None,
        })
        .collect();
    assert_eq!(b_tail, ["ack", "event"]);

    // Release A: its ack, then both events its plugin pushed (before and after blocking).
    s.release.send(()).unwrap();
    let r = slow.join().unwrap();
    assert_eq!(
        r,
        json!({"janus":"ack","session_id":sid_a,"transaction":"slow"})
    );
    let seen: Vec<(String, Value)> = s
        .log
        .take()
        .into_iter()
        .filter_map(|x| match x {
            Seen::Response(c, v) if c == conn_a => Some(("response".into(), v)),
            Seen::Event(c, v) if c == conn_a => Some(("event".into(), v)),
            _ => None,
        })
        .collect();
    let order: Vec<(&str, &Value)> = seen
        .iter()
        .map(|(k, v)| (k.as_str(), &v["plugindata"]["data"]["n"]))
        .collect();
    assert_eq!(
        order,
        [
            ("response", &Value::Null),
            ("event", &json!(1)),
            ("event", &json!(2))
        ]
    );
    assert!(seen.iter().all(|(_, v)| v["transaction"] == "slow"));
    s.rt.shutdown();
}

#[test]
fn a_blocked_admin_plugin_call_does_not_stall_other_requests() {
    let s = setup();
    let conn = s.th.new_instance();
    let slow = {
        let th = s.th.clone();
        std::thread::spawn(move || {
            th.admin_request(
                conn,
                Ok(json!({"janus":"message_plugin","transaction":"m","plugin":PACKAGE,"request":{"x":1}})),
                |r| r,
            )
        })
    };
    s.entered
        .recv_timeout(WAIT)
        .expect("the plugin was not called");
    let th = s.th.clone();
    let (pong, list) = within("admin ping/list_sessions", move || {
        let pong = th.admin_request(conn, Ok(json!({"janus":"ping","transaction":"p"})), |r| r);
        let list = th.admin_request(
            conn,
            Ok(json!({"janus":"list_sessions","transaction":"l"})),
            |r| r,
        );
        (pong, list)
    });
    assert_eq!(pong["janus"], "pong");
    assert_eq!(list["janus"], "success");
    s.release.send(()).unwrap();
    let r = slow.join().unwrap();
    assert_eq!(
        r,
        json!({"janus":"success","transaction":"m","response":{"x":1}})
    );
    s.rt.shutdown();
}
