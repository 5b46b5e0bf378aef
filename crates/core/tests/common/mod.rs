//! A harness around the sans-IO gateway: a fake clock, a recording plugin-services queue, and a
//! scriptable test plugin, so every path runs without sockets or sleeping.
#![allow(dead_code)]

use jano_core::{
    CallDone, CoreConfig, Gateway, InstanceId, Now, Output, PluginCall, PluginEvent,
    PluginRegistry, Step,
};
use jano_plugin::{
    CoreServices, HandleRef, Jsep, LocalJsep, Map, NoState, Plugin, PluginInfo, PluginResult,
    PushError, SessionRef, Value,
};
use serde_json::json;
use std::sync::{Arc, Mutex};

/// Plugin events recorded for the test to feed back, as the runtime's queue would.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<PluginEvent>>,
}

pub struct RecordingServices {
    pub rec: Arc<Recorder>,
    pub package: &'static str,
}

impl CoreServices for RecordingServices {
    fn push_event(
        &self,
        handle: &HandleRef,
        transaction: Option<String>,
        message: Map<String, Value>,
        jsep: Option<LocalJsep>,
    ) -> Result<(), PushError> {
        self.rec.events.lock().unwrap().push(PluginEvent::Push {
            plugin: self.package,
            handle: handle.clone(),
            transaction,
            message,
            jsep,
        });
        Ok(())
    }
    fn end_session(&self, handle: &HandleRef) {
        self.rec
            .events
            .lock()
            .unwrap()
            .push(PluginEvent::EndSession {
                handle: handle.clone(),
            });
    }
    fn close_pc(&self, handle: &HandleRef) {
        self.rec.events.lock().unwrap().push(PluginEvent::ClosePc {
            handle: handle.clone(),
        });
    }
}

pub const TEST_PLUGIN: &str = "janus.plugin.test";

/// A plugin whose answers are chosen by the message body: `{"mode": "sync"|"wait"|"error"|
/// "empty-error"|"end"|"burst"|"panic"}` (`burst` pushes `count` events numbered `n`). Attaching with opaque_id "refuse" fails; detaching a handle whose
/// opaque_id is "stuck" fails.
pub struct TestPlugin {
    pub services: Arc<dyn CoreServices>,
    pub live: Mutex<Vec<u64>>,
}

const TEST_INFO: PluginInfo = PluginInfo {
    package: TEST_PLUGIN,
    name: "Test plugin",
    author: "tests",
    description: "scriptable",
    version: 1,
    version_string: "0.0.1",
};

impl Plugin for TestPlugin {
    fn info(&self) -> &PluginInfo {
        &TEST_INFO
    }
    fn create_session(&self, handle: &HandleRef) -> Result<SessionRef, i32> {
        if handle.opaque_id.as_deref() == Some("refuse") {
            return Err(7);
        }
        self.live.lock().unwrap().push(handle.handle_id);
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
        match body.get("mode").and_then(Value::as_str).unwrap_or("sync") {
            "wait" => {
                let mut m = Map::new();
                m.insert("done".into(), true.into());
                let _ = self
                    .services
                    .push_event(handle, Some(transaction.into()), m, None);
                PluginResult::OkWait(None)
            }
            "error" => PluginResult::Error("boom".into()),
            "empty-error" => PluginResult::Error(String::new()),
            "end" => {
                self.services.end_session(handle);
                PluginResult::OkWait(Some("ending".into()))
            }
            "burst" => {
                let count = body.get("count").and_then(Value::as_u64).unwrap_or(1);
                for n in 0..count {
                    let mut m = Map::new();
                    m.insert("n".into(), n.into());
                    let _ = self
                        .services
                        .push_event(handle, Some(transaction.into()), m, None);
                }
                PluginResult::OkWait(None)
            }
            "panic" => panic!("test plugin panics on request"),
            _ => {
                let mut m = Map::new();
                m.insert("echo".into(), Value::Object(body));
                PluginResult::Ok(m)
            }
        }
    }
    fn handle_admin_message(&self, request: Value) -> Option<Value> {
        Some(json!({"got": request}))
    }
    fn destroy_session(&self, handle: &HandleRef, _session: &SessionRef) -> Result<(), i32> {
        self.live.lock().unwrap().retain(|h| *h != handle.handle_id);
        if handle.opaque_id.as_deref() == Some("stuck") {
            return Err(3);
        }
        Ok(())
    }
    fn query_session(&self, handle: &HandleRef, _session: &SessionRef) -> Value {
        json!({"handle": handle.handle_id})
    }
}

pub const A: InstanceId = InstanceId {
    transport: 0,
    conn: 1,
};
pub const B: InstanceId = InstanceId {
    transport: 0,
    conn: 2,
};

pub struct Harness {
    pub gw: Gateway,
    pub now: Now,
    pub rec: Arc<Recorder>,
    pub test_plugin: Arc<TestPlugin>,
    pub outputs: Vec<Output>,
}

