//! `janus.transport.mqtt.jcfg`: Janus's keys, defaults and complaints.

use jano_api::json::JsonFormat;
use jano_config::{Jcfg, Value};
use std::time::Duration;

/// MQTT protocol the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// 3.1.1 (also used when 3.1 is asked for: the client library only speaks 3.1.1 and 5).
    V311,
    V5,
}

/// How to reach the broker, from `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    /// `ssl://` (or `mqtts://`, `tls://`): TLS.
    pub tls: bool,
}

/// TLS options (`ssl_enabled`).
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub cacertfile: Option<String>,
    pub certfile: Option<String>,
    pub keyfile: Option<String>,
    pub verify_peer: bool,
}

/// The `[status]` section: messages about jano's own connection.
#[derive(Debug, Clone)]
pub struct Status {
    /// Published on every (re)connection.
    pub connect_message: Option<String>,
    /// Published on a clean stop, and left with the broker as the last will.
    pub disconnect_message: Option<String>,
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
}

/// Settings from `janus.transport.mqtt.jcfg`, with Janus's keys and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether the transport runs at all: the Janus API or the Admin API is enabled.
    pub enabled: bool,
    /// `general.enabled` (legacy `enable`): the Janus API.
    pub api_enabled: bool,
    /// `admin.admin_enabled` (legacy `general.admin_enable`).
    pub admin_enabled: bool,
    pub broker: Broker,
    pub version: Version,
    pub client_id: String,
    pub username: String,
    pub password: String,
    /// Seconds; 0 = no keep-alive.
    pub keep_alive_interval: u64,
    pub cleansession: bool,
    /// Messages published but not yet acknowledged by the broker.
    pub max_inflight: u16,
    /// Messages kept while the broker is unreachable; more are counted and dropped.
    pub max_buffered: usize,
    /// How long a stop waits for what is still queued to reach the broker.
    pub disconnect_timeout: Duration,
    pub subscribe_topic: String,
    pub subscribe_qos: u8,
    pub publish_topic: String,
    pub publish_qos: u8,
    pub admin_subscribe_topic: String,
    pub admin_subscribe_qos: u8,
    pub admin_publish_topic: String,
    /// Read for completeness: Janus publishes admin replies with the general `publish_qos`.
    pub admin_publish_qos: u8,
    pub tls: Option<Tls>,
    /// MQTT 5: how long a request's reply route is kept for the events that follow it.
    pub vacuum_interval: Duration,
    /// MQTT 5: request user properties copied into replies, by name.
    pub proxy_transaction_user_properties: Vec<String>,
    /// MQTT 5: user properties added to every reply.
    pub add_transaction_user_properties: Vec<(String, String)>,
    pub status: Option<Status>,
    /// Output layout (`json`), Janus's default for this transport being `indented`.
    pub json: JsonFormat,
    /// Largest request payload accepted, in bytes (bigger ones are answered with 454).
    pub max_message_size: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: false,
            api_enabled: false,
            admin_enabled: false,
            broker: Broker {
                host: "localhost".into(),
                port: 1883,
                tls: false,
            },
            version: Version::V311,
            client_id: "guest".into(),
            username: "guest".into(),
            password: "guest".into(),
            keep_alive_interval: 20,
            cleansession: false,
            max_inflight: 10,
            max_buffered: 100,
            disconnect_timeout: Duration::from_millis(100),
            subscribe_topic: String::new(),
            subscribe_qos: 1,
            publish_topic: String::new(),
            publish_qos: 1,
            admin_subscribe_topic: String::new(),
            admin_subscribe_qos: 1,
            admin_publish_topic: String::new(),
            admin_publish_qos: 1,
            tls: None,
            vacuum_interval: Duration::from_secs(60),
            proxy_transaction_user_properties: Vec::new(),
            add_transaction_user_properties: Vec::new(),
            status: None,
            json: JsonFormat::Indented,
            max_message_size: 1 << 20,
        }
    }
}

/// A non-negative integer, or the default with Janus's complaint.
fn int_or(j: &Jcfg, cat: &str, key: &str, default: i64) -> i64 {
    match j.get_str(cat, key) {
        None => default,
        Some(text) => match j.get_int(cat, key) {
            Some(v) if v >= 0 => v,
            _ => {
                tracing::error!("MQTT: invalid {key} value: {text} (falling back to default)");
                default
            }
        },
    }
}

