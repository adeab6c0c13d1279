//! Socket options the host may set or read, by `IOT_OPTION_*` number or raw
//! (`level`, `option`, bytes) as `setsockopt`/`getsockopt` take them, and the count of
//! datagrams a socket dropped.

use std::os::fd::{AsRawFd, OwnedFd};

use socket2::{Domain, SockRef};

use crate::abi::*;
use crate::error::{from_io, Result};
use crate::worker::Worker;

/// `SO_MEMINFO` from asm-generic/socket.h (every Linux architecture but SPARC); libc
/// does not define it.
const SO_MEMINFO: libc::c_int = 55;

impl Worker {
    pub(crate) fn set_option(&mut self, socket: u64, option: u32, value: u32) -> Result<()> {
        let fd = &self.sockets.get(socket)?.fd;
        let sock = SockRef::from(fd);
        let v6 = sock.domain().map_err(from_io)? == Domain::IPV6;
        let on = value != 0;
        let done = match option {
            IOT_OPTION_RECV_BUFFER => sock.set_recv_buffer_size(value as usize),
            IOT_OPTION_SEND_BUFFER => sock.set_send_buffer_size(value as usize),
            IOT_OPTION_BROADCAST => sock.set_broadcast(on),
            IOT_OPTION_MULTICAST_LOOP if v6 => sock.set_multicast_loop_v6(on),
            IOT_OPTION_MULTICAST_LOOP => sock.set_multicast_loop_v4(on),
            IOT_OPTION_MULTICAST_HOPS if v6 => sock.set_multicast_hops_v6(value),
            IOT_OPTION_MULTICAST_HOPS => sock.set_multicast_ttl_v4(value),
            IOT_OPTION_MULTICAST_INTERFACE if v6 => sock.set_multicast_if_v6(value),
            IOT_OPTION_MULTICAST_INTERFACE => return set_multicast_interface_v4(fd, value),
            _ => return Err(-libc::EINVAL),
        };
        done.map_err(from_io)
    }

    pub(crate) fn get_option(&self, socket: u64, option: u32) -> Result<u32> {
        let sock = SockRef::from(&self.sockets.get(socket)?.fd);
        let v6 = sock.domain().map_err(from_io)? == Domain::IPV6;
        let value = match option {
            IOT_OPTION_RECV_BUFFER => sock.recv_buffer_size().map(|n| n as u32),
            IOT_OPTION_SEND_BUFFER => sock.send_buffer_size().map(|n| n as u32),
            IOT_OPTION_BROADCAST => sock.broadcast().map(u32::from),
            IOT_OPTION_MULTICAST_LOOP if v6 => sock.multicast_loop_v6().map(u32::from),
            IOT_OPTION_MULTICAST_LOOP => sock.multicast_loop_v4().map(u32::from),
            IOT_OPTION_MULTICAST_HOPS if v6 => sock.multicast_hops_v6(),
            IOT_OPTION_MULTICAST_HOPS => sock.multicast_ttl_v4(),
            _ => return Err(-libc::EINVAL),
        };
        value.map_err(from_io)
    }

    /// `setsockopt(level, option)` with `value` as the option's bytes, on any socket.
    pub(crate) fn set_raw_option(
        &mut self,
        socket: u64,
        level: i32,
        option: i32,
        value: &[u8],
    ) -> Result<()> {
        let fd = self.sockets.get(socket)?.fd.as_raw_fd();
        let len = libc::socklen_t::try_from(value.len()).map_err(|_| -libc::EINVAL)?;
        // SAFETY: `value` is readable for `len` bytes; the kernel only reads them.
        let rc = unsafe { libc::setsockopt(fd, level, option, value.as_ptr().cast(), len) };
        if rc < 0 {
            return Err(from_io(std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// `getsockopt(level, option)` into `out`; returns how many bytes the kernel wrote.
    pub(crate) fn get_raw_option(
        &self,
        socket: u64,
        level: i32,
        option: i32,
        out: &mut [u8],
    ) -> Result<usize> {
        let fd = self.sockets.get(socket)?.fd.as_raw_fd();
        let mut len = libc::socklen_t::try_from(out.len()).map_err(|_| -libc::EINVAL)?;
        // SAFETY: `out` has room for `len` bytes; the kernel writes at most that and
        // stores the count it wrote in `len`.
        let rc = unsafe { libc::getsockopt(fd, level, option, out.as_mut_ptr().cast(), &mut len) };
        if rc < 0 {
            return Err(from_io(std::io::Error::last_os_error()));
        }
        Ok((len as usize).min(out.len()))
    }

    /// Packets the kernel dropped for this socket because its receive queue was full
    /// (the counter `SO_RXQ_OVFL` reports), since the socket was created.
    pub(crate) fn dropped_count(&self, socket: u64) -> Result<u32> {
        let fd = &self.sockets.get(socket)?.fd;
        let mut info = [0u32; libc::SK_MEMINFO_DROPS as usize + 1];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: `info` has room for `len` bytes; the kernel writes at most that.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(from_io(std::io::Error::last_os_error()));
        }
        Ok(info[libc::SK_MEMINFO_DROPS as usize])
    }
}

/// `IP_MULTICAST_IF` with `struct ip_mreqn`, which names the interface by index
/// (socket2 only takes an interface address).
fn set_multicast_interface_v4(fd: &OwnedFd, index: u32) -> Result<()> {
    let request = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: index as libc::c_int,
    };
    // SAFETY: passing a valid ip_mreqn of the stated size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&request as *const libc::ip_mreqn).cast(),
            std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(from_io(std::io::Error::last_os_error()));
    }
    Ok(())
}
