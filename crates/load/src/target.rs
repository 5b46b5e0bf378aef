//! Target URL checks: only loopback servers may be driven.

use std::net::{IpAddr, SocketAddr};

use hyper::Uri;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Http,
    Ws,
    /// AMQP 0-9-1: one connection shared by all clients (`amqp://host:port/vhost`).
    Rabbitmq,
    /// MQTT 3.1.1: one client shared by all clients (`mqtt://host:port`).
    Mqtt,
    /// SP pair v0: one socket shared by all clients (`ipc:///path` or `tcp://host:port`).
    Nanomsg,
    /// Unix SOCK_SEQPACKET: one connection per client (the socket's path).
    UnixSeqpacket,
    /// Unix SOCK_DGRAM: one bound socket per client (the server socket's path).
    UnixDgram,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Ws => "ws",
            Transport::Rabbitmq => "rabbitmq",
            Transport::Mqtt => "mqtt",
            Transport::Nanomsg => "nanomsg",
            Transport::UnixSeqpacket => "unix-seqpacket",
            Transport::UnixDgram => "unix-dgram",
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
/// For Unix-socket targets (a path, or `ipc://` for Nanomsg) returns `None`: local by nature.
pub fn check_syntax(url: &str, transport: Transport) -> Result<Option<(String, u16)>, String> {
    let (schemes, default_port): (&[&str], u16) = match transport {
        Transport::Http => (&["http"], 80),
        Transport::Ws => (&["ws"], 80),
        Transport::Rabbitmq => (&["amqp"], 5672),
        Transport::Mqtt => (&["mqtt", "tcp"], 1883),
        Transport::Nanomsg => {
            if url.starts_with("ipc://") {
                return jano_nanomsg::Address::parse(url).map(|_| None);
            }
            (&["tcp"], 0)
        }
        Transport::UnixSeqpacket | Transport::UnixDgram => {
            return match unix_path(url) {
                Some(_) => Ok(None),
                None => Err(format!(
                    "{url:?}: expected the server socket's path (or unix:///path, file:///path)"
                )),
            };
        }
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("invalid URL {url:?}: no scheme"))?;
    if !schemes.iter().any(|s| scheme.eq_ignore_ascii_case(s)) {
        return Err(format!(
            "URL {url:?} must use the {}:// scheme for --transport {} (TLS is not supported)",
            schemes.join(":// or "),
            transport.name()
        ));
    }
    // authority = [userinfo@]host[:port]
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("invalid URL {url:?}: unclosed ["))?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid URL {url:?}: bad port {p:?}"))?,
        None if default_port != 0 => default_port,
        None => return Err(format!("invalid URL {url:?}: no port")),
    };
    if transport == Transport::Http || transport == Transport::Ws {
        // Full URI syntax check for what hyper/tungstenite will parse.
        url.parse::<Uri>()
            .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    }
    if host.is_empty() {
        return Err(format!("URL {url:?} has no host"));
    }
    let ok =
        host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(is_loopback_ip);
    if !ok {
        return Err(format!(
            "refusing target host {host:?}: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed"
        ));
    }
    Ok(Some((host.to_string(), port)))
}

/// The filesystem path of a Unix-socket target: `/path`, `unix:///path` or `file:///path`.
pub fn unix_path(url: &str) -> Option<std::path::PathBuf> {
    let p = url
        .strip_prefix("unix://")
        .or_else(|| url.strip_prefix("file://"))
        .unwrap_or(url);
    (!p.is_empty() && !p.contains("://")).then(|| std::path::PathBuf::from(p))
}

/// Full check: syntax, then (for `localhost`) every resolved address must be loopback.
pub async fn validate(url: &str, transport: Transport) -> Result<Target, String> {
    if let Some((host, port)) = check_syntax(url, transport)? {
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
    }
    let url = match transport {
        Transport::Http | Transport::Ws => url.trim_end_matches('/'),
        _ => url,
    };
    Ok(Target {
        url: url.to_string(),
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
            Some(("127.0.0.1".to_string(), 8188))
        );
        let amqp = check_syntax("amqp://guest:guest@127.0.0.1:5672/%2f", Transport::Rabbitmq);
        assert_eq!(amqp.unwrap(), Some(("127.0.0.1".to_string(), 5672)));
        assert!(check_syntax("amqp://guest:guest@10.1.1.1/%2f", Transport::Rabbitmq).is_err());
        assert!(check_syntax("amqps://127.0.0.1", Transport::Rabbitmq).is_err());
        assert_eq!(
            check_syntax("mqtt://localhost", Transport::Mqtt).unwrap(),
            Some(("localhost".to_string(), 1883))
        );
        assert!(check_syntax("tcp://[::1]:1883", Transport::Mqtt).is_ok());
        assert!(check_syntax("mqtt://192.168.0.1:1883", Transport::Mqtt).is_err());
        assert_eq!(
            check_syntax("ipc:///tmp/x.ipc", Transport::Nanomsg).unwrap(),
            None
        );
        assert!(check_syntax("tcp://127.0.0.1:5555", Transport::Nanomsg).is_ok());
        assert!(check_syntax("tcp://127.0.0.1", Transport::Nanomsg).is_err());
        assert!(check_syntax("tcp://8.8.8.8:5555", Transport::Nanomsg).is_err());
        assert!(check_syntax("/tmp/janus.sock", Transport::UnixSeqpacket).is_ok());
        assert!(check_syntax("unix:///tmp/janus.sock", Transport::UnixDgram).is_ok());
        assert!(check_syntax("http://127.0.0.1/x", Transport::UnixDgram).is_err());
    }
}
