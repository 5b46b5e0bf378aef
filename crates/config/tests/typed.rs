//! Typed configuration: Janus defaults, value conversion and type errors.

use jano_config::{
    ConfigError, ConfigSet, HttpConfig, JanusConfig, Jcfg, JsonFormat, WsConfig,
    DEFAULT_DTLS_CIPHERS,
};

fn janus(text: &str) -> Result<JanusConfig, ConfigError> {
    JanusConfig::from_jcfg(&Jcfg::parse(text, "janus.jcfg").unwrap(), "janus.jcfg")
}

fn http(text: &str) -> Result<HttpConfig, ConfigError> {
    HttpConfig::from_jcfg(
        &Jcfg::parse(text, "janus.transport.http.jcfg").unwrap(),
        "janus.transport.http.jcfg",
    )
}

fn ws(text: &str) -> Result<WsConfig, ConfigError> {
    WsConfig::from_jcfg(
        &Jcfg::parse(text, "janus.transport.websockets.jcfg").unwrap(),
        "janus.transport.websockets.jcfg",
    )
}

#[test]
fn empty_janus_jcfg_gives_janus_defaults() {
    let cfg = janus("").unwrap();
    assert_eq!(cfg, JanusConfig::default());
    let g = &cfg.general;
    assert_eq!(g.server_name, "MyJanusInstance");
    assert_eq!(g.session_timeout, 60);
    assert_eq!(g.reclaim_session_timeout, 0);
    assert_eq!(g.candidates_timeout, 45);
    assert_eq!(g.debug_level, 4);
    assert!(g.debug_colors && g.log_to_stdout);
    assert!(!g.debug_timestamps && !g.token_auth && !g.opaqueid_in_api);
    assert_eq!(g.api_secret, None);
    assert_eq!(g.admin_secret, None);
    assert_eq!(g.event_loops, 0);
    assert!(g.protected_folders.is_empty());
    assert!(cfg.certificates.dtls_accept_selfsigned);
    assert_eq!(cfg.certificates.dtls_ciphers, DEFAULT_DTLS_CIPHERS);
    let m = &cfg.media;
    assert_eq!(
        (
            m.min_nack_queue,
            m.dtls_mtu,
            m.no_media_timer,
            m.twcc_period,
            m.dtls_timeout
        ),
        (200, 1200, 1, 200, 1000)
    );
    assert_eq!(
        (m.rtp_port_range, m.slowlink_threshold, m.dscp),
        (None, 0, 0)
    );
    assert_eq!(cfg.nat.stun_port, 3478);
    assert_eq!(cfg.nat.turn_port, 3478);
    assert_eq!(cfg.nat.turn_rest_api_method, "GET");
    assert_eq!(cfg.nat.turn_rest_api_timeout, 10);
    assert_eq!(cfg.nat.ice_ignore_list, ["vmnet"]);
    assert!(!cfg.nat.full_trickle && !cfg.nat.ice_lite);
    assert_eq!(cfg.events.stats_period, 1);
    assert!(!cfg.events.broadcast);
    assert!(cfg.plugins_disable.is_empty());
}

#[test]
fn janus_values_are_read() {
    let cfg = janus(
        r#"general: {
            server_name = "jano-test"; session_timeout = "30"; debug_level = 7
            api_secret = "s3cret"; token_auth = 1; interface = "10.0.0.1"
            protected_folders = [ "/bin", "/etc" ]; recordings_tmp_ext = "tmp"
            log_to_file = "/var/log/janus.log"; debug_colors = false
        }
        media: { rtp_port_range = "40000-20000"; ipv6 = true; dscp = 46 }
        nat: { nat_1_1_mapping = "1.2.3.4,5.6.7.8"; ice_enforce_list = "eth0, 192.168."
               ice_ignore_list = ""; full_trickle = "YES"; turn_type = "tls"; ice_nomination = "regular" }
        plugins: { disable = "libjanus_voicemail.so, libjanus_recordplay.so" }
        transports: { disable = "libjanus_rabbitmq.so" }
        loggers: { disable = "libjanus_jsonlog.so" }
        events: { broadcast = true; disable = "libjanus_sampleevh.so"; stats_period = 0 }"#,
    )
    .unwrap();
    let g = &cfg.general;
    assert_eq!(g.server_name, "jano-test");
    assert_eq!(g.session_timeout, 30);
    assert_eq!(g.debug_level, 7);
    assert_eq!(g.api_secret.as_deref(), Some("s3cret"));
    assert!(g.token_auth);
    assert!(!g.debug_colors);
    assert_eq!(g.protected_folders, ["/bin", "/etc"]);
    assert_eq!(cfg.media.rtp_port_range, Some((20000, 40000)));
    assert!(cfg.media.ipv6);
    assert_eq!(cfg.nat.nat_1_1_mapping, ["1.2.3.4", "5.6.7.8"]);
    assert_eq!(cfg.nat.ice_enforce_list, ["eth0", "192.168."]);
    assert!(cfg.nat.ice_ignore_list.is_empty());
    assert!(cfg.nat.full_trickle);
    assert!(cfg.plugin_disabled("janus.plugin.voicemail"));
    assert!(cfg.plugin_disabled("janus.plugin.recordplay"));
    assert!(!cfg.plugin_disabled("janus.plugin.echotest"));
    assert!(cfg.transport_disabled("janus.transport.rabbitmq"));
    assert!(cfg.logger_disabled("janus.logger.jsonlog"));
    assert!(cfg.eventhandler_disabled("janus.eventhandler.sampleevh"));
    assert!(cfg.events.broadcast);
    assert_eq!(cfg.events.stats_period, 0);
}

