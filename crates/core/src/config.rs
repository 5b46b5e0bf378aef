//! The part of the configuration the core acts on, in plain values (the server fills it from
//! `janus.jcfg`).

/// Core settings. Times are seconds, as in `janus.jcfg`.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreConfig {
    pub server_name: String,
    /// 0 = sessions never time out.
    pub session_timeout: u64,
    /// 0 = sessions die with their transport instance.
    pub reclaim_session_timeout: u64,
    pub candidates_timeout: u64,
    pub api_secret: Option<String>,
    pub token_auth: bool,
    /// With `token_auth`, tokens are HMAC-signed with this instead of stored.
    pub token_auth_secret: Option<String>,
    pub admin_secret: Option<String>,
    pub accept_new_sessions: bool,
    pub opaqueid_in_api: bool,
    pub hide_dependencies: bool,
    pub log_level: u8,
    pub log_timestamps: bool,
    pub log_colors: bool,
    pub log_to_stdout: bool,
    pub log_to_file: Option<String>,
    pub local_ip: String,
    pub public_ips: Vec<String>,
    pub ipv6: bool,
    pub ice_lite: bool,
    pub ice_tcp: bool,
    pub full_trickle: bool,
    /// `mdns-enabled` in `info`: mDNS candidates are resolved unless `ignore_mdns`.
    pub mdns_enabled: bool,
    pub min_nack_queue: u64,
    pub nack_optimizations: bool,
    pub no_media_timer: u64,
    pub slowlink_threshold: u64,
    pub twcc_period: u64,
    pub dtls_mtu: u64,
    pub event_loops: u64,
    pub allow_loop_indication: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            server_name: "MyJanusInstance".into(),
            session_timeout: 60,
            reclaim_session_timeout: 0,
            candidates_timeout: 45,
            api_secret: None,
            token_auth: false,
            token_auth_secret: None,
            admin_secret: None,
            accept_new_sessions: true,
            opaqueid_in_api: false,
            hide_dependencies: false,
            log_level: 4,
            log_timestamps: false,
            log_colors: true,
            log_to_stdout: true,
            log_to_file: None,
            local_ip: "127.0.0.1".into(),
            public_ips: Vec::new(),
            ipv6: false,
            ice_lite: false,
            ice_tcp: false,
            full_trickle: false,
            mdns_enabled: true,
            min_nack_queue: 200,
            nack_optimizations: false,
            no_media_timer: 1,
            slowlink_threshold: 0,
            twcc_period: 200,
            dtls_mtu: 1200,
            event_loops: 0,
            allow_loop_indication: false,
        }
    }
}
