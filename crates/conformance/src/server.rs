//! Starts an in-process jano with every transport the suite needs, on free loopback ports.

use jano::Args;
use jano_config::ConfigSet;

pub const ADMIN_SECRET: &str = "conformance-admin";

/// What a scenario needs to know about the server it talks to.
pub struct TestServer {
    pub running: jano::Running,
    pub http: std::net::SocketAddr,
    pub admin_http: std::net::SocketAddr,
    pub ws: std::net::SocketAddr,
    pub admin_ws: std::net::SocketAddr,
}

/// Server options a scenario may vary.
#[derive(Default, Clone)]
pub struct Options {
    pub session_timeout: Option<u64>,
    pub reclaim_session_timeout: Option<u64>,
    pub api_secret: Option<String>,
    pub token_auth: bool,
    /// Extra configuration files as (package, jcfg text), e.g. a broker transport's.
    pub transports: Vec<(String, String)>,
}

pub async fn start(opts: Options) -> TestServer {
    let args = Args {
        http_port: Some(0),
        ws_port: Some(0),
        admin_http_port: Some(0),
        admin_ws_port: Some(0),
        bind: Some("127.0.0.1".into()),
        admin_secret: Some(ADMIN_SECRET.into()),
        session_timeout: opts.session_timeout,
        reclaim_session_timeout: opts.reclaim_session_timeout,
        apisecret: opts.api_secret.clone(),
        token_auth: opts.token_auth,
        debug_level: Some(3),
        ..Default::default()
    };
    let mut cfg = ConfigSet::builtin();
    for (package, text) in &opts.transports {
        let j = jano_config::Jcfg::parse(text, &format!("{package}.jcfg"))
            .unwrap_or_else(|e| panic!("test config for {package}: {e}"));
        cfg.transports.insert(package.clone(), j);
    }
    let running = jano::start(&args, cfg, |_| {})
        .await
        .unwrap_or_else(|e| panic!("jano did not start: {e}"));
    TestServer {
        http: running.http_addr().expect("http"),
        admin_http: running.admin_http_addr().expect("admin http"),
        ws: running.ws_addr().expect("ws"),
        admin_ws: running.admin_ws_addr().expect("admin ws"),
        running,
    }
}
