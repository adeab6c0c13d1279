//! Connection-oriented sockets, shared by TCP and Unix stream sockets: listen, accept,
//! connect, receive, send and shutdown. Sends also serve connected datagram sockets.

use std::os::fd::OwnedFd;

use socket2::{SockAddr, Socket};

use crate::abi::*;
use crate::error::{from_io, Result, IOT_E_WRONG_SOCKET_KIND};
use crate::op::{Accept, Connect, Op, Recv, SendProgress, SendTarget, Shutdown, Work};
use crate::pieces::BufferRef;
use crate::sockets::SocketKind;
use crate::worker::Worker;

impl Worker {
    /// Listens on a bound socket and registers it as a listener.
    pub(crate) fn listen_on(&mut self, socket: Socket, backlog: u32) -> Result<u64> {
        let backlog = if backlog == 0 {
            libc::SOMAXCONN
        } else {
            backlog.min(i32::MAX as u32) as i32
        };
        socket.listen(backlog).map_err(from_io)?;
        self.sockets
            .insert(OwnedFd::from(socket), SocketKind::Listener)
    }

    /// Each accepted connection completes with its new socket in `handle`.
    pub(crate) fn accept(
        &mut self,
        listener: u64,
        tag: u64,
        flags: u32,
        timeout_ms: u32,
    ) -> Result<()> {
        self.sockets.get_kind(listener, SocketKind::Listener)?;
        let multishot = multishot_mode(flags, timeout_ms)?;
        let op = Op::new(
            tag,
            IOT_KIND_ACCEPT,
            listener,
            Work::Accept(Accept::new(multishot)),
            timeout_ms,
        );
        self.start(op).map(drop)
    }

    /// Connects a fresh stream `socket` to `addr`. The connected socket arrives in the
    /// completion's `handle`; on failure no socket is left behind.
    pub(crate) fn connect_stream(
        &mut self,
        socket: Socket,
        addr: SockAddr,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        let handle = self
            .sockets
            .insert(OwnedFd::from(socket), SocketKind::Stream)?;
        let work = Work::Connect(Connect::new(addr));
        let result = self.start(Op::new(tag, IOT_KIND_CONNECT, handle, work, timeout_ms));
        if result.is_err() {
            let _ = self.remove_socket(handle);
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
        let plain = self
            .sockets
            .get_kind(socket, SocketKind::Stream)?
            .tls
            .is_none();
        let multishot = multishot_mode(flags, timeout_ms)?;
        let work = Work::Recv(Recv::stream(
            multishot,
            plain && self.kernel_multishot_receives,
        ));
        self.start_receive(
            socket,
            Op::new(tag, IOT_KIND_RECV, socket, work, timeout_ms),
        )
    }

    /// Sends `len` bytes of host buffer `buffer` from `offset` on a stream or connected
    /// datagram socket; the buffer belongs to the send until it completes (fully, or
    /// with an error) and is then released.
    pub(crate) fn send(
        &mut self,
        socket: u64,
        buffer: u32,
        offset: u32,
        len: u32,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        let target = self.sockets.get(socket)?;
        target.check_tls_established()?;
        // A stream's sends must not interleave; a datagram is all or nothing, so
        // datagram sends go out at once, several in flight.
        let ordered = match target.kind {
            SocketKind::Stream => true,
            SocketKind::Datagram => false,
            _ => return Err(IOT_E_WRONG_SOCKET_KIND),
        };
        let to = SendTarget::Connected;
        let op = self.lend_for_send(socket, buffer, offset, len, to, tag, timeout_ms)?;
        if ordered {
            self.queue_ordered(op)
        } else {
            self.start_borrowing(op)
        }
    }

    /// Checks that the host holds `len` bytes of `buffer` from `offset` (inside one
    /// piece of a receive buffer) and lends them to a new send op towards `to`.
    #[allow(clippy::too_many_arguments)] // the fields of one send, in ABI order
    pub(crate) fn lend_for_send(
        &mut self,
        socket: u64,
        buffer: u32,
        offset: u32,
        len: u32,
        to: SendTarget,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<Op> {
        let at = BufferRef { id: buffer, offset };
        self.buffers.check_host_range(buffer, offset, len)?;
        self.buffers.lend_to_operation(at)?;
        let kind = to.kind();
        let progress = SendProgress::new(at, len, to);
        Ok(Op::new(tag, kind, socket, Work::Send(progress), timeout_ms))
    }

    /// Shuts down after every send queued before it.
    pub(crate) fn shutdown_socket(&mut self, socket: u64, how: i32, tag: u64) -> Result<()> {
        if !matches!(how, libc::SHUT_RD | libc::SHUT_WR | libc::SHUT_RDWR) {
            return Err(-libc::EINVAL);
        }
        if self.sockets.get(socket)?.kind == SocketKind::File {
            return Err(IOT_E_WRONG_SOCKET_KIND);
        }
        let op = Op::new(
            tag,
            IOT_KIND_SHUTDOWN,
            socket,
            Work::Shutdown(Shutdown::new(how)),
            0,
        );
        self.queue_ordered(op)
    }
}

impl Worker {
    /// Closes a socket (not a file: `close_file`). A stream socket's queued sends
    /// first go into the kernel as far as it takes them at once (the kernel sends them
    /// after the close, as it does what `write(2)` took); the rest are dropped.
    pub(crate) fn close_socket(&mut self, socket: u64) -> Result<()> {
        let kind = self.sockets.get(socket)?.kind;
        if kind == SocketKind::File {
            return Err(IOT_E_WRONG_SOCKET_KIND);
        }
        if kind == SocketKind::Stream {
            self.push_sends_into_kernel(socket)?;
        }
        self.close_handle(socket)
    }
}

/// Whether `flags` ask for a multishot op; such an op has no single deadline, so
/// timeouts are for one-shot ops only.
pub(crate) fn multishot_mode(flags: u32, timeout_ms: u32) -> Result<bool> {
    let multishot = flags & IOT_OP_MULTISHOT != 0;
    if multishot && timeout_ms > 0 {
        Err(-libc::EINVAL)
    } else {
        Ok(multishot)
    }
}
