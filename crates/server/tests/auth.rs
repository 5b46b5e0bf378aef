//! API secret and stored-token authentication on the Janus API (HTTP, long poll, WebSockets).

mod common;

use common::*;
use hyper::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apisecret_over_http() {
    let s = Server::start(Opts {
        apisecret: Some("s3cr3t".into()),
        ..Default::default()
    })
    .await;
    let v = s
        .post("/janus", json!({"janus":"create","transaction":"c1"}))
        .await;
    assert_error(&v, 403);
    assert_eq!(v["transaction"], "c1");
    let v = s
        .post(
            "/janus",
            json!({"janus":"create","apisecret":"nope","transaction":"c2"}),
        )
        .await;
    assert_error(&v, 403);
    // info and ping are exempt.
    let v = s
        .post("/janus", json!({"janus":"info","transaction":"i"}))
        .await;
    assert_eq!(v["janus"], "server_info");
    assert_eq!(v["api_secret"], true);
    let v = s
        .post("/janus", json!({"janus":"ping","transaction":"p"}))
        .await;
    assert_eq!(v["janus"], "pong");

    let v = s
        .post(
            "/janus",
            json!({"janus":"create","apisecret":"s3cr3t","transaction":"c3"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    let sid = v["data"]["id"].as_u64().unwrap();

    // Session requests need it too.
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"keepalive","transaction":"k"}),
        )
        .await;
    assert_error(&v, 403);
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"attach","plugin":ECHOTEST,"apisecret":"s3cr3t","transaction":"a"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    let hid = v["data"]["id"].as_u64().unwrap();
    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"message","body":{"audio":true},"apisecret":"s3cr3t","transaction":"m"}),
        )
        .await;
    assert_eq!(v["janus"], "ack", "{v}");

    // Long polls: the secret is a query parameter.
    let r = s.poll(sid, "", IO_TIMEOUT).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = s.poll(sid, "apisecret=wrong", IO_TIMEOUT).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ev = s.poll_json(sid, "apisecret=s3cr3t").await;
    assert_eq!(ev["janus"], "event", "{ev}");
    assert_eq!(ev["transaction"], "m");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apisecret_over_websockets() {
    let s = Server::start(Opts {
        apisecret: Some("s3cr3t".into()),
        ..Default::default()
    })
    .await;
    let mut c = s.ws().await;
    let v = c.request(json!({"janus":"create","transaction":"c"})).await;
    assert_error(&v, 403);
    let v = c.request(json!({"janus":"ping","transaction":"p"})).await;
    assert_eq!(v["janus"], "pong");
    let v = c
        .request(json!({"janus":"create","apisecret":"s3cr3t","transaction":"c2"}))
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_tokens() {
    let s = Server::start(Opts {
        token_auth: true,
        ..Default::default()
    })
    .await;
    let v = s
        .admin(
            "/admin",
            json!({"janus":"add_token","token":"good","plugins":[ECHOTEST]}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    // Unknown plugins are skipped: this token may use no plugin at all.
    let v = s
        .admin(
            "/admin",
            json!({"janus":"add_token","token":"none","plugins":["janus.plugin.nope"]}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(v["data"]["plugins"], json!([]));

    // No token, unknown token: 403.
    let v = s
        .post("/janus", json!({"janus":"create","transaction":"c0"}))
        .await;
    assert_error(&v, 403);
    let v = s
        .post(
            "/janus",
            json!({"janus":"create","token":"unknown","transaction":"c1"}),
        )
        .await;
    assert_error(&v, 403);
    let v = s
        .post("/janus", json!({"janus":"info","transaction":"i"}))
        .await;
    assert_eq!(v["janus"], "server_info", "info exempt");
    assert_eq!(v["auth_token"], true);

    let v = s
        .post(
            "/janus",
            json!({"janus":"create","token":"good","transaction":"c2"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    let sid = v["data"]["id"].as_u64().unwrap();
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"attach","plugin":ECHOTEST,"token":"good","transaction":"a1"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    let hid = v["data"]["id"].as_u64().unwrap();
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"keepalive","token":"unknown","transaction":"k"}),
        )
        .await;
    assert_error(&v, 403);

    // The token that may use no plugin: valid for the session, refused for the plugin.
    let v = s
        .post(
            "/janus",
            json!({"janus":"create","token":"none","transaction":"c3"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    let sid2 = v["data"]["id"].as_u64().unwrap();
    let v = s
        .post(
            &format!("/janus/{sid2}"),
            json!({"janus":"attach","plugin":ECHOTEST,"token":"none","transaction":"a2"}),
        )
        .await;
    let reason = assert_error(&v, 405);
    assert!(reason.contains(ECHOTEST), "{reason}");
    assert_eq!(v["transaction"], "a2");

    // Long poll with the token as a query parameter.
    s.post(
        &format!("/janus/{sid}/{hid}"),
        json!({"janus":"message","body":{"audio":true},"token":"good","transaction":"m"}),
    )
    .await;
    let r = s.poll(sid, "token=unknown", IO_TIMEOUT).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ev = s.poll_json(sid, "token=good").await;
    assert_eq!(ev["transaction"], "m", "{ev}");

    // A removed token no longer works.
    s.admin("/admin", json!({"janus":"remove_token","token":"good"}))
        .await;
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"keepalive","token":"good","transaction":"k2"}),
        )
        .await;
    assert_error(&v, 403);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_secret_or_token_authorises() {
    let s = Server::start(Opts {
        apisecret: Some("s3cr3t".into()),
        token_auth: true,
        ..Default::default()
    })
    .await;
    s.admin("/admin", json!({"janus":"add_token","token":"tk"}))
        .await;
    let v = s
        .post(
            "/janus",
            json!({"janus":"create","token":"tk","transaction":"a"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "token alone: {v}");
    let v = s
        .post(
            "/janus",
            json!({"janus":"create","apisecret":"s3cr3t","transaction":"b"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "secret alone: {v}");
    let sid = v["data"]["id"].as_u64().unwrap();
    // A token's plugin list only restricts requests that carry a token.
    s.admin(
        "/admin",
        json!({"janus":"add_token","token":"noplugins","plugins":["janus.plugin.nope"]}),
    )
    .await;
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"attach","plugin":ECHOTEST,"apisecret":"s3cr3t","transaction":"a1"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "attach with the secret only: {v}");
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"attach","plugin":ECHOTEST,"apisecret":"s3cr3t","token":"noplugins","transaction":"a2"}),
        )
        .await;
    assert_error(&v, 405);
    let v = s
        .post("/janus", json!({"janus":"create","transaction":"c"}))
        .await;
    assert_error(&v, 403);
    s.shutdown().await;
}

/// `encodeURIComponent`, as janus.js applies it to `token` and `apisecret` in long-poll URLs.
fn encode_uri_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn long_poll_credentials_are_percent_decoded() {
    // Secrets and tokens with characters janus.js percent-encodes (signed tokens look like
    // "<expiry>,janus,<plugins>:<base64 signature>").
    let secret = "s3cr3t/with=odd:chars, ok";
    let token = "1700000000,janus,janus.plugin.echotest:AbC+/dEf=";
    let s = Server::start(Opts {
        apisecret: Some(secret.into()),
        token_auth: true,
        ..Default::default()
    })
    .await;
    let v = s
        .admin("/admin", json!({"janus":"add_token","token":token}))
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    let v = s
        .post(
            "/janus",
            json!({"janus":"create","apisecret":secret,"transaction":"c"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    let sid = v["data"]["id"].as_u64().unwrap();
    let hid = {
        let v = s
            .post(
                &format!("/janus/{sid}"),
                json!({"janus":"attach","plugin":ECHOTEST,"apisecret":secret,"transaction":"a"}),
            )
            .await;
        v["data"]["id"].as_u64().unwrap()
    };
    for (n, query) in [
        format!("rid=1&maxev=1&apisecret={}", encode_uri_component(secret)),
        format!("rid=2&maxev=1&token={}", encode_uri_component(token)),
    ]
    .into_iter()
    .enumerate()
    {
        let t = format!("m{n}");
        s.post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"message","body":{"audio":true},"apisecret":secret,"transaction":t}),
        )
        .await;
        let r = s.poll(sid, &query, IO_TIMEOUT).await;
        assert_eq!(r.status, StatusCode::OK, "GET /janus/{sid}?{query}");
        assert_eq!(r.json()["transaction"], t.as_str());
    }
    s.shutdown().await;
}
