//! `ConfigSet::load` against folders: the committed fixture folder, temporary folders with
//! files missing, broken files and legacy INI files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use jano_config::{ConfigError, ConfigSet, HttpConfig, JsonFormat, Value, WsConfig};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/folder")
}

/// A fresh empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("jano-config-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn no_arguments_is_builtin() {
    assert_eq!(ConfigSet::load(None, None).unwrap(), ConfigSet::builtin());
}

#[test]
fn empty_folder_behaves_like_builtin() {
    let dir = TempDir::new();
    let set = ConfigSet::load(Some(&dir.0), None).unwrap();
    let builtin = ConfigSet::builtin();
    assert_eq!(set.janus, builtin.janus);
    assert_eq!(set.http, builtin.http);
    assert_eq!(set.websockets, builtin.websockets);
    assert!(set.plugins.is_empty() && set.transports.is_empty());
    assert_eq!(set.folder.as_deref(), Some(dir.0.as_path()));
    assert!(set.files.is_empty());
}

#[test]
fn missing_folder_is_an_error() {
    let err = ConfigSet::load(Some(Path::new("/nonexistent/jano/folder")), None).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(
        err.to_string().starts_with("/nonexistent/jano/folder: "),
        "{err}"
    );
}

#[test]
fn some_files_missing_fall_back_per_component() {
    let dir = TempDir::new();
    dir.write(
        "janus.transport.http.jcfg",
        "general: { http = true; port = 9088 }",
    );
    dir.write("janus.plugin.echotest.jcfg", "general: { events = false }");
    let set = ConfigSet::load(Some(&dir.0), None).unwrap();
    // janus.jcfg missing: built-in (sample admin secret).
    assert_eq!(
        set.janus.general.admin_secret.as_deref(),
        Some("janusoverlord")
    );
    // http present: Janus code defaults + file, so the admin API is off.
    assert_eq!(set.http.port, 9088);
    assert!(!set.http.admin_http);
    // websockets missing: built-in.
    assert_eq!(set.websockets, WsConfig::builtin());
    assert_eq!(
        set.plugins["janus.plugin.echotest"].get_bool("general", "events"),
        Some(false)
    );
    assert_eq!(set.files.len(), 2);
}

#[test]
fn broken_component_file_is_an_error_with_position() {
    let dir = TempDir::new();
    dir.write(
        "janus.plugin.videoroom.jcfg",
        "general: {\n  admin_key 1\n}\n",
    );
    let err = ConfigSet::load(Some(&dir.0), None).unwrap_err();
    let expected = format!(
        "{}:2:13: expected '=' or ':' after setting name 'admin_key', found '1'",
        dir.0.join("janus.plugin.videoroom.jcfg").display()
    );
    assert_eq!(err.to_string(), expected);
}

#[test]
fn invalid_value_is_an_error_naming_file_and_key() {
    let dir = TempDir::new();
    dir.write(
        "janus.transport.websockets.jcfg",
        "general: {\n ws = true\n ws_port = \"abc\"\n}",
    );
    let err = ConfigSet::load(Some(&dir.0), None).unwrap_err();
    let expected = format!(
        "{}:3:2: general.ws_port: expected an integer, found a string \"abc\"",
        dir.0.join("janus.transport.websockets.jcfg").display()
    );
    assert_eq!(err.to_string(), expected);
}

#[test]
fn main_file_without_folder_uses_configs_folder() {
    let components = TempDir::new();
    components.write(
        "janus.transport.http.jcfg",
        "general: { http = true; port = 1234 }",
    );
    let main_dir = TempDir::new();
    let main = main_dir.write(
        "custom.jcfg",
        &format!(
            "general: {{ configs_folder = \"{}\"; server_name = \"x\" }}",
            components.0.display()
        ),
    );
    let set = ConfigSet::load(None, Some(&main)).unwrap();
    assert_eq!(set.folder.as_deref(), Some(components.0.as_path()));
    assert_eq!(set.http.port, 1234);
    assert_eq!(set.janus.general.server_name, "x");
    // No admin_secret in the file: Janus default (unset), not the built-in one.
    assert_eq!(set.janus.general.admin_secret, None);
}

