//! UDP sockets: bind, connect (a default peer), multicast membership. Sending and
//! receiving are shared with Unix datagram sockets (`datagram.rs`).

use std::net::{IpAddr, SocketAddr};

use socket2::{InterfaceIndexOrAddress, SockRef, Type};

use crate::error::{from_io, Result};
use crate::sockets::SocketKind;
use crate::tcp::bound_ip_socket;
use crate::worker::Worker;

impl Worker {
    /// A UDP socket bound to `ip:port` with the `IOT_LISTEN_*`/`IOT_BIND_*` `flags`.
    pub(crate) fn udp_bind(&mut self, ip: IpAddr, port: u16, flags: u32) -> Result<u64> {
        let socket = bound_ip_socket(SocketAddr::new(ip, port), Type::DGRAM, flags)?;
        self.sockets.insert(socket.into(), SocketKind::Datagram)
    }

    /// Sets the socket's default peer: `iot_send` goes there and only its datagrams
    /// arrive. Synchronous, as a UDP connect only records the address.
    pub(crate) fn udp_connect(&mut self, socket: u64, ip: IpAddr, port: u16) -> Result<()> {
        let fd = &self.sockets.get_kind(socket, SocketKind::Datagram)?.fd;
        SockRef::from(fd)
            .connect(&SocketAddr::new(ip, port).into())
            .map_err(from_io)
    }

    /// Joins (or leaves) multicast `group` on the interface with index `interface`
    /// (0: the kernel's choice).
    pub(crate) fn multicast_membership(
        &mut self,
        socket: u64,
        group: IpAddr,
        interface: u32,
        join: bool,
    ) -> Result<()> {
        let fd = &self.sockets.get_kind(socket, SocketKind::Datagram)?.fd;
        let sock = SockRef::from(fd);
        let done = match group {
            IpAddr::V4(group) => {
                let interface = InterfaceIndexOrAddress::Index(interface);
                if join {
                    sock.join_multicast_v4_n(&group, &interface)
                } else {
                    sock.leave_multicast_v4_n(&group, &interface)
                }
            }
            IpAddr::V6(group) if join => sock.join_multicast_v6(&group, interface),
            IpAddr::V6(group) => sock.leave_multicast_v6(&group, interface),
        };
        done.map_err(from_io)
    }
}
