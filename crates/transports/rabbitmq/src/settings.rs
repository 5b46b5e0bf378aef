//! `janus.transport.rabbitmq.jcfg`, read with Janus's keys, legacy names and defaults.

use jano_api::json::JsonFormat;
use jano_config::{janus_is_true, Jcfg};
use std::path::PathBuf;

/// The queues of one API (the Janus API, or the Admin API under `[admin]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queues {
    /// `to_janus`: the incoming queue, or the routing key `queue_name` is bound with.
    pub to_janus: String,
    /// `from_janus`: the routing key every outgoing message is published with.
    pub from_janus: String,
    /// `queue_name`: the incoming queue when set (then `to_janus` is a routing key).
    pub queue_name: Option<String>,
    /// `declare_outgoing_queue`: declare a plain queue named `from_janus`.
    pub declare_outgoing_queue: bool,
    pub durable: bool,
    pub exclusive: bool,
    pub autodelete: bool,
}

impl Queues {
    /// The queue consumed for this API.
    pub fn incoming_queue(&self) -> &str {
        self.queue_name.as_deref().unwrap_or(&self.to_janus)
    }
}

/// TLS (`ssl_*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// `ssl_cacert`: extra trusted CA certificates (PEM), added to the system's.
    pub cacert: Option<PathBuf>,
    /// `ssl_cert` + `ssl_key`: client certificate chain and key (PEM).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `ssl_verify_peer` (Janus default: false).
    pub verify_peer: bool,
    /// `ssl_verify_hostname` (Janus default: false).
    pub verify_hostname: bool,
}

/// Settings from `janus.transport.rabbitmq.jcfg`, with Janus's keys and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether the transport runs at all: the Janus API (`enabled`, legacy `enable`) or the
    /// Admin API (`[admin] admin_enabled`, legacy `[general] admin_enable`) is on.
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    pub vhost: String,
    pub username: String,
    pub password: String,
    /// Seconds; 0 = take the broker's proposal (lapin's rule; RabbitMQ proposes 60 s), so a
    /// dead broker is always noticed.
    pub heartbeat: u16,
    /// `ssl_enabled` (legacy `ssl_enable`).
    pub tls: Option<Tls>,
    /// `janus_exchange`: `None` = the default exchange `""`.
    pub exchange: Option<String>,
    /// `janus_exchange_type` (default `fanout`).
    pub exchange_type: String,
    /// The Janus API's queues (`None` when the Janus API is disabled).
    pub api: Option<Queues>,
    /// The Admin API's queues (`None` when the Admin API is disabled).
    pub admin: Option<Queues>,
    /// `json`: how outgoing messages are written (jano's default: compact).
    pub json: JsonFormat,
    /// `block_startup_until_connected`: [`crate::serve`] waits for the first connection.
    pub block_startup_until_connected: bool,
    /// Largest incoming message accepted, in bytes (`max_message_size`, jano's own key;
    /// default 1 MiB): larger ones get a 450 error.
    pub max_message: usize,
    /// Outgoing messages kept while the broker is unreachable (`outgoing_buffer`, jano's own
    /// key; default 10,000); beyond it the oldest are dropped, counted and logged.
    pub outgoing_buffer: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: false,
            host: "localhost".into(),
            port: 5672,
            vhost: "/".into(),
            username: "guest".into(),
            password: "guest".into(),
            heartbeat: 0,
            tls: None,
            exchange: None,
            exchange_type: "fanout".into(),
            api: None,
            admin: None,
            json: JsonFormat::Compact,
            block_startup_until_connected: false,
            max_message: 1 << 20,
            outgoing_buffer: 10_000,
        }
    }
}

/// Janus's "item present" rule: the key, or else its legacy name.
fn flag(j: &Jcfg, cat: &str, key: &str, legacy: Option<(&str, &str)>) -> bool {
    let v = j.get_str(cat, key).or_else(|| {
        let (lcat, lkey) = legacy?;
        let v = j.get_str(lcat, lkey);
        if v.is_some() {
            tracing::warn!(
                "found deprecated '{lkey}' property, please update it to '{key}' instead"
            );
        }
        v
    });
    v.is_some_and(|v| janus_is_true(&v))
}

fn boolean(j: &Jcfg, cat: &str, key: &str, default: bool) -> bool {
    j.get_str(cat, key)
        .map(|v| janus_is_true(&v))
        .unwrap_or(default)
}

