//! From configuration to running server.

use crate::Args;
use jano_config::{ConfigSet, HttpConfig, WsConfig};
use jano_core::{CoreConfig, PluginRegistry};
use jano_plugin::{Plugin, PluginFactory};
use jano_runtime::{Listener, PluginQueue, Runtime};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tracing_subscriber::{filter::LevelFilter, prelude::*, reload, EnvFilter};

/// Every plugin this build has, by package name.
const PLUGINS: &[(&str, PluginFactory)] = &[
    (jano_echotest::PACKAGE, jano_echotest::EchoTest::factory),
    (jano_videoroom::PACKAGE, jano_videoroom::VideoRoom::factory),
    (jano_streaming::PACKAGE, jano_streaming::Streaming::factory),
    (
        jano_audiobridge::PACKAGE,
        jano_audiobridge::AudioBridge::factory,
    ),
    (jano_textroom::PACKAGE, jano_textroom::TextRoom::factory),
    (jano_videocall::PACKAGE, jano_videocall::VideoCall::factory),
    (
        jano_recordplay::PACKAGE,
        jano_recordplay::RecordPlay::factory,
    ),
    (jano_nosip::PACKAGE, jano_nosip::NoSip::factory),
];

/// Whether a plugin's configuration file turns it on.
type EnabledBy = fn(Option<&jano_config::Jcfg>) -> bool;

/// jano's own plugins that a Janus deployment does not have: loaded only when their
/// configuration file enables them (`general: { enabled = true }`), so `info` lists exactly
/// Janus's plugins otherwise.
const OPT_IN_PLUGINS: &[(&str, PluginFactory, EnabledBy)] = &[(
    jano_fanout::PACKAGE,
    jano_fanout::FanoutPlugin::factory,
    jano_fanout::FanoutPlugin::enabled,
)];

/// Janus's 0..=7 levels on `tracing`'s scale.
fn level_filter(level: u8) -> LevelFilter {
    match level {
        0 => LevelFilter::OFF,
        1 | 2 => LevelFilter::ERROR,
        3 => LevelFilter::WARN,
        4 => LevelFilter::INFO,
        5 | 6 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

fn filter_for(level: u8) -> EnvFilter {
    // RUST_LOG, when set, wins: it is the finer tool for debugging one module.
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level_filter(level).to_string()))
}

/// The address an `ip`/`interface` pair means: an explicit IP wins, then an interface name
/// (or an address given as the interface), else `default`.
fn bind_ip(ip: Option<&str>, interface: Option<&str>, default: IpAddr) -> Result<IpAddr, String> {
    if let Some(ip) = ip {
        return ip.parse().map_err(|_| format!("invalid IP address '{ip}'"));
    }
    let Some(iface) = interface else {
        return Ok(default);
    };
    if let Ok(ip) = iface.parse::<IpAddr>() {
        return Ok(ip);
    }
    let addrs = if_addrs::get_if_addrs().map_err(|e| format!("cannot list interfaces: {e}"))?;
    addrs
        .iter()
        .filter(|a| a.name == iface)
        .map(|a| a.ip())
        .min_by_key(|ip| ip.is_ipv6())
        .ok_or_else(|| format!("no interface named '{iface}'"))
}

const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn core_config(cfg: &ConfigSet, args: &Args) -> CoreConfig {
    let g = &cfg.janus.general;
    let m = &cfg.janus.media;
    let n = &cfg.janus.nat;
    let local_ip = args
        .interface
        .clone()
        .or_else(|| g.interface.clone())
        .unwrap_or_else(|| "127.0.0.1".into());
    CoreConfig {
        server_name: args
            .server_name
            .clone()
            .unwrap_or_else(|| g.server_name.clone()),
        session_timeout: args.session_timeout.unwrap_or(g.session_timeout),
        reclaim_session_timeout: args
            .reclaim_session_timeout
            .unwrap_or(g.reclaim_session_timeout),
        candidates_timeout: g.candidates_timeout,
        api_secret: args.apisecret.clone().or_else(|| g.api_secret.clone()),
        token_auth: args.token_auth || g.token_auth,
        token_auth_secret: g.token_auth_secret.clone(),
        admin_secret: args.admin_secret.clone().or_else(|| g.admin_secret.clone()),
        accept_new_sessions: true,
        opaqueid_in_api: g.opaqueid_in_api,
        hide_dependencies: g.hide_dependencies,
        log_level: log_level(cfg, args),
        log_timestamps: g.debug_timestamps,
        log_colors: g.debug_colors,
        log_to_stdout: g.log_to_stdout,
        log_to_file: g.log_to_file.clone(),
        local_ip,
        public_ips: n.nat_1_1_mapping.clone(),
        ipv6: m.ipv6,
        ice_lite: n.ice_lite,
        ice_tcp: n.ice_tcp,
        full_trickle: n.full_trickle,
        mdns_enabled: !n.ignore_mdns,
        min_nack_queue: u64::from(m.min_nack_queue),
        nack_optimizations: m.nack_optimizations,
        no_media_timer: u64::from(m.no_media_timer),
        slowlink_threshold: u64::from(m.slowlink_threshold),
        twcc_period: u64::from(m.twcc_period),
        dtls_mtu: u64::from(m.dtls_mtu),
        event_loops: u64::from(g.event_loops),
        allow_loop_indication: g.allow_loop_indication,
    }
}

