//! api_secret, stored tokens and signed tokens.

mod common;
use common::*;
use jano_core::{sign_token, CoreConfig};
use serde_json::json;

#[test]
fn api_secret() {
    let mut h = Harness::new(CoreConfig {
        api_secret: Some("s3cret".into()),
        ..CoreConfig::default()
    });
    // info and ping are exempt.
    assert_eq!(
        h.req(json!({"janus":"info","transaction":"t"}))["janus"],
        "server_info"
    );
    assert_eq!(
        h.req(json!({"janus":"ping","transaction":"t"}))["janus"],
        "pong"
    );
    let r = h.req(json!({"janus":"create","transaction":"t"}));
    assert_eq!(
        (code(&r), reason(&r)),
        (403, "Unauthorized request (wrong or missing secret/token)")
    );
    let r = h.req(json!({"janus":"create","transaction":"t","apisecret":"wrong"}));
    assert_eq!(code(&r), 403);
    let r = h.req(json!({"janus":"create","transaction":"t","apisecret":5}));
    assert_eq!(code(&r), 403);
    let r = h.req(json!({"janus":"create","transaction":"t","apisecret":"s3cret"}));
    let sid = r["data"]["id"].as_u64().unwrap();
    // Every session request needs it too, and 403 comes before the session lookup.
    let r = h.req(json!({"janus":"keepalive","transaction":"t","session_id":sid}));
    assert_eq!(code(&r), 403);
    let r = h.req(json!({"janus":"keepalive","transaction":"t","session_id":424242}));
    assert_eq!(code(&r), 403);
    let r =
        h.req(json!({"janus":"keepalive","transaction":"t","session_id":sid,"apisecret":"s3cret"}));
    assert_eq!(r["janus"], "ack");
    // The HTTP long poll's check: query-string credentials, and the poll refreshes the session.
    assert!(!h.gw.touch_session(h.now, sid, None, None));
    assert!(h.gw.touch_session(h.now, sid, Some("s3cret"), None));
}

#[test]
fn stored_tokens() {
    let mut h = Harness::new(CoreConfig {
        token_auth: true,
        ..CoreConfig::default()
    });
    let r = h.req(json!({"janus":"create","transaction":"t","token":"abc"}));
    assert_eq!(code(&r), 403);
    // Added without plugins: all plugins.
    let r = h.admin(json!({"janus":"add_token","transaction":"a","token":"abc"}));
    assert_eq!(
        r["data"]["plugins"],
        json!(["janus.plugin.echotest", "janus.plugin.test"])
    );
    let r = h.admin(json!({"janus":"add_token","transaction":"a","token":"echo-only","plugins":["janus.plugin.echotest","janus.plugin.unknown"]}));
    assert_eq!(r["data"]["plugins"], json!(["janus.plugin.echotest"]));
    let r = h.req(json!({"janus":"create","transaction":"t","token":"echo-only"}));
    let sid = r["data"]["id"].as_u64().unwrap();
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid,"token":"echo-only","plugin":"janus.plugin.echotest"}));
    assert_eq!(r["janus"], "success");
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid,"token":"echo-only","plugin":TEST_PLUGIN}));
    assert_eq!(
        (code(&r), reason(&r)),
        (
            405,
            "Provided token can't access plugin 'janus.plugin.test'"
        )
    );
    // Permissions edited over the admin API.
    let r = h.admin(json!({"janus":"allow_token","transaction":"a","token":"echo-only","plugins":[TEST_PLUGIN]}));
    assert_eq!(
        r["data"]["plugins"],
        json!(["janus.plugin.echotest", "janus.plugin.test"])
    );
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid,"token":"echo-only","plugin":TEST_PLUGIN}));
    assert_eq!(r["janus"], "success");
    let r = h.admin(json!({"janus":"disallow_token","transaction":"a","token":"echo-only","plugins":["janus.plugin.echotest", TEST_PLUGIN]}));
    assert_eq!(r["data"]["plugins"], json!([]));
    // A token with no plugins is valid for session requests, not listed, can't attach.
    let r = h.admin(json!({"janus":"list_tokens","transaction":"l"}));
    assert_eq!(
        r["data"]["tokens"],
        json!([{"token":"abc","allowed_plugins":["janus.plugin.echotest","janus.plugin.test"]}])
    );
    let r =
        h.req(json!({"janus":"keepalive","transaction":"t","session_id":sid,"token":"echo-only"}));
    assert_eq!(r["janus"], "ack");
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid,"token":"echo-only","plugin":TEST_PLUGIN}));
    assert_eq!(code(&r), 405);
    // Errors of the token requests.
    let r = h.admin(
        json!({"janus":"allow_token","transaction":"a","token":"nope","plugins":[TEST_PLUGIN]}),
    );
    assert_eq!((code(&r), reason(&r)), (470, "Token nope not found"));
    let r = h.admin(json!({"janus":"allow_token","transaction":"a","token":"abc","plugins":[]}));
    assert_eq!(
        (code(&r), reason(&r)),
        (
            467,
            "Invalid element type (plugins should be a non-empty array)"
        )
    );
    let r = h.admin(json!({"janus":"allow_token","transaction":"a","token":"abc","plugins":["janus.plugin.nope"]}));
    assert_eq!(
        (code(&r), reason(&r)),
        (
            467,
            "Invalid element type (some of the provided plugins are invalid)"
        )
    );
    let r = h.admin(json!({"janus":"remove_token","transaction":"a","token":"abc"}));
    assert_eq!(r["janus"], "success");
    let r = h.admin(json!({"janus":"remove_token","transaction":"a","token":"abc"}));
    assert_eq!((code(&r), reason(&r)), (490, "Error removing token"));
    let r = h.req(json!({"janus":"create","transaction":"t","token":"abc"}));
    assert_eq!(code(&r), 403);
}

