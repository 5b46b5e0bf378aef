//! The Scalability Protocols wire format, as nanomsg and nng speak it: an 8-byte protocol
//! header each way when a connection opens (sp-tcp-mapping, sp-ipc-mapping), then messages
//! framed by a 64-bit big-endian length — preceded on `ipc://` by a one-byte message type.
//!
//! Only the pair v0 protocol (`NN_PAIR`, nng's `pair0`) is spoken here: its messages carry no
//! protocol header of their own, so a frame's payload is the application message.

use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol id of pair v0 (`NN_PROTO_PAIR * 16 + 0`); its peer is pair v0 too.
pub const PAIR_V0: u16 = 0x0010;
/// The length of the protocol header.
pub const HEADER_LEN: usize = 8;
/// How long a peer has to send its protocol header (nng allows 10 s too).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The in-band message type on `ipc://`. The draft says 0, but nanomsg and nng both send 1
/// and nng refuses anything else, so 1 is what goes on the wire; 0 is still accepted.
pub const IPC_MSG_NORMAL: u8 = 1;

/// Which mapping frames the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `tcp://`: 64-bit length, payload.
    Tcp,
    /// `ipc://`: message type byte, 64-bit length, payload.
    Ipc,
}

impl Framing {
    /// Bytes before the payload.
    pub const fn prefix_len(self) -> usize {
        match self {
            Framing::Tcp => 8,
            Framing::Ipc => 9,
        }
    }
}

/// The protocol header announcing `proto`.
pub const fn header(proto: u16) -> [u8; HEADER_LEN] {
    let p = proto.to_be_bytes();
    [0, b'S', b'P', 0, p[0], p[1], 0, 0]
}

/// Why a connection was refused during the exchange of protocol headers.
#[derive(Debug)]
pub enum HandshakeError {
    Io(io::Error),
    /// The peer did not send its header in time.
    Timeout,
    /// Not a Scalability Protocols peer (or an unknown version of the mapping).
    NotSp([u8; HEADER_LEN]),
    /// An SP peer speaking another protocol (e.g. nng's pair1, or a req socket).
    WrongProtocol(u16),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Io(e) => write!(f, "{e}"),
            HandshakeError::Timeout => write!(f, "no protocol header within {HANDSHAKE_TIMEOUT:?}"),
            HandshakeError::NotSp(h) => {
                write!(f, "not a Scalability Protocols peer (header {h:02x?})")
            }
            HandshakeError::WrongProtocol(p) => write!(
                f,
                "the peer speaks SP protocol 0x{p:04x}, not pair v0 (0x{PAIR_V0:04x})"
            ),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Sends our header and checks the peer's: both sides send at once, then wait (the mapping
/// adds no round trip). The peer must speak `peer_proto`.
pub async fn handshake<S>(s: &mut S, proto: u16, peer_proto: u16) -> Result<(), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async {
        s.write_all(&header(proto)).await?;
        s.flush().await?;
        let mut h = [0u8; HEADER_LEN];
        s.read_exact(&mut h).await?;
        Ok::<_, io::Error>(h)
    };
    let h = match tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange).await {
        Err(_) => return Err(HandshakeError::Timeout),
        Ok(Err(e)) => return Err(HandshakeError::Io(e)),
        Ok(Ok(h)) => h,
    };
    check_header(&h, peer_proto)
}

/// Validates a peer's protocol header.
pub fn check_header(h: &[u8; HEADER_LEN], peer_proto: u16) -> Result<(), HandshakeError> {
    let [a, s, p, v, hi, lo, r1, r2] = *h;
    if [a, s, p, v, r1, r2] != [0, b'S', b'P', 0, 0, 0] {
        return Err(HandshakeError::NotSp(*h));
    }
    let proto = u16::from_be_bytes([hi, lo]);
    if proto != peer_proto {
        return Err(HandshakeError::WrongProtocol(proto));
    }
    Ok(())
}

/// Appends one framed message to `out`.
pub fn encode(framing: Framing, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(framing.prefix_len() + payload.len());
    if framing == Framing::Ipc {
        out.push(IPC_MSG_NORMAL);
    }
    // usize always fits in u64 on the platforms tokio supports.
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(payload);
}

/// What [`read_frame`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole message within the size limit.
    Message(Vec<u8>),
    /// A message over the limit, of this length: its payload is still unread (see [`skip`]).
    TooLarge(u64),
}

