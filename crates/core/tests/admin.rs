//! The Admin API dispatch and its requests.

mod common;
use common::*;
use jano_core::{CoreConfig, Output};
use serde_json::json;

fn secured() -> Harness {
    Harness::new(CoreConfig {
        admin_secret: Some("overlord".into()),
        ..CoreConfig::default()
    })
}

#[test]
fn secret_and_exemptions() {
    let mut h = secured();
    assert_eq!(
        h.admin(json!({"janus":"info","transaction":"t"}))["janus"],
        "server_info"
    );
    assert_eq!(
        h.admin(json!({"janus":"ping","transaction":"t"}))["janus"],
        "pong"
    );
    let r = h.admin(json!({"janus":"list_sessions","transaction":"t"}));
    assert_eq!(code(&r), 403);
    assert_eq!(r["transaction"], "t");
    let r = h.admin(json!({"janus":"list_sessions","transaction":"t","admin_secret":"nope"}));
    assert_eq!(code(&r), 403);
    let sid = h.create();
    let r = h.admin(json!({"janus":"list_sessions","transaction":"t","admin_secret":"overlord"}));
    assert_eq!(
        r,
        json!({"janus":"success","transaction":"t","sessions":[sid]})
    );
    // Session-scoped requests need it too.
    let r = h.admin(json!({"janus":"list_handles","transaction":"t","session_id":sid}));
    assert_eq!(code(&r), 403);
}

#[test]
fn dispatch() {
    let mut h = Harness::default();
    let r = h.admin(json!({"janus":"create","transaction":"t"}));
    assert_eq!(
        (code(&r), reason(&r)),
        (457, "Unhandled request 'create' at this path")
    );
    let r = h.admin(json!({"janus":"nonsense","transaction":"t"}));
    assert_eq!(code(&r), 457);
    let r = h.admin(json!({"janus":"list_handles","transaction":"t","session_id":-1}));
    assert_eq!(code(&r), 458);
    let r = h.admin(json!({"janus":"list_handles","transaction":"t","session_id":5}));
    assert_eq!((code(&r), reason(&r)), (458, "No such session 5"));
    let sid = h.create();
    // A bad handle id is 458 on the Admin API (not 459).
    let r =
        h.admin(json!({"janus":"handle_info","transaction":"t","session_id":sid,"handle_id":0}));
    assert_eq!(code(&r), 458);
    let r =
        h.admin(json!({"janus":"handle_info","transaction":"t","session_id":sid,"handle_id":9}));
    assert_eq!(code(&r), 459);
    let r = h.admin(json!({"janus":"keepalive","transaction":"t","session_id":sid}));
    assert_eq!(code(&r), 457);
    let hid = h.attach(sid, TEST_PLUGIN);
    let r =
        h.admin(json!({"janus":"list_handles","transaction":"t","session_id":sid,"handle_id":hid}));
    assert_eq!(code(&r), 457);
    let r = h.admin(json!({"janus":"list_handles","transaction":"t","session_id":sid}));
    assert_eq!(
        r,
        json!({"janus":"success","session_id":sid,"transaction":"t","handles":[hid]})
    );
}

#[test]
fn handle_info_layout() {
    let mut h = Harness::default();
    let sid = h.create();
    let r = h.req(json!({"janus":"attach","transaction":"a","session_id":sid,"plugin":TEST_PLUGIN,"opaque_id":"op"}));
    let hid = r["data"]["id"].as_u64().unwrap();
    let r =
        h.admin(json!({"janus":"handle_info","transaction":"t","session_id":sid,"handle_id":hid}));
    assert_eq!(r["handle_id"], hid);
    assert_eq!(r["session_id"], sid);
    let info = &r["info"];
    assert_eq!(info["session_id"], sid);
    assert_eq!(info["handle_id"], hid);
    assert_eq!(info["opaque_id"], "op");
    assert_eq!(info["plugin"], TEST_PLUGIN);
    assert_eq!(info["plugin_specific"], json!({"handle": hid}));
    assert_eq!(info["session_transport"], "janus.transport.test");
    assert_eq!(info["session_timeout"], 60);
    assert_eq!(info["flags"]["ready"], false);
    let r = h.admin(json!({"janus":"handle_info","transaction":"t","session_id":sid,"handle_id":hid,"plugin_only":true}));
    assert!(r["info"].get("flags").is_none());
}

