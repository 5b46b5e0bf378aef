//! Session lifecycle with a fake clock: timeouts, transport loss, reclaim, claim, destroy,
//! accept_new_sessions, shutdown.

mod common;
use common::*;
use jano_core::{CoreConfig, Output};
use serde_json::json;

fn over(outs: &[Output]) -> Vec<(u64, u64, bool, bool)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::SessionOver {
                to,
                session_id,
                timeout,
                claimed,
            } => Some((to.conn, *session_id, *timeout, *claimed)),
            _ => None,
        })
        .collect()
}

#[test]
fn idle_session_times_out_and_frees_everything() {
    let mut h = Harness::new(CoreConfig {
        session_timeout: 10,
        ..CoreConfig::default()
    });
    let sid = h.create();
    let _h1 = h.attach(sid, TEST_PLUGIN);
    let _h2 = h.attach(sid, jano_echotest::PACKAGE);
    h.take_outputs();
    h.advance(9);
    assert!(h.gw.has_session(sid));
    h.advance(1);
    assert!(!h.gw.has_session(sid));
    assert_eq!(h.gw.handle_count(), 0);
    assert!(
        h.test_plugin.live.lock().unwrap().is_empty(),
        "plugin state freed"
    );
    let outs = h.take_outputs();
    // The owner hears `timeout`, then the session is over (timeout=true).
    assert!(
        matches!(&outs[0], Output::Event { event, .. } if *event == json!({"janus":"timeout","session_id":sid}))
    );
    assert_eq!(over(&outs), vec![(A.conn, sid, true, false)]);
    let r = h.req(json!({"janus":"keepalive","transaction":"k","session_id":sid}));
    assert_eq!(code(&r), 458);
}

#[test]
fn any_request_refreshes_activity() {
    let mut h = Harness::new(CoreConfig {
        session_timeout: 10,
        ..CoreConfig::default()
    });
    let sid = h.create();
    for _ in 0..5 {
        h.advance(8);
        let r = h.req(json!({"janus":"keepalive","transaction":"k","session_id":sid}));
        assert_eq!(r["janus"], "ack");
    }
    h.advance(8);
    // Even a failing request on a live session counts (Janus refreshes before dispatching).
    let r = h.req(json!({"janus":"bogus","transaction":"k","session_id":sid}));
    assert_eq!(code(&r), 453);
    h.advance(8);
    assert!(h.gw.has_session(sid));
    // Admin requests do not count.
    h.admin(json!({"janus":"list_handles","transaction":"l","session_id":sid}));
    h.advance(2);
    assert!(!h.gw.has_session(sid));
}

#[test]
fn zero_timeout_never_expires_and_admin_override() {
    let mut h = Harness::new(CoreConfig {
        session_timeout: 0,
        ..CoreConfig::default()
    });
    let sid = h.create();
    h.advance(1000);
    assert!(h.gw.has_session(sid));
    // Per-session override: 5 s.
    let r = h.admin(
        json!({"janus":"set_session_timeout","transaction":"s","session_id":sid,"timeout":5}),
    );
    assert_eq!(r["timeout"], 5);
    h.advance(5);
    assert!(!h.gw.has_session(sid));
    // -1 goes back to the global value (here "never").
    let sid = h.create();
    h.admin(json!({"janus":"set_session_timeout","transaction":"s","session_id":sid,"timeout":3}));
    h.admin(json!({"janus":"set_session_timeout","transaction":"s","session_id":sid,"timeout":-1}));
    h.advance(100);
    assert!(h.gw.has_session(sid));
}

#[test]
fn transport_gone_destroys_sessions_without_reclaim() {
    let mut h = Harness::default();
    let s1 = h.create_from(A);
    let s2 = h.create_from(A);
    let s3 = h.create_from(B);
    h.attach(s1, TEST_PLUGIN);
    h.take_outputs();
    h.gone(A);
    assert!(!h.gw.has_session(s1) && !h.gw.has_session(s2));
    assert!(h.gw.has_session(s3), "other instances unaffected");
    assert!(h.take_outputs().is_empty(), "nobody left to notify");
    assert!(h.test_plugin.live.lock().unwrap().is_empty());
}

#[test]
fn reclaim_window_and_claim_from_another_instance() {
    let mut h = Harness::new(CoreConfig {
        reclaim_session_timeout: 20,
        ..CoreConfig::default()
    });
    let sid = h.create_from(A);
    let hid = h.attach(sid, TEST_PLUGIN);
    let lost = h.create_from(A);
    h.take_outputs();
    h.gone(A);
    assert!(h.gw.has_session(sid));
    h.advance(10);
    // B claims it: success with session_id and no data; events now go to B.
    let r = h.req_from(
        B,
        json!({"janus":"claim","transaction":"c","session_id":sid}),
    );
    assert_eq!(
        r,
        json!({"janus":"success","session_id":sid,"transaction":"c"})
    );
    let outs = h.take_outputs();
    assert!(outs.contains(&Output::SessionClaimed {
        to: B,
        session_id: sid
    }));
    assert!(over(&outs).is_empty(), "the gone instance is not told");
    h.req_from(B, json!({"janus":"message","transaction":"m","session_id":sid,"handle_id":hid,"body":{"mode":"wait"}}));
    assert_eq!(h.events_for(B).len(), 1);
    // The unclaimed one dies silently when the window ends.
    h.advance(10);
    assert!(!h.gw.has_session(lost));
    assert!(h.take_outputs().is_empty());
    // The claimed one lives on under the normal session timeout.
    assert!(h.gw.has_session(sid));
}

