//! Plugin calls in two steps (`start_request` → `PluginCall::run` → `finish_call`), as the
//! runtime makes them with its lock released: same answers as one step, events held back until
//! the response, and the races with detach, destroy, timeout and shutdown.

mod common;
use common::*;
use jano_core::{Output, PluginEvent};
use jano_plugin::{HandleRef, Map};
use serde_json::{json, Value};

fn message(sid: u64, hid: u64, tx: &str, body: Value) -> Value {
    json!({"janus":"message","transaction":tx,"session_id":sid,"handle_id":hid,"body":body})
}

/// A harness with one session and one test-plugin handle on it.
fn setup() -> (Harness, u64, u64) {
    let mut h = Harness::default();
    let sid = h.create();
    let hid = h.attach(sid, TEST_PLUGIN);
    h.take_outputs();
    (h, sid, hid)
}

fn href(sid: u64, hid: u64) -> HandleRef {
    HandleRef {
        session_id: sid,
        handle_id: hid,
        opaque_id: None,
        token: None,
    }
}

fn push(sid: u64, hid: u64, tx: &str, n: u64) -> PluginEvent {
    let mut m = Map::new();
    m.insert("n".into(), n.into());
    PluginEvent::Push {
        plugin: TEST_PLUGIN,
        handle: href(sid, hid),
        transaction: Some(tx.into()),
        message: m,
        jsep: None,
    }
}

#[test]
fn two_steps_answer_as_one_step() {
    let bodies = [
        json!({"mode":"sync","x":1}),
        json!({"mode":"wait"}),
        json!({"mode":"error"}),
        json!({"mode":"empty-error"}),
        json!({"mode":"end"}),
    ];
    // Same seed, same script: once through `handle_request`, once in two steps.
    let (mut one, sid, hid) = setup();
    let (mut two, sid2, hid2) = setup();
    assert_eq!((sid, hid), (sid2, hid2));
    for (i, body) in bodies.iter().enumerate() {
        let tx = format!("t{i}");
        let want = one.req(message(sid, hid, &tx, body.clone()));
        let want_out = one.take_outputs();
        let call = two.start(message(sid, hid, &tx, body.clone()));
        let done = call.run();
        let got = two.finish(done);
        two.pump();
        assert_eq!(got, want, "{body}");
        assert_eq!(two.take_outputs(), want_out, "{body}");
    }
    // And the answers themselves, as Janus gives them.
    let (mut h, sid, hid) = setup();
    let r = h.start(message(sid, hid, "s", json!({"mode":"sync","x":1})));
    let r = h.finish(r.run());
    assert_eq!(r["janus"], "success");
    assert_eq!(r["sender"], hid);
    assert_eq!(r["plugindata"]["plugin"], TEST_PLUGIN);
    assert_eq!(r["plugindata"]["data"]["echo"]["x"], 1);
    let r = h.start(message(sid, hid, "w", json!({"mode":"wait"})));
    let r = h.finish(r.run());
    assert_eq!(r, json!({"janus":"ack","session_id":sid,"transaction":"w"}));
    let r = h.start(message(sid, hid, "e", json!({"mode":"error"})));
    let r = h.finish(r.run());
    assert_eq!((code(&r), reason(&r)), (462, "boom"));
    assert_eq!(r["transaction"], "e");
    assert_eq!(r["session_id"], sid);
    // Validation errors never reach the plugin: answered in the first step.
    let step = h.gw.start_request(
        h.now,
        A,
        Ok(json!({"janus":"message","transaction":"b","session_id":sid,"handle_id":hid})),
    );
    assert!(matches!(step, jano_core::Step::Done(ref r) if code(r) == 456));
    assert_eq!(h.gw.calls_in_flight(), 0);
}

