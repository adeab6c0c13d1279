//! The epoll peer: a plain single-thread, nonblocking, level-triggered epoll echo server.
//!
//! Per readable event it does one `recv` and echoes the bytes straight back. If the
//! socket does not take them all (partial write or EAGAIN), the rest is kept, the
//! connection switches to EPOLLOUT only (no more reading: backpressure), and it goes
//! back to EPOLLIN once the pending bytes are flushed.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

use crate::sys::{self, Epoll, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT};

/// Same read buffer size as the tokio peer.
const BUF: usize = 64 * 1024;
const LISTENER: u64 = u64::MAX;

struct Conn {
    fd: OwnedFd,
    /// Bytes read but not yet written back, from `pending_off` on.
    pending: Vec<u8>,
    pending_off: usize,
}

enum Next {
    Keep,
    Close,
}

pub fn serve() -> io::Result<()> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    listener.set_reuse_address(true)?;
    listener.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    listener.listen(1024)?;
    listener.set_nonblocking(true)?;
    let local = listener
        .local_addr()?
        .as_socket()
        .expect("an IPv4 socket address");
    println!("listening on {local}");

    let ep = Epoll::new()?;
    ep.add(listener.as_raw_fd(), EPOLLIN, LISTENER)?;

    // Connections live in a slab; the slot index is the epoll token.
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; BUF];
    let mut events = sys::events(256);

    loop {
        let n = ep.wait(&mut events, -1)?;
        for ev in &events[..n] {
            let token = sys::token(ev);
            let flags = sys::flags(ev) as libc::c_int;
            if token == LISTENER {
                accept_all(&listener, &ep, &mut conns, &mut free)?;
                continue;
            }
            let slot = token as usize;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue; // stale event for a connection closed earlier in this batch
            };
            if let Next::Close = on_event(conn, flags, &ep, token, &mut buf) {
                conns[slot] = None; // dropping the fd also removes it from epoll
                free.push(slot);
            }
        }
    }
}

fn accept_all(
    listener: &Socket,
    ep: &Epoll,
    conns: &mut Vec<Option<Conn>>,
    free: &mut Vec<usize>,
) -> io::Result<()> {
    loop {
        // SAFETY: accept4 with null address pointers is allowed.
        let fd = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => return Ok(()),
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => continue,
                _ => {
                    eprintln!("epoll server: accept: {err}");
                    return Ok(()); // e.g. EMFILE: try again on the next event
                }
            }
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if let Err(e) = sys::set_nodelay(fd.as_raw_fd()) {
            eprintln!("epoll server: TCP_NODELAY: {e}");
        }
        let slot = free.pop().unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        ep.add(fd.as_raw_fd(), EPOLLIN, slot as u64)?;
        conns[slot] = Some(Conn {
            fd,
            pending: Vec::new(),
            pending_off: 0,
        });
    }
}

fn on_event(conn: &mut Conn, flags: libc::c_int, ep: &Epoll, token: u64, buf: &mut [u8]) -> Next {
    let fd = conn.fd.as_raw_fd();
    if flags & EPOLLOUT != 0 {
        match write_out(fd, &conn.pending[conn.pending_off..]) {
            Ok(n) => conn.pending_off += n,
            Err(_) => return Next::Close,
        }
        if conn.pending_off < conn.pending.len() {
            return Next::Keep; // still blocked: keep waiting for EPOLLOUT
        }
        conn.pending.clear();
        conn.pending_off = 0;
        if ep.modify(fd, EPOLLIN, token).is_err() {
            return Next::Close;
        }
        return Next::Keep; // level-triggered: a pending EPOLLIN is reported next round
    }
    if !conn.pending.is_empty() {
        // Registered for EPOLLOUT only; an error or hangup ends the connection.
        return if flags & (EPOLLHUP | EPOLLERR) != 0 {
            Next::Close
        } else {
            Next::Keep
        };
    }
    if flags & (EPOLLIN | EPOLLHUP | EPOLLERR) == 0 {
        return Next::Keep;
    }
    let n = match sys::recv(fd, buf) {
        Ok(0) => return Next::Close,
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
        Err(_) => return Next::Close,
    };
    let written = match write_out(fd, &buf[..n]) {
        Ok(w) => w,
        Err(_) => return Next::Close,
    };
    if written < n {
        conn.pending.extend_from_slice(&buf[written..n]);
        conn.pending_off = 0;
        if ep.modify(fd, EPOLLOUT, token).is_err() {
            return Next::Close;
        }
    }
    Next::Keep
}

/// Writes as much of `data` as the socket takes now; stops at EAGAIN.
fn write_out(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match sys::send(fd, &data[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
