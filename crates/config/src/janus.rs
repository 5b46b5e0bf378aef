//! Typed `janus.jcfg` with Janus's defaults.

use crate::error::ConfigError;
use crate::jcfg::Jcfg;
use crate::read::{split_list, Reader};

/// Janus's default DTLS cipher list, used when `certificates.dtls_ciphers` is unset.
pub const DEFAULT_DTLS_CIPHERS: &str =
    "DEFAULT:!NULL:!aNULL:!SHA256:!SHA384:!aECDH:!AESGCM+AES256:!aPSK";

/// The sample `admin_secret` Meetecho ships, which jano's built-in configuration also uses.
pub const SAMPLE_ADMIN_SECRET: &str = "janusoverlord";

/// The whole of `janus.jcfg`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JanusConfig {
    /// `general` category.
    pub general: GeneralConfig,
    /// `certificates` category (DTLS).
    pub certificates: CertificatesConfig,
    /// `media` category.
    pub media: MediaConfig,
    /// `nat` category.
    pub nat: NatConfig,
    /// `plugins.disable`: shared-object names such as `libjanus_echotest.so`.
    pub plugins_disable: Vec<String>,
    /// `transports.disable`.
    pub transports_disable: Vec<String>,
    /// `loggers.disable`.
    pub loggers_disable: Vec<String>,
    /// `events` category (event handlers).
    pub events: EventsConfig,
}

/// `general` category of `janus.jcfg`.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneralConfig {
    /// Where component `.jcfg` files live.
    pub configs_folder: Option<String>,
    /// Shared-object folders; kept for compatibility, jano links components statically.
    pub plugins_folder: Option<String>,
    /// See `plugins_folder`.
    pub transports_folder: Option<String>,
    /// See `plugins_folder`.
    pub events_folder: Option<String>,
    /// See `plugins_folder`.
    pub loggers_folder: Option<String>,
    /// Log to standard output (default true).
    pub log_to_stdout: bool,
    /// Log file path.
    pub log_to_file: Option<String>,
    /// `"SIGUSR1"` or `"SIGHUP"`: reopen the log file on that signal.
    pub log_rotate_sig: Option<String>,
    /// 0 (none) to 7 (huge); default 4 (info).
    pub debug_level: u8,
    /// Prefix log lines with a timestamp.
    pub debug_timestamps: bool,
    /// Colourful log output (default true).
    pub debug_colors: bool,
    /// Lock debugging (very verbose).
    pub debug_locks: bool,
    /// Text prefixed to every log line.
    pub log_prefix: Option<String>,
    /// Run in background.
    pub daemonize: bool,
    /// PID file path.
    pub pid_file: Option<String>,
    /// Secret every Janus API request must carry.
    pub api_secret: Option<String>,
    /// Enable stored-token authentication.
    pub token_auth: bool,
    /// Secret for HMAC-SHA1 signed tokens (implies token auth).
    pub token_auth_secret: Option<String>,
    /// Secret every Admin API request must carry.
    pub admin_secret: Option<String>,
    /// Local IP advertised in SDP; auto-detected when unset.
    pub interface: Option<String>,
    /// `server-name` in `info`, `emitter` in events (default `MyJanusInstance`).
    pub server_name: String,
    /// Seconds without activity before a session expires; 0 = never (default 60).
    pub session_timeout: u64,
    /// Seconds a session can be reclaimed after its transport went away (default 0).
    pub reclaim_session_timeout: u64,
    /// Seconds to keep trickled candidates of unknown handles (default 45, must be > 0).
    pub candidates_timeout: u64,
    /// Extension for recordings in progress (e.g. `tmp` → `.mjr.tmp`).
    pub recordings_tmp_ext: Option<String>,
    /// Number of static event loops; 0 = one thread per handle.
    pub event_loops: u32,
    /// Honour `loop_index` in `attach`.
    pub allow_loop_indication: bool,
    /// Max worker threads for `message` requests; 0 = unlimited.
    pub task_pool_size: u32,
    /// Echo `opaque_id` in API responses and events.
    pub opaqueid_in_api: bool,
    /// Omit `dependencies` from `info`.
    pub hide_dependencies: bool,
    /// Abort when a component fails to load.
    pub exit_on_dl_error: bool,
    /// Disable DTLS/SRTP (debugging only).
    pub no_webrtc_encryption: bool,
    /// Folders recordings and captures may not be written into.
    pub protected_folders: Vec<String>,
}

