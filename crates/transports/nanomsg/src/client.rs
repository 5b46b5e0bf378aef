//! A small pair v0 peer, the other end of the transport: dials a bound jano, or listens for a
//! jano in `connect` mode. Used by the tests and handy for tools. Received messages are read
//! by a background task into a bounded queue, so [`PairClient::recv`] can time out without
//! losing a half-read frame.

use crate::sp::{self, Frame, Framing, PAIR_V0};
use crate::Address;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, WriteHalf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;

/// Largest message the client accepts.
const CLIENT_MAX: usize = 64 << 20;

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Why [`PairClient::recv`] returned nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum RecvError {
    Timeout,
    /// The connection is closed (or broke).
    Closed,
}

/// One pair v0 connection.
pub struct PairClient {
    writer: WriteHalf<Box<dyn Stream>>,
    framing: Framing,
    rx: mpsc::Receiver<Vec<u8>>,
    reader: tokio::task::JoinHandle<()>,
}

impl PairClient {
    /// Connects to `address` and exchanges protocol headers with our pair v0 header.
    pub async fn dial(address: &Address) -> io::Result<PairClient> {
        Self::dial_as(address, PAIR_V0).await
    }

    /// Like [`PairClient::dial`], announcing another protocol id (to test refusals).
    pub async fn dial_as(address: &Address, proto: u16) -> io::Result<PairClient> {
        let s: Box<dyn Stream> = match address {
            Address::Tcp { host, port } => {
                let s = TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Address::Ipc(path) => Box::new(UnixStream::connect(path).await?),
        };
        Self::handshake(s, address.framing(), proto).await
    }

    async fn handshake(
        mut s: Box<dyn Stream>,
        framing: Framing,
        proto: u16,
    ) -> io::Result<PairClient> {
        sp::handshake(&mut s, proto, PAIR_V0)
            .await
            .map_err(|e| match e {
                sp::HandshakeError::Io(e) => e,
                other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
            })?;
        let (r, writer) = tokio::io::split(s);
        let (tx, rx) = mpsc::channel(4096);
        let reader = tokio::spawn(async move {
            let mut r = BufReader::new(r);
            while let Ok(Some(Frame::Message(m))) =
                sp::read_frame(&mut r, framing, CLIENT_MAX).await
            {
                if tx.send(m).await.is_err() {
                    break;
                }
            }
        });
        Ok(PairClient {
            writer,
            framing,
            rx,
            reader,
        })
    }

    /// Sends one message.
    pub async fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut buf = Vec::new();
        sp::encode(self.framing, payload, &mut buf);
        self.send_raw(&buf).await
    }

    /// Writes bytes as they are (to test framing errors).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await
    }

    /// Sends a JSON value as one message.
    pub async fn send_json(&mut self, v: &serde_json::Value) -> io::Result<()> {
        self.send(v.to_string().as_bytes()).await
    }

    /// The next message, waiting up to `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvError> {
        match tokio::time::timeout(timeout, self.rx.recv()).await {
            Err(_) => Err(RecvError::Timeout),
            Ok(None) => Err(RecvError::Closed),
            Ok(Some(m)) => Ok(m),
        }
    }

    /// The next message as JSON (`None` on timeout, close, or a message that is not JSON).
    pub async fn recv_json(&mut self, timeout: Duration) -> Option<serde_json::Value> {
        let m = self.recv(timeout).await.ok()?;
        serde_json::from_slice(&m).ok()
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.writer.shutdown().await;
        self.reader.abort();
    }
}

impl Drop for PairClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A listening pair v0 peer, for a jano in `connect` mode.
pub enum PairListener {
    Tcp(TcpListener),
    Ipc(UnixListener, std::path::PathBuf),
}

impl PairListener {
    /// Binds `address` (`tcp://127.0.0.1:0` picks a free port: see [`PairListener::address`]).
    pub async fn bind(address: &Address) -> io::Result<PairListener> {
        match address {
            Address::Tcp { host, port } => Ok(PairListener::Tcp(
                TcpListener::bind((host.as_str(), *port)).await?,
            )),
            Address::Ipc(path) => Ok(PairListener::Ipc(UnixListener::bind(path)?, path.clone())),
        }
    }

    /// The address a peer should connect to.
    pub fn address(&self) -> io::Result<Address> {
        match self {
            PairListener::Tcp(l) => {
                let a = l.local_addr()?;
                Ok(Address::Tcp {
                    host: a.ip().to_string(),
                    port: a.port(),
                })
            }
            PairListener::Ipc(_, p) => Ok(Address::Ipc(p.clone())),
        }
    }

    /// The next connection, after the protocol headers are exchanged.
    pub async fn accept(&self) -> io::Result<PairClient> {
        match self {
            PairListener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                PairClient::handshake(Box::new(s), Framing::Tcp, PAIR_V0).await
            }
            PairListener::Ipc(l, _) => {
                let (s, _) = l.accept().await?;
                PairClient::handshake(Box::new(s), Framing::Ipc, PAIR_V0).await
            }
        }
    }
}