fn http_settings(c: &HttpConfig, args: &Args) -> Result<jano_http::HttpSettings, String> {
    let api = if c.http || args.http_port.is_some() {
        let ip = match &args.bind {
            Some(b) => bind_ip(Some(b), None, ANY)?,
            None => bind_ip(c.ip.as_deref(), c.interface.as_deref(), ANY)?,
        };
        Some(Listener {
            addr: SocketAddr::new(ip, args.http_port.unwrap_or(c.port)),
            acl: c.acl.clone(),
        })
    } else {
        None
    };
    let admin = if c.admin_http || args.admin_http_port.is_some() {
        let default = if c.admin_http { ANY } else { LOOPBACK };
        let ip = bind_ip(c.admin_ip.as_deref(), c.admin_interface.as_deref(), default)?;
        Some(Listener {
            addr: SocketAddr::new(ip, args.admin_http_port.unwrap_or(c.admin_port)),
            acl: c.admin_acl.clone(),
        })
    } else {
        None
    };
    if c.https || c.admin_https {
        tracing::warn!("HTTPS is not supported yet: put a TLS proxy in front of jano's HTTP port");
    }
    Ok(jano_http::HttpSettings {
        api,
        admin,
        base_path: c.base_path.clone(),
        admin_base_path: c.admin_base_path.clone(),
        json: c.json,
        allow_origin: c.allow_origin.clone(),
        enforce_cors: c.enforce_cors,
        connection_limit: usize::try_from(c.mhd_connection_limit).unwrap_or(1020),
        ..Default::default()
    })
}

fn ws_settings(c: &WsConfig, args: &Args) -> Result<jano_ws::WsSettings, String> {
    let api = if c.ws || args.ws_port.is_some() {
        let ip = match &args.bind {
            Some(b) => bind_ip(Some(b), None, ANY)?,
            None => bind_ip(c.ws_ip.as_deref(), c.ws_interface.as_deref(), ANY)?,
        };
        Some(Listener {
            addr: SocketAddr::new(ip, args.ws_port.unwrap_or(c.ws_port)),
            acl: c.ws_acl.clone(),
        })
    } else {
        None
    };
    let admin = if c.admin_ws || args.admin_ws_port.is_some() {
        let default = if c.admin_ws { ANY } else { LOOPBACK };
        let ip = bind_ip(
            c.admin_ws_ip.as_deref(),
            c.admin_ws_interface.as_deref(),
            default,
        )?;
        Some(Listener {
            addr: SocketAddr::new(ip, args.admin_ws_port.unwrap_or(c.admin_ws_port)),
            acl: c.admin_ws_acl.clone(),
        })
    } else {
        None
    };
    if c.wss || c.admin_wss {
        tracing::warn!("secure WebSockets are not supported yet: put a TLS proxy in front of jano");
    }
    if c.ws_unix.is_some() || c.admin_ws_unix.is_some() {
        tracing::warn!("WebSockets over Unix sockets (ws_unix) are not supported yet");
    }
    Ok(jano_ws::WsSettings {
        api,
        admin,
        json: c.json,
        pingpong_trigger: u64::from(c.pingpong_trigger),
        pingpong_timeout: u64::from(c.pingpong_timeout),
        allow_origin: c.allow_origin.clone(),
        enforce_cors: c.enforce_cors,
        ..Default::default()
    })
}

/// Stops one running transport.
type Stopper =
    Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// A running server.
