//! nanomsg addresses: `tcp://host:port` and `ipc:///path`.

use crate::sp::Framing;
use std::fmt;
use std::path::PathBuf;

/// Where a socket binds or connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `tcp://host:port`; `*` (bind only) is every interface. Port 0 binds a free port.
    Tcp { host: String, port: u16 },
    /// `ipc://<path>`: a Unix stream socket file.
    Ipc(PathBuf),
}

impl Address {
    /// Parses a nanomsg address.
    pub fn parse(text: &str) -> Result<Address, String> {
        let t = text.trim();
        if let Some(path) = t.strip_prefix("ipc://") {
            if path.is_empty() {
                return Err(format!("{t:?}: the ipc:// address has no path"));
            }
            return Ok(Address::Ipc(PathBuf::from(path)));
        }
        if let Some(rest) = t.strip_prefix("tcp://") {
            if rest.contains(';') {
                // nanomsg's `tcp://local-interface;host:port` form for connecting.
                return Err(format!(
                    "{t:?}: choosing the local interface (`iface;host:port`) is not supported"
                ));
            }
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("{t:?}: expected tcp://host:port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| format!("{t:?}: {port:?} is not a port number"))?;
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            if host.is_empty() {
                return Err(format!("{t:?}: the tcp:// address has no host"));
            }
            return Ok(Address::Tcp {
                host: host.to_owned(),
                port,
            });
        }
        Err(format!(
            "{t:?}: unsupported address (expected ipc:///path or tcp://host:port)"
        ))
    }

    /// How messages are framed on this kind of address.
    pub fn framing(&self) -> Framing {
        match self {
            Address::Tcp { .. } => Framing::Tcp,
            Address::Ipc(_) => Framing::Ipc,
        }
    }

    /// The host to bind: nanomsg's `*` is every IPv4 interface.
    pub(crate) fn bind_host(host: &str) -> &str {
        if host == "*" {
            "0.0.0.0"
        } else {
            host
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Address::Ipc(p) => write!(f, "ipc://{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            Address::parse("ipc:///tmp/janus.ipc"),
            Ok(Address::Ipc("/tmp/janus.ipc".into()))
        );
        assert_eq!(
            Address::parse("tcp://127.0.0.1:5555"),
            Ok(Address::Tcp {
                host: "127.0.0.1".into(),
                port: 5555
            })
        );
        assert_eq!(
            Address::parse("tcp://[::1]:5555"),
            Ok(Address::Tcp {
                host: "::1".into(),
                port: 5555
            })
        );
        assert_eq!(
            Address::parse("tcp://*:5555").map(|a| a.to_string()),
            Ok("tcp://*:5555".into())
        );
        for bad in [
            "ipc://",
            "tcp://host",
            "tcp://:5",
            "tcp://h:99999",
            "inproc://x",
            "tcp://eth0;h:5",
            "",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }
}
