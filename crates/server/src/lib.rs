//! The `jano` server: configuration → gateway core → plugins → transports.
//!
//! The binary (`src/main.rs`) parses [`Args`] and calls [`setup::run`]; tests start servers
//! in-process with [`setup::start`].

pub mod setup;

use clap::Parser;
use std::path::PathBuf;

pub use setup::{start, Running};

/// Command-line options, named after Janus's where Janus has them.
#[derive(Parser, Debug, Default, Clone)]
#[command(
    name = "jano",
    version,
    about = "A WebRTC server that speaks the Janus API"
)]
pub struct Args {
    /// Configuration files folder (Janus's `-F`); with neither -F nor -C, the built-in default
    /// configuration is used.
    #[arg(short = 'F', long = "configs-folder")]
    pub configs_folder: Option<PathBuf>,
    /// Main configuration file (Janus's `-C`, default `<folder>/janus.jcfg`).
    #[arg(short = 'C', long = "config")]
    pub config: Option<PathBuf>,
    /// Log level, 0 (none) to 7 (everything), as Janus's `-d`.
    #[arg(short = 'd', long = "debug-level", value_parser = clap::value_parser!(u8).range(0..=7))]
    pub debug_level: Option<u8>,
    /// The address to advertise as this server's local IP (Janus's `-i`).
    #[arg(short = 'i', long = "interface")]
    pub interface: Option<String>,
    /// Server name reported by `info` (Janus's `-n`).
    #[arg(short = 'n', long = "server-name")]
    pub server_name: Option<String>,
    /// Session timeout in seconds, 0 = never (Janus's `-s`).
    #[arg(short = 's', long = "session-timeout")]
    pub session_timeout: Option<u64>,
    /// Reclaim session timeout in seconds (Janus's `-m`).
    #[arg(short = 'm', long = "reclaim-session-timeout")]
    pub reclaim_session_timeout: Option<u64>,
    /// API secret clients must send as `apisecret` (Janus's `-a`).
    #[arg(short = 'a', long = "apisecret")]
    pub apisecret: Option<String>,
    /// Enable stored-token authentication (Janus's `-A`).
    #[arg(short = 'A', long = "token-auth")]
    pub token_auth: bool,
    /// Admin API secret.
    #[arg(long = "admin-secret")]
    pub admin_secret: Option<String>,
    /// Address the Janus API listeners bind to (overrides the transports' ip/interface).
    #[arg(long = "bind")]
    pub bind: Option<String>,
    /// Serve the HTTP Janus API on this port (enables it).
    #[arg(long = "http-port")]
    pub http_port: Option<u16>,
    /// Serve the WebSocket Janus API on this port (enables it).
    #[arg(long = "ws-port")]
    pub ws_port: Option<u16>,
    /// Serve the HTTP Admin API on this port (enables it; loopback unless configured).
    #[arg(long = "admin-http-port")]
    pub admin_http_port: Option<u16>,
    /// Serve the WebSocket Admin API on this port (enables it; loopback unless configured).
    #[arg(long = "admin-ws-port")]
    pub admin_ws_port: Option<u16>,
}
