//! TCP on a worker: listen, accept, connect, receive, send, shutdown, addresses.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::completion::*;
use crate::error::{from_io, Result};
use crate::ops::{Op, Work};
use crate::sockets::{Outbound, SocketKind};
use crate::worker::Worker;

pub(crate) fn parse_ip(ip: &str) -> Result<IpAddr> {
    ip.parse().map_err(|_| -libc::EINVAL)
}

impl Worker {
    pub(crate) fn tcp_listen(
        &mut self,
        ip: IpAddr,
        port: u16,
        backlog: u32,
        flags: u32,
    ) -> Result<u64> {
        let addr = SocketAddr::new(ip, port);
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(from_io)?;
        socket.set_reuse_address(true).map_err(from_io)?;
        if flags & IOT_LISTEN_REUSEPORT != 0 {
            socket.set_reuse_port(true).map_err(from_io)?;
        }
        if ip.is_ipv6() {
            socket
                .set_only_v6(flags & IOT_LISTEN_V6ONLY != 0)
                .map_err(from_io)?;
        }
        socket.bind(&addr.into()).map_err(from_io)?;
        let backlog = if backlog == 0 {
            libc::SOMAXCONN
        } else {
            backlog.min(i32::MAX as u32) as i32
        };
        socket.listen(backlog).map_err(from_io)?;
        Ok(self
            .sockets
            .insert(OwnedFd::from(socket), SocketKind::Listener))
    }

    /// Each accepted connection completes with its new socket in `handle`.
    pub(crate) fn tcp_accept(
        &mut self,
        listener: u64,
        tag: u64,
        flags: u32,
        timeout_ms: u32,
    ) -> Result<()> {
        self.sockets.get_kind(listener, SocketKind::Listener)?;
        let multishot = flags & IOT_OP_MULTISHOT != 0;
        reject_multishot_timeout(multishot, timeout_ms)?;
        let op = Op::new(
            tag,
            IOT_KIND_ACCEPT,
            listener,
            Work::Accept { multishot },
            timeout_ms,
        );
        self.start(op).map(drop)
    }

    /// The connected socket arrives in the completion's `handle`; on failure no socket
    /// is left behind.
    pub(crate) fn tcp_connect(
        &mut self,
        ip: IpAddr,
        port: u16,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        let addr = SocketAddr::new(ip, port);
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(from_io)?;
        socket.set_nodelay(true).map_err(from_io)?;
        let handle = self
            .sockets
            .insert(OwnedFd::from(socket), SocketKind::Stream);
        let work = Work::Connect {
            addr: Box::new(SockAddr::from(addr)),
        };
        let result = self.start(Op::new(tag, IOT_KIND_CONNECT, handle, work, timeout_ms));
        if result.is_err() {
            let _ = self.sockets.remove(handle);
        }
        result.map(drop)
    }

    /// Received bytes arrive in buffers the host owns until it releases them.
    pub(crate) fn recv(
        &mut self,
        socket: u64,
        tag: u64,
        flags: u32,
        timeout_ms: u32,
    ) -> Result<()> {
        self.sockets.get_kind(socket, SocketKind::Stream)?;
        let multishot = flags & IOT_OP_MULTISHOT != 0;
        reject_multishot_timeout(multishot, timeout_ms)?;
        let op = Op::new(
            tag,
            IOT_KIND_RECV,
            socket,
            Work::Recv { multishot },
            timeout_ms,
        );
        self.start(op).map(drop)
    }

    /// Sends `len` bytes of host buffer `buffer` from `offset`; the buffer belongs to
    /// the send until it completes (fully, or with an error) and is then released.
    pub(crate) fn send(
        &mut self,
        socket: u64,
        buffer: u32,
        offset: u32,
        len: u32,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        self.sockets.get_kind(socket, SocketKind::Stream)?;
        self.buffers.check_host_range(buffer, offset, len)?;
        self.buffers.lend_to_operation(buffer)?;
        self.queue_outbound(
            socket,
            Outbound::Send {
                tag,
                buffer,
                offset,
                len,
                timeout_ms,
            },
        )
    }

    /// Shuts down after every send queued before it.
    pub(crate) fn shutdown_socket(&mut self, socket: u64, how: i32, tag: u64) -> Result<()> {
        if !matches!(how, libc::SHUT_RD | libc::SHUT_WR | libc::SHUT_RDWR) {
            return Err(-libc::EINVAL);
        }
        self.sockets.get(socket)?;
        self.queue_outbound(socket, Outbound::Shutdown { tag, how })
    }

    pub(crate) fn socket_address(&self, socket: u64, which: u32) -> Result<SockAddr> {
        let sock = SockRef::from(&self.sockets.get(socket)?.fd);
        match which {
            IOT_ADDRESS_LOCAL => sock.local_addr().map_err(from_io),
            IOT_ADDRESS_PEER => sock.peer_addr().map_err(from_io),
            _ => Err(-libc::EINVAL),
        }
    }
}

/// A multishot op has no single deadline; timeouts are for one-shot ops.
fn reject_multishot_timeout(multishot: bool, timeout_ms: u32) -> Result<()> {
    if multishot && timeout_ms > 0 {
        Err(-libc::EINVAL)
    } else {
        Ok(())
    }
}
