//! Meetecho's sample configuration as installed by the Debian `janus` package in
//! `/etc/janus`. Skipped (with a message) where it is not installed; the committed fixtures
//! in `tests/fixtures` cover the same constructs so nothing passes vacuously.

use std::path::{Path, PathBuf};

use jano_config::{ConfigSet, Jcfg, JsonFormat};

const SAMPLES: &str = "/etc/janus";

fn sample_files() -> Option<Vec<PathBuf>> {
    let dir = Path::new(SAMPLES);
    if !dir.join("janus.jcfg").is_file() {
        println!("SKIPPED: {SAMPLES}/janus.jcfg not found (install the `janus` package to run this test)");
        return None;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("jcfg"))
        .collect();
    files.sort();
    Some(files)
}

#[test]
fn every_sample_file_parses_and_round_trips() {
    let Some(files) = sample_files() else { return };
    assert!(
        files.len() >= 20,
        "expected the full sample set, found {files:?}"
    );
    for path in &files {
        let cfg = Jcfg::load(path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            cfg.category("general").is_some(),
            "{} has no general category",
            path.display()
        );
        let again = Jcfg::parse(&cfg.to_text(), "rewritten").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, cfg, "round trip of {}", path.display());
    }
}

#[test]
fn sample_folder_values() {
    if sample_files().is_none() {
        return;
    }
    let set = ConfigSet::load(Some(Path::new(SAMPLES)), None).unwrap_or_else(|e| panic!("{e}"));
    let g = &set.janus.general;
    assert_eq!(g.admin_secret.as_deref(), Some("janusoverlord"));
    assert_eq!(g.debug_level, 4);
    assert_eq!(g.configs_folder.as_deref(), Some("/etc/janus"));
    assert_eq!(g.server_name, "MyJanusInstance");
    assert_eq!(g.protected_folders.len(), 20);
    assert_eq!(g.protected_folders[0], "/bin");
    assert_eq!(g.protected_folders[19], "/opt/janus/sbin");
    assert_eq!(set.janus.nat.ice_ignore_list, ["vmnet"]);
    assert!(!set.janus.nat.nice_debug);
    assert!(set.janus.plugins_disable.is_empty());

    let h = &set.http;
    assert_eq!(h.json, JsonFormat::Indented);
    assert_eq!(h.base_path, "/janus");
    assert!(h.http && !h.https);
    assert_eq!(h.port, 8088);
    assert_eq!(h.admin_base_path, "/admin");
    assert!(!h.admin_http && !h.admin_https);
    assert_eq!(h.admin_port, 7088);
    assert_eq!(
        h.cert_pem.as_deref(),
        Some("/etc/ssl/certs/ssl-cert-snakeoil.pem")
    );
    assert_eq!(
        h.cert_key.as_deref(),
        Some("/etc/ssl/private/ssl-cert-snakeoil.key")
    );

    let w = &set.websockets;
    assert_eq!(w.json, JsonFormat::Indented);
    assert!(w.ws && !w.wss && !w.admin_ws && !w.admin_wss);
    assert_eq!(w.ws_port, 8188);
    assert_eq!(w.admin_ws_port, 7188);

    for t in ["mqtt", "nanomsg", "pfunix", "rabbitmq"] {
        assert!(
            set.transports.contains_key(&format!("janus.transport.{t}")),
            "{t}"
        );
    }
    assert!(!set.transports.contains_key("janus.transport.http"));
    let mqtt = &set.transports["janus.transport.mqtt"];
    assert_eq!(
        mqtt.get_str("general", "certfile").as_deref(),
        Some("/etc/ssl/certs/ssl-cert-snakeoil.pem"),
        "Debian's unquoted value"
    );
    assert_eq!(
        set.transports["janus.transport.nanomsg"].get_bool("general", "enabled"),
        Some(true)
    );

    for p in [
        "audiobridge",
        "duktape",
        "echotest",
        "lua",
        "nosip",
        "recordplay",
        "sip",
        "streaming",
        "textroom",
        "videocall",
        "videoroom",
        "voicemail",
    ] {
        assert!(
            set.plugins.contains_key(&format!("janus.plugin.{p}")),
            "{p}"
        );
    }
    let videoroom = &set.plugins["janus.plugin.videoroom"];
    assert_eq!(videoroom.get_int("room-1234", "bitrate"), Some(128000));
    assert_eq!(videoroom.get_bool("room-5678", "video_svc"), Some(true));
    let streaming = &set.plugins["janus.plugin.streaming"];
    let media = streaming
        .category("multistream-test")
        .and_then(|m| m.get("media"))
        .and_then(|m| m.as_items())
        .unwrap();
    assert_eq!(media.len(), 3);
    assert_eq!(
        media[2].as_group().unwrap().get_str("label").as_deref(),
        Some("Video stream #2")
    );
    assert_eq!(
        set.eventhandlers["janus.eventhandler.gelfevh"].get_int("general", "port"),
        Some(12201),
        "port is a quoted string in the sample"
    );
    assert!(set.loggers.contains_key("janus.logger.jsonlog"));
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
}

#[test]
fn sample_main_file_alone_uses_its_configs_folder() {
    if sample_files().is_none() {
        return;
    }
    let set = ConfigSet::load(None, Some(Path::new("/etc/janus/janus.jcfg"))).unwrap();
    assert_eq!(set.folder.as_deref(), Some(Path::new("/etc/janus")));
    assert_eq!(set.http.port, 8088);
}