impl Default for GeneralConfig {
    fn default() -> Self {
        GeneralConfig {
            configs_folder: None,
            plugins_folder: None,
            transports_folder: None,
            events_folder: None,
            loggers_folder: None,
            log_to_stdout: true,
            log_to_file: None,
            log_rotate_sig: None,
            debug_level: 4,
            debug_timestamps: false,
            debug_colors: true,
            debug_locks: false,
            log_prefix: None,
            daemonize: false,
            pid_file: None,
            api_secret: None,
            token_auth: false,
            token_auth_secret: None,
            admin_secret: None,
            interface: None,
            server_name: "MyJanusInstance".to_string(),
            session_timeout: 60,
            reclaim_session_timeout: 0,
            candidates_timeout: 45,
            recordings_tmp_ext: None,
            event_loops: 0,
            allow_loop_indication: false,
            task_pool_size: 0,
            opaqueid_in_api: false,
            hide_dependencies: false,
            exit_on_dl_error: false,
            no_webrtc_encryption: false,
            protected_folders: Vec::new(),
        }
    }
}

/// `certificates` category: the DTLS certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificatesConfig {
    /// Certificate PEM; a self-signed ECDSA P-256 one is generated when unset.
    pub cert_pem: Option<String>,
    /// Private key PEM.
    pub cert_key: Option<String>,
    /// Key passphrase.
    pub cert_pwd: Option<String>,
    /// Accept self-signed peer certificates (default true; browsers always use them).
    pub dtls_accept_selfsigned: bool,
    /// OpenSSL cipher list.
    pub dtls_ciphers: String,
    /// Generate RSA instead of ECDSA.
    pub rsa_private_key: bool,
}

impl Default for CertificatesConfig {
    fn default() -> Self {
        CertificatesConfig {
            cert_pem: None,
            cert_key: None,
            cert_pwd: None,
            dtls_accept_selfsigned: true,
            dtls_ciphers: DEFAULT_DTLS_CIPHERS.to_string(),
            rsa_private_key: false,
        }
    }
}

/// `media` category.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaConfig {
    /// Gather IPv6 candidates.
    pub ipv6: bool,
    /// Also IPv6 link-local ones.
    pub ipv6_linklocal: bool,
    /// Minimum NACK queue, ms (default 200).
    pub min_nack_queue: u32,
    /// RTP/RTCP port range; `None` = any port.
    pub rtp_port_range: Option<(u16, u16)>,
    /// Starting DTLS MTU (default 1200).
    pub dtls_mtu: u32,
    /// Seconds without media before a `media` false event; 0 disables (default 1).
    pub no_media_timer: u32,
    /// Lost packets per second triggering `slowlink`; 0 disables.
    pub slowlink_threshold: u32,
    /// TWCC feedback period, ms (default 200).
    pub twcc_period: u32,
    /// DTLS retransmission timeout, ms (default 1000).
    pub dtls_timeout: u32,
    /// Empty the NACK buffer when a keyframe is sent.
    pub nack_optimizations: bool,
    /// DSCP value for outgoing packets; 0 = unset.
    pub dscp: u8,
    /// jano only: carry every PeerConnection over this one UDP port (Janus has no such mode).
    pub single_port: Option<u16>,
    /// jano only: media worker threads; 0 = one per core.
    pub media_workers: u32,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            ipv6: false,
            ipv6_linklocal: false,
            min_nack_queue: 200,
            rtp_port_range: None,
            dtls_mtu: 1200,
            no_media_timer: 1,
            slowlink_threshold: 0,
            twcc_period: 200,
            dtls_timeout: 1000,
            nack_optimizations: false,
            dscp: 0,
            single_port: None,
            media_workers: 0,
        }
    }
}