#[test]
fn janus_boolean_rule_is_lenient_like_janus() {
    let cfg = janus("general: { token_auth = \"on\"; debug_timestamps = \"Yes\" }").unwrap();
    assert!(!cfg.general.token_auth, "'on' is false in Janus");
    assert!(cfg.general.debug_timestamps);
}

#[test]
fn type_errors_name_file_position_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "general: {\n  session_timeout = \"abc\"\n}",
            "janus.jcfg:2:3: general.session_timeout: expected an integer, found a string \"abc\"",
        ),
        (
            "general: { session_timeout = -1 }",
            "janus.jcfg:1:12: general.session_timeout: -1 is out of range (0..=18446744073709551615)",
        ),
        (
            "general: { debug_level = 9 }",
            "janus.jcfg:1:12: general.debug_level: 9 is not in 0..=7",
        ),
        (
            "general: { candidates_timeout = 0 }",
            "janus.jcfg:1:12: general.candidates_timeout: must be at least 1",
        ),
        (
            "general: { server_name = [\"a\"] }",
            "janus.jcfg:1:12: general.server_name: expected a string, found an array",
        ),
        (
            "general: { token_auth = [] }",
            "janus.jcfg:1:12: general.token_auth: expected a boolean, found an array",
        ),
        (
            "media: { rtp_port_range = \"20000\" }",
            "janus.jcfg:1:10: media.rtp_port_range: \"20000\" is not a port range like \"20000-40000\"",
        ),
        (
            "nat: { stun_port = 70000 }",
            "janus.jcfg:1:8: nat.stun_port: 70000 is out of range (0..=65535)",
        ),
        (
            "nat: { turn_type = \"sctp\" }",
            "janus.jcfg:1:8: nat.turn_type: \"sctp\" is not \"udp\", \"tcp\" or \"tls\"",
        ),
        (
            "general: { protected_folders = [ 1, ( ) ] }",
            "janus.jcfg:1:37: arrays [ ] can only hold strings, numbers and booleans, found a list; nest values in a list ( ) instead",
        ),
        (
            "general: { protected_folders = ( { a = 1 } ) }",
            "janus.jcfg:1:12: general.protected_folders: list items must be strings, found a group",
        ),
        (
            "plugins: { disable = { a = 1 } }",
            "janus.jcfg:1:12: plugins.disable: expected a comma separated string or an array, found a group",
        ),
    ];
    for (input, expected) in cases {
        let message = match Jcfg::parse(input, "janus.jcfg") {
            Err(e) => e.to_string(),
            Ok(cfg) => JanusConfig::from_jcfg(&cfg, "janus.jcfg")
                .expect_err(input)
                .to_string(),
        };
        assert_eq!(&message, expected, "input: {input}");
    }
    let err = janus("general: { session_timeout = \"abc\" }").unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Invalid { ref category, ref key, line_column: Some((1, 12)), .. }
            if category == "general" && key == "session_timeout"
    ));
}

#[test]
fn http_defaults_and_values() {
    let d = http("").unwrap();
    assert_eq!(d, HttpConfig::default());
    assert!(!d.http, "Janus code default: HTTP off unless enabled");
    assert_eq!(d.port, 8088);
    assert_eq!(d.secure_port, 8089);
    assert_eq!(d.base_path, "/janus");
    assert_eq!(d.admin_base_path, "/admin");
    assert_eq!(d.admin_port, 7088);
    assert_eq!(d.admin_secure_port, 7889);
    assert_eq!(d.mhd_connection_limit, 1020);
    assert_eq!(d.json, JsonFormat::Compact);
    assert!(d.events);

    let c = http(
        r#"general: { json = "Indented"; base_path = "/api//"; http = "yes"; port = "8080"
                      acl = "127.,10.0.0."; admin_acl_forwarded = true; events = false }
           admin: { admin_http = true; admin_ip = "127.0.0.1"; admin_acl_forwarded = false; admin_base_path = "/" }
           cors: { allow_origin = "https://x.org"; enforce_cors = true }
           certificates: { cert_pem = "/c.pem"; ciphers = "NORMAL" }"#,
    )
    .unwrap();
    assert_eq!(c.json, JsonFormat::Indented);
    assert_eq!(c.base_path, "/api");
    assert_eq!(c.admin_base_path, "/");
    assert!(c.http && c.admin_http && !c.events);
    assert_eq!(c.port, 8080);
    assert_eq!(c.acl, ["127.", "10.0.0."]);
    assert!(c.admin_acl_forwarded, "read from general, not admin");
    assert_eq!(c.admin_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(c.allow_origin.as_deref(), Some("https://x.org"));
    assert!(c.enforce_cors);
    assert_eq!(c.cert_pem.as_deref(), Some("/c.pem"));
    assert_eq!(c.ciphers.as_deref(), Some("NORMAL"));
}

