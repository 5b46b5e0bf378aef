//! Typed `janus.transport.http.jcfg` and `janus.transport.websockets.jcfg`.

use crate::error::ConfigError;
use crate::jcfg::Jcfg;
use crate::read::Reader;

/// How a transport serialises JSON (`general.json`): the one the transports write with.
pub use jano_api::json::JsonFormat;

fn json_format(r: &Reader<'_>) -> Result<JsonFormat, ConfigError> {
    match r.string("general", "json")? {
        None => Ok(JsonFormat::default()),
        Some(text) => JsonFormat::parse(&text).ok_or_else(|| {
            r.invalid(
                "general",
                "json",
                format!("{text:?} is not \"compact\", \"indented\" or \"plain\""),
            )
        }),
    }
}

/// A URL base path: must start with `/`; trailing slashes are dropped (`/janus/` is
/// `/janus`), except for the root `/` itself.
fn base_path(r: &Reader<'_>, cat: &str, key: &str, default: &str) -> Result<String, ConfigError> {
    let path = r.string_or(cat, key, default)?;
    if !path.starts_with('/') {
        return Err(r.invalid(cat, key, format!("{path:?} must start with '/'")));
    }
    let trimmed = path.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_string())
}

/// `janus.transport.http.jcfg`.
///
/// [`Default`] is Janus's code defaults, i.e. what an *empty* file means (plain HTTP is
/// off unless `http = true`); [`HttpConfig::builtin`] is what jano uses with no file.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// JSON output format.
    pub json: JsonFormat,
    /// Notify event handlers about transport events (default true).
    pub events: bool,
    /// Janus API path (default `/janus`).
    pub base_path: String,
    /// Plain HTTP Janus API enabled.
    pub http: bool,
    /// Plain HTTP port (default 8088).
    pub port: u16,
    /// Bind to this interface name.
    pub interface: Option<String>,
    /// Bind to this IP.
    pub ip: Option<String>,
    /// HTTPS Janus API enabled.
    pub https: bool,
    /// HTTPS port (default 8089).
    pub secure_port: u16,
    /// HTTPS interface name.
    pub secure_interface: Option<String>,
    /// HTTPS IP.
    pub secure_ip: Option<String>,
    /// Allowed client address prefixes (empty = all).
    pub acl: Vec<String>,
    /// Check the ACL against `X-Forwarded-For` too.
    pub acl_forwarded: bool,
    /// Max concurrent connections (default 1020).
    pub mhd_connection_limit: u32,
    /// libmicrohttpd debugging.
    pub mhd_debug: bool,
    /// Admin API path (default `/admin`).
    pub admin_base_path: String,
    /// Plain HTTP Admin API enabled.
    pub admin_http: bool,
    /// Admin HTTP port (default 7088).
    pub admin_port: u16,
    /// Admin interface name.
    pub admin_interface: Option<String>,
    /// Admin IP.
    pub admin_ip: Option<String>,
    /// HTTPS Admin API enabled.
    pub admin_https: bool,
    /// Admin HTTPS port (default 7889).
    pub admin_secure_port: u16,
    /// Admin HTTPS interface name.
    pub admin_secure_interface: Option<String>,
    /// Admin HTTPS IP.
    pub admin_secure_ip: Option<String>,
    /// Admin ACL.
    pub admin_acl: Vec<String>,
    /// Admin ACL checks `X-Forwarded-For` (read from `general`, as Janus does).
    pub admin_acl_forwarded: bool,
    /// `Access-Control-Allow-Origin` value; `None` = `*`.
    pub allow_origin: Option<String>,
    /// Reject requests whose `Origin` does not match `allow_origin`.
    pub enforce_cors: bool,
    /// TLS certificate.
    pub cert_pem: Option<String>,
    /// TLS key.
    pub cert_key: Option<String>,
    /// TLS key passphrase.
    pub cert_pwd: Option<String>,
    /// TLS cipher priority string.
    pub ciphers: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            json: JsonFormat::default(),
            events: true,
            base_path: "/janus".to_string(),
            http: false,
            port: 8088,
            interface: None,
            ip: None,
            https: false,
            secure_port: 8089,
            secure_interface: None,
            secure_ip: None,
            acl: Vec::new(),
            acl_forwarded: false,
            mhd_connection_limit: 1020,
            mhd_debug: false,
            admin_base_path: "/admin".to_string(),
            admin_http: false,
            admin_port: 7088,
            admin_interface: None,
            admin_ip: None,
            admin_https: false,
            admin_secure_port: 7889,
            admin_secure_interface: None,
            admin_secure_ip: None,
            admin_acl: Vec::new(),
            admin_acl_forwarded: false,
            allow_origin: None,
            enforce_cors: false,
            cert_pem: None,
            cert_key: None,
            cert_pwd: None,
            ciphers: None,
        }
    }
}