#[test]
fn events_pushed_during_the_call_follow_the_response() {
    let (mut h, sid, hid) = setup();
    let other = h.attach(sid, TEST_PLUGIN);
    let call = h.start(message(sid, hid, "w", json!({"mode":"wait"})));
    assert_eq!(h.gw.calls_in_flight(), 1);
    assert_eq!(call.handle().map(|r| r.handle_id), Some(hid));
    // The plugin pushes its event from inside the call; the pump applies it before the
    // response is built: it is held.
    let done = call.run();
    h.pump();
    // …and one pushed a moment later, from elsewhere, before the request is finished.
    h.plugin_event(push(sid, hid, "later", 7));
    assert_eq!(h.gw.held_events(), 2);
    // Events for another handle are not held.
    h.plugin_event(push(sid, other, "x", 1));
    let evs = h.events_for(A);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["sender"], other);
    let r = h.finish(done);
    assert_eq!(r["janus"], "ack");
    assert_eq!(h.gw.held_events(), 0);
    let evs = h.events_for(A);
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(
        (
            &evs[0]["transaction"],
            &evs[0]["plugindata"]["data"]["done"]
        ),
        (&json!("w"), &json!(true))
    );
    assert_eq!(evs[1]["transaction"], "later");
    // Nothing is held any more: the next event goes straight out.
    h.plugin_event(push(sid, hid, "after", 8));
    assert_eq!(h.events_for(A).len(), 1);
    assert_eq!(h.gw.calls_in_flight(), 0);
}

#[test]
fn end_session_during_the_call_comes_after_the_ack() {
    let (mut h, sid, hid) = setup();
    let call = h.start(message(sid, hid, "e", json!({"mode":"end"})));
    let done = call.run();
    h.pump();
    assert!(h.gw.has_session(sid));
    assert_eq!(h.gw.handle_count(), 1, "detach waits for the response");
    let r = h.finish(done);
    assert_eq!(
        r,
        json!({"janus":"ack","session_id":sid,"transaction":"e","hint":"ending"})
    );
    let evs = h.events_for(A);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["janus"], "detached");
    assert_eq!(h.gw.handle_count(), 0);
}

#[test]
fn other_requests_are_served_while_a_call_is_in_flight() {
    let (mut h, sid, hid) = setup();
    let sid_b = h.create_from(B);
    let r = h.req_from(
        B,
        json!({"janus":"attach","transaction":"a","session_id":sid_b,"plugin":TEST_PLUGIN}),
    );
    let hid_b = r["data"]["id"].as_u64().unwrap();
    h.take_outputs();
    let call = h.start(message(sid, hid, "slow", json!({"mode":"wait"})));
    assert_eq!(
        h.req(json!({"janus":"ping","transaction":"p"}))["janus"],
        "pong"
    );
    assert_eq!(
        h.req(json!({"janus":"info","transaction":"i"}))["janus"],
        "server_info"
    );
    let r = h.req_from(B, message(sid_b, hid_b, "b", json!({"mode":"wait"})));
    assert_eq!(r["janus"], "ack");
    let evs = h.events_for(B);
    assert_eq!(evs.len(), 1, "B's event is not held by A's call");
    // A second message on the same handle while the first is in the plugin.
    let second = h.start(message(sid, hid, "second", json!({"mode":"wait"})));
    assert_eq!(h.gw.calls_in_flight(), 2);
    let (d1, d2) = (call.run(), second.run());
    h.pump();
    let r = h.finish(d2);
    assert_eq!(r["transaction"], "second");
    assert!(
        h.events_for(A).is_empty(),
        "held until every call on the handle is finished"
    );
    let r = h.finish(d1);
    assert_eq!(r["transaction"], "slow");
    let evs = h.events_for(A);
    let txs: Vec<&Value> = evs.iter().map(|e| &e["transaction"]).collect();
    assert_eq!(txs, [&json!("slow"), &json!("second")]);
}

#[test]
fn detach_during_the_call() {
    let (mut h, sid, hid) = setup();
    let call = h.start(message(sid, hid, "m", json!({"mode":"wait"})));
    let done = call.run();
    h.pump();
    assert_eq!(h.gw.held_events(), 1);
    let r = h.req(json!({"janus":"detach","transaction":"d","session_id":sid,"handle_id":hid}));
    assert_eq!(r["janus"], "success");
    let evs = h.events_for(A);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["janus"], "detached");
    assert!(h.test_plugin.live.lock().unwrap().is_empty());
    // Answered as if it came after the detach; its held event went with the handle.
    let r = h.finish(done);
    assert_eq!(code(&r), 459);
    assert_eq!(reason(&r), format!("No such handle {hid} in session {sid}"));
    assert_eq!(r["transaction"], "m");
    assert_eq!(r["session_id"], sid);
    assert!(h.take_outputs().is_empty());
    assert_eq!((h.gw.calls_in_flight(), h.gw.held_events()), (0, 0));
    // A late push for the gone handle is dropped as before.
    h.plugin_event(push(sid, hid, "late", 1));
    assert!(h.take_outputs().is_empty());
}

