//! `janus.transport.pfunix.jcfg`, with Janus's keys and defaults plus three of jano's own.

use jano_api::json::JsonFormat;
use jano_config::Jcfg;
use std::path::PathBuf;

/// Largest request accepted by default (Janus reads at most 8192 bytes).
pub const DEFAULT_MAX_MESSAGE: usize = 1 << 20;
/// Bounds on `max_message_size`: below Janus's own limit makes no sense, and the receive buffer
/// is allocated once per worker thread at this size.
const MIN_MAX_MESSAGE: usize = 8192;
const MAX_MAX_MESSAGE: usize = 16 << 20;
/// Owner and group may connect to the Janus API socket; only the owner to the Admin API one.
pub const DEFAULT_MODE: u32 = 0o660;
pub const DEFAULT_ADMIN_MODE: u32 = 0o600;

/// The socket type of one endpoint (`type` / `admin_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketType {
    /// Connection-oriented: each accepted connection is a client.
    SeqPacket,
    /// Connectionless: each bound sender path is a client.
    Dgram,
}

impl SocketType {
    pub fn name(self) -> &'static str {
        match self {
            SocketType::SeqPacket => "SOCK_SEQPACKET",
            SocketType::Dgram => "SOCK_DGRAM",
        }
    }
}

/// One socket the transport binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub path: PathBuf,
    pub kind: SocketType,
    /// Permission bits of the socket file (connecting needs write permission).
    pub mode: u32,
}

/// Settings from `janus.transport.pfunix.jcfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Whether there is anything to serve (the Janus API or the Admin API endpoint).
    pub enabled: bool,
    /// The Janus API socket (`general`: `enabled`, `path`, `type`, `permissions`).
    pub api: Option<Endpoint>,
    /// The Admin API socket (`admin`: `admin_enabled`, `admin_path`, `admin_type`,
    /// `admin_permissions`).
    pub admin: Option<Endpoint>,
    /// `general.json`: how responses and events are serialised.
    pub json: JsonFormat,
    /// `general.max_message_size`: largest request packet accepted, in bytes.
    pub max_message: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: false,
            api: None,
            admin: None,
            json: JsonFormat::Compact,
            max_message: DEFAULT_MAX_MESSAGE,
        }
    }
}

/// Janus's rule: `SOCK_SEQPACKET` or `SOCK_DGRAM` (any case); anything else is SEQPACKET with a
/// warning, so that a configuration Janus accepts starts here too.
fn socket_type(j: &Jcfg, cat: &str, key: &str) -> SocketType {
    match j.get_str(cat, key) {
        None => SocketType::SeqPacket,
        Some(t) if t.eq_ignore_ascii_case("SOCK_SEQPACKET") => SocketType::SeqPacket,
        Some(t) if t.eq_ignore_ascii_case("SOCK_DGRAM") => SocketType::Dgram,
        Some(t) => {
            tracing::warn!(
                "janus.transport.pfunix: unknown {cat}.{key} '{t}', assuming SOCK_SEQPACKET"
            );
            SocketType::SeqPacket
        }
    }
}

/// An octal mode: `"0660"`, `"660"`, `"0o660"` (libconfig has no octal literals, so an unquoted
/// `0660` arrives as the integer 660 and is read as octal too).
fn mode(j: &Jcfg, cat: &str, key: &str, default: u32) -> Result<u32, String> {
    let Some(text) = j.get_str(cat, key) else {
        return Ok(default);
    };
    let t = text.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "{cat}.{key}: '{text}' is not an octal permission mode such as \"0660\""
        )),
    }
}

fn endpoint(
    j: &Jcfg,
    cat: &str,
    keys: [&str; 4],
    default_mode: u32,
) -> Result<Option<Endpoint>, String> {
    let [enabled, path, kind, perms] = keys;
    if !j.get_bool(cat, enabled).unwrap_or(false) {
        return Ok(None);
    }
    let kind = socket_type(j, cat, kind);
    let mode = mode(j, cat, perms, default_mode)?;
    match j.get_str(cat, path).filter(|p| !p.is_empty()) {
        Some(p) => Ok(Some(Endpoint {
            path: PathBuf::from(p),
            kind,
            mode,
        })),
        None => {
            // Janus skips an endpoint without a path, with a warning, and keeps running.
            tracing::warn!("janus.transport.pfunix: {cat}.{enabled} is set but {cat}.{path} is missing: not serving it");
            Ok(None)
        }
    }
}