impl HttpConfig {
    /// jano without a file: Janus API on all interfaces port 8088, Admin API on
    /// `127.0.0.1:7088` only.
    pub fn builtin() -> HttpConfig {
        HttpConfig {
            http: true,
            admin_http: true,
            admin_ip: Some("127.0.0.1".to_string()),
            ..HttpConfig::default()
        }
    }

    /// Reads a parsed file; unusable values are errors naming `file_name` and the key.
    pub fn from_jcfg(cfg: &Jcfg, file_name: &str) -> Result<HttpConfig, ConfigError> {
        let r = Reader::new(cfg, file_name);
        let d = HttpConfig::default();
        let (g, a, c, t) = ("general", "admin", "cors", "certificates");
        Ok(HttpConfig {
            json: json_format(&r)?,
            events: r.boolean(g, "events", d.events)?,
            base_path: base_path(&r, g, "base_path", &d.base_path)?,
            http: r.boolean(g, "http", d.http)?,
            port: r.int(g, "port", d.port)?,
            interface: r.string(g, "interface")?,
            ip: r.string(g, "ip")?,
            https: r.boolean(g, "https", d.https)?,
            secure_port: r.int(g, "secure_port", d.secure_port)?,
            secure_interface: r.string(g, "secure_interface")?,
            secure_ip: r.string(g, "secure_ip")?,
            acl: r.list_or_empty(g, "acl")?,
            acl_forwarded: r.boolean(g, "acl_forwarded", d.acl_forwarded)?,
            mhd_connection_limit: r.int(g, "mhd_connection_limit", d.mhd_connection_limit)?,
            mhd_debug: r.boolean(g, "mhd_debug", d.mhd_debug)?,
            admin_base_path: base_path(&r, a, "admin_base_path", &d.admin_base_path)?,
            admin_http: r.boolean(a, "admin_http", d.admin_http)?,
            admin_port: r.int(a, "admin_port", d.admin_port)?,
            admin_interface: r.string(a, "admin_interface")?,
            admin_ip: r.string(a, "admin_ip")?,
            admin_https: r.boolean(a, "admin_https", d.admin_https)?,
            admin_secure_port: r.int(a, "admin_secure_port", d.admin_secure_port)?,
            admin_secure_interface: r.string(a, "admin_secure_interface")?,
            admin_secure_ip: r.string(a, "admin_secure_ip")?,
            admin_acl: r.list_or_empty(a, "admin_acl")?,
            // Janus reads this one from `general`, not `admin`.
            admin_acl_forwarded: r.boolean(g, "admin_acl_forwarded", d.admin_acl_forwarded)?,
            allow_origin: r.string(c, "allow_origin")?,
            enforce_cors: r.boolean(c, "enforce_cors", d.enforce_cors)?,
            cert_pem: r.string(t, "cert_pem")?,
            cert_key: r.string(t, "cert_key")?,
            cert_pwd: r.string(t, "cert_pwd")?,
            ciphers: r.string(t, "ciphers")?,
        })
    }
}