/// `nat` category: STUN/TURN and ICE behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct NatConfig {
    /// STUN server host.
    pub stun_server: Option<String>,
    /// STUN port (default 3478).
    pub stun_port: u16,
    /// libnice debugging.
    pub nice_debug: bool,
    /// Full trickle (default: half-trickle, server candidates in the SDP).
    pub full_trickle: bool,
    /// `"regular"` or `"aggressive"`; `None` = library default.
    pub ice_nomination: Option<String>,
    /// RFC 7675 consent freshness.
    pub ice_consent_freshness: bool,
    /// Use connectivity checks as keepalives.
    pub ice_keepalive_conncheck: bool,
    /// ICE Lite mode.
    pub ice_lite: bool,
    /// ICE-TCP candidates.
    pub ice_tcp: bool,
    /// Hang up as soon as ICE fails instead of waiting.
    pub hangup_on_failed: bool,
    /// Drop mDNS (`.local`) candidates.
    pub ignore_mdns: bool,
    /// With 1:1 NAT, also keep the private host candidate.
    pub keep_private_host: bool,
    /// Honour clients asking for relay-only.
    pub allow_force_relay: bool,
    /// Start even if the STUN/TURN server is unreachable.
    pub ignore_unreachable_ice_server: bool,
    /// Public IPs to advertise (comma list in the file).
    pub nat_1_1_mapping: Vec<String>,
    /// TURN server host.
    pub turn_server: Option<String>,
    /// TURN port (default 3478).
    pub turn_port: u16,
    /// `udp`, `tcp` or `tls`.
    pub turn_type: Option<String>,
    /// TURN user.
    pub turn_user: Option<String>,
    /// TURN password.
    pub turn_pwd: Option<String>,
    /// TURN REST API backend URL.
    pub turn_rest_api: Option<String>,
    /// TURN REST API key.
    pub turn_rest_api_key: Option<String>,
    /// TURN REST API HTTP method (default `GET`).
    pub turn_rest_api_method: String,
    /// TURN REST API timeout, seconds (default 10, at least 1).
    pub turn_rest_api_timeout: u32,
    /// Only gather on these interfaces / IP prefixes.
    pub ice_enforce_list: Vec<String>,
    /// Never gather on these interfaces / IP prefixes (default `vmnet`).
    pub ice_ignore_list: Vec<String>,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            stun_server: None,
            stun_port: 3478,
            nice_debug: false,
            full_trickle: false,
            ice_nomination: None,
            ice_consent_freshness: false,
            ice_keepalive_conncheck: false,
            ice_lite: false,
            ice_tcp: false,
            hangup_on_failed: false,
            ignore_mdns: false,
            keep_private_host: false,
            allow_force_relay: false,
            ignore_unreachable_ice_server: false,
            nat_1_1_mapping: Vec::new(),
            turn_server: None,
            turn_port: 3478,
            turn_type: None,
            turn_user: None,
            turn_pwd: None,
            turn_rest_api: None,
            turn_rest_api_key: None,
            turn_rest_api_method: "GET".to_string(),
            turn_rest_api_timeout: 10,
            ice_enforce_list: Vec::new(),
            ice_ignore_list: vec!["vmnet".to_string()],
        }
    }
}

/// `events` category: event handler switches.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsConfig {
    /// Master switch for event handlers (default false).
    pub broadcast: bool,
    /// One media stats event per handle instead of one per medium.
    pub combine_media_stats: bool,
    /// Event handler shared objects not to load.
    pub disable: Vec<String>,
    /// Seconds between media stats events; 0 disables them (default 1).
    pub stats_period: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            broadcast: false,
            combine_media_stats: false,
            disable: Vec::new(),
            stats_period: 1,
        }
    }
}

/// Whether `package` (e.g. `janus.plugin.echotest`) is named in a Janus `disable` list.
///
/// Janus lists shared-object names (`libjanus_echotest.so`); jano links components in, so
/// the name is mapped: `libjanus_echotest.so`, `libjanus_echotest`, `echotest` and
/// `janus.plugin.echotest` all match that package.
pub fn disabled_component(list: &[String], package: &str) -> bool {
    let wanted = short_name(package);
    list.iter().map(|e| e.trim()).any(|entry| {
        if entry.starts_with("janus.") && package.starts_with("janus.") {
            entry == package
        } else {
            !entry.is_empty() && short_name(entry) == wanted
        }
    })
}

/// `libjanus_echotest.so` / `janus.plugin.echotest` / `echotest` → `echotest`.
fn short_name(name: &str) -> &str {
    let name = name.trim();
    if let Some(base) = name.strip_prefix("libjanus_") {
        return base.strip_suffix(".so").unwrap_or(base);
    }
    if name.starts_with("janus.") {
        return name.rsplit('.').next().unwrap_or(name);
    }
    name
}

impl JanusConfig {
    /// jano's configuration when there is no `janus.jcfg`: Janus defaults plus the sample
    /// `admin_secret`, so the loopback-only Admin API is usable out of the box.
    pub fn builtin() -> JanusConfig {
        let mut cfg = JanusConfig::default();
        cfg.general.admin_secret = Some(SAMPLE_ADMIN_SECRET.to_string());
        cfg
    }