impl Settings {
    pub fn from_jcfg(j: &Jcfg) -> Result<Settings, String> {
        let api = endpoint(
            j,
            "general",
            ["enabled", "path", "type", "permissions"],
            DEFAULT_MODE,
        )?;
        let admin = endpoint(
            j,
            "admin",
            [
                "admin_enabled",
                "admin_path",
                "admin_type",
                "admin_permissions",
            ],
            DEFAULT_ADMIN_MODE,
        )?;
        let json = match j.get_str("general", "json") {
            None => JsonFormat::Compact,
            Some(t) => match JsonFormat::parse(&t) {
                Some(f) => f,
                None => {
                    return Err(format!(
                        "general.json: '{t}' is not \"compact\", \"indented\" or \"plain\""
                    ))
                }
            },
        };
        let max_message = match j.get_str("general", "max_message_size") {
            None => DEFAULT_MAX_MESSAGE,
            Some(t) => match t.trim().parse::<usize>() {
                Ok(n) if (MIN_MAX_MESSAGE..=MAX_MAX_MESSAGE).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "general.max_message_size: '{t}' is not a size between {MIN_MAX_MESSAGE} and {MAX_MAX_MESSAGE} bytes"
                    ))
                }
            },
        };
        if let (Some(a), Some(b)) = (&api, &admin) {
            if a.path == b.path {
                return Err(format!(
                    "general.path and admin.admin_path are the same file ({})",
                    a.path.display()
                ));
            }
        }
        Ok(Settings {
            enabled: api.is_some() || admin.is_some(),
            api,
            admin,
            json,
            max_message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        let j = Jcfg::parse(text, "janus.transport.pfunix.jcfg").map_err(|e| e.to_string())?;
        Settings::from_jcfg(&j)
    }

    #[test]
    fn defaults_and_janus_sample() {
        let s = parse("general: {\n}\n").unwrap();
        assert!(!s.enabled);
        let s = parse(
            "general: {\n enabled = true\n path = \"/tmp/ux-janusapi\"\n}\nadmin: {\n admin_enabled = false\n admin_path = \"/tmp/ux-janusadmin\"\n}\n",
        )
        .unwrap();
        assert!(s.enabled);
        assert_eq!(
            s.api,
            Some(Endpoint {
                path: "/tmp/ux-janusapi".into(),
                kind: SocketType::SeqPacket,
                mode: 0o660
            })
        );
        assert_eq!(s.admin, None);
        assert_eq!(s.max_message, DEFAULT_MAX_MESSAGE);
        assert_eq!(s.json, JsonFormat::Compact);
    }

    #[test]
    fn types_modes_and_errors() {
        let s = parse(
            "general: {\n enabled = true\n path = \"/a\"\n type = \"sock_dgram\"\n permissions = \"0600\"\n json = \"indented\"\n max_message_size = 65536\n}\nadmin: {\n admin_enabled = true\n admin_path = \"/b\"\n admin_type = \"bogus\"\n admin_permissions = 666\n}\n",
        )
        .unwrap();
        let api = s.api.unwrap();
        assert_eq!(api.kind, SocketType::Dgram);
        assert_eq!(api.mode, 0o600);
        let admin = s.admin.unwrap();
        assert_eq!(
            admin.kind,
            SocketType::SeqPacket,
            "unknown type: Janus's fallback"
        );
        assert_eq!(admin.mode, 0o666);
        assert_eq!(s.json, JsonFormat::Indented);
        assert_eq!(s.max_message, 65536);
        assert!(
            parse("general: {\n enabled = true\n path = \"/a\"\n permissions = \"rw\"\n}\n")
                .is_err()
        );
        assert!(
            parse("general: {\n enabled = true\n path = \"/a\"\n permissions = \"1777\"\n}\n")
                .is_err()
        );
        assert!(
            parse("general: {\n enabled = true\n path = \"/a\"\n max_message_size = 10\n}\n")
                .is_err()
        );
        assert!(
            parse("general: {\n enabled = true\n path = \"/a\"\n json = \"pretty\"\n}\n").is_err()
        );
        assert!(parse("general: {\n enabled = true\n path = \"/a\"\n}\nadmin: {\n admin_enabled = true\n admin_path = \"/a\"\n}\n").is_err());
        // Enabled without a path: skipped, as Janus does.
        let s = parse("general: {\n enabled = true\n}\n").unwrap();
        assert!(!s.enabled);
    }
}
