//! Receiving one packet and turning it into the core's input.
//!
//! Packets are read into one buffer per worker thread, sized to the message limit, and parsed
//! before the poll returns: a connection costs no receive buffer of its own, yet a request up to
//! the limit (1 MiB by default, where Janus stops at 8 KiB) is read whole, and a larger one is
//! seen to be larger rather than silently cut.

use jano_api::Value;
use std::cell::RefCell;
use std::io;
use std::path::PathBuf;
use std::task::{Context, Poll};
use tokio::io::ReadBuf;
use tokio::net::UnixDatagram;
use tokio_seqpacket::UnixSeqpacket;

/// What the core takes: the request, or the parser's complaint `<string>(line,col): text`.
pub(crate) type Input = Result<Value, String>;

/// One packet received.
pub(crate) enum Packet {
    Request(Input),
    /// Larger than the limit: not parsed.
    TooLarge,
    /// The peer closed the connection (SEQPACKET only).
    Eof,
}

/// One datagram received.
pub(crate) enum Datagram {
    From(PathBuf, Packet),
    /// From an unbound or abstract socket: there is no path to answer to.
    Unbound,
}

thread_local! {
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's receive buffer, grown to `len` bytes if needed.
fn with_buf<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < len {
            b.resize(len, 0);
        }
        f(&mut b[..len])
    })
}

/// Parses one request. Trailing NUL bytes are ignored: C clients often send `strlen + 1` bytes,
/// and Janus, reading the buffer as a C string, accepts that.
pub(crate) fn parse(bytes: &[u8]) -> Input {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let bytes = bytes.get(..end).unwrap_or_default();
    jano_api::json::decode(bytes)
}

/// Polls for the next packet on a SEQPACKET connection.
pub(crate) fn poll_packet(
    sock: &UnixSeqpacket,
    cx: &mut Context<'_>,
    max: usize,
) -> Poll<io::Result<Packet>> {
    // A read of 0 bytes is either the peer's EOF or an empty packet; the readiness tells which
    // (an empty packet is bad input to answer, not a reason to drop the client's sessions).
    let closed = match sock.as_async_fd().poll_read_ready(cx) {
        Poll::Ready(Ok(guard)) => guard.ready().is_read_closed(),
        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
        Poll::Pending => return Poll::Pending,
    };
    with_buf(max, |buf| match sock.poll_recv(cx, buf) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Ready(Ok(info)) => {
            let n = info.bytes_read();
            Poll::Ready(Ok(if info.truncated() {
                Packet::TooLarge
            } else if n == 0 && closed {
                Packet::Eof
            } else {
                Packet::Request(parse(buf.get(..n).unwrap_or_default()))
            }))
        }
    })
}

/// Polls for the next datagram.
pub(crate) fn poll_datagram(
    sock: &UnixDatagram,
    cx: &mut Context<'_>,
    max: usize,
) -> Poll<io::Result<Datagram>> {
    // One byte more than the limit: a datagram that fills it is over the limit (a datagram
    // socket reports no truncation otherwise).
    with_buf(max + 1, |buf| {
        let mut rb = ReadBuf::new(buf);
        match sock.poll_recv_from(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(from)) => {
                let Some(path) = from.as_pathname() else {
                    return Poll::Ready(Ok(Datagram::Unbound));
                };
                let data = rb.filled();
                let packet = if data.len() > max {
                    Packet::TooLarge
                } else {
                    Packet::Request(parse(data))
                };
                Poll::Ready(Ok(Datagram::From(path.to_path_buf(), packet)))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_trailing_nul_and_reports_position() {
        assert_eq!(parse(b"{\"a\":1}\0").unwrap(), serde_json::json!({"a": 1}));
        assert_eq!(parse(b"{\"a\":1}\n").unwrap(), serde_json::json!({"a": 1}));
        let e = parse(b"{not json").unwrap_err();
        assert!(e.starts_with("<string>(1,2): "), "{e}");
        assert!(!e.contains(" at line "), "{e}");
        assert!(parse(b"").is_err());
        assert!(parse(b"\0\0").is_err());
        assert!(parse(b"{} {}").is_err(), "one JSON value per packet");
    }
}
