//! Batched UDP: `recvmmsg` takes every datagram a socket holds (up to [`BATCH`]) in one system
//! call, `sendmmsg` writes the datagrams one pass over a PeerConnection produced in one call.
//!
//! Both only ever run on non-blocking sockets with `MSG_DONTWAIT`: a batch never waits, and a
//! datagram the kernel refuses (full socket buffer, unreachable peer) is dropped and the rest of
//! the batch still goes, as separate `send_to` calls would do. On systems without the calls
//! (not Linux/Android) the same functions fall back to one datagram per call.
//!
//! UDP GSO (`UDP_SEGMENT`) is not used: it needs runs of equal-sized datagrams to one address,
//! and a PeerConnection's output is a mix of RTP and RTCP of different sizes, a few per pass.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub(crate) const BATCH: usize = 32;
/// Bytes kept of each received datagram (larger ones are cut and then refused, as before).
const DATAGRAM: usize = 2048;

/// Buffers for one `recvmmsg`: one worker (or reader task) keeps one and reuses it; a batch is
/// only read in a synchronous stretch, right after it is filled.
pub(crate) struct RecvBatch {
    bufs: Box<[[u8; DATAGRAM]; BATCH]>,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    addrs: Box<[libc::sockaddr_storage; BATCH]>,
    /// What the last call got: (source, length) per datagram, `None` for one to skip.
    got: Vec<Option<(SocketAddr, usize)>>,
}

impl RecvBatch {
    pub(crate) fn new() -> RecvBatch {
        RecvBatch {
            bufs: Box::new([[0; DATAGRAM]; BATCH]),
            // SAFETY: `sockaddr_storage` is a plain C struct; all zeroes is a valid value.
            #[cfg(any(target_os = "linux", target_os = "android"))]
            addrs: Box::new(unsafe { std::mem::zeroed() }),
            got: Vec::with_capacity(BATCH),
        }
    }

    /// The datagrams of the last [`RecvBatch::recv`], in arrival order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.got
            .iter()
            .zip(self.bufs.iter())
            .filter_map(|(g, buf)| g.and_then(|(from, n)| Some((from, buf.get(..n)?))))
    }

    /// Reads what the socket holds, up to [`BATCH`] datagrams, without waiting; returns how many
    /// (an error `WouldBlock` when there is none, for tokio's readiness to be cleared).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.got.clear();
        // SAFETY: all-zero `iovec`/`mmsghdr` are valid values (null pointers, zero lengths);
        // every one handed to the kernel is filled in below.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for ((v, h), (buf, addr)) in iov
            .iter_mut()
            .zip(hdrs.iter_mut())
            .zip(self.bufs.iter_mut().zip(self.addrs.iter_mut()))
        {
            v.iov_base = buf.as_mut_ptr().cast();
            v.iov_len = DATAGRAM;
            h.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `hdrs` holds BATCH headers, each pointing at its own iovec (a buffer of
        // DATAGRAM bytes owned by `self.bufs`) and its own `sockaddr_storage` with its size;
        // all of them outlive the call, which does not keep any pointer after it returns.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as _,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (n as usize).min(BATCH);
        for (h, addr) in hdrs.iter().zip(self.addrs.iter()).take(n) {
            let cut = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let from = sockaddr_to(addr, h.msg_hdr.msg_namelen);
            let len = (h.msg_len as usize).min(DATAGRAM);
            self.got.push(from.filter(|_| !cut).map(|f| (f, len)));
        }
        Ok(n)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        use std::os::fd::BorrowedFd;
        self.got.clear();
        // SAFETY: the caller's socket stays open for the call.
        let sock = socket2::SockRef::from(unsafe { &BorrowedFd::borrow_raw(fd) });
        let buf = self.bufs.first_mut().ok_or(io::ErrorKind::WouldBlock)?;
        // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and recv only writes.
        let uninit = unsafe { &mut *(buf.as_mut_slice() as *mut [u8] as *mut [_]) };
        let (n, from) = sock.recv_from(uninit)?;
        self.got
            .push(from.as_socket().map(|f| (f, n.min(DATAGRAM))));
        Ok(1)
    }
}

thread_local! {
    /// The batch this thread's PeerConnections read their own sockets into, one at a time.
    static SPARE: Cell<Option<RecvBatch>> = const { Cell::new(None) };
}

/// Lends this thread's receive batch to `f` (a fresh one if it is already lent out).
pub(crate) fn with_thread_batch<R>(f: impl FnOnce(&mut RecvBatch) -> R) -> R {
    let mut batch = SPARE.with(Cell::take).unwrap_or_else(RecvBatch::new);
    let r = f(&mut batch);
    SPARE.with(|s| s.set(Some(batch)));
    r
}