#[test]
fn destroy_during_the_call() {
    let (mut h, sid, hid) = setup();
    let call = h.start(message(sid, hid, "m", json!({"mode":"wait"})));
    let done = call.run();
    h.pump();
    let r = h.req(json!({"janus":"destroy","transaction":"d","session_id":sid}));
    assert_eq!(r["janus"], "success");
    h.take_outputs();
    let r = h.finish(done);
    assert_eq!(
        (code(&r), reason(&r)),
        (458, format!("No such session {sid}").as_str())
    );
    assert_eq!(r["transaction"], "m");
    assert!(h.take_outputs().is_empty());
    assert_eq!(h.gw.handle_count(), 0);
}

#[test]
fn timeout_during_the_call() {
    let (mut h, sid, hid) = setup();
    let call = h.start(message(sid, hid, "m", json!({"mode":"wait"})));
    let done = call.run();
    h.pump();
    h.advance(61);
    assert!(!h.gw.has_session(sid));
    let outs = h.take_outputs();
    assert!(outs.iter().any(
        |o| matches!(o, Output::SessionOver { session_id, timeout: true, .. } if *session_id == sid)
    ));
    let r = h.finish(done);
    assert_eq!(code(&r), 458);
    assert!(
        h.take_outputs().is_empty(),
        "the held event died with the session"
    );
}

#[test]
fn shutdown_during_the_call() {
    let (mut h, sid, hid) = setup();
    let call = h.start(message(sid, hid, "m", json!({"mode":"wait"})));
    h.gw.shutdown();
    h.drain();
    h.take_outputs();
    let r = h.finish(call.run());
    assert_eq!(code(&r), 458);
    h.pump();
    assert!(h.take_outputs().is_empty());
}

#[test]
fn held_events_are_bounded() {
    let (mut h, sid, hid) = setup();
    let call = h.start(message(sid, hid, "b", json!({"mode":"burst","count":300})));
    let done = call.run();
    h.pump();
    assert_eq!(h.gw.held_events(), 256);
    // Past the bound, hang-up and end-of-handle requests are still kept, once each.
    for _ in 0..3 {
        h.plugin_event(PluginEvent::EndSession {
            handle: href(sid, hid),
        });
    }
    assert_eq!(h.gw.held_events(), 257);
    let r = h.finish(done);
    assert_eq!(r["janus"], "ack");
    let evs = h.events_for(A);
    assert_eq!(evs.len(), 257);
    assert_eq!(evs[0]["plugindata"]["data"]["n"], 0);
    assert_eq!(evs[255]["plugindata"]["data"]["n"], 255);
    assert_eq!(evs[256]["janus"], "detached");
    assert_eq!((h.gw.held_events(), h.gw.handle_count()), (0, 0));
}

#[test]
fn a_panicking_plugin_still_finishes_the_request() {
    let (mut h, sid, hid) = setup();
    let call = h.start(message(sid, hid, "p", json!({"mode":"panic"})));
    let r = h.finish(call.run());
    assert_eq!(
        (code(&r), reason(&r)),
        (462, "Plugin returned a severe (unknown) error")
    );
    assert_eq!(h.gw.calls_in_flight(), 0);
    let r = h.req(message(sid, hid, "ok", json!({"mode":"wait"})));
    assert_eq!(r["janus"], "ack");
    assert_eq!(h.events_for(A).len(), 1);
}

#[test]
fn admin_message_plugin_in_two_steps() {
    let (mut h, _, _) = setup();
    let step = h.gw.start_admin(
        h.now,
        A,
        Ok(json!({"janus":"message_plugin","transaction":"t","plugin":TEST_PLUGIN,"request":{"x":1}})),
    );
    let jano_core::Step::Call(call) = step else {
        panic!("no plugin call: {step:?}");
    };
    assert!(call.handle().is_none());
    // The gateway is free meanwhile.
    assert_eq!(
        h.admin(json!({"janus":"ping","transaction":"p"}))["janus"],
        "pong"
    );
    let r = h.finish(call.run());
    assert_eq!(
        r,
        json!({"janus":"success","transaction":"t","response":{"got":{"x":1}}})
    );
    // Errors found before the plugin are answered in the first step.
    let step = h.gw.start_admin(
        h.now,
        A,
        Ok(json!({"janus":"message_plugin","transaction":"t","plugin":"janus.plugin.nope"})),
    );
    assert!(matches!(step, jano_core::Step::Done(ref r) if code(r) == 460));
}
