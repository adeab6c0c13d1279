//! Unix domain sockets: stream listeners and connections (their accept, receive, send
//! and shutdown are shared with TCP in `stream.rs`) and datagram sockets (shared with
//! UDP in `datagram.rs`). Paths follow `address.rs`: `@name` is abstract.
//!
//! A socket file outlives the process that bound it. Binding over one fails with
//! `-EADDRINUSE` unless the host asks to replace a *stale* one (nobody bound to it any
//! more), and a socket removes the file it created when it closes.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::abi::IOT_UNIX_REPLACE_STALE;
use crate::address::unix_addr;
use crate::error::{from_io, Result};
use crate::sockets::{BoundPath, SocketKind};
use crate::worker::Worker;

/// Whether `path` is a socket file nobody is bound to: a non-blocking connect of a
/// socket of the same type is refused. (A live stream server sees one connection that
/// closes at once.)
fn is_stale_socket(path: &Path, addr: &SockAddr, ty: Type) -> bool {
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if !is_socket {
        return false;
    }
    let Ok(probe) = Socket::new(Domain::UNIX, ty.nonblocking(), None) else {
        return false;
    };
    matches!(
        probe.connect(addr).map_err(|e| e.raw_os_error()),
        Err(Some(libc::ECONNREFUSED))
    )
}

/// A Unix socket of `ty` bound to `path` (`None`: a kernel-chosen abstract name), with
/// the socket file it created, if any.
fn bound_unix_socket(
    path: Option<&[u8]>,
    ty: Type,
    flags: u32,
) -> Result<(Socket, Option<Box<BoundPath>>)> {
    let socket = Socket::new(Domain::UNIX, ty, None).map_err(from_io)?;
    let Some(path) = path else {
        // An address of only the family asks the kernel to pick an abstract name.
        let autobind = unix_autobind_addr();
        socket.bind(&autobind).map_err(from_io)?;
        return Ok((socket, None));
    };
    let addr = unix_addr(path)?;
    let file = addr.as_pathname(); // None for an abstract name: no file to manage
    if let Err(err) = socket.bind(&addr) {
        let replace =
            err.raw_os_error() == Some(libc::EADDRINUSE) && flags & IOT_UNIX_REPLACE_STALE != 0;
        match file {
            Some(file) if replace && is_stale_socket(file, &addr, ty) => {
                std::fs::remove_file(file).map_err(from_io)?;
                socket.bind(&addr).map_err(from_io)?;
            }
            _ => return Err(from_io(err)),
        }
    }
    let bound = file.map(BoundPath::new).transpose()?.map(Box::new);
    Ok((socket, bound))
}

/// `struct sockaddr_un` holding only the family: bind picks an abstract name.
fn unix_autobind_addr() -> SockAddr {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    storage.ss_family = libc::AF_UNIX as libc::sa_family_t;
    // SAFETY: the storage holds an AF_UNIX family; a length of just the family is the
    // documented autobind request.
    unsafe {
        SockAddr::new(
            storage,
            std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t,
        )
    }
}

impl Worker {
    pub(crate) fn unix_listen(&mut self, path: &[u8], backlog: u32, flags: u32) -> Result<u64> {
        let (socket, bound) = bound_unix_socket(Some(path), Type::STREAM, flags)?;
        let handle = self.listen_on(socket, backlog)?;
        self.sockets.get_mut(handle)?.bound_path = bound;
        Ok(handle)
    }

    /// The connected socket arrives in the completion's `handle`.
    pub(crate) fn unix_connect(&mut self, path: &[u8], tag: u64, timeout_ms: u32) -> Result<()> {
        let addr = unix_addr(path)?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(from_io)?;
        self.connect_stream(socket, addr, tag, timeout_ms)
    }

    /// A Unix datagram socket bound to `path`, or to a kernel-chosen abstract name when
    /// `path` is `None` (so peers can still answer it).
    pub(crate) fn unix_datagram_bind(&mut self, path: Option<&[u8]>, flags: u32) -> Result<u64> {
        let (socket, bound) = bound_unix_socket(path, Type::DGRAM, flags)?;
        let handle = self.sockets.insert(socket.into(), SocketKind::Datagram)?;
        self.sockets.get_mut(handle)?.bound_path = bound;
        Ok(handle)
    }
}