/// Reads one message. `Ok(None)` is a clean end of stream between messages. A message over
/// `max` bytes is not read: [`Frame::TooLarge`] tells its length, and the caller decides
/// whether to [`skip`] it (memory never grows with what the peer announces).
pub async fn read_frame<R>(r: &mut R, framing: Framing, max: usize) -> io::Result<Option<Frame>>
where
    R: AsyncRead + Unpin,
{
    // The first byte tells a clean end of stream from a truncated frame.
    let mut first = [0u8; 1];
    if r.read(&mut first).await? == 0 {
        return Ok(None);
    }
    let mut len_bytes = [0u8; 8];
    match framing {
        Framing::Tcp => {
            len_bytes[0] = first[0];
            r.read_exact(&mut len_bytes[1..]).await?;
        }
        Framing::Ipc => {
            let ty = first[0];
            if ty != IPC_MSG_NORMAL && ty != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unsupported ipc message type {ty}"),
                ));
            }
            r.read_exact(&mut len_bytes).await?;
        }
    }
    let len = u64::from_be_bytes(len_bytes);
    match usize::try_from(len) {
        Ok(n) if n <= max => {
            let mut body = vec![0u8; n];
            r.read_exact(&mut body).await?;
            Ok(Some(Frame::Message(body)))
        }
        _ => Ok(Some(Frame::TooLarge(len))),
    }
}

/// Reads and throws away `len` bytes (the payload of a message too large to keep).
pub async fn skip<R: AsyncRead + Unpin>(r: &mut R, len: u64) -> io::Result<()> {
    let n = tokio::io::copy(&mut r.take(len), &mut tokio::io::sink()).await?;
    if n < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_header_bytes() {
        assert_eq!(header(PAIR_V0), [0, b'S', b'P', 0, 0x00, 0x10, 0, 0]);
        assert!(check_header(&header(PAIR_V0), PAIR_V0).is_ok());
        // nng's pair1 is 0x0011: refused.
        assert!(matches!(
            check_header(&header(0x0011), PAIR_V0),
            Err(HandshakeError::WrongProtocol(0x11))
        ));
        assert!(matches!(
            check_header(b"GET / HT", PAIR_V0),
            Err(HandshakeError::NotSp(_))
        ));
        let mut h = header(PAIR_V0);
        h[7] = 1;
        assert!(matches!(
            check_header(&h, PAIR_V0),
            Err(HandshakeError::NotSp(_))
        ));
    }

    #[test]
    fn framing_bytes() {
        let mut out = Vec::new();
        encode(Framing::Tcp, b"hi", &mut out);
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        out.clear();
        encode(Framing::Ipc, b"hi", &mut out);
        assert_eq!(out, [1, 0, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
    }

    #[tokio::test]
    async fn reads_frames_and_reports_large_ones() {
        let mut data = Vec::new();
        encode(Framing::Ipc, b"one", &mut data);
        encode(Framing::Ipc, &[b'x'; 20], &mut data);
        encode(Framing::Ipc, b"", &mut data);
        data.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let mut r: &[u8] = &data;
        let rd = Framing::Ipc;
        assert_eq!(
            read_frame(&mut r, rd, 10).await.unwrap(),
            Some(Frame::Message(b"one".to_vec()))
        );
        assert_eq!(
            read_frame(&mut r, rd, 10).await.unwrap(),
            Some(Frame::TooLarge(20))
        );
        skip(&mut r, 20).await.unwrap();
        assert_eq!(
            read_frame(&mut r, rd, 10).await.unwrap(),
            Some(Frame::Message(Vec::new()))
        );
        assert_eq!(
            read_frame(&mut r, rd, 10).await.unwrap(),
            Some(Frame::TooLarge(u64::MAX))
        );
        // The announced payload is not there.
        assert!(skip(&mut r, 5).await.is_err());
        // Clean end of stream, then a truncated prefix.
        let mut empty: &[u8] = &[];
        assert_eq!(
            read_frame(&mut empty, Framing::Tcp, 10).await.unwrap(),
            None
        );
        let mut short: &[u8] = &[0, 0, 0];
        assert!(read_frame(&mut short, Framing::Tcp, 10).await.is_err());
        // Unknown ipc message type.
        let mut bad: &[u8] = &[7, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(read_frame(&mut bad, Framing::Ipc, 10).await.is_err());
    }
}