    /// Reads a parsed `janus.jcfg`; missing keys take Janus's defaults, unusable values are
    /// errors naming `file_name` and the key.
    pub fn from_jcfg(cfg: &Jcfg, file_name: &str) -> Result<JanusConfig, ConfigError> {
        let r = Reader::new(cfg, file_name);
        let d = JanusConfig::default();
        let g = "general";
        let dg = &d.general;
        let debug_level: u8 = r.int(g, "debug_level", dg.debug_level)?;
        if debug_level > 7 {
            return Err(r.invalid(g, "debug_level", format!("{debug_level} is not in 0..=7")));
        }
        let candidates_timeout: u64 = r.int(g, "candidates_timeout", dg.candidates_timeout)?;
        if candidates_timeout == 0 {
            return Err(r.invalid(g, "candidates_timeout", "must be at least 1".into()));
        }
        let log_rotate_sig = r.string(g, "log_rotate_sig")?;
        if let Some(sig) = &log_rotate_sig {
            if !sig.eq_ignore_ascii_case("SIGUSR1") && !sig.eq_ignore_ascii_case("SIGHUP") {
                return Err(r.invalid(
                    g,
                    "log_rotate_sig",
                    format!("{sig:?} is not \"SIGUSR1\" or \"SIGHUP\""),
                ));
            }
        }
        let general = GeneralConfig {
            configs_folder: r.string(g, "configs_folder")?,
            plugins_folder: r.string(g, "plugins_folder")?,
            transports_folder: r.string(g, "transports_folder")?,
            events_folder: r.string(g, "events_folder")?,
            loggers_folder: r.string(g, "loggers_folder")?,
            log_to_stdout: r.boolean(g, "log_to_stdout", dg.log_to_stdout)?,
            log_to_file: r.string(g, "log_to_file")?,
            log_rotate_sig,
            debug_level,
            debug_timestamps: r.boolean(g, "debug_timestamps", dg.debug_timestamps)?,
            debug_colors: r.boolean(g, "debug_colors", dg.debug_colors)?,
            debug_locks: r.boolean(g, "debug_locks", dg.debug_locks)?,
            log_prefix: r.string(g, "log_prefix")?,
            daemonize: r.boolean(g, "daemonize", dg.daemonize)?,
            pid_file: r.string(g, "pid_file")?,
            api_secret: r.string(g, "api_secret")?,
            token_auth: r.boolean(g, "token_auth", dg.token_auth)?,
            token_auth_secret: r.string(g, "token_auth_secret")?,
            admin_secret: r.string(g, "admin_secret")?,
            interface: r.string(g, "interface")?,
            server_name: r.string_or(g, "server_name", &dg.server_name)?,
            session_timeout: r.int(g, "session_timeout", dg.session_timeout)?,
            reclaim_session_timeout: r.int(
                g,
                "reclaim_session_timeout",
                dg.reclaim_session_timeout,
            )?,
            candidates_timeout,
            recordings_tmp_ext: r.string(g, "recordings_tmp_ext")?,
            event_loops: r.int(g, "event_loops", dg.event_loops)?,
            allow_loop_indication: r.boolean(
                g,
                "allow_loop_indication",
                dg.allow_loop_indication,
            )?,
            task_pool_size: r.int(g, "task_pool_size", dg.task_pool_size)?,
            opaqueid_in_api: r.boolean(g, "opaqueid_in_api", dg.opaqueid_in_api)?,
            hide_dependencies: r.boolean(g, "hide_dependencies", dg.hide_dependencies)?,
            exit_on_dl_error: r.boolean(g, "exit_on_dl_error", dg.exit_on_dl_error)?,
            no_webrtc_encryption: r.boolean(g, "no_webrtc_encryption", dg.no_webrtc_encryption)?,
            protected_folders: r.list_or_empty(g, "protected_folders")?,
        };

        let c = "certificates";
        let dc = &d.certificates;
        let certificates = CertificatesConfig {
            cert_pem: r.string(c, "cert_pem")?,
            cert_key: r.string(c, "cert_key")?,
            cert_pwd: r.string(c, "cert_pwd")?,
            dtls_accept_selfsigned: r.boolean(
                c,
                "dtls_accept_selfsigned",
                dc.dtls_accept_selfsigned,
            )?,
            dtls_ciphers: r.string_or(c, "dtls_ciphers", &dc.dtls_ciphers)?,
            rsa_private_key: r.boolean(c, "rsa_private_key", dc.rsa_private_key)?,
        };

        let m = "media";
        let dm = &d.media;
        let rtp_port_range = match r.string(m, "rtp_port_range")? {
            None => None,
            Some(text) => {
                Some(parse_port_range(&text).map_err(|msg| r.invalid(m, "rtp_port_range", msg))?)
            }
        };
        let dscp: u8 = r.int(m, "dscp", dm.dscp)?;
        if dscp > 63 {
            return Err(r.invalid(m, "dscp", format!("{dscp} is not in 0..=63")));
        }
        let media = MediaConfig {
            ipv6: r.boolean(m, "ipv6", dm.ipv6)?,
            ipv6_linklocal: r.boolean(m, "ipv6_linklocal", dm.ipv6_linklocal)?,
            min_nack_queue: r.int(m, "min_nack_queue", dm.min_nack_queue)?,
            rtp_port_range,
            dtls_mtu: r.int(m, "dtls_mtu", dm.dtls_mtu)?,
            no_media_timer: r.int(m, "no_media_timer", dm.no_media_timer)?,
            slowlink_threshold: r.int(m, "slowlink_threshold", dm.slowlink_threshold)?,
            twcc_period: r.int(m, "twcc_period", dm.twcc_period)?,
            dtls_timeout: r.int(m, "dtls_timeout", dm.dtls_timeout)?,
            nack_optimizations: r.boolean(m, "nack_optimizations", dm.nack_optimizations)?,
            dscp,
            single_port: r.int_opt::<u16>(m, "single_port")?.filter(|p| *p != 0),
            media_workers: r.int(m, "media_workers", dm.media_workers)?,
        };

        let n = "nat";
        let dn = &d.nat;
        let ice_nomination = r.string(n, "ice_nomination")?;
        if let Some(v) = &ice_nomination {
            if !v.eq_ignore_ascii_case("regular") && !v.eq_ignore_ascii_case("aggressive") {
                return Err(r.invalid(
                    n,
                    "ice_nomination",
                    format!("{v:?} is not \"regular\" or \"aggressive\""),
                ));
            }
        }
        let turn_type = r.string(n, "turn_type")?;
        if let Some(v) = &turn_type {
            if !["udp", "tcp", "tls"]
                .iter()
                .any(|t| v.eq_ignore_ascii_case(t))
            {
                return Err(r.invalid(
                    n,
                    "turn_type",
                    format!("{v:?} is not \"udp\", \"tcp\" or \"tls\""),
                ));
            }
        }
        let turn_rest_api_timeout: u32 =
            r.int(n, "turn_rest_api_timeout", dn.turn_rest_api_timeout)?;
        if turn_rest_api_timeout == 0 {
            return Err(r.invalid(n, "turn_rest_api_timeout", "must be at least 1".into()));
        }
        let nat = NatConfig {
            stun_server: r.string(n, "stun_server")?,
            stun_port: r.int(n, "stun_port", dn.stun_port)?,
            nice_debug: r.boolean(n, "nice_debug", dn.nice_debug)?,
            full_trickle: r.boolean(n, "full_trickle", dn.full_trickle)?,
            ice_nomination,
            ice_consent_freshness: r.boolean(
                n,
                "ice_consent_freshness",
                dn.ice_consent_freshness,
            )?,
            ice_keepalive_conncheck: r.boolean(
                n,
                "ice_keepalive_conncheck",
                dn.ice_keepalive_conncheck,
            )?,
            ice_lite: r.boolean(n, "ice_lite", dn.ice_lite)?,
            ice_tcp: r.boolean(n, "ice_tcp", dn.ice_tcp)?,
            hangup_on_failed: r.boolean(n, "hangup_on_failed", dn.hangup_on_failed)?,
            ignore_mdns: r.boolean(n, "ignore_mdns", dn.ignore_mdns)?,
            keep_private_host: r.boolean(n, "keep_private_host", dn.keep_private_host)?,
            allow_force_relay: r.boolean(n, "allow_force_relay", dn.allow_force_relay)?,
            ignore_unreachable_ice_server: r.boolean(
                n,
                "ignore_unreachable_ice_server",
                dn.ignore_unreachable_ice_server,
            )?,
            nat_1_1_mapping: r.list_or_empty(n, "nat_1_1_mapping")?,
            turn_server: r.string(n, "turn_server")?,
            turn_port: r.int(n, "turn_port", dn.turn_port)?,
            turn_type,
            turn_user: r.string(n, "turn_user")?,
            turn_pwd: r.string(n, "turn_pwd")?,
            turn_rest_api: r.string(n, "turn_rest_api")?,
            turn_rest_api_key: r.string(n, "turn_rest_api_key")?,
            turn_rest_api_method: r.string_or(
                n,
                "turn_rest_api_method",
                &dn.turn_rest_api_method,
            )?,
            turn_rest_api_timeout,
            ice_enforce_list: r.list_or_empty(n, "ice_enforce_list")?,
            ice_ignore_list: r
                .list(n, "ice_ignore_list")?
                .unwrap_or_else(|| dn.ice_ignore_list.clone()),
        };

        let e = "events";
        let de = &d.events;
        let events = EventsConfig {
            broadcast: r.boolean(e, "broadcast", de.broadcast)?,
            combine_media_stats: r.boolean(e, "combine_media_stats", de.combine_media_stats)?,
            disable: r.list_or_empty(e, "disable")?,
            stats_period: r.int(e, "stats_period", de.stats_period)?,
        };

        Ok(JanusConfig {
            general,
            certificates,
            media,
            nat,
            plugins_disable: r.list_or_empty("plugins", "disable")?,
            transports_disable: r.list_or_empty("transports", "disable")?,
            loggers_disable: r.list_or_empty("loggers", "disable")?,
            events,
        })
    }