#[test]
fn main_file_without_configs_folder_uses_its_directory() {
    let dir = TempDir::new();
    let main = dir.write("janus.jcfg", "general: { debug_level = 2 }");
    dir.write(
        "janus.transport.websockets.jcfg",
        "general: { ws = true; ws_port = 4321 }",
    );
    let set = ConfigSet::load(None, Some(&main)).unwrap();
    assert_eq!(set.folder.as_deref(), Some(dir.0.as_path()));
    assert_eq!(set.janus.general.debug_level, 2);
    assert_eq!(set.websockets.ws_port, 4321);
}

#[test]
fn configs_folder_that_does_not_exist_is_a_warning() {
    let dir = TempDir::new();
    let main = dir.write(
        "janus.jcfg",
        "general: { configs_folder = \"/nonexistent/jano\" }",
    );
    let set = ConfigSet::load(None, Some(&main)).unwrap();
    assert_eq!(set.http, HttpConfig::builtin());
    assert_eq!(set.warnings.len(), 1, "{:?}", set.warnings);
}

#[test]
fn explicit_main_file_missing_is_an_error() {
    let dir = TempDir::new();
    let err = ConfigSet::load(Some(&dir.0), Some(&dir.0.join("nope.jcfg"))).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err}");
    assert!(err.to_string().contains("nope.jcfg"));
}

#[test]
fn legacy_ini_files_are_used_when_jcfg_is_missing() {
    let dir = TempDir::new();
    dir.write(
        "janus.cfg",
        "[general]\nadmin_secret = legacy\nsession_timeout = 10\n[plugins]\ndisable = libjanus_echotest.so\n",
    );
    dir.write(
        "janus.transport.http.cfg",
        "[general]\nhttp = yes\nport = 8000\n",
    );
    dir.write(
        "janus.plugin.textroom.cfg",
        "[room-1234]\ndescription = Demo Room\n",
    );
    // When both exist the .jcfg wins.
    dir.write("janus.plugin.echotest.cfg", "[general]\nevents = no\n");
    dir.write("janus.plugin.echotest.jcfg", "general: { events = true }");
    let set = ConfigSet::load(Some(&dir.0), None).unwrap();
    assert_eq!(set.janus.general.admin_secret.as_deref(), Some("legacy"));
    assert_eq!(set.janus.general.session_timeout, 10);
    assert!(!set.plugin_enabled("janus.plugin.echotest"));
    assert!(set.http.http);
    assert_eq!(set.http.port, 8000);
    assert_eq!(
        set.plugins["janus.plugin.textroom"]
            .get_str("room-1234", "description")
            .as_deref(),
        Some("Demo Room")
    );
    assert_eq!(
        set.plugins["janus.plugin.echotest"].get_bool("general", "events"),
        Some(true)
    );
    assert_eq!(set.warnings.len(), 3, "{:?}", set.warnings);
}

#[test]
fn main_file_named_jcfg_falls_back_to_cfg() {
    let dir = TempDir::new();
    dir.write("janus.cfg", "[general]\nserver_name = ini\n");
    let set = ConfigSet::load(None, Some(&dir.0.join("janus.jcfg"))).unwrap();
    assert_eq!(set.janus.general.server_name, "ini");
}