#[test]
fn settings_requests() {
    let mut h = Harness::default();
    let r = h.admin(json!({"janus":"get_status","transaction":"t"}));
    for k in [
        "token_auth",
        "session_timeout",
        "reclaim_session_timeout",
        "candidates_timeout",
        "log_level",
        "min_nack_queue",
        "nack-optimizations",
        "no_media_timer",
        "slowlink_threshold",
    ] {
        assert!(r["status"].get(k).is_some(), "{k}");
    }
    let r = h.admin(json!({"janus":"set_session_timeout","transaction":"t","timeout":30}));
    assert_eq!(r["timeout"], 30);
    assert_eq!(h.gw.config().session_timeout, 30);
    let r = h.admin(json!({"janus":"set_session_timeout","transaction":"t"}));
    assert_eq!(code(&r), 456);
    let r = h.admin(json!({"janus":"set_session_timeout","transaction":"t","timeout":"x"}));
    assert_eq!(code(&r), 467);
    let sid = h.create();
    let r = h.admin(
        json!({"janus":"set_session_timeout","transaction":"t","session_id":sid,"timeout":-2}),
    );
    assert_eq!(
        (code(&r), reason(&r)),
        (
            467,
            "Invalid element type (timeout should be a non-negative integer or -1)"
        )
    );
    h.take_outputs();
    let r = h.admin(json!({"janus":"set_log_level","transaction":"t","level":6}));
    assert_eq!(r["level"], 6);
    assert_eq!(h.take_outputs(), vec![Output::SetLogLevel(6)]);
    let r = h.admin(json!({"janus":"set_log_level","transaction":"t","level":9}));
    assert_eq!(
        (code(&r), reason(&r)),
        (
            467,
            "Invalid element type (level should be between 0 and 7)"
        )
    );
    let r = h.admin(
        json!({"janus":"set_nack_optimizations","transaction":"t","nack_optimizations":true}),
    );
    assert_eq!(r["nack-optimizations"], true);
    for (verb, field, v) in [
        ("set_min_nack_queue", "min_nack_queue", json!(300)),
        ("set_no_media_timer", "no_media_timer", json!(2)),
        ("set_slowlink_threshold", "slowlink_threshold", json!(4)),
        ("set_log_timestamps", "timestamps", json!(true)),
        ("set_log_colors", "colors", json!(false)),
        ("set_locking_debug", "debug", json!(true)),
        ("set_refcount_debug", "debug", json!(true)),
    ] {
        let mut req = json!({"janus":verb,"transaction":"t"});
        req[field] = v;
        assert_eq!(h.admin(req)["janus"], "success", "{verb}");
        assert_eq!(
            code(&h.admin(json!({"janus":verb,"transaction":"t"}))),
            456,
            "{verb}"
        );
    }
}

#[test]
fn session_and_handle_scope_actions() {
    let mut h = Harness::default();
    let sid = h.create();
    let hid = h.attach(sid, TEST_PLUGIN);
    h.take_outputs();
    let r = h
        .admin(json!({"janus":"detach_handle","transaction":"t","session_id":sid,"handle_id":hid}));
    assert_eq!(r["janus"], "success");
    assert_eq!(
        h.events_for(A),
        vec![json!({"janus":"detached","session_id":sid,"sender":hid})]
    );
    let hid = h.attach(sid, TEST_PLUGIN);
    let r = h
        .admin(json!({"janus":"hangup_webrtc","transaction":"t","session_id":sid,"handle_id":hid}));
    assert_eq!(r["janus"], "success");
    let r =
        h.admin(json!({"janus":"stop_pcap","transaction":"t","session_id":sid,"handle_id":hid}));
    assert_eq!((code(&r), reason(&r)), (490, "Capture not started"));
    let r = h.admin(json!({"janus":"destroy_session","transaction":"t","session_id":sid}));
    assert_eq!(
        r,
        json!({"janus":"success","session_id":sid,"transaction":"t"})
    );
    assert_eq!((h.gw.session_count(), h.gw.handle_count()), (0, 0));
}

#[test]
fn plugin_and_transport_queries() {
    let mut h = Harness::default();
    let r = h.admin(
        json!({"janus":"message_plugin","transaction":"t","plugin":TEST_PLUGIN,"request":{"x":1}}),
    );
    assert_eq!(r["response"], json!({"got":{"x":1}}));
    let r = h.admin(json!({"janus":"message_plugin","transaction":"t","plugin":"janus.plugin.echotest","request":{"y":2}}));
    assert_eq!(r["response"], json!({"y":2}));
    let r =
        h.admin(json!({"janus":"message_plugin","transaction":"t","plugin":"janus.plugin.nope"}));
    assert_eq!((code(&r), reason(&r)), (460, "Invalid plugin"));
    let r = h.admin(json!({"janus":"message_plugin","transaction":"t"}));
    assert_eq!(code(&r), 456);
    let r = h.admin(
        json!({"janus":"query_transport","transaction":"t","transport":"janus.transport.nope"}),
    );
    assert_eq!((code(&r), reason(&r)), (460, "Invalid transport"));
    let r = h.admin(json!({"janus":"query_eventhandler","transaction":"t","handler":"x"}));
    assert_eq!(code(&r), 460);
    let r = h.admin(json!({"janus":"custom_logline","transaction":"t","line":"hello"}));
    assert_eq!(r["janus"], "success");
    let r = h.admin(json!({"janus":"loops_info","transaction":"t"}));
    assert_eq!(r["loops"], json!([]));
}
