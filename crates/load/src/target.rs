//! Target URL checks: only loopback servers may be driven.

use std::net::{IpAddr, SocketAddr};

use hyper::Uri;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Http,
    Ws,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Ws => "ws",
        }
    }
}

/// A validated target: the URL without trailing slash.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub transport: Transport,
}

pub fn is_loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.octets()[0] == 127)
        }
    }
}

/// Checks scheme and host syntactically. Returns the host (without IPv6 brackets) and port.
pub fn check_syntax(url: &str, transport: Transport) -> Result<(String, u16), String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let scheme = uri.scheme_str().unwrap_or("");
    let (want, default_port) = match transport {
        Transport::Http => ("http", 80),
        Transport::Ws => ("ws", 80),
    };
    if !scheme.eq_ignore_ascii_case(want) {
        return Err(format!(
            "URL {url:?} must use the {want}:// scheme for --transport {} (TLS is not supported)",
            transport.name()
        ));
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("URL {url:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(default_port);
    let ok =
        host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(is_loopback_ip);
    if !ok {
        return Err(format!(
            "refusing target host {host:?}: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed"
        ));
    }
    Ok((host, port))
}

/// Full check: syntax, then (for `localhost`) every resolved address must be loopback.
pub async fn validate(url: &str, transport: Transport) -> Result<Target, String> {
    let (host, port) = check_syntax(url, transport)?;
    if host.parse::<IpAddr>().is_err() {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
            .collect();
        if addrs.is_empty() || !addrs.iter().all(|a| is_loopback_ip(a.ip())) {
            return Err(format!(
                "refusing target host {host:?}: it resolves to non-loopback addresses {addrs:?}"
            ));
        }
    }
    Ok(Target {
        url: url.trim_end_matches('/').to_string(),
        transport,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        assert!(check_syntax("http://127.0.0.1:8088/janus", Transport::Http).is_ok());
        assert!(check_syntax("http://127.1.2.3:8088/janus", Transport::Http).is_ok());
        assert!(check_syntax("http://localhost:8088/janus", Transport::Http).is_ok());
        assert!(check_syntax("http://[::1]:8088/janus", Transport::Http).is_ok());
        assert!(check_syntax("ws://127.0.0.1:8188", Transport::Ws).is_ok());
        assert!(check_syntax("ws://[::ffff:127.0.0.1]:8188", Transport::Ws).is_ok());
        assert!(check_syntax("http://10.0.0.1:8088/janus", Transport::Http).is_err());
        assert!(check_syntax("http://example.com/janus", Transport::Http).is_err());
        assert!(check_syntax("http://[::2]:8088/janus", Transport::Http).is_err());
        assert!(check_syntax("http://0.0.0.0:8088/janus", Transport::Http).is_err());
        assert!(check_syntax("ws://127.0.0.1:8188", Transport::Http).is_err());
        assert!(check_syntax("https://127.0.0.1:8089/janus", Transport::Http).is_err());
        assert!(check_syntax("wss://127.0.0.1:8989", Transport::Ws).is_err());
        assert_eq!(
            check_syntax("ws://127.0.0.1:8188", Transport::Ws).unwrap(),
            ("127.0.0.1".to_string(), 8188)
        );
    }
}