#[test]
fn http_errors() {
    assert_eq!(
        http("general: { port = \"abc\" }").unwrap_err().to_string(),
        "janus.transport.http.jcfg:1:12: general.port: expected an integer, found a string \"abc\""
    );
    assert_eq!(
        http("general: { base_path = \"janus\" }")
            .unwrap_err()
            .to_string(),
        "janus.transport.http.jcfg:1:12: general.base_path: \"janus\" must start with '/'"
    );
    assert_eq!(
        http("general: { json = \"pretty\" }").unwrap_err().to_string(),
        "janus.transport.http.jcfg:1:12: general.json: \"pretty\" is not \"compact\", \"indented\" or \"plain\""
    );
    assert_eq!(
        http("admin: { admin_port = 1.5 }").unwrap_err().to_string(),
        "janus.transport.http.jcfg:1:10: admin.admin_port: expected an integer, found a float \"1.5\""
    );
}

#[test]
fn websockets_defaults_and_values() {
    let d = ws("").unwrap();
    assert_eq!(d, WsConfig::default());
    assert!(!d.ws && !d.wss && !d.admin_ws);
    assert_eq!(
        (d.ws_port, d.wss_port, d.admin_ws_port, d.admin_wss_port),
        (8188, 8989, 7188, 7989)
    );
    assert_eq!((d.pingpong_trigger, d.pingpong_timeout), (0, 0));

    let c = ws(
        r#"general: { json = "plain"; ws = true; ws_port = 9000; ws_acl = "127."; admin_ws_acl_forwarded = yes
                      pingpong_trigger = 30; pingpong_timeout = 10; ws_logging = "err,warn" }
           admin: { admin_ws = true; admin_ws_ip = "127.0.0.1"; admin_ws_acl = "127.,::1" }
           certificates: { cert_pem = "/both.pem" }"#,
    )
    .unwrap();
    assert_eq!(c.json, JsonFormat::Plain);
    assert!(c.ws && c.admin_ws);
    assert_eq!(c.ws_port, 9000);
    assert_eq!(c.ws_acl, ["127."]);
    assert_eq!(c.admin_ws_acl, ["127.", "::1"]);
    assert!(c.admin_ws_acl_forwarded);
    assert_eq!((c.pingpong_trigger, c.pingpong_timeout), (30, 10));
    assert_eq!(c.ws_logging.as_deref(), Some("err,warn"));
    assert_eq!(
        c.cert_key.as_deref(),
        Some("/both.pem"),
        "cert_key defaults to cert_pem"
    );

    assert_eq!(
        ws("general: { ws_port = \"port\" }").unwrap_err().to_string(),
        "janus.transport.websockets.jcfg:1:12: general.ws_port: expected an integer, found a string \"port\""
    );
}

#[test]
fn builtin_configuration() {
    let set = ConfigSet::builtin();
    assert!(set.http.http);
    assert_eq!(set.http.port, 8088);
    assert_eq!(set.http.ip, None);
    assert!(set.http.admin_http);
    assert_eq!(set.http.admin_port, 7088);
    assert_eq!(set.http.admin_ip.as_deref(), Some("127.0.0.1"));
    assert!(set.websockets.ws);
    assert_eq!(set.websockets.ws_port, 8188);
    assert!(set.websockets.admin_ws);
    assert_eq!(set.websockets.admin_ws_port, 7188);
    assert_eq!(set.websockets.admin_ws_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        set.janus.general.admin_secret.as_deref(),
        Some("janusoverlord")
    );
    assert_eq!(set.http.json, JsonFormat::Compact);
    assert_eq!(set.websockets.json, JsonFormat::Compact);
    assert!(set.plugin_enabled("janus.plugin.echotest"));
    assert!(set.janus.plugins_disable.is_empty());
    assert_eq!(set.janus.general.session_timeout, 60);
    assert!(set.plugins.is_empty() && set.transports.is_empty());
    assert_eq!(set.folder, None);
    assert_eq!(ConfigSet::default(), set);
}