impl Harness {
    pub fn new(cfg: CoreConfig) -> Harness {
        let rec = Arc::new(Recorder::default());
        let services = |package| -> Arc<dyn CoreServices> {
            Arc::new(RecordingServices {
                rec: rec.clone(),
                package,
            })
        };
        let test_plugin = Arc::new(TestPlugin {
            services: services(TEST_PLUGIN),
            live: Mutex::new(Vec::new()),
        });
        let mut reg = PluginRegistry::new();
        reg.add(test_plugin.clone());
        reg.add(Arc::new(jano_echotest::EchoTest::new(services(
            jano_echotest::PACKAGE,
        ))));
        let mut gw = Gateway::new(cfg, reg, 42);
        gw.register_transport(jano_core::TransportInfo {
            package: "janus.transport.test",
            name: "test",
            author: "tests",
            description: "test transport",
            version: 1,
            version_string: "0.0.1",
        });
        Harness {
            gw,
            now: Now::from_secs(0),
            rec,
            test_plugin,
            outputs: Vec::new(),
        }
    }

    pub fn default() -> Harness {
        Harness::new(CoreConfig::default())
    }

    /// Moves the gateway's queued outputs into `outputs` (after driving `gw` directly).
    pub fn drain(&mut self) {
        while let Some(o) = self.gw.poll_output() {
            self.outputs.push(o);
        }
    }

    /// Feeds recorded plugin events back into the core, as the runtime's pump does.
    pub fn pump(&mut self) {
        let evs: Vec<PluginEvent> = std::mem::take(&mut *self.rec.events.lock().unwrap());
        for ev in evs {
            self.gw.handle_plugin_event(self.now, ev);
        }
        self.drain();
    }

    pub fn req_from(&mut self, from: InstanceId, v: Value) -> Value {
        let r = self.gw.handle_request(self.now, from, Ok(v));
        self.drain();
        self.pump();
        r
    }

    pub fn req(&mut self, v: Value) -> Value {
        self.req_from(A, v)
    }

    pub fn raw(&mut self, input: Result<Value, String>) -> Value {
        let r = self.gw.handle_request(self.now, A, input);
        self.drain();
        r
    }

    /// The first step of a request that reaches the plugin (panics if it does not).
    pub fn start_from(&mut self, from: InstanceId, v: Value) -> PluginCall {
        let step = self.gw.start_request(self.now, from, Ok(v));
        self.drain();
        match step {
            Step::Call(c) => c,
            Step::Done(r) => panic!("no plugin call: {r}"),
        }
    }

    pub fn start(&mut self, v: Value) -> PluginCall {
        self.start_from(A, v)
    }

    /// A plugin event applied right now (as the pump would, from another thread).
    pub fn plugin_event(&mut self, ev: PluginEvent) {
        self.gw.handle_plugin_event(self.now, ev);
        self.drain();
    }

    /// The last step of a plugin call: its response; what it released is in the outputs.
    pub fn finish(&mut self, done: CallDone) -> Value {
        let r = self.gw.finish_call(self.now, done);
        self.drain();
        r
    }

    pub fn admin(&mut self, v: Value) -> Value {
        let r = self.gw.handle_admin(self.now, A, Ok(v));
        self.drain();
        self.pump();
        r
    }

    pub fn advance(&mut self, secs: u64) {
        for _ in 0..secs {
            self.now = Now {
                mono_us: self.now.mono_us + 1_000_000,
                unix_s: self.now.unix_s + 1,
            };
            self.gw.handle_timeout(self.now);
            self.drain();
        }
    }

    pub fn gone(&mut self, who: InstanceId) {
        self.gw.transport_gone(self.now, who);
        self.drain();
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// Events delivered to `who`, in order.
    pub fn events_for(&mut self, who: InstanceId) -> Vec<Value> {
        let outs = self.take_outputs();
        outs.into_iter()
            .filter_map(|o| match o {
                Output::Event { to, event, .. } if to == who => Some(event),
                _ => None,
            })
            .collect()
    }

    pub fn create(&mut self) -> u64 {
        self.create_from(A)
    }

    pub fn create_from(&mut self, from: InstanceId) -> u64 {
        let r = self.req_from(from, json!({"janus":"create","transaction":"c"}));
        r["data"]["id"].as_u64().expect("create failed")
    }

    pub fn attach(&mut self, sid: u64, plugin: &str) -> u64 {
        let r =
            self.req(json!({"janus":"attach","transaction":"a","session_id":sid,"plugin":plugin}));
        r["data"]["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("attach failed: {r}"))
    }
}

/// The error code of a response (panics if it is not an error).
pub fn code(v: &Value) -> u64 {
    assert_eq!(v["janus"], "error", "not an error: {v}");
    v["error"]["code"].as_u64().unwrap()
}

pub fn reason(v: &Value) -> &str {
    v["error"]["reason"].as_str().unwrap()
}