fn text(j: &Jcfg, cat: &str, key: &str) -> Option<String> {
    j.get_str(cat, key)
}

fn u16_or(j: &Jcfg, cat: &str, key: &str, default: u16, what: &str) -> u16 {
    match j.get_str(cat, key) {
        None => default,
        Some(v) => match jano_config::parse_int_text(&v).and_then(|n| u16::try_from(n).ok()) {
            Some(n) => n,
            None => {
                // Janus logs and falls back rather than refusing to start.
                tracing::error!("invalid {what} ({v}), falling back to default ({default})");
                default
            }
        },
    }
}

impl Settings {
    pub fn from_jcfg(j: &Jcfg) -> Result<Settings, String> {
        let d = Settings::default();
        let g = "general";
        let api_enabled = flag(j, g, "enabled", Some((g, "enable")));
        let admin_enabled = flag(j, "admin", "admin_enabled", Some((g, "admin_enable")));
        let tls = if flag(j, g, "ssl_enabled", Some((g, "ssl_enable"))) {
            Some(Tls {
                cacert: text(j, g, "ssl_cacert").map(PathBuf::from),
                cert: text(j, g, "ssl_cert").map(PathBuf::from),
                key: text(j, g, "ssl_key").map(PathBuf::from),
                verify_peer: boolean(j, g, "ssl_verify_peer", false),
                verify_hostname: boolean(j, g, "ssl_verify_hostname", false),
            })
        } else {
            None
        };
        let api = if api_enabled {
            Some(Queues {
                to_janus: text(j, g, "to_janus").ok_or(
                    "missing name of incoming queue/topic for RabbitMQ integration (to_janus)",
                )?,
                from_janus: text(j, g, "from_janus").ok_or(
                    "missing name of outgoing routing key for RabbitMQ integration (from_janus)",
                )?,
                queue_name: text(j, g, "queue_name"),
                declare_outgoing_queue: boolean(j, g, "declare_outgoing_queue", true),
                durable: boolean(j, g, "queue_durable", false),
                exclusive: boolean(j, g, "queue_exclusive", false),
                autodelete: boolean(j, g, "queue_autodelete", false),
            })
        } else {
            None
        };
        let a = "admin";
        let admin = if admin_enabled {
            Some(Queues {
                to_janus: text(j, a, "to_janus_admin")
                    .ok_or("missing name of incoming admin queue (to_janus_admin)")?,
                from_janus: text(j, a, "from_janus_admin")
                    .ok_or("missing name of outgoing admin routing key (from_janus_admin)")?,
                queue_name: text(j, a, "queue_name_admin"),
                declare_outgoing_queue: boolean(j, a, "declare_outgoing_queue_admin", true),
                durable: boolean(j, a, "queue_durable_admin", false),
                exclusive: boolean(j, a, "queue_exclusive_admin", false),
                autodelete: boolean(j, a, "queue_autodelete_admin", false),
            })
        } else {
            None
        };
        let json = match text(j, g, "json") {
            None => d.json,
            Some(v) => match JsonFormat::parse(&v) {
                Some(f) => f,
                None => {
                    tracing::warn!("unsupported JSON format option '{v}', using compact");
                    JsonFormat::Compact
                }
            },
        };
        let max_message = match j.get_int(g, "max_message_size") {
            Some(n) if n > 0 => usize::try_from(n).unwrap_or(d.max_message),
            _ => d.max_message,
        };
        let outgoing_buffer = match j.get_int(g, "outgoing_buffer") {
            Some(n) if n > 0 => usize::try_from(n).unwrap_or(d.outgoing_buffer),
            _ => d.outgoing_buffer,
        };
        Ok(Settings {
            enabled: api.is_some() || admin.is_some(),
            host: text(j, g, "host").unwrap_or(d.host),
            port: u16_or(j, g, "port", d.port, "port"),
            vhost: text(j, g, "vhost").unwrap_or(d.vhost),
            username: text(j, g, "username").unwrap_or(d.username),
            password: text(j, g, "password").unwrap_or(d.password),
            heartbeat: u16_or(j, g, "heartbeat", 0, "heartbeat timeout"),
            tls,
            exchange: text(j, g, "janus_exchange"),
            exchange_type: text(j, g, "janus_exchange_type").unwrap_or(d.exchange_type),
            api,
            admin,
            json,
            block_startup_until_connected: boolean(j, g, "block_startup_until_connected", false),
            max_message,
            outgoing_buffer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        let j = Jcfg::parse(text, "janus.transport.rabbitmq.jcfg").expect("jcfg");
        Settings::from_jcfg(&j)
    }

    #[test]
    fn defaults_when_disabled() {
        let s = parse("general: {}\nadmin: {}").expect("settings");
        assert!(!s.enabled);
        assert_eq!(s.host, "localhost");
        assert_eq!(s.port, 5672);
        assert_eq!(s.vhost, "/");
        assert_eq!(
            (s.username.as_str(), s.password.as_str()),
            ("guest", "guest")
        );
        assert!(s.api.is_none() && s.admin.is_none() && s.tls.is_none());
        assert_eq!(s.exchange_type, "fanout");
    }

    #[test]
    fn janus_sample() {
        let s = parse(
            r#"general: {
                enabled = true
                host = "10.0.0.1"
                port = "5673"
                vhost = "/janus"
                heartbeat = 30
                to_janus = "to-janus"
                from_janus = "from-janus"
                janus_exchange = "jx"
                janus_exchange_type = "topic"
                queue_name = "qn"
                declare_outgoing_queue = false
                queue_durable = true
                queue_exclusive = "yes"
                queue_autodelete = 1
                ssl_enabled = true
                ssl_cacert = "/ca.pem"
                ssl_verify_peer = true
            }
            admin: {
                admin_enabled = true
                to_janus_admin = "to-janus-admin"
                from_janus_admin = "from-janus-admin"
            }"#,
        )
        .expect("settings");
        assert!(s.enabled);
        assert_eq!(s.host, "10.0.0.1");
        assert_eq!(s.port, 5673);
        assert_eq!(s.vhost, "/janus");
        assert_eq!(s.heartbeat, 30);
        assert_eq!(s.exchange.as_deref(), Some("jx"));
        assert_eq!(s.exchange_type, "topic");
        let api = s.api.expect("api");
        assert_eq!(api.incoming_queue(), "qn");
        assert_eq!(api.to_janus, "to-janus");
        assert!(!api.declare_outgoing_queue);
        assert!(api.durable && api.exclusive && api.autodelete);
        let admin = s.admin.expect("admin");
        assert_eq!(admin.incoming_queue(), "to-janus-admin");
        assert!(admin.declare_outgoing_queue);
        assert!(!admin.durable && !admin.exclusive && !admin.autodelete);
        let tls = s.tls.expect("tls");
        assert_eq!(tls.cacert, Some(PathBuf::from("/ca.pem")));
        assert!(tls.verify_peer && !tls.verify_hostname);
    }

    #[test]
    fn legacy_names() {
        let s = parse(
            r#"general: {
                enable = true
                admin_enable = true
                ssl_enable = true
                to_janus = "a"
                from_janus = "b"
            }
            admin: { to_janus_admin = "c", from_janus_admin = "d" }"#,
        )
        .expect("settings");
        assert!(s.api.is_some() && s.admin.is_some() && s.tls.is_some());
        // The new name wins when both are present, as in Janus.
        let s = parse(
            r#"general: { enabled = false, enable = true, to_janus = "a", from_janus = "b" }"#,
        )
        .expect("settings");
        assert!(!s.enabled);
    }

    #[test]
    fn admin_alone_runs_the_transport() {
        let s = parse(
            r#"general: {}
            admin: { admin_enabled = true, to_janus_admin = "c", from_janus_admin = "d" }"#,
        )
        .expect("settings");
        assert!(s.enabled && s.api.is_none() && s.admin.is_some());
    }

    #[test]
    fn queues_required_when_enabled() {
        assert!(parse(r#"general: { enabled = true, from_janus = "b" }"#).is_err());
        assert!(parse(r#"general: { enabled = true, to_janus = "a" }"#).is_err());
        assert!(parse(
            r#"general: {}
            admin: { admin_enabled = true, to_janus_admin = "c" }"#
        )
        .is_err());
    }

    #[test]
    fn bad_numbers_fall_back() {
        let s = parse(
            r#"general: { port = "nope", heartbeat = 70000, enabled = true, to_janus = "a", from_janus = "b" }"#,
        )
        .expect("settings");
        assert_eq!((s.port, s.heartbeat), (5672, 0));
    }
}
