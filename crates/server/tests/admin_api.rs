//! The Admin API over HTTP admin and WebSocket admin: secret, scopes, sessions, handles,
//! timeouts, tokens, and the separation from the Janus API.

mod common;

use common::*;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_and_ping_need_no_secret() {
    let s = Server::default().await;
    let v = post_json(
        s.admin_http,
        "/admin",
        &json!({"janus":"info","transaction":"i"}),
    )
    .await;
    assert_eq!(v["janus"], "server_info", "{v}");
    assert_eq!(v["transaction"], "i");
    let v = post_json(
        s.admin_http,
        "/admin",
        &json!({"janus":"ping","transaction":"p"}),
    )
    .await;
    assert_eq!(v, json!({"janus":"pong","transaction":"p"}));
    for path in ["/admin/info", "/admin/ping"] {
        let r = http_request(s.admin_http, Method::GET, path, &[], None)
            .await
            .unwrap();
        r.assert_json_200();
        let v = r.json();
        assert!(
            v["janus"] == "server_info" || v["janus"] == "pong",
            "{path}: {v}"
        );
    }
    let mut a = s.admin_ws().await;
    let v = a.request(json!({"janus":"info","transaction":"wi"})).await;
    assert_eq!(v["janus"], "server_info");
    let v = a.request(json!({"janus":"ping","transaction":"wp"})).await;
    assert_eq!(v, json!({"janus":"pong","transaction":"wp"}));
    a.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_requests_need_the_secret() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let cases = [
        (
            "/admin".to_string(),
            json!({"janus":"list_sessions","transaction":"a"}),
        ),
        (
            "/admin".to_string(),
            json!({"janus":"get_status","transaction":"b"}),
        ),
        (
            format!("/admin/{sid}"),
            json!({"janus":"list_handles","transaction":"c"}),
        ),
        (
            format!("/admin/{sid}/{hid}"),
            json!({"janus":"handle_info","transaction":"d"}),
        ),
        (
            format!("/admin/{sid}"),
            json!({"janus":"destroy_session","transaction":"e"}),
        ),
    ];
    for (path, body) in &cases {
        let v = post_json(s.admin_http, path, body).await;
        assert_error(&v, 403);
        assert_eq!(v["transaction"], body["transaction"], "{v}");
        let mut wrong = body.clone();
        wrong["admin_secret"] = json!("wrong");
        let v = post_json(s.admin_http, path, &wrong).await;
        assert_error(&v, 403);
    }
    // Over the admin WebSocket too.
    let mut a = s.admin_ws().await;
    let v = a
        .request(json!({"janus":"list_sessions","transaction":"w"}))
        .await;
    assert_error(&v, 403);
    let v = a.admin(json!({"janus":"list_sessions"})).await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(v["sessions"], json!([sid]));
    a.close().await;
    // Nothing was destroyed by the refused destroy_session.
    assert!(s.list_sessions().await.contains(&sid));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_sessions_handles_and_handle_info() {
    let s = Server::default().await;
    let s1 = s.create().await;
    let s2 = s.create().await;
    let h1 = s.attach(s1).await;
    let h2 = s.attach(s1).await;
    let mut sessions = s.list_sessions().await;
    sessions.sort_unstable();
    let mut want = vec![s1, s2];
    want.sort_unstable();
    assert_eq!(sessions, want);

    let v = s
        .admin(&format!("/admin/{s1}"), json!({"janus":"list_handles"}))
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(v["session_id"], s1);
    let mut handles: Vec<u64> = v["handles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_u64().unwrap())
        .collect();
    handles.sort_unstable();
    let mut want = vec![h1, h2];
    want.sort_unstable();
    assert_eq!(handles, want);
    let v = s
        .admin(&format!("/admin/{s2}"), json!({"janus":"list_handles"}))
        .await;
    assert_eq!(v["handles"], json!([]));

    let v = s
        .admin(&format!("/admin/{s1}/{h1}"), json!({"janus":"handle_info"}))
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(v["session_id"], s1);
    assert_eq!(v["handle_id"], h1);
    let info = &v["info"];
    assert_eq!(info["session_id"], s1);
    assert_eq!(info["handle_id"], h1);
    assert_eq!(info["plugin"], ECHOTEST);
    assert!(info["plugin_specific"].is_object(), "{info}");
    assert!(info["flags"].is_object(), "{info}");
    assert!(info["flags"].get("got-offer").is_some(), "{info}");
    assert_eq!(info["session_transport"], "janus.transport.http");

    // plugin_only stops before the flags.
    let v = s
        .admin(
            &format!("/admin/{s1}/{h1}"),
            json!({"janus":"handle_info","plugin_only":true}),
        )
        .await;
    assert!(v["info"].get("flags").is_none(), "{v}");
    assert!(v["info"].get("plugin_specific").is_some(), "{v}");

    // Unknown scopes.
    let v = s
        .admin("/admin/999999", json!({"janus":"list_handles"}))
        .await;
    assert_error(&v, 458);
    let v = s
        .admin(
            &format!("/admin/{s1}/999999"),
            json!({"janus":"handle_info"}),
        )
        .await;
    assert_error(&v, 459);
    // A session verb at handle scope, a handle verb at session scope.
    let v = s
        .admin(
            &format!("/admin/{s1}/{h1}"),
            json!({"janus":"list_handles"}),
        )
        .await;
    assert_error(&v, 457);
    let v = s
        .admin(&format!("/admin/{s1}"), json!({"janus":"handle_info"}))
        .await;
    assert_error(&v, 457);

    // Admin requests work with the ids in the body as well (WS admin has no paths).
    let mut a = s.admin_ws().await;
    let v = a
        .admin(json!({"janus":"handle_info","session_id":s1,"handle_id":h2}))
        .await;
    assert_eq!(v["handle_id"], h2, "{v}");
    assert_eq!(v["info"]["plugin"], ECHOTEST);
    a.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_status_and_global_session_timeout() {
    let s = Server::default().await;
    let v = s.admin("/admin", json!({"janus":"get_status"})).await;
    assert_eq!(v["janus"], "success", "{v}");
    let st = &v["status"];
    for key in [
        "token_auth",
        "session_timeout",
        "reclaim_session_timeout",
        "candidates_timeout",
        "log_level",
        "min_nack_queue",
        "no_media_timer",
        "slowlink_threshold",
    ] {
        assert!(st.get(key).is_some(), "status lacks {key}: {st}");
    }
    assert_eq!(st["session_timeout"], 60);

    let v = s
        .admin(
            "/admin",
            json!({"janus":"set_session_timeout","timeout":123}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(v["timeout"], 123);
    let v = s.admin("/admin", json!({"janus":"get_status"})).await;
    assert_eq!(v["status"]["session_timeout"], 123);
    let v = s
        .post("/janus", json!({"janus":"info","transaction":"i"}))
        .await;
    assert_eq!(v["session-timeout"], 123, "info follows the new timeout");

    let v = s
        .admin(
            "/admin",
            json!({"janus":"set_session_timeout","timeout":-1}),
        )
        .await;
    assert_error(&v, 467);
    let v = s
        .admin("/admin", json!({"janus":"set_session_timeout"}))
        .await;
    assert_error(&v, 456);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_scope_set_session_timeout() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let info_timeout = |v: &Value| v["info"]["session_timeout"].clone();
    for (t, shown) in [(5, 5), (0, 0), (-1, 60)] {
        let v = s
            .admin(
                &format!("/admin/{sid}"),
                json!({"janus":"set_session_timeout","timeout":t}),
            )
            .await;
        assert_eq!(v["janus"], "success", "{t}: {v}");
        assert_eq!(v["timeout"], t);
        assert_eq!(v["session_id"], sid);
        let hi = s
            .admin(
                &format!("/admin/{sid}/{hid}"),
                json!({"janus":"handle_info"}),
            )
            .await;
        assert_eq!(info_timeout(&hi), shown, "after timeout {t}: {hi}");
    }
    let v = s
        .admin(
            &format!("/admin/{sid}"),
            json!({"janus":"set_session_timeout","timeout":-2}),
        )
        .await;
    assert_error(&v, 467);
    // The global value is untouched.
    let v = s.admin("/admin", json!({"janus":"get_status"})).await;
    assert_eq!(v["status"]["session_timeout"], 60);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_new_sessions_toggle() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    let v = s
        .admin(
            "/admin",
            json!({"janus":"accept_new_sessions","accept":false}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(v["accept"], false);
    let v = s
        .post("/janus", json!({"janus":"create","transaction":"c"}))
        .await;
    assert_error(&v, 472);
    assert_eq!(v["transaction"], "c");
    let v = c.request(json!({"janus":"create","transaction":"w"})).await;
    assert_error(&v, 472);
    let v = s
        .post("/janus", json!({"janus":"info","transaction":"i"}))
        .await;
    assert_eq!(v["accepting-new-sessions"], false);

    let v = s
        .admin(
            "/admin",
            json!({"janus":"accept_new_sessions","accept":true}),
        )
        .await;
    assert_eq!(v["accept"], true);
    let _ = s.create().await;
    let _ = c.create().await;
    let v = s
        .admin("/admin", json!({"janus":"accept_new_sessions"}))
        .await;
    assert_error(&v, 456);
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_session_from_admin() {
    let s = Server::default().await;
    let sid = s.create().await;
    let _hid = s.attach(sid).await;
    let v = s
        .admin(&format!("/admin/{sid}"), json!({"janus":"destroy_session"}))
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(v["session_id"], sid);
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"keepalive","transaction":"k"}),
        )
        .await;
    assert_error(&v, 458);
    assert_eq!(s.running().runtime.counts(), (0, 0));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_handle_from_admin_sends_detached() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let v = s
        .admin(
            &format!("/admin/{sid}/{hid}"),
            json!({"janus":"detach_handle"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    let ev = s.poll_json(sid, "").await;
    assert_eq!(ev["janus"], "detached", "{ev}");
    assert_eq!(ev["sender"], hid);
    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"hangup","transaction":"h"}),
        )
        .await;
    assert_error(&v, 459);

    // Same over WebSockets: the owning socket gets `detached`.
    let mut c = s.ws().await;
    let wsid = c.create().await;
    let whid = c.attach(wsid).await;
    let mut a = s.admin_ws().await;
    let v = a
        .admin(json!({"janus":"detach_handle","session_id":wsid,"handle_id":whid}))
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    let ev = c.recv().await;
    assert_eq!(ev["janus"], "detached", "{ev}");
    assert_eq!(ev["sender"], whid);
    a.close().await;
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_requests_do_not_refresh_sessions() {
    // Admin requests do not count as session activity.
    let s = Server::start(Opts {
        session_timeout: Some(2),
        ..Default::default()
    })
    .await;
    let sid = s.create().await;
    let ok = wait_until(Duration::from_secs(6), || async {
        let v = s
            .admin(&format!("/admin/{sid}"), json!({"janus":"list_handles"}))
            .await;
        v["janus"] == "error"
    })
    .await;
    assert!(ok, "session kept alive by admin requests");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_management_with_token_auth() {
    let s = Server::start(Opts {
        token_auth: true,
        ..Default::default()
    })
    .await;
    let v = s
        .admin(
            "/admin",
            json!({"janus":"add_token","token":"tok1","plugins":[ECHOTEST]}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(v["data"]["plugins"], json!([ECHOTEST]));
    // No plugins = all plugins.
    let v = s
        .admin("/admin", json!({"janus":"add_token","token":"tok2"}))
        .await;
    assert_eq!(
        v["data"]["plugins"],
        json!([
            "janus.plugin.audiobridge",
            ECHOTEST,
            "janus.plugin.nosip",
            "janus.plugin.recordplay",
            "janus.plugin.streaming",
            "janus.plugin.textroom",
            "janus.plugin.videocall",
            "janus.plugin.videoroom"
        ]),
        "{v}"
    );

    let v = s.admin("/admin", json!({"janus":"list_tokens"})).await;
    assert_eq!(v["janus"], "success", "{v}");
    let tokens = v["data"]["tokens"].as_array().unwrap().clone();
    assert!(
        tokens.contains(&json!({"token":"tok1","allowed_plugins":[ECHOTEST]})),
        "{v}"
    );
    assert_eq!(tokens.len(), 2, "{v}");

    let v = s
        .admin(
            "/admin",
            json!({"janus":"disallow_token","token":"tok1","plugins":[ECHOTEST]}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(v["data"]["plugins"], json!([]));
    let v = s.admin("/admin", json!({"janus":"list_tokens"})).await;
    let listed: Vec<&str> = v["data"]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["tok2"], "a token with no plugins is not listed");

    let v = s
        .admin(
            "/admin",
            json!({"janus":"allow_token","token":"tok1","plugins":[ECHOTEST]}),
        )
        .await;
    assert_eq!(v["data"]["plugins"], json!([ECHOTEST]), "{v}");
    let v = s
        .admin(
            "/admin",
            json!({"janus":"allow_token","token":"tok1","plugins":["janus.plugin.nope"]}),
        )
        .await;
    assert_error(&v, 467);
    let v = s
        .admin(
            "/admin",
            json!({"janus":"allow_token","token":"tok1","plugins":[]}),
        )
        .await;
    assert_error(&v, 467);
    let v = s
        .admin(
            "/admin",
            json!({"janus":"allow_token","token":"nobody","plugins":[ECHOTEST]}),
        )
        .await;
    assert_error(&v, 470);

    let v = s
        .admin("/admin", json!({"janus":"remove_token","token":"tok1"}))
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    let v = s
        .admin("/admin", json!({"janus":"remove_token","token":"tok1"}))
        .await;
    assert_error(&v, 490);
    let v = s.admin("/admin", json!({"janus":"list_tokens"})).await;
    assert_eq!(v["data"]["tokens"].as_array().unwrap().len(), 1, "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_without_token_auth_are_490() {
    let s = Server::default().await;
    for body in [
        json!({"janus":"add_token","token":"t"}),
        json!({"janus":"list_tokens"}),
        json!({"janus":"allow_token","token":"t","plugins":[ECHOTEST]}),
        json!({"janus":"disallow_token","token":"t","plugins":[ECHOTEST]}),
        json!({"janus":"remove_token","token":"t"}),
    ] {
        let v = s.admin("/admin", body.clone()).await;
        assert_error(&v, 490);
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_separation_and_unknown_verbs() {
    let s = Server::default().await;
    let v = s.admin("/admin", json!({"janus":"frobnicate"})).await;
    let reason = assert_error(&v, 457);
    assert!(reason.contains("frobnicate"), "{reason}");
    for verb in ["create", "keepalive", "attach"] {
        let v = s.admin("/admin", json!({"janus":verb})).await;
        assert_error(&v, 457);
    }
    for verb in ["list_sessions", "get_status", "add_token"] {
        let v = s
            .post(
                "/janus",
                json!({"janus":verb,"transaction":"t","admin_secret":ADMIN_SECRET}),
            )
            .await;
        assert_error(&v, 457);
    }
    // Over the admin WebSocket too.
    let mut a = s.admin_ws().await;
    let v = a.admin(json!({"janus":"create"})).await;
    assert_error(&v, 457);
    a.close().await;
    let mut c = s.ws().await;
    let v = c
        .request(json!({"janus":"list_sessions","transaction":"t","admin_secret":ADMIN_SECRET}))
        .await;
    assert_error(&v, 457);
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_http_transport_rules() {
    let s = Server::default().await;
    let v = post_json(
        s.admin_http,
        "/admin/info",
        &json!({"janus":"info","transaction":"i"}),
    )
    .await;
    assert_error(&v, 450);
    let r = http_request(s.admin_http, Method::POST, "/admin", &[], Some(Vec::new()))
        .await
        .unwrap();
    r.assert_json_200();
    let v = r.json();
    let reason = assert_error(&v, 454);
    assert_eq!(reason, "Request payload missing");
    // No long polls on admin.
    let sid = s.create().await;
    let r = http_request(
        s.admin_http,
        Method::GET,
        &format!("/admin/{sid}"),
        &[],
        None,
    )
    .await
    .unwrap();
    assert_ne!(r.status, StatusCode::FOUND);
    if r.status == StatusCode::OK {
        assert_eq!(
            r.json()["janus"],
            "error",
            "GET on admin session path is not a poll"
        );
    }
    // The Janus API is not served on the admin port.
    let r = http_request(
        s.admin_http,
        Method::POST,
        "/janus",
        &[],
        Some(br#"{"janus":"create","transaction":"x"}"#.to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misc_global_requests() {
    let s = Server::default().await;
    let v = s
        .admin(
            "/admin",
            json!({"janus":"message_plugin","plugin":ECHOTEST,"request":{"hello":"world"}}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(
        v["response"],
        json!({"hello":"world"}),
        "EchoTest echoes admin messages"
    );
    let v = s
        .admin(
            "/admin",
            json!({"janus":"message_plugin","plugin":"janus.plugin.nope"}),
        )
        .await;
    assert_error(&v, 460);
    let v = s
        .admin(
            "/admin",
            json!({"janus":"query_transport","transport":"janus.transport.nope","request":{}}),
        )
        .await;
    assert_error(&v, 460);
    for level in [0, 7] {
        let v = s
            .admin("/admin", json!({"janus":"set_log_level","level":level}))
            .await;
        assert_eq!(v["level"], level, "{v}");
    }
    let v = s
        .admin("/admin", json!({"janus":"set_log_level","level":8}))
        .await;
    assert_error(&v, 467);
    let v = s
        .admin("/admin", json!({"janus":"set_log_level","level":4}))
        .await;
    assert_eq!(v["janus"], "success");
    let v = s.admin("/admin", json!({"janus":"loops_info"})).await;
    assert!(v["loops"].is_array(), "{v}");
    // Verbs are case-insensitive on the Admin API too.
    let v = s.admin("/admin", json!({"janus":"LIST_SESSIONS"})).await;
    assert_eq!(v["janus"], "success", "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_scope_edge_cases() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    let sid = c.create().await;
    let hid = c.attach(sid).await;
    // A handle id present but < 1 is 458 on the Admin API (not 459).
    let v = s
        .admin(
            "/admin",
            json!({"janus":"handle_info","session_id":sid,"handle_id":0}),
        )
        .await;
    assert_error(&v, 458);
    let v = s
        .admin("/admin", json!({"janus":"list_handles","session_id":-4}))
        .await;
    assert_error(&v, 458);
    let v = s
        .admin(
            &format!("/admin/{sid}/{hid}"),
            json!({"janus":"handle_info"}),
        )
        .await;
    assert_eq!(
        v["info"]["session_transport"], "janus.transport.websockets",
        "{v}"
    );
    assert_eq!(v["info"]["session_timeout"], 60);
    // hangup_webrtc on a handle without a PeerConnection.
    let v = s
        .admin(
            &format!("/admin/{sid}/{hid}"),
            json!({"janus":"hangup_webrtc"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_path_body_conflict_and_bad_token_args() {
    let s = Server::start(Opts {
        token_auth: true,
        ..Default::default()
    })
    .await;
    let sid = s.create_with_token_admin().await;
    let v = s
        .admin(
            &format!("/admin/{sid}"),
            json!({"janus":"list_handles","session_id":sid + 1}),
        )
        .await;
    assert_error(&v, 457);
    let v = s
        .admin(
            "/admin",
            json!({"janus":"add_token","token":"t","plugins":"x"}),
        )
        .await;
    assert_error(&v, 467);
    let v = s.admin("/admin", json!({"janus":"add_token"})).await;
    assert_error(&v, 456);
    s.shutdown().await;
}