#[test]
fn claim_moves_a_live_session() {
    let mut h = Harness::default();
    let sid = h.create_from(A);
    h.take_outputs();
    // Claiming one's own session changes nothing.
    let r = h.req_from(
        A,
        json!({"janus":"claim","transaction":"c","session_id":sid}),
    );
    assert_eq!(r["janus"], "success");
    assert!(h.take_outputs().is_empty());
    let r = h.req_from(
        B,
        json!({"janus":"claim","transaction":"c","session_id":sid}),
    );
    assert_eq!(r["janus"], "success");
    let outs = h.take_outputs();
    assert_eq!(over(&outs), vec![(A.conn, sid, false, true)]);
    assert!(outs.contains(&Output::SessionClaimed {
        to: B,
        session_id: sid
    }));
    // A losing its transport no longer affects the session.
    h.gone(A);
    assert!(h.gw.has_session(sid));
    h.gone(B);
    assert!(!h.gw.has_session(sid));
}

#[test]
fn destroy_detaches_every_handle_without_detached_events() {
    let mut h = Harness::default();
    let sid = h.create();
    h.attach(sid, TEST_PLUGIN);
    h.attach(sid, TEST_PLUGIN);
    h.take_outputs();
    let r = h.req(json!({"janus":"destroy","transaction":"d","session_id":sid}));
    assert_eq!(
        r,
        json!({"janus":"success","session_id":sid,"transaction":"d"})
    );
    let outs = h.take_outputs();
    assert_eq!(over(&outs), vec![(A.conn, sid, false, false)]);
    assert!(!outs.iter().any(|o| matches!(o, Output::Event { .. })));
    assert_eq!(h.gw.handle_count(), 0);
    assert!(h.test_plugin.live.lock().unwrap().is_empty());
    let r = h.req(json!({"janus":"destroy","transaction":"d","session_id":sid}));
    assert_eq!(code(&r), 458);
}

#[test]
fn events_for_gone_handles_are_dropped() {
    let mut h = Harness::default();
    let sid = h.create();
    let hid = h.attach(sid, TEST_PLUGIN);
    // The plugin queues an event, then the handle is detached before the queue is applied.
    let r = h.gw.handle_request(h.now, A, Ok(json!({"janus":"message","transaction":"m","session_id":sid,"handle_id":hid,"body":{"mode":"wait"}})));
    assert_eq!(r["janus"], "ack");
    let r = h.gw.handle_request(
        h.now,
        A,
        Ok(json!({"janus":"detach","transaction":"d","session_id":sid,"handle_id":hid})),
    );
    assert_eq!(r["janus"], "success");
    h.take_outputs();
    h.pump();
    let evs = h.events_for(A);
    assert_eq!(
        evs,
        vec![json!({"janus":"detached","session_id":sid,"sender":hid})]
    );
}

#[test]
fn accept_new_sessions_switch() {
    let mut h = Harness::new(CoreConfig {
        api_secret: Some("s".into()),
        ..CoreConfig::default()
    });
    let r = h.admin(json!({"janus":"accept_new_sessions","transaction":"a","accept":false}));
    assert_eq!(r["accept"], false);
    // 472 comes before the auth check.
    let r = h.req(json!({"janus":"create","transaction":"c"}));
    assert_eq!(code(&r), 472);
    assert_eq!(reason(&r), "Currently not accepting new sessions");
    h.admin(json!({"janus":"accept_new_sessions","transaction":"a","accept":true}));
    let r = h.req(json!({"janus":"create","transaction":"c","apisecret":"s"}));
    assert_eq!(r["janus"], "success");
}

#[test]
fn shutdown_destroys_everything() {
    let mut h = Harness::default();
    let s1 = h.create_from(A);
    let s2 = h.create_from(B);
    h.attach(s1, TEST_PLUGIN);
    h.attach(s2, jano_echotest::PACKAGE);
    h.take_outputs();
    h.gw.shutdown();
    let mut outs = Vec::new();
    while let Some(o) = h.gw.poll_output() {
        outs.push(o);
    }
    let mut told = over(&outs);
    told.sort();
    let mut expect = vec![(A.conn, s1, false, false), (B.conn, s2, false, false)];
    expect.sort();
    assert_eq!(told, expect);
    assert_eq!((h.gw.session_count(), h.gw.handle_count()), (0, 0));
}

#[test]
fn early_trickles_expire_after_candidates_timeout() {
    let mut h = Harness::new(CoreConfig {
        candidates_timeout: 5,
        session_timeout: 0,
        ..CoreConfig::default()
    });
    let sid = h.create();
    let hid = h.attach(sid, TEST_PLUGIN);
    let cand = json!({"sdpMid":"0","sdpMLineIndex":0,"candidate":"candidate:1 1 udp 1 10.0.0.1 5000 typ host"});
    h.req(json!({"janus":"trickle","transaction":"t","session_id":sid,"handle_id":hid,"candidate":cand}));
    let info = |h: &mut Harness| {
        h.admin(json!({"janus":"handle_info","transaction":"i","session_id":sid,"handle_id":hid}))
            ["info"]["pending-trickles"]
            .as_u64()
    };
    assert_eq!(info(&mut h), Some(1));
    h.advance(5);
    assert_eq!(info(&mut h), Some(0));
}