/// One datagram to send: where to, and the bytes.
pub(crate) trait Outgoing {
    fn to(&self) -> SocketAddr;
    fn data(&self) -> &[u8];
}

impl Outgoing for (SocketAddr, &[u8]) {
    fn to(&self) -> SocketAddr {
        self.0
    }
    fn data(&self) -> &[u8] {
        self.1
    }
}

/// Sends `msgs` on `fd` in order, never waiting; returns how many the kernel took. A datagram
/// it refuses is skipped (counted as not sent) and the ones after it are still tried.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn send<M: Outgoing>(fd: RawFd, msgs: &[M]) -> usize {
    if let [one] = msgs {
        // The usual case on the fan-out path (one packet per destination and pass): one plain
        // `sendto`, without setting up (and zeroing) a batch of headers and addresses.
        return usize::from(send_one(fd, one));
    }
    let mut sent = 0;
    for chunk in msgs.chunks(BATCH) {
        // SAFETY: as in `recv`, all-zero C structs are valid; each used one is filled in.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        for (((m, v), h), addr) in chunk
            .iter()
            .zip(iov.iter_mut())
            .zip(hdrs.iter_mut())
            .zip(addrs.iter_mut())
        {
            // The kernel only reads through this pointer (sendmmsg), never writes.
            v.iov_base = m.data().as_ptr().cast_mut().cast();
            v.iov_len = m.data().len();
            h.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = sockaddr_from(m.to(), addr);
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
        }
        let mut at = 0;
        while at < chunk.len() {
            let rest = hdrs.get_mut(at..chunk.len()).unwrap_or_default();
            // SAFETY: every header in `rest` points at its own iovec (a slice of `msgs`, alive
            // for the call) and its own filled-in address of the given length.
            let n = unsafe {
                libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as _, libc::MSG_DONTWAIT)
            };
            if n > 0 {
                at += n as usize;
                sent += n as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The datagram at `at` was refused (full buffer, ICMP error, ...): dropped, as the
            // network would; the rest are still tried.
            tracing::trace!("sendmmsg: {e}");
            at += 1;
        }
    }
    sent
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn send<M: Outgoing>(fd: RawFd, msgs: &[M]) -> usize {
    msgs.iter().filter(|m| send_one(fd, m)).count()
}

/// One datagram with one `sendto` (the socket is non-blocking); whether the kernel took it.
fn send_one<M: Outgoing>(fd: RawFd, m: &M) -> bool {
    use std::os::fd::BorrowedFd;
    // SAFETY: the caller's socket stays open for the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&fd);
    match sock.send_to(m.data(), &m.to().into()) {
        Ok(_) => true,
        Err(e) => {
            tracing::trace!("sendto: {e}");
            false
        }
    }
}

/// Writes `to` into `out` as a C socket address; returns its length.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn sockaddr_from(to: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match to {
        SocketAddr::V4(a) => {
            // SAFETY: `sockaddr_storage` is larger than and aligned for every sockaddr type.
            let sin =
                unsafe { &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6 =
                unsafe { &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// The address the kernel wrote into `addr` (`len` bytes of it), if it is IPv4 or IPv6.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn sockaddr_to(addr: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(addr.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a `sockaddr_in`, and it is long enough.
            let sin =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for `sockaddr_in6`.
            let sin6 =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_goes_out_and_comes_back_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let to = b.local_addr().unwrap();
        let payloads: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let msgs: Vec<(SocketAddr, &[u8])> = payloads.iter().map(|p| (to, &p[..])).collect();
        assert_eq!(send(a.as_raw_fd(), &msgs), 40);
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        loop {
            match batch.recv(b.as_raw_fd()) {
                Ok(_) => got.extend(batch.iter().map(|(from, d)| (from, d.to_vec()))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got.len(), 40);
        for ((from, d), p) in got.iter().zip(&payloads) {
            assert_eq!(*from, a.local_addr().unwrap());
            assert_eq!(d, p);
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn addresses_round_trip() {
        for s in ["10.1.2.3:4567", "[2001:db8::1]:9", "[fe80::1%3]:5000"] {
            let a: SocketAddr = s.parse().unwrap();
            // SAFETY: all zeroes is a valid `sockaddr_storage`.
            let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let len = sockaddr_from(a, &mut st);
            assert_eq!(sockaddr_to(&st, len), Some(a));
        }
    }
}