fn qos_or_default(j: &Jcfg, cat: &str, key: &str) -> u8 {
    let v = int_or(j, cat, key, 1);
    match u8::try_from(v) {
        Ok(q) if q <= 2 => q,
        _ => {
            tracing::error!("MQTT: invalid {key} value: {v} (falling back to 1)");
            1
        }
    }
}

/// `tcp://host:port`, `ssl://host:port` (also `mqtt://`, `mqtts://`, `tls://`; a bare
/// `host:port` is plain TCP). The port defaults to 1883, or 8883 with TLS.
pub fn parse_url(url: &str) -> Result<Broker, String> {
    let (tls, rest) = match url.split_once("://") {
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "tcp" | "mqtt" => (false, rest),
            "ssl" | "mqtts" | "tls" => (true, rest),
            other => {
                return Err(format!(
                    "unsupported MQTT url scheme '{other}://' (tcp:// or ssl://)"
                ))
            }
        },
        None => (false, url),
    };
    // Anything after the authority (a path) means nothing to MQTT.
    let authority = rest.split('/').next().unwrap_or("");
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("invalid MQTT url '{url}'"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("invalid port in MQTT url '{url}'"))?,
            None => default_port,
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| format!("invalid port in MQTT url '{url}'"))?,
            ),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(format!("no host in MQTT url '{url}'"));
    }
    Ok(Broker { host, port, tls })
}

fn array_items<'a>(j: &'a Jcfg, cat: &str, key: &str) -> Option<&'a [Value]> {
    j.category(cat)?.get(key)?.as_items()
}