/// `janus.transport.websockets.jcfg`.
///
/// [`Default`] is Janus's code defaults (plain WebSockets off unless `ws = true`);
/// [`WsConfig::builtin`] is what jano uses with no file.
#[derive(Debug, Clone, PartialEq)]
pub struct WsConfig {
    /// JSON output format.
    pub json: JsonFormat,
    /// Notify event handlers about transport events (default true).
    pub events: bool,
    /// Plain WebSockets Janus API enabled.
    pub ws: bool,
    /// Port (default 8188).
    pub ws_port: u16,
    /// Interface name.
    pub ws_interface: Option<String>,
    /// IP.
    pub ws_ip: Option<String>,
    /// Unix socket path instead of TCP.
    pub ws_unix: Option<String>,
    /// Secure WebSockets enabled.
    pub wss: bool,
    /// Secure port (default 8989).
    pub wss_port: u16,
    /// Secure interface name.
    pub wss_interface: Option<String>,
    /// Secure IP.
    pub wss_ip: Option<String>,
    /// Secure Unix socket path.
    pub wss_unix: Option<String>,
    /// Seconds of silence before sending a ping; needs `pingpong_timeout` too.
    pub pingpong_trigger: u32,
    /// Seconds to wait for the pong before closing.
    pub pingpong_timeout: u32,
    /// libwebsockets log levels (`err,warn,...`, `none`, `all`).
    pub ws_logging: Option<String>,
    /// Allowed client address prefixes (empty = all).
    pub ws_acl: Vec<String>,
    /// Check the ACL against `X-Forwarded-For` too.
    pub ws_acl_forwarded: bool,
    /// Plain WebSockets Admin API enabled.
    pub admin_ws: bool,
    /// Admin port (default 7188).
    pub admin_ws_port: u16,
    /// Admin interface name.
    pub admin_ws_interface: Option<String>,
    /// Admin IP.
    pub admin_ws_ip: Option<String>,
    /// Admin Unix socket path.
    pub admin_ws_unix: Option<String>,
    /// Secure admin WebSockets enabled.
    pub admin_wss: bool,
    /// Secure admin port (default 7989).
    pub admin_wss_port: u16,
    /// Secure admin interface name.
    pub admin_wss_interface: Option<String>,
    /// Secure admin IP.
    pub admin_wss_ip: Option<String>,
    /// Secure admin Unix socket path.
    pub admin_wss_unix: Option<String>,
    /// Admin ACL.
    pub admin_ws_acl: Vec<String>,
    /// Admin ACL checks `X-Forwarded-For` (read from `general`, as Janus does).
    pub admin_ws_acl_forwarded: bool,
    /// Allowed `Origin`; `None` = any.
    pub allow_origin: Option<String>,
    /// Reject handshakes whose `Origin` does not match.
    pub enforce_cors: bool,
    /// TLS certificate.
    pub cert_pem: Option<String>,
    /// TLS key; defaults to `cert_pem` (a combined PEM), as in Janus.
    pub cert_key: Option<String>,
    /// TLS key passphrase.
    pub cert_pwd: Option<String>,
    /// OpenSSL cipher list.
    pub ciphers: Option<String>,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            json: JsonFormat::default(),
            events: true,
            ws: false,
            ws_port: 8188,
            ws_interface: None,
            ws_ip: None,
            ws_unix: None,
            wss: false,
            wss_port: 8989,
            wss_interface: None,
            wss_ip: None,
            wss_unix: None,
            pingpong_trigger: 0,
            pingpong_timeout: 0,
            ws_logging: None,
            ws_acl: Vec::new(),
            ws_acl_forwarded: false,
            admin_ws: false,
            admin_ws_port: 7188,
            admin_ws_interface: None,
            admin_ws_ip: None,
            admin_ws_unix: None,
            admin_wss: false,
            admin_wss_port: 7989,
            admin_wss_interface: None,
            admin_wss_ip: None,
            admin_wss_unix: None,
            admin_ws_acl: Vec::new(),
            admin_ws_acl_forwarded: false,
            allow_origin: None,
            enforce_cors: false,
            cert_pem: None,
            cert_key: None,
            cert_pwd: None,
            ciphers: None,
        }
    }
}

