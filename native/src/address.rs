//! Socket addresses as the host sees them: numeric IP text plus a port, or a Unix
//! socket path where a leading `@` names the abstract namespace (the convention of
//! `ss`, socat and Go). Formatting writes into a fixed buffer: hosts ask for a
//! datagram's sender once per datagram, so it must not allocate.

use std::fmt::{self, Write};

use socket2::{SockAddr, SockRef};

use crate::abi::{IOT_ADDRESS_LOCAL, IOT_ADDRESS_PEER};
use crate::error::{from_io, Result};
use crate::worker::Worker;

/// First byte of a Unix socket name in the abstract namespace, as the host writes it.
const ABSTRACT_MARK: u8 = b'@';

/// `offsetof(struct sockaddr_un, sun_path)`.
const SUN_PATH_OFFSET: usize = std::mem::size_of::<libc::sa_family_t>();

/// A Unix socket address for `path`: `@name` is `name` in the abstract namespace,
/// anything else a filesystem path (write `./@x` for a file really named `@x`). Empty names and names too long for `sun_path`
/// (107 bytes, leaving room for the NUL) are rejected.
pub(crate) fn unix_addr(path: &[u8]) -> Result<SockAddr> {
    // SAFETY: all-zero bytes are a valid sockaddr_un.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // An abstract name starts with NUL and is delimited by the length alone; a path
    // is NUL-terminated (the zeroed tail provides the NUL).
    let (name, start, terminator) = match path.split_first() {
        Some((&ABSTRACT_MARK, name)) => (name, 1, 0),
        _ => (path, 0, 1),
    };
    if name.is_empty() || name.contains(&0) {
        return Err(-libc::EINVAL);
    }
    if start + name.len() + terminator > sun.sun_path.len() {
        return Err(-libc::ENAMETOOLONG);
    }
    for (slot, &byte) in sun.sun_path[start..].iter_mut().zip(name) {
        *slot = byte as libc::c_char;
    }
    let len = SUN_PATH_OFFSET + start + name.len() + terminator;
    // SAFETY: sockaddr_storage is larger than sockaddr_un and all-zero bytes are valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SAFETY: copying a sockaddr_un into the start of a larger, aligned storage.
    unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sun) };
    // SAFETY: storage holds an AF_UNIX address of `len` valid bytes.
    Ok(unsafe { SockAddr::new(storage, len as libc::socklen_t) })
}

/// An address as text, in a fixed buffer (IPv6 text or a 108-byte Unix path fit).
pub(crate) struct AddressText {
    bytes: [u8; 128],
    len: usize,
}

impl AddressText {
    fn new() -> AddressText {
        AddressText {
            bytes: [0; 128],
            len: 0,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> fmt::Result {
        let end = self.len + bytes.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

impl Write for AddressText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_bytes(s.as_bytes())
    }
}

/// `addr` as text and its port (0 for Unix addresses). An unnamed Unix socket (an
/// unbound peer) is the empty text.
pub(crate) fn address_text(addr: &SockAddr) -> Result<(AddressText, u16)> {
    let mut text = AddressText::new();
    if let Some(ip) = addr.as_socket() {
        write!(text, "{}", ip.ip()).map_err(|_| -libc::EINVAL)?;
        return Ok((text, ip.port()));
    }
    if addr.family() != libc::AF_UNIX as libc::sa_family_t {
        return Err(-libc::EAFNOSUPPORT);
    }
    // SAFETY: an AF_UNIX address lives in a sockaddr_un of at least `len` bytes.
    let sun = unsafe { &*addr.as_ptr().cast::<libc::sockaddr_un>() };
    let len = (addr.len() as usize).saturating_sub(SUN_PATH_OFFSET);
    let raw = &sun.sun_path[..len.min(sun.sun_path.len())];
    // SAFETY: c_char and u8 have the same size and alignment.
    let raw: &[u8] = unsafe { std::slice::from_raw_parts(raw.as_ptr().cast(), raw.len()) };
    let pushed = match raw.split_first() {
        None => Ok(()),
        Some((0, name)) => text
            .push_bytes(&[ABSTRACT_MARK])
            .and_then(|()| text.push_bytes(name)),
        Some(_) => {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            text.push_bytes(&raw[..end])
        }
    };
    pushed.map_err(|_| -libc::ENAMETOOLONG)?;
    Ok((text, 0))
}

impl Worker {
    pub(crate) fn socket_address(&self, socket: u64, which: u32) -> Result<SockAddr> {
        let sock = SockRef::from(&self.sockets.get(socket)?.fd);
        match which {
            IOT_ADDRESS_LOCAL => sock.local_addr().map_err(from_io),
            IOT_ADDRESS_PEER => sock.peer_addr().map_err(from_io),
            _ => Err(-libc::EINVAL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(addr: &SockAddr) -> (String, u16) {
        let (text, port) = address_text(addr).unwrap();
        (String::from_utf8(text.as_bytes().to_vec()).unwrap(), port)
    }

    #[test]
    fn unix_paths_and_abstract_names_round_trip() {
        let path = unix_addr(b"/tmp/x.sock").unwrap();
        assert_eq!(path.as_pathname().unwrap().to_str(), Some("/tmp/x.sock"));
        assert_eq!(text(&path), ("/tmp/x.sock".into(), 0));
        let named = unix_addr(b"@iot-test").unwrap();
        assert_eq!(named.as_abstract_namespace(), Some(&b"iot-test"[..]));
        assert_eq!(text(&named), ("@iot-test".into(), 0));
    }

    #[test]
    fn unix_names_are_checked() {
        assert_eq!(unix_addr(b"").err(), Some(-libc::EINVAL));
        assert_eq!(unix_addr(b"@").err(), Some(-libc::EINVAL));
        assert!(unix_addr(&[b'a'; 107]).is_ok());
        assert_eq!(unix_addr(&[b'a'; 108]).err(), Some(-libc::ENAMETOOLONG));
        let mut longest_abstract = vec![b'@'];
        longest_abstract.extend([b'a'; 107]);
        assert!(unix_addr(&longest_abstract).is_ok());
    }

    #[test]
    fn ip_addresses_as_text() {
        let v6: std::net::SocketAddr = "[::1]:53".parse().unwrap();
        assert_eq!(text(&v6.into()), ("::1".into(), 53));
    }
}
