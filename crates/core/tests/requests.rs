//! Every Janus API request and every error code the core can produce, without sockets.

mod common;
use common::*;
use jano_core::{CoreConfig, Output};
use serde_json::json;

#[test]
fn info_and_ping_at_root() {
    let mut h = Harness::default();
    let r = h.req(json!({"janus":"info","transaction":"t1"}));
    assert_eq!(r["janus"], "server_info");
    assert_eq!(r["transaction"], "t1");
    assert!(r.get("session_id").is_none());
    assert_eq!(r["version"], 1102);
    assert!(r["plugins"]["janus.plugin.echotest"]["name"].is_string());
    assert!(r["transports"]["janus.transport.test"].is_object());
    assert_eq!(r["session-timeout"], 60);
    let r = h.req(json!({"janus":"ping","transaction":"t2"}));
    assert_eq!(r, json!({"janus":"pong","transaction":"t2"}));
}

#[test]
fn request_names_are_case_insensitive() {
    let mut h = Harness::default();
    assert_eq!(
        h.req(json!({"janus":"PING","transaction":"t"}))["janus"],
        "pong"
    );
    let sid = h.create();
    let r = h.req(json!({"janus":"KeepAlive","transaction":"k","session_id":sid}));
    assert_eq!(r, json!({"janus":"ack","session_id":sid,"transaction":"k"}));
}

#[test]
fn create_reply_shape_and_ids() {
    let mut h = Harness::default();
    let r = h.req(json!({"janus":"create","transaction":"c"}));
    assert_eq!(r["janus"], "success");
    assert!(
        r.get("session_id").is_none(),
        "create has no top-level session_id"
    );
    let id = r["data"]["id"].as_u64().unwrap();
    assert!(id > 0 && id <= jano_api::MAX_ID);
    assert!(
        matches!(h.take_outputs().as_slice(), [Output::SessionCreated { session_id, .. }] if *session_id == id)
    );
    // A chosen id, then the same one again: 468.
    let r = h.req(json!({"janus":"create","transaction":"c","id":12345}));
    assert_eq!(r["data"]["id"], 12345);
    let r = h.req(json!({"janus":"create","transaction":"c2","id":12345}));
    assert_eq!(code(&r), 468);
    assert_eq!(r["transaction"], "c2");
    assert_eq!(r["session_id"], 12345, "Janus names the taken id");
    assert_eq!(reason(&r), "Session ID already in use");
}

#[test]
fn first_level_validation_has_no_transaction() {
    let mut h = Harness::default();
    let r = h.raw(Err("<string>(1,3): expected value".into()));
    assert_eq!(code(&r), 454);
    assert!(r.get("transaction").is_none());
    assert_eq!(
        reason(&r),
        "Invalid Janus API request - <string>(1,3): expected value"
    );
    // A JSON value that is not an object has no transaction (HTTP answers 455 before this).
    let r = h.req(json!([1, 2]));
    assert_eq!(
        (code(&r), reason(&r)),
        (456, "Missing mandatory element (transaction)")
    );
    let r = h.req(json!({"janus":"ping"}));
    assert_eq!(code(&r), 456);
    assert_eq!(reason(&r), "Missing mandatory element (transaction)");
    let r = h.req(json!({"janus":"ping","transaction":5}));
    assert_eq!(code(&r), 467);
    assert!(r.get("transaction").is_none());
    assert_eq!(
        reason(&r),
        "Invalid element type (transaction should be a string)"
    );
    let r = h.req(json!({"transaction":"t"}));
    assert_eq!(code(&r), 456);
    assert!(r.get("transaction").is_none());
    let r = h.req(json!({"janus":1,"transaction":"t"}));
    assert_eq!(code(&r), 467);
    let r = h.req(json!({"janus":"create","transaction":"t","id":"x"}));
    assert_eq!(code(&r), 467);
    assert_eq!(
        reason(&r),
        "Invalid element type (id should be a positive integer)"
    );
    assert!(r.get("transaction").is_none());
    let r = h.req(json!({"janus":"create","transaction":"t","id":-4}));
    assert_eq!(code(&r), 467);
    // First-level errors still echo a positive session id.
    let r = h.req(json!({"janus":"keepalive","session_id":77}));
    assert_eq!(r["session_id"], 77);
    assert_eq!(code(&r), 456);
}