pub struct Running {
    pub runtime: Runtime,
    pub media: Option<Arc<jano_media::MediaEngine>>,
    pub http: Option<jano_http::HttpServer>,
    pub ws: Option<jano_ws::WsServer>,
    /// The other transports (brokers, Nanomsg, Unix sockets), by package.
    pub others: Vec<(&'static str, Stopper)>,
    pub config: ConfigSet,
}

impl Running {
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|h| h.api_addr)
    }
    pub fn admin_http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|h| h.admin_addr)
    }
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws.as_ref().and_then(|w| w.api_addr)
    }
    pub fn admin_ws_addr(&self) -> Option<SocketAddr> {
        self.ws.as_ref().and_then(|w| w.admin_addr)
    }

    /// Stops accepting, destroys every session (plugins and transports are told), closes the
    /// sockets.
    pub async fn shutdown(self) {
        if let Some(h) = &self.http {
            h.stop();
        }
        self.runtime.shutdown();
        if let Some(m) = self.media.clone() {
            // Hang every PeerConnection up (DTLS close_notify goes out) and stop the workers.
            let _ =
                tokio::task::spawn_blocking(move || m.shutdown(std::time::Duration::from_secs(2)))
                    .await;
        }
        if let Some(w) = &self.ws {
            w.stop();
        }
        // The broker transports wait (bounded) for their clean disconnect, so their status
        // "disconnect" message and queued replies go out before the process ends.
        for (package, stop) in &self.others {
            tracing::debug!(transport = package, "stopping");
            stop().await;
        }
        // Give sockets a moment to flush their last frames.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (sessions, handles) = self.runtime.counts();
        tracing::info!(sessions, handles, "stopped");
    }
}

/// Starts the media engine on the addresses `nat`'s lists allow. Without any (a machine with
/// only loopback), jano still serves the API, and JSEPs are refused with a clear error.
fn start_media(cfg: &ConfigSet, queue: &PluginQueue) -> Option<Arc<jano_media::MediaEngine>> {
    let n = &cfg.janus.nat;
    let m = &cfg.janus.media;
    let mut enforce = n.ice_enforce_list.clone();
    if let Some(i) = &cfg.janus.general.interface {
        enforce.push(i.clone());
    }
    let filter = jano_media::IpFilter {
        enforce,
        ignore: n.ice_ignore_list.clone(),
        ipv6: m.ipv6,
    };
    let ips = jano_media::candidate_ips(&filter);
    let nat_1_1 = n
        .nat_1_1_mapping
        .iter()
        .filter_map(|s| match s.trim().parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                tracing::warn!("nat_1_1_mapping: {s:?} is not an IP address; ignored");
                None
            }
        })
        .collect();
    let mc = jano_media::MediaConfig {
        workers: m.media_workers as usize,
        ice_lite: n.ice_lite,
        full_trickle: n.full_trickle,
        ips,
        nat_1_1,
        keep_private_host: n.keep_private_host,
        port_range: m.rtp_port_range,
        single_port: m.single_port,
        no_media_timer: u64::from(m.no_media_timer),
        slowlink_threshold: u64::from(m.slowlink_threshold),
        ..jano_media::MediaConfig::default()
    };
    match jano_media::MediaEngine::start(mc, queue.media_sink()) {
        Ok(e) => Some(Arc::new(e)),
        Err(e) => {
            tracing::warn!("media engine not started: {e}; requests with a JSEP will be refused");
            None
        }
    }
}

/// Reads the configuration the arguments point at (or the built-in default).
pub fn load_config(args: &Args) -> Result<ConfigSet, String> {
    if args.configs_folder.is_none() && args.config.is_none() {
        Ok(ConfigSet::builtin())
    } else {
        ConfigSet::load(args.configs_folder.as_deref(), args.config.as_deref())
            .map_err(|e| e.to_string())
    }
}

/// The log level the configuration and arguments ask for.
pub fn log_level(cfg: &ConfigSet, args: &Args) -> u8 {
    args.debug_level.unwrap_or(cfg.janus.general.debug_level)
}