impl WsConfig {
    /// jano without a file: Janus API on all interfaces port 8188, Admin API on
    /// `127.0.0.1:7188` only.
    pub fn builtin() -> WsConfig {
        WsConfig {
            ws: true,
            admin_ws: true,
            admin_ws_ip: Some("127.0.0.1".to_string()),
            ..WsConfig::default()
        }
    }

    /// Reads a parsed file; unusable values are errors naming `file_name` and the key.
    pub fn from_jcfg(cfg: &Jcfg, file_name: &str) -> Result<WsConfig, ConfigError> {
        let r = Reader::new(cfg, file_name);
        let d = WsConfig::default();
        let (g, a, c, t) = ("general", "admin", "cors", "certificates");
        let cert_pem = r.string(t, "cert_pem")?;
        Ok(WsConfig {
            json: json_format(&r)?,
            events: r.boolean(g, "events", d.events)?,
            ws: r.boolean(g, "ws", d.ws)?,
            ws_port: r.int(g, "ws_port", d.ws_port)?,
            ws_interface: r.string(g, "ws_interface")?,
            ws_ip: r.string(g, "ws_ip")?,
            ws_unix: r.string(g, "ws_unix")?,
            wss: r.boolean(g, "wss", d.wss)?,
            wss_port: r.int(g, "wss_port", d.wss_port)?,
            wss_interface: r.string(g, "wss_interface")?,
            wss_ip: r.string(g, "wss_ip")?,
            wss_unix: r.string(g, "wss_unix")?,
            pingpong_trigger: r.int(g, "pingpong_trigger", d.pingpong_trigger)?,
            pingpong_timeout: r.int(g, "pingpong_timeout", d.pingpong_timeout)?,
            ws_logging: r.string(g, "ws_logging")?,
            ws_acl: r.list_or_empty(g, "ws_acl")?,
            ws_acl_forwarded: r.boolean(g, "ws_acl_forwarded", d.ws_acl_forwarded)?,
            admin_ws: r.boolean(a, "admin_ws", d.admin_ws)?,
            admin_ws_port: r.int(a, "admin_ws_port", d.admin_ws_port)?,
            admin_ws_interface: r.string(a, "admin_ws_interface")?,
            admin_ws_ip: r.string(a, "admin_ws_ip")?,
            admin_ws_unix: r.string(a, "admin_ws_unix")?,
            admin_wss: r.boolean(a, "admin_wss", d.admin_wss)?,
            admin_wss_port: r.int(a, "admin_wss_port", d.admin_wss_port)?,
            admin_wss_interface: r.string(a, "admin_wss_interface")?,
            admin_wss_ip: r.string(a, "admin_wss_ip")?,
            admin_wss_unix: r.string(a, "admin_wss_unix")?,
            admin_ws_acl: r.list_or_empty(a, "admin_ws_acl")?,
            // Janus reads this one from `general`, not `admin`.
            admin_ws_acl_forwarded: r.boolean(
                g,
                "admin_ws_acl_forwarded",
                d.admin_ws_acl_forwarded,
            )?,
            allow_origin: r.string(c, "allow_origin")?,
            enforce_cors: r.boolean(c, "enforce_cors", d.enforce_cors)?,
            cert_key: r.string(t, "cert_key")?.or_else(|| cert_pem.clone()),
            cert_pem,
            cert_pwd: r.string(t, "cert_pwd")?,
            ciphers: r.string(t, "ciphers")?,
        })
    }
}
