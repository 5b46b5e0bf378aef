//! Creating the socket files: stale ones replaced, permissions set, and only our own removed.

use crate::settings::{Endpoint, SocketType};
use socket2::{Domain, SockAddr, Socket, Type};
use std::fs::{self, Permissions};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Janus's listen backlog.
const BACKLOG: i32 = 128;

/// A socket file this process created, identified by its inode so that `stop()` never removes
/// a file another process has since bound at the same path.
#[derive(Debug)]
pub(crate) struct BoundFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl BoundFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it is still the one we bound.
    pub(crate) fn remove(&self) {
        match fs::symlink_metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => {
                if let Err(e) = fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "could not remove the Unix socket file");
                }
            }
            Ok(_) => {
                tracing::debug!(path = %self.path.display(), "Unix socket file replaced by someone else: left alone")
            }
            Err(_) => {}
        }
    }
}

/// A bound socket (listening, for SEQPACKET) and its file.
pub(crate) fn bind(ep: &Endpoint, send_buffer: usize) -> Result<(OwnedFd, BoundFile), String> {
    let path = &ep.path;
    let shown = path.display();
    // The address is checked first, so that a path too long never costs the stale file.
    let addr = SockAddr::unix(path).map_err(|e| format!("invalid socket path {shown}: {e}"))?;
    // A stale socket from an earlier run is replaced (Janus unlinks before binding); anything
    // else at the path is a configuration mistake we refuse to delete.
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            fs::remove_file(path).map_err(|e| format!("cannot replace {shown}: {e}"))?;
            tracing::info!(path = %shown, "replaced a stale Unix socket file");
        }
        Ok(_) => {
            return Err(format!(
                "{shown} exists and is not a socket: refusing to replace it"
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot check {shown}: {e}")),
    }
    let ty = match ep.kind {
        SocketType::SeqPacket => Type::SEQPACKET,
        SocketType::Dgram => Type::DGRAM,
    };
    let sock = Socket::new(Domain::UNIX, ty, None)
        .map_err(|e| format!("cannot create a Unix socket: {e}"))?;
    sock.set_nonblocking(true)
        .map_err(|e| format!("cannot make the socket non-blocking: {e}"))?;
    // Linux creates the file with the socket inode's mode (less the umask): restricting it
    // before bind() means the file is never more open than configured, not even for the
    // instant before the chmod below. Best effort: the chmod is what guarantees the result.
    if let Ok(fd) = sock.as_fd().try_clone_to_owned() {
        let _ = fs::File::from(fd).set_permissions(Permissions::from_mode(ep.mode));
    }
    sock.bind(&addr)
        .map_err(|e| format!("cannot bind {shown}: {e}"))?;
    let file = match fs::symlink_metadata(path) {
        Ok(m) => BoundFile {
            path: path.clone(),
            dev: m.dev(),
            ino: m.ino(),
        },
        Err(e) => return Err(format!("{shown} vanished after bind: {e}")),
    };
    let finish = || -> Result<(), String> {
        fs::set_permissions(path, Permissions::from_mode(ep.mode))
            .map_err(|e| format!("cannot set the permissions of {shown}: {e}"))?;
        if ep.kind == SocketType::SeqPacket {
            sock.listen(BACKLOG)
                .map_err(|e| format!("cannot listen on {shown}: {e}"))?;
        }
        Ok(())
    };
    if let Err(e) = finish() {
        file.remove();
        return Err(e);
    }
    if ep.kind == SocketType::Dgram {
        // One socket sends to every DGRAM client. (SEQPACKET connections do not inherit the
        // listener's buffer: they grow theirs when a message needs it.)
        set_send_buffer(&sock, send_buffer);
    }
    Ok((OwnedFd::from(sock), file))
}

/// Raises the send buffer so that a message of about half `size` fits in one packet (on Unix
/// sockets the sender's buffer bounds the packet size). The kernel caps it at
/// `net.core.wmem_max`; a message that then does not fit is dropped, counted and logged.
pub(crate) fn set_send_buffer(sock: &impl AsFd, size: usize) {
    let s = socket2::SockRef::from(sock);
    if let Err(e) = s.set_send_buffer_size(size) {
        tracing::debug!(error = %e, "could not raise the Unix socket send buffer");
    }
}