    /// Whether `plugins.disable` names this plugin package (e.g. `janus.plugin.echotest`).
    pub fn plugin_disabled(&self, package: &str) -> bool {
        disabled_component(&self.plugins_disable, package)
    }

    /// Whether `transports.disable` names this transport package.
    pub fn transport_disabled(&self, package: &str) -> bool {
        disabled_component(&self.transports_disable, package)
    }

    /// Whether `loggers.disable` names this logger package.
    pub fn logger_disabled(&self, package: &str) -> bool {
        disabled_component(&self.loggers_disable, package)
    }

    /// Whether `events.disable` names this event handler package.
    pub fn eventhandler_disabled(&self, package: &str) -> bool {
        disabled_component(&self.events.disable, package)
    }
}

/// Parses `"min-max"` the way Janus does: bounds are swapped if reversed and a max of 0
/// means 65535. Anything else is an error message.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let parts = split_list(&text.replace('-', ","));
    let bad = || format!("{text:?} is not a port range like \"20000-40000\"");
    if parts.len() != 2 || text.matches('-').count() != 1 {
        return Err(bad());
    }
    let mut ports = [0u16; 2];
    for (slot, part) in ports.iter_mut().zip(&parts) {
        *slot = part.parse::<u16>().map_err(|_| bad())?;
    }
    let [mut min, mut max] = ports;
    if min > max {
        std::mem::swap(&mut min, &mut max);
    }
    if max == 0 {
        max = u16::MAX;
    }
    Ok((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("20000-40000"), Ok((20000, 40000)));
        assert_eq!(parse_port_range(" 40000 - 20000 "), Ok((20000, 40000)));
        assert_eq!(parse_port_range("0-0"), Ok((0, 65535)));
        assert!(parse_port_range("20000").is_err());
        assert!(parse_port_range("a-b").is_err());
        assert!(parse_port_range("1-2-3").is_err());
        assert!(parse_port_range("1-70000").is_err());
    }

    #[test]
    fn disabled_names() {
        let list = vec![
            "libjanus_echotest.so".to_string(),
            " libjanus_recordplay.so".to_string(),
            "janus.plugin.videoroom".to_string(),
            "textroom".to_string(),
        ];
        assert!(disabled_component(&list, "janus.plugin.echotest"));
        assert!(disabled_component(&list, "janus.plugin.recordplay"));
        assert!(disabled_component(&list, "janus.plugin.videoroom"));
        assert!(disabled_component(&list, "janus.plugin.textroom"));
        assert!(disabled_component(&list, "echotest"));
        assert!(disabled_component(&list, "libjanus_echotest.so"));
        assert!(!disabled_component(&list, "janus.plugin.streaming"));
        assert!(!disabled_component(&list, "janus.transport.videoroom"));
        assert!(!disabled_component(&[], "janus.plugin.echotest"));
        assert!(!disabled_component(
            &["".to_string()],
            "janus.plugin.echotest"
        ));
    }
}
