//! Plugins build what their configuration files describe while the server starts: a
//! Streaming mountpoint from `janus.plugin.streaming.jcfg` must be live at once — its socket
//! read and its packets counted — as one made with `create` is.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_streaming_mountpoint_reads_its_source() {
    let mut cfg = jano_config::ConfigSet::builtin();
    let text = "general: { rtp_port_range = \"33000-33100\" }\n\
                cam: {\n type = \"rtp\"\n id = 7\n description = \"from the file\"\n \
                media = ( { type = \"audio\" mid = \"a\" port = 0 pt = 111 codec = \"opus\" } )\n \
                secret = \"s\"\n}\n";
    cfg.plugins.insert(
        "janus.plugin.streaming".into(),
        jano_config::Jcfg::parse(text, "janus.plugin.streaming.jcfg").expect("config"),
    );
    let srv = Server::start_with(Opts::default(), cfg).await;
    let sid = srv.create().await;
    let r = srv
        .post(
            &format!("/janus/{sid}"),
            json!({"janus": "attach", "plugin": "janus.plugin.streaming", "transaction": tx()}),
        )
        .await;
    let hid = r["data"]["id"].as_u64().expect("handle");
    let info = || async {
        srv.post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus": "message", "transaction": tx(),
                "body": {"request": "info", "id": 7, "secret": "s"}}),
        )
        .await
    };
    let r = info().await;
    let media = &r["plugindata"]["data"]["info"]["media"][0];
    let port = media["port"].as_u64().expect("port") as u16;
    assert!(media.get("age_ms").is_none(), "nothing came yet: {r}");
    let src = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut p = vec![0x80u8, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
    p.extend_from_slice(&[1u8; 40]);
    let seen = wait_until(Duration::from_secs(5), || {
        let _ = src.send_to(&p, ("127.0.0.1", port));
        async move {
            let r = info().await;
            r["plugindata"]["data"]["info"]["media"][0]
                .get("age_ms")
                .is_some()
        }
    })
    .await;
    assert!(seen, "the configured mountpoint's socket is read");
    srv.shutdown().await;
}