#[test]
fn dispatch_tree() {
    let mut h = Harness::default();
    // Unknown verb at the root: 457 with the transaction.
    let r = h.req(json!({"janus":"attach","transaction":"t"}));
    assert_eq!(code(&r), 457);
    assert_eq!(r["transaction"], "t");
    assert_eq!(reason(&r), "Unhandled request 'attach' at this path");
    let r = h.req(json!({"janus":"list_sessions","transaction":"t"}));
    assert_eq!(code(&r), 457);
    // A string session_id counts as absent.
    let r = h.req(json!({"janus":"keepalive","transaction":"t","session_id":"5"}));
    assert_eq!(code(&r), 457);
    // Negative ids are "present but invalid".
    let r = h.req(json!({"janus":"keepalive","transaction":"t","session_id":-5}));
    assert_eq!(code(&r), 458);
    assert_eq!(reason(&r), "Session not found");
    assert!(r.get("session_id").is_none());
    let r = h.req(json!({"janus":"keepalive","transaction":"t","handle_id":-1}));
    assert_eq!(code(&r), 458);
    // Unknown session.
    let r = h.req(json!({"janus":"keepalive","transaction":"t","session_id":99}));
    assert_eq!(code(&r), 458);
    assert_eq!(reason(&r), "No such session 99");
    assert_eq!(r["session_id"], 99);
    let sid = h.create();
    let r = h.req(json!({"janus":"keepalive","transaction":"t","session_id":sid,"handle_id":0}));
    assert_eq!(code(&r), 459);
    assert_eq!(reason(&r), "Handle not found");
    let r = h.req(json!({"janus":"keepalive","transaction":"t","session_id":sid,"handle_id":"x"}));
    assert_eq!(code(&r), 459);
    let r = h.req(json!({"janus":"keepalive","transaction":"t","session_id":sid,"handle_id":5}));
    assert_eq!(code(&r), 459);
    assert_eq!(reason(&r), format!("No such handle 5 in session {sid}"));
    // Root verbs at session level: 453.
    for verb in ["info", "ping", "create", "nonsense"] {
        let r = h.req(json!({"janus":verb,"transaction":"t","session_id":sid}));
        assert_eq!(code(&r), 453, "{verb}");
        assert_eq!(reason(&r), format!("Unknown request '{verb}'"));
    }
    // Handle-level verbs without a handle, session verbs with one.
    for verb in ["detach", "hangup", "message", "trickle"] {
        let r = h.req(json!({"janus":verb,"transaction":"t","session_id":sid}));
        assert_eq!(code(&r), 457, "{verb}");
    }
    let hid = h.attach(sid, TEST_PLUGIN);
    for verb in ["attach", "destroy"] {
        let r = h.req(json!({"janus":verb,"transaction":"t","session_id":sid,"handle_id":hid,"plugin":TEST_PLUGIN}));
        assert_eq!(code(&r), 457, "{verb}");
    }
    // keepalive and claim are accepted with a handle id (observed on Janus 1.1.2).
    let r = h.req(json!({"janus":"keepalive","transaction":"t","session_id":sid,"handle_id":hid}));
    assert_eq!(r["janus"], "ack");
    let r = h.req(json!({"janus":"claim","transaction":"t","session_id":sid,"handle_id":hid}));
    assert_eq!(r["janus"], "success");
}

