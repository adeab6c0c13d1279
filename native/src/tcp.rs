//! TCP on a worker: listening and connecting sockets. Accept, receive, send and
//! shutdown are shared with Unix streams (`stream.rs`).

use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Socket, Type};

use crate::abi::*;
use crate::error::{from_io, Result};
use crate::worker::Worker;

pub(crate) fn parse_ip(ip: &str) -> Result<IpAddr> {
    ip.parse().map_err(|_| -libc::EINVAL)
}

/// A socket of `ty` for `addr`'s family, with the `IOT_LISTEN_*`/`IOT_BIND_*` reuse and
/// IPv6-only options in `flags`, bound to `addr`.
pub(crate) fn bound_ip_socket(addr: SocketAddr, ty: Type, flags: u32) -> Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, None).map_err(from_io)?;
    if flags & IOT_BIND_REUSEADDR != 0 {
        socket.set_reuse_address(true).map_err(from_io)?;
    }
    if flags & IOT_LISTEN_REUSEPORT != 0 {
        socket.set_reuse_port(true).map_err(from_io)?;
    }
    if addr.is_ipv6() {
        socket
            .set_only_v6(flags & IOT_LISTEN_V6ONLY != 0)
            .map_err(from_io)?;
    }
    socket.bind(&addr.into()).map_err(from_io)?;
    Ok(socket)
}

impl Worker {
    pub(crate) fn tcp_listen(
        &mut self,
        ip: IpAddr,
        port: u16,
        backlog: u32,
        flags: u32,
    ) -> Result<u64> {
        // A restarted server must be able to bind while old connections sit in TIME_WAIT.
        let flags = flags | IOT_BIND_REUSEADDR;
        let socket = bound_ip_socket(SocketAddr::new(ip, port), Type::STREAM, flags)?;
        self.listen_on(socket, backlog)
    }

    /// The connected socket arrives in the completion's `handle`; on failure no socket
    /// is left behind. With `source`, the socket is bound to it first (port 0: any).
    pub(crate) fn tcp_connect(
        &mut self,
        ip: IpAddr,
        port: u16,
        source: Option<SocketAddr>,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        let addr = SocketAddr::new(ip, port);
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(from_io)?;
        socket.set_nodelay(true).map_err(from_io)?;
        if let Some(source) = source {
            socket.bind(&source.into()).map_err(from_io)?;
        }
        self.connect_stream(socket, addr.into(), tag, timeout_ms)
    }
}