/// Starts plugins and transports. `on_log_level` is called when the Admin API changes the level.
pub async fn start(
    args: &Args,
    cfg: ConfigSet,
    on_log_level: impl Fn(u8) + Send + Sync + 'static,
) -> Result<Running, String> {
    let core = core_config(&cfg, args);
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    match &cfg.folder {
        Some(f) => tracing::info!(folder = %f.display(), "configuration loaded"),
        None => tracing::info!("no configuration folder: using the built-in default"),
    }

    let mut queue = PluginQueue::new();
    queue.set_configs_folder(cfg.folder.clone());
    // Signed mode: token_auth with a secret (plugins then check their own signed tokens).
    queue.set_token_secret(core.token_auth_secret.clone().filter(|_| core.token_auth));
    // Plugins build what their configuration files describe as they load (a Streaming
    // mountpoint's readers and fan-outs): the runtime and the media engine must be there first.
    queue.set_runtime(tokio::runtime::Handle::current());
    let media = start_media(&cfg, &queue);
    if let Some(m) = &media {
        queue.set_media(m.clone() as Arc<dyn jano_core::MediaBackend>);
    }
    let mut registry = PluginRegistry::new();
    for (package, factory) in PLUGINS {
        if !cfg.plugin_enabled(package) {
            tracing::info!(plugin = package, "plugin disabled by configuration");
            continue;
        }
        let plugin: Arc<dyn Plugin> =
            factory(cfg.plugin_config(package), queue.services_for(package))
                .map_err(|e| format!("plugin {package}: {e}"))?;
        tracing::info!(plugin = package, "plugin loaded");
        registry.add(plugin);
    }
    for (package, factory, enabled) in OPT_IN_PLUGINS {
        let config = cfg.plugin_config(package);
        if !enabled(config) || !cfg.plugin_enabled(package) {
            continue;
        }
        let plugin = factory(config, queue.services_for(package))
            .map_err(|e| format!("plugin {package}: {e}"))?;
        tracing::info!(
            plugin = package,
            "plugin loaded (jano's own, enabled by its file)"
        );
        registry.add(plugin);
    }
    let rt = Runtime::start(
        core,
        registry,
        queue,
        media.clone().map(|m| m as Arc<dyn jano_core::MediaBackend>),
    );
    rt.on_log_level(on_log_level);

    let http = if cfg.transport_enabled(jano_http::INFO.package) || args.http_port.is_some() {
        let settings = http_settings(&cfg.http, args)?;
        Some(
            jano_http::serve(&rt, settings)
                .await
                .map_err(|e| format!("HTTP transport: {e}"))?,
        )
    } else {
        None
    };
    let ws = if cfg.transport_enabled(jano_ws::INFO.package) || args.ws_port.is_some() {
        let settings = ws_settings(&cfg.websockets, args)?;
        Some(
            jano_ws::serve(&rt, settings)
                .await
                .map_err(|e| format!("WebSockets transport: {e}"))?,
        )
    } else {
        None
    };
    let mut others: Vec<(&'static str, Stopper)> = Vec::new();
    // Each of these reads its own `janus.transport.<name>.jcfg` (absent = disabled).
    macro_rules! other_transport {
        ($krate:ident) => {
            let package = $krate::INFO.package;
            if let Some(j) = cfg
                .transports
                .get(package)
                .filter(|_| cfg.transport_enabled(package))
            {
                let settings =
                    $krate::Settings::from_jcfg(j).map_err(|e| format!("{package}.jcfg: {e}"))?;
                if settings.enabled {
                    let server = $krate::serve(&rt, settings)
                        .await
                        .map_err(|e| format!("{package}: {e}"))?;
                    let server = Arc::new(server);
                    others.push((
                        package,
                        Box::new(move || {
                            let server = server.clone();
                            Box::pin(async move { server.shutdown().await })
                        }),
                    ));
                }
            }
        };
    }
    other_transport!(jano_rabbitmq);
    other_transport!(jano_mqtt);
    other_transport!(jano_nanomsg);
    other_transport!(jano_pfunix);
    let running = Running {
        runtime: rt,
        media,
        http,
        ws,
        others,
        config: cfg,
    };
    if running.http_addr().is_none() && running.ws_addr().is_none() {
        tracing::warn!("no Janus API transport is enabled: nobody can reach this server");
    }
    Ok(running)
}

/// The whole program: configuration, logs, start, wait for SIGINT/SIGTERM, clean shutdown.
pub async fn run(args: Args) -> Result<(), String> {
    let cfg = load_config(&args)?;
    let level = log_level(&cfg, &args);
    let (filter, reload_handle) = reload::Layer::new(filter_for(level));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(cfg.janus.general.debug_colors)
        .with_target(false);
    tracing_subscriber::registry().with(filter).with(fmt).init();
    let running = start(&args, cfg, move |level| {
        if reload_handle.modify(|f| *f = filter_for(level)).is_err() {
            tracing::warn!("could not change the log level");
        }
    })
    .await?;
    tracing::info!("jano ready");
    wait_for_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