#[test]
fn attach_errors() {
    let mut h = Harness::default();
    let sid = h.create();
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid}));
    assert_eq!(
        (code(&r), reason(&r)),
        (456, "Missing mandatory element (plugin)")
    );
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid,"plugin":5}));
    assert_eq!(
        (code(&r), reason(&r)),
        (467, "Invalid element type (plugin should be a string)")
    );
    let r = h.req(
        json!({"janus":"attach","transaction":"t","session_id":sid,"plugin":"janus.plugin.nope"}),
    );
    assert_eq!(
        (code(&r), reason(&r)),
        (460, "No such plugin 'janus.plugin.nope'")
    );
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid,"plugin":TEST_PLUGIN,"opaque_id":3}));
    assert_eq!(code(&r), 467);
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid,"plugin":TEST_PLUGIN,"loop_index":-1}));
    assert_eq!(code(&r), 467);
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid,"plugin":TEST_PLUGIN,"opaque_id":"refuse"}));
    assert_eq!(
        (code(&r), reason(&r)),
        (461, "Couldn't attach to plugin: error '7'")
    );
    assert_eq!(h.gw.handle_count(), 0);
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid,"plugin":TEST_PLUGIN,"opaque_id":"ok"}));
    assert_eq!(r["janus"], "success");
    assert_eq!(r["session_id"], sid);
    let hid = r["data"]["id"].as_u64().unwrap();
    assert!(hid > 0 && hid <= jano_api::MAX_ID);
}

#[test]
fn message_results_and_errors() {
    let mut h = Harness::default();
    let sid = h.create();
    let hid = h.attach(sid, TEST_PLUGIN);
    let base = json!({"janus":"message","transaction":"m","session_id":sid,"handle_id":hid});
    let with = |extra: serde_json::Value| {
        let mut v = base.clone();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let r = h.req(base.clone());
    assert_eq!(
        (code(&r), reason(&r)),
        (456, "Missing mandatory element (body)")
    );
    let r = h.req(with(json!({"body": []})));
    assert_eq!(
        (code(&r), reason(&r)),
        (467, "Invalid element type (body should be an object)")
    );
    // Synchronous answer: success + plugindata + sender.
    let r = h.req(with(json!({"body": {"mode":"sync","x":1}})));
    assert_eq!(r["janus"], "success");
    assert_eq!(r["sender"], hid);
    assert_eq!(r["plugindata"]["plugin"], TEST_PLUGIN);
    assert_eq!(r["plugindata"]["data"]["echo"]["x"], 1);
    // Asynchronous: ack now, then the event with the same transaction, in that order.
    h.take_outputs();
    let r = h.req(with(
        json!({"transaction":"async1","body": {"mode":"wait"}}),
    ));
    assert_eq!(
        r,
        json!({"janus":"ack","session_id":sid,"transaction":"async1"})
    );
    let evs = h.events_for(A);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["janus"], "event");
    assert_eq!(evs[0]["transaction"], "async1");
    assert_eq!(evs[0]["sender"], hid);
    assert_eq!(evs[0]["session_id"], sid);
    assert_eq!(evs[0]["plugindata"]["data"]["done"], true);
    // Plugin errors: 462.
    let r = h.req(with(json!({"body": {"mode":"error"}})));
    assert_eq!((code(&r), reason(&r)), (462, "boom"));
    let r = h.req(with(json!({"body": {"mode":"empty-error"}})));
    assert_eq!(
        (code(&r), reason(&r)),
        (462, "Plugin returned a severe (unknown) error")
    );
}