#[test]
fn token_requests_refused_without_stored_mode() {
    for cfg in [
        CoreConfig::default(),
        CoreConfig {
            token_auth: true,
            token_auth_secret: Some("k".into()),
            ..CoreConfig::default()
        },
    ] {
        let mut h = Harness::new(cfg);
        for verb in [
            "add_token",
            "list_tokens",
            "allow_token",
            "disallow_token",
            "remove_token",
        ] {
            let r = h
                .admin(json!({"janus":verb,"transaction":"a","token":"x","plugins":[TEST_PLUGIN]}));
            assert_eq!(
                (code(&r), reason(&r)),
                (490, "Stored-Token based authentication disabled"),
                "{verb}"
            );
        }
    }
}

#[test]
fn signed_tokens() {
    let mut h = Harness::new(CoreConfig {
        token_auth: true,
        token_auth_secret: Some("hmac-key".into()),
        ..CoreConfig::default()
    });
    let now = h.now.unix_s;
    let good = sign_token("hmac-key", now + 60, "janus", &["janus.plugin.echotest"]);
    let r = h.req(json!({"janus":"create","transaction":"t","token":good}));
    let sid = r["data"]["id"].as_u64().unwrap();
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid,"token":good,"plugin":"janus.plugin.echotest"}));
    assert_eq!(r["janus"], "success");
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid,"token":good,"plugin":TEST_PLUGIN}));
    assert_eq!(code(&r), 405);
    for bad in [
        sign_token("other-key", now + 60, "janus", &[]),
        sign_token("hmac-key", now + 60, "janus.plugin.videoroom", &[]),
        "garbage".to_string(),
    ] {
        let r = h.req(json!({"janus":"create","transaction":"t","token":bad}));
        assert_eq!(code(&r), 403, "{bad}");
    }
    // Expiry follows the injected wall clock.
    h.advance(61);
    let r = h.req(json!({"janus":"create","transaction":"t","token":good}));
    assert_eq!(code(&r), 403);
}

#[test]
fn either_secret_or_token_suffices() {
    let mut h = Harness::new(CoreConfig {
        api_secret: Some("s".into()),
        token_auth: true,
        ..CoreConfig::default()
    });
    h.admin(json!({"janus":"add_token","transaction":"a","token":"tok","plugins":["janus.plugin.echotest"]}));
    assert_eq!(
        h.req(json!({"janus":"create","transaction":"t","apisecret":"s"}))["janus"],
        "success"
    );
    let sid = h.req(json!({"janus":"create","transaction":"t","token":"tok"}))["data"]["id"]
        .as_u64()
        .unwrap();
    // Authorised by apisecret without a token: no plugin check (as Janus).
    let r = h.req(json!({"janus":"attach","transaction":"t","session_id":sid,"apisecret":"s","plugin":TEST_PLUGIN}));
    assert_eq!(r["janus"], "success");
}
