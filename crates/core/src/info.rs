//! The `server_info` answer (Janus API `info` and Admin API `info`).

use crate::Gateway;
use jano_api::{msg, Map, Value};
use serde_json::json;

impl Gateway {
    pub(crate) fn server_info(&self, transaction: &str) -> Value {
        let c = &self.cfg;
        let mut m = msg::envelope("server_info", 0, Some(transaction));
        let mut put = |k: &str, v: Value| {
            m.insert(k.into(), v);
        };
        put("name", "Janus WebRTC Server".into());
        put("version", jano_api::JANUS_VERSION.into());
        put("version_string", jano_api::JANUS_VERSION_STRING.into());
        put("author", "jano".into());
        put("commit-hash", "not-a-git-repo".into());
        put(
            "compile-time",
            concat!("jano ", env!("CARGO_PKG_VERSION")).into(),
        );
        put("log-to-stdout", c.log_to_stdout.into());
        put("log-to-file", c.log_to_file.is_some().into());
        if let Some(p) = &c.log_to_file {
            put("log-path", p.as_str().into());
        }
        put("data_channels", true.into());
        put("accepting-new-sessions", c.accept_new_sessions.into());
        put("session-timeout", c.session_timeout.into());
        put("reclaim-session-timeout", c.reclaim_session_timeout.into());
        put("candidates-timeout", c.candidates_timeout.into());
        put("server-name", c.server_name.as_str().into());
        put("local-ip", c.local_ip.as_str().into());
        if let Some(first) = c.public_ips.first() {
            put("public-ip", first.as_str().into());
        }
        if c.public_ips.len() > 1 {
            put("public-ips", json!(c.public_ips));
        }
        put("ipv6", c.ipv6.into());
        if c.ipv6 {
            put("ipv6-link-local", false.into());
        }
        put("ice-lite", c.ice_lite.into());
        put("ice-tcp", c.ice_tcp.into());
        put("ice-nomination", "aggressive".into());
        put("ice-keepalive-conncheck", false.into());
        put("full-trickle", c.full_trickle.into());
        put("mdns-enabled", c.mdns_enabled.into());
        put("min-nack-queue", c.min_nack_queue.into());
        put("nack-optimizations", c.nack_optimizations.into());
        put("twcc-period", c.twcc_period.into());
        put("dtls-mtu", c.dtls_mtu.into());
        put("static-event-loops", c.event_loops.into());
        if c.event_loops > 0 {
            put("loop-indication", c.allow_loop_indication.into());
        }
        put("api_secret", c.api_secret.is_some().into());
        put("auth_token", c.token_auth.into());
        put("event_handlers", false.into());
        put("opaqueid_in_api", c.opaqueid_in_api.into());
        if !c.hide_dependencies {
            put(
                "dependencies",
                json!({
                    "serde_json": "1",
                    "tokio": "1",
                    "hyper": "1",
                }),
            );
        }
        let mut transports = Map::new();
        for t in &self.transports {
            transports.insert(
                t.package.into(),
                json!({
                    "name": t.name,
                    "author": t.author,
                    "description": t.description,
                    "version_string": t.version_string,
                    "version": t.version,
                }),
            );
        }
        put("transports", Value::Object(transports));
        put("events", Value::Object(Map::new()));
        put("loggers", Value::Object(Map::new()));
        let mut plugins = Map::new();
        for p in self.plugins.iter() {
            let i = p.info();
            plugins.insert(
                i.package.into(),
                json!({
                    "name": i.name,
                    "author": i.author,
                    "description": i.description,
                    "version_string": i.version_string,
                    "version": i.version,
                }),
            );
        }
        put("plugins", Value::Object(plugins));
        Value::Object(m)
    }
}