impl Settings {
    pub fn from_jcfg(j: &Jcfg) -> Result<Settings, String> {
        let mut s = Settings::default();
        let g = "general";
        let enabled = j.get_bool(g, "enabled").or_else(|| {
            let legacy = j.get_bool(g, "enable");
            if legacy.is_some() {
                tracing::warn!(
                    "MQTT: found deprecated 'enable' property, please update it to 'enabled'"
                );
            }
            legacy
        });
        s.api_enabled = enabled.unwrap_or(false);
        s.admin_enabled = j
            .get_bool("admin", "admin_enabled")
            .or_else(|| j.get_bool(g, "admin_enable"))
            .unwrap_or(false);
        s.enabled = s.api_enabled || s.admin_enabled;
        if !s.enabled {
            return Ok(s);
        }

        let url = j
            .get_str(g, "url")
            .unwrap_or_else(|| "tcp://localhost:1883".into());
        s.broker = parse_url(&url)?;
        if let Some(v) = j.get_str(g, "client_id") {
            s.client_id = v;
        }
        if let Some(v) = j.get_str(g, "username") {
            s.username = v;
        }
        if let Some(v) = j.get_str(g, "password") {
            s.password = v;
        }
        if let Some(f) = j.get_str(g, "json") {
            s.json = match JsonFormat::parse(&f) {
                Some(fmt) => fmt,
                None => {
                    tracing::warn!("MQTT: unsupported JSON format option '{f}', using indented");
                    JsonFormat::Indented
                }
            };
        }

        let ssl = j.get_bool(g, "ssl_enabled").or_else(|| {
            let legacy = j.get_bool(g, "ssl_enable");
            if legacy.is_some() {
                tracing::warn!(
                    "MQTT: found deprecated 'ssl_enable' property, please update it to 'ssl_enabled'"
                );
            }
            legacy
        });
        if ssl.unwrap_or(false) {
            if !s.broker.tls {
                tracing::warn!("MQTT: SSL enabled, but the url doesn't start with ssl://");
            }
            let tls = Tls {
                cacertfile: j.get_str(g, "cacertfile"),
                certfile: j.get_str(g, "certfile"),
                keyfile: j.get_str(g, "keyfile"),
                verify_peer: j.get_bool(g, "verify_peer").unwrap_or(false),
            };
            if tls.cacertfile.is_none() {
                return Err("missing CA certificate (cacertfile) for MQTT with SSL".into());
            }
            if tls.certfile.is_some() != tls.keyfile.is_some() {
                return Err("MQTT certfile and keyfile must be set together".into());
            }
            s.tls = Some(tls);
        } else if s.broker.tls {
            tracing::warn!(
                "MQTT: SSL disabled, but the url starts with ssl://: connecting with TLS \
                 without checking the broker's certificate"
            );
        }

        s.version = match j.get_str(g, "mqtt_version").as_deref().unwrap_or("3.1.1") {
            "3.1.1" => Version::V311,
            "3.1" => {
                tracing::warn!("MQTT 3.1 is not supported by this client: speaking 3.1.1");
                Version::V311
            }
            "5" => Version::V5,
            other => return Err(format!("unknown MQTT version '{other}'")),
        };
        s.keep_alive_interval = int_or(j, g, "keep_alive_interval", 20).min(65535) as u64;
        s.cleansession = int_or(j, g, "cleansession", 0) != 0;
        s.max_inflight = match int_or(j, g, "max_inflight", 10) {
            v @ 1..=65535 => v as u16,
            v => {
                tracing::error!("MQTT: invalid max_inflight value: {v} (falling back to 10)");
                10
            }
        };
        s.max_buffered = int_or(j, g, "max_buffered", 100) as usize;
        s.disconnect_timeout =
            Duration::from_millis(int_or(j, g, "disconnect_timeout", 100) as u64);
        if let Some(v) = j.get_int(g, "max_message_size").filter(|v| *v > 0) {
            s.max_message_size = v as usize;
        }

        if s.api_enabled {
            s.subscribe_topic = j
                .get_str(g, "subscribe_topic")
                .ok_or("missing topic for incoming messages (subscribe_topic)")?;
            s.subscribe_qos = qos_or_default(j, g, "subscribe_qos");
            s.publish_topic = j
                .get_str(g, "publish_topic")
                .ok_or("missing topic for outgoing messages (publish_topic)")?;
            s.publish_qos = qos_or_default(j, g, "publish_qos");
        } else {
            // Admin replies still use the general QoS, as in Janus.
            s.publish_qos = qos_or_default(j, g, "publish_qos");
        }
        if s.admin_enabled {
            s.admin_subscribe_topic = j
                .get_str("admin", "subscribe_topic")
                .ok_or("missing topic for incoming admin messages ([admin] subscribe_topic)")?;
            s.admin_subscribe_qos = qos_or_default(j, "admin", "subscribe_qos");
            s.admin_publish_topic = j
                .get_str("admin", "publish_topic")
                .ok_or("missing topic for outgoing admin messages ([admin] publish_topic)")?;
            s.admin_publish_qos = qos_or_default(j, "admin", "publish_qos");
        }

        if s.version == Version::V5 {
            let v = j.get_int(g, "vacuum_interval").unwrap_or(60);
            s.vacuum_interval = if v > 0 {
                Duration::from_secs(v as u64)
            } else {
                tracing::error!("MQTT: invalid vacuum_interval value: {v} (falling back to 60)");
                Duration::from_secs(60)
            };
            if let Some(items) = array_items(j, g, "proxy_transaction_user_properties") {
                s.proxy_transaction_user_properties =
                    items.iter().filter_map(|v| v.as_string()).collect();
            }
            if let Some(items) = array_items(j, g, "add_transaction_user_properties") {
                for item in items {
                    match item.as_items() {
                        Some([k, v]) => match (k.as_string(), v.as_string()) {
                            (Some(k), Some(v)) => s.add_transaction_user_properties.push((k, v)),
                            _ => tracing::error!("MQTT: expected a key-value pair of strings"),
                        },
                        _ => tracing::error!(
                            "MQTT: add_transaction_user_properties: expected a key-value pair"
                        ),
                    }
                }
            }
        }

        if j.get_bool("status", "enabled").unwrap_or(false) {
            let qos = match j.get_int("status", "qos") {
                None => 1,
                Some(q @ 0..=2) => q as u8,
                Some(q) => {
                    tracing::error!("MQTT: invalid status qos value: {q} (using 0)");
                    0
                }
            };
            s.status = Some(Status {
                connect_message: j.get_str("status", "connect_message"),
                disconnect_message: j.get_str("status", "disconnect_message"),
                topic: j
                    .get_str("status", "topic")
                    .unwrap_or_else(|| "status".into()),
                qos,
                retain: j.get_bool("status", "retain").unwrap_or(false),
            });
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        let j = Jcfg::parse(text, "janus.transport.mqtt.jcfg").expect("jcfg");
        Settings::from_jcfg(&j)
    }

    #[test]
    fn disabled_by_default() {
        let s = parse("general: {}").expect("settings");
        assert!(!s.enabled);
    }

    #[test]
    fn janus_defaults() {
        let s = parse(
            r#"general: { enabled = true, subscribe_topic = "to-janus", publish_topic = "from-janus" }"#,
        )
        .expect("settings");
        assert!(s.enabled && s.api_enabled && !s.admin_enabled);
        assert_eq!(
            s.broker,
            Broker {
                host: "localhost".into(),
                port: 1883,
                tls: false
            }
        );
        assert_eq!(s.version, Version::V311);
        assert_eq!(
            (
                s.client_id.as_str(),
                s.username.as_str(),
                s.password.as_str()
            ),
            ("guest", "guest", "guest")
        );
        assert_eq!(s.keep_alive_interval, 20);
        assert!(!s.cleansession);
        assert_eq!((s.max_inflight, s.max_buffered), (10, 100));
        assert_eq!(s.disconnect_timeout, Duration::from_millis(100));
        assert_eq!((s.subscribe_qos, s.publish_qos), (1, 1));
        assert_eq!(s.json, JsonFormat::Indented);
        assert!(s.status.is_none() && s.tls.is_none());
    }

    #[test]
    fn topics_required() {
        assert!(parse("general: { enabled = true, publish_topic = \"x\" }").is_err());
        assert!(parse(
            "general: { enabled = true, subscribe_topic = \"a\", publish_topic = \"b\" }\nadmin: { admin_enabled = true, subscribe_topic = \"c\" }"
        )
        .is_err());
        // Admin only is a running transport.
        let s = parse(
            "admin: { admin_enabled = true, subscribe_topic = \"c\", publish_topic = \"d\" }",
        )
        .expect("settings");
        assert!(s.enabled && !s.api_enabled && s.admin_enabled);
    }

    #[test]
    fn legacy_and_v5_keys() {
        let s = parse(
            r#"general: {
                enable = "yes", subscribe_topic = "a", publish_topic = "b",
                url = "tcp://127.0.0.1:1884", mqtt_version = "5", vacuum_interval = 7,
                proxy_transaction_user_properties = ["k1", "k2"],
                add_transaction_user_properties = (["x", "1"], ["y", "2"]),
                subscribe_qos = 9, publish_qos = 0, cleansession = 1, json = "compact"
            }
            status: { enabled = true, connect_message = "up", disconnect_message = "down", retain = true }"#,
        )
        .expect("settings");
        assert!(s.api_enabled);
        assert_eq!(s.broker.port, 1884);
        assert_eq!(s.version, Version::V5);
        assert_eq!(s.vacuum_interval, Duration::from_secs(7));
        assert_eq!(s.proxy_transaction_user_properties, ["k1", "k2"]);
        assert_eq!(
            s.add_transaction_user_properties,
            [("x".into(), "1".into()), ("y".into(), "2".into())]
        );
        assert_eq!((s.subscribe_qos, s.publish_qos), (1, 0));
        assert!(s.cleansession);
        assert_eq!(s.json, JsonFormat::Compact);
        let st = s.status.expect("status");
        assert_eq!(st.topic, "status");
        assert_eq!(st.qos, 1);
        assert!(st.retain);
        assert_eq!(st.connect_message.as_deref(), Some("up"));
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("ssl://broker.example:8884").expect("url"),
            Broker {
                host: "broker.example".into(),
                port: 8884,
                tls: true
            }
        );
        assert_eq!(parse_url("mqtts://h").expect("url").port, 8883);
        assert_eq!(parse_url("tcp://[::1]:1999").expect("url").host, "::1");
        assert_eq!(parse_url("localhost").expect("url").port, 1883);
        assert!(parse_url("ws://h:80").is_err());
        assert!(parse_url("tcp://h:notaport").is_err());
        assert!(parse_url("tcp://:1883").is_err());
    }

    #[test]
    fn ssl_needs_ca() {
        let base = r#"general: { enabled = true, subscribe_topic = "a", publish_topic = "b", url = "ssl://h:8883", ssl_enabled = true"#;
        assert!(parse(&format!("{base} }}")).is_err());
        let s = parse(&format!(
            "{base}, cacertfile = \"/ca.pem\", verify_peer = true }}"
        ))
        .expect("settings");
        let tls = s.tls.expect("tls");
        assert!(tls.verify_peer);
        assert!(parse(&format!(
            "{base}, cacertfile = \"/ca.pem\", certfile = \"/c.pem\" }}"
        ))
        .is_err());
    }
}