#[test]
fn jsep_validation() {
    let mut h = Harness::default();
    let sid = h.create();
    let hid = h.attach(sid, TEST_PLUGIN);
    let msg = |jsep: serde_json::Value| json!({"janus":"message","transaction":"j","session_id":sid,"handle_id":hid,"body":{},"jsep":jsep});
    let r = h.req(msg(json!("offer")));
    assert_eq!((code(&r), reason(&r)), (455, "Invalid jsep object"));
    let r = h.req(msg(json!({"sdp":"v=0"})));
    assert_eq!(
        (code(&r), reason(&r)),
        (456, "JSEP error: missing mandatory element (type)")
    );
    let r = h.req(msg(json!({"type":"offer"})));
    assert_eq!(
        (code(&r), reason(&r)),
        (456, "JSEP error: missing mandatory element (sdp)")
    );
    let r = h.req(msg(json!({"type":1,"sdp":"v=0"})));
    assert_eq!(code(&r), 467);
    let r = h.req(msg(json!({"type":"offer","sdp":"v=0","trickle":"no"})));
    assert_eq!(code(&r), 467);
    let r = h.req(msg(json!({"type":"pranswer","sdp":"v=0"})));
    assert_eq!(
        (code(&r), reason(&r)),
        (464, "JSEP error: unknown message type 'pranswer'")
    );
    let r = h.req(msg(json!({"type":"offer","sdp":"garbage"})));
    assert_eq!(code(&r), 465);
    // A well-formed offer with no media engine: a clear error, never a fake answer.
    let r = h.req(msg(
        json!({"type":"OFFER","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}),
    ));
    assert_eq!(code(&r), 490);
    assert!(reason(&r).contains("media engine"));
    assert!(
        h.events_for(A).is_empty(),
        "no event may follow a refused JSEP"
    );
}

#[test]
fn trickle_rules() {
    let mut h = Harness::default();
    let sid = h.create();
    let hid = h.attach(sid, TEST_PLUGIN);
    let t = |extra: serde_json::Value| {
        let mut v = json!({"janus":"trickle","transaction":"t","session_id":sid,"handle_id":hid});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let cand = json!({"sdpMid":"0","sdpMLineIndex":0,"candidate":"candidate:1 1 udp 1 10.0.0.1 5000 typ host"});
    let r = h.req(t(json!({})));
    assert_eq!(
        (code(&r), reason(&r)),
        (456, "Missing mandatory element (candidate|candidates)")
    );
    let r = h.req(t(json!({"candidate": cand, "candidates": [cand]})));
    assert_eq!(
        (code(&r), reason(&r)),
        (454, "Can't have both candidate and candidates")
    );
    // Without a PeerConnection every form is queued and acked (ack without sender), even ones
    // that will fail validation once a PeerConnection exists — as Janus 1.1.2 answers.
    for ok in [
        json!({"candidate": cand}),
        json!({"candidate": {"completed": true}}),
        json!({"candidate": null}),
        json!({"candidate": {"candidate": "x"}}),
        json!({"candidates": {}}),
        json!({"candidates": [cand, {"bad": 1}, {"completed": true}]}),
    ] {
        let r = h.req(t(ok));
        assert_eq!(r, json!({"janus":"ack","session_id":sid,"transaction":"t"}));
    }
    let info =
        h.admin(json!({"janus":"handle_info","transaction":"i","session_id":sid,"handle_id":hid}));
    assert_eq!(info["info"]["pending-trickles"], 8);
}

#[test]
fn detach_and_hangup() {
    let mut h = Harness::default();
    let sid = h.create();
    let hid = h.attach(sid, TEST_PLUGIN);
    h.take_outputs();
    let r = h.req(json!({"janus":"hangup","transaction":"h","session_id":sid,"handle_id":hid}));
    assert_eq!(
        r,
        json!({"janus":"success","session_id":sid,"transaction":"h"})
    );
    assert!(
        h.events_for(A).is_empty(),
        "no PeerConnection: no hangup event"
    );
    let r = h.req(json!({"janus":"detach","transaction":"d","session_id":sid,"handle_id":hid}));
    assert_eq!(
        r,
        json!({"janus":"success","session_id":sid,"transaction":"d"})
    );
    let evs = h.events_for(A);
    assert_eq!(
        evs,
        vec![json!({"janus":"detached","session_id":sid,"sender":hid})]
    );
    assert!(h.test_plugin.live.lock().unwrap().is_empty());
    let r = h.req(json!({"janus":"detach","transaction":"d","session_id":sid,"handle_id":hid}));
    assert_eq!(code(&r), 459);
    // A plugin that fails to let go: 463, but the handle is gone anyway.
    let r = h.req(json!({"janus":"attach","transaction":"a","session_id":sid,"plugin":TEST_PLUGIN,"opaque_id":"stuck"}));
    let hid = r["data"]["id"].as_u64().unwrap();
    let r = h.req(json!({"janus":"detach","transaction":"d","session_id":sid,"handle_id":hid}));
    assert_eq!(
        (code(&r), reason(&r)),
        (463, "Couldn't detach from plugin: error '3'")
    );
    assert_eq!(h.gw.handle_count(), 0);
}

#[test]
fn plugin_can_end_a_handle() {
    let mut h = Harness::default();
    let sid = h.create();
    let hid = h.attach(sid, TEST_PLUGIN);
    h.take_outputs();
    let r = h.req(json!({"janus":"message","transaction":"m","session_id":sid,"handle_id":hid,"body":{"mode":"end"}}));
    assert_eq!(r["janus"], "ack");
    assert_eq!(r["hint"], "ending");
    let evs = h.events_for(A);
    assert_eq!(
        evs,
        vec![json!({"janus":"detached","session_id":sid,"sender":hid})]
    );
    assert_eq!(h.gw.handle_count(), 0);
}

#[test]
fn opaque_id_in_api() {
    let mut h = Harness::new(CoreConfig {
        opaqueid_in_api: true,
        ..CoreConfig::default()
    });
    let sid = h.create();
    let r = h.req(json!({"janus":"attach","transaction":"a","session_id":sid,"plugin":TEST_PLUGIN,"opaque_id":"room-1"}));
    let hid = r["data"]["id"].as_u64().unwrap();
    h.take_outputs();
    let r = h.req(json!({"janus":"message","transaction":"m","session_id":sid,"handle_id":hid,"body":{"mode":"wait"}}));
    assert_eq!(r["janus"], "ack");
    let evs = h.events_for(A);
    assert_eq!(evs[0]["opaque_id"], "room-1");
    let r = h.req(
        json!({"janus":"message","transaction":"m","session_id":sid,"handle_id":hid,"body":{}}),
    );
    assert_eq!(r["opaque_id"], "room-1");
}

#[test]
fn echotest_signalling() {
    let mut h = Harness::default();
    let sid = h.create();
    let hid = h.attach(sid, jano_echotest::PACKAGE);
    h.take_outputs();
    let r = h.req(json!({"janus":"message","transaction":"e1","session_id":sid,"handle_id":hid,"body":{"audio":true,"bitrate":128000}}));
    assert_eq!(r["janus"], "ack");
    assert_eq!(r["hint"], "I'm taking my time!");
    let evs = h.events_for(A);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["transaction"], "e1");
    assert_eq!(
        evs[0]["plugindata"],
        json!({"plugin":"janus.plugin.echotest","data":{"echotest":"event","result":"ok"}})
    );
    let r = h.req(
        json!({"janus":"message","transaction":"e2","session_id":sid,"handle_id":hid,"body":{}}),
    );
    assert_eq!(r["janus"], "ack");
    let evs = h.events_for(A);
    assert_eq!(
        evs[0]["plugindata"]["data"],
        json!({"echotest":"event","error_code":413,"error":"Message error: no supported attributes found"})
    );
    let r = h.req(json!({"janus":"message","transaction":"e3","session_id":sid,"handle_id":hid,"body":{"audio":"yes"}}));
    assert_eq!(r["janus"], "ack");
    let evs = h.events_for(A);
    assert_eq!(evs[0]["plugindata"]["data"]["error_code"], 413);
    assert_eq!(
        evs[0]["plugindata"]["data"]["error"],
        "Invalid element type (audio should be a boolean)"
    );
    // The settings are visible in handle_info.
    let r =
        h.admin(json!({"janus":"handle_info","transaction":"i","session_id":sid,"handle_id":hid}));
    assert_eq!(r["info"]["plugin_specific"]["bitrate"], 128000);
}

#[test]
fn ids_beyond_signed_64_bits_are_refused() {
    // Found by fuzzing: such a session could be created but not addressed by the Admin API.
    let mut h = Harness::default();
    let r = h.req(json!({"janus":"create","transaction":"t","id":9223372036854775808u64}));
    assert_eq!(
        (code(&r), reason(&r)),
        (
            467,
            "Invalid element type (id should be a positive integer)"
        )
    );
    let r = h.req(json!({"janus":"create","transaction":"t","id":9223372036854775807u64}));
    let sid = r["data"]["id"].as_u64().unwrap();
    let r = h.admin(json!({"janus":"list_handles","transaction":"t","session_id":sid}));
    assert_eq!(r["janus"], "success");
}