#[test]
fn committed_fixture_folder() {
    let set = ConfigSet::load(Some(&fixtures()), None).unwrap();
    let g = &set.janus.general;
    assert_eq!(g.debug_level, 5);
    assert_eq!(g.admin_secret.as_deref(), Some("fixturesecret"));
    assert_eq!(g.server_name, "Fixture Instance");
    assert_eq!(g.session_timeout, 120);
    assert!(g.token_auth);
    assert_eq!(g.protected_folders, ["/bin", "/etc", "/opt/janus/lib"]);
    assert!(!set.janus.certificates.dtls_accept_selfsigned);
    assert_eq!(set.janus.media.rtp_port_range, Some((20000, 40000)));
    assert_eq!(set.janus.media.min_nack_queue, 500);
    assert_eq!(set.janus.media.dscp, 46);
    assert_eq!(
        set.janus.nat.stun_server.as_deref(),
        Some("stun.example.org")
    );
    assert_eq!(set.janus.nat.stun_port, 19302);
    assert_eq!(set.janus.nat.nat_1_1_mapping, ["1.2.3.4", "5.6.7.8"]);
    assert_eq!(set.janus.nat.ice_ignore_list, ["vmnet", "tap"]);
    assert!(!set.plugin_enabled("janus.plugin.voicemail"));
    assert!(!set.plugin_enabled("janus.plugin.recordplay"));
    assert!(set.plugin_enabled("janus.plugin.echotest"));
    assert!(!set.transport_enabled("janus.transport.rabbitmq"));
    assert!(set.janus.events.broadcast);
    assert_eq!(set.janus.events.stats_period, 5);
    // The folder argument wins over general.configs_folder.
    assert_eq!(set.folder.as_deref(), Some(fixtures().as_path()));

    let h = &set.http;
    assert_eq!(h.json, JsonFormat::Indented);
    assert_eq!(h.base_path, "/janus");
    assert!(h.http && h.admin_http);
    assert_eq!((h.port, h.admin_port), (18088, 17088));
    assert_eq!(h.acl, ["127.", "192.168.0."]);
    assert!(h.admin_acl_forwarded);
    assert_eq!(h.allow_origin.as_deref(), Some("https://example.org"));
    assert_eq!(
        h.cert_pem.as_deref(),
        Some("/etc/ssl/certs/ssl-cert-snakeoil.pem")
    );

    let w = &set.websockets;
    assert_eq!(w.json, JsonFormat::Plain);
    assert!(w.ws && !w.admin_ws);
    assert_eq!(w.ws_port, 18188);
    assert_eq!((w.pingpong_trigger, w.pingpong_timeout), (30, 10));
    assert_eq!(w.cert_key.as_deref(), Some("/etc/ssl/certs/combined.pem"));

    // Raw maps: http/websockets are typed, not repeated in `transports`.
    assert_eq!(
        set.transports.keys().collect::<Vec<_>>(),
        ["janus.transport.mqtt"]
    );
    let mqtt = &set.transports["janus.transport.mqtt"];
    assert_eq!(
        mqtt.get_str("general", "keyfile").as_deref(),
        Some("/etc/ssl/private/ssl-cert-snakeoil.key")
    );
    let props = mqtt
        .category("general")
        .and_then(|g| g.get("add_transaction_user_properties"))
        .and_then(Value::as_items)
        .unwrap();
    assert_eq!(props.len(), 2);
    assert_eq!(
        props[1].as_items().unwrap()[1],
        Value::Str("add-value-2".into())
    );
    assert_eq!(
        set.plugins.keys().collect::<Vec<_>>(),
        [
            "janus.plugin.echotest",
            "janus.plugin.streaming",
            "janus.plugin.videoroom"
        ]
    );
    let streaming = set.plugin_config("janus.plugin.streaming").unwrap();
    let media = streaming
        .category("multistream-test")
        .and_then(|m| m.get("media"))
        .and_then(Value::as_items)
        .unwrap();
    assert_eq!(
        media[1].as_group().unwrap().get_str("fmtp").as_deref(),
        Some("profile-level-id=42e01f;packetization-mode=1")
    );
    let videoroom = &set.plugins["janus.plugin.videoroom"];
    assert_eq!(videoroom.get_int("room-1234", "bitrate"), Some(128000));
    assert_eq!(videoroom.get_bool("general", "string_ids"), Some(false));
    assert_eq!(
        set.eventhandlers.keys().collect::<Vec<_>>(),
        ["janus.eventhandler.sampleevh"]
    );
    assert_eq!(
        set.warnings.len(),
        1,
        "only the legacy INI: {:?}",
        set.warnings
    );
}
