//! Raw socket options (`iot_socket_set_raw_option`, `iot_socket_get_raw_option`) and
//! connecting from a chosen source address (`iot_tcp_connect_from`), through the C ABI
//! against std::net peers.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::ptr::{null, null_mut};

use support::*;

/// A connected TCP socket of ours and the std peer it reached.
fn connected(host: &mut Host) -> (u64, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    ok("connect", host.connect("127.0.0.1", port, 1, 0));
    let (peer, _) = listener.accept().unwrap();
    let c = host.next_tagged(1);
    assert_eq!(c.result, 0, "connect: {}", message(c.result));
    (c.handle, peer)
}

fn set_int(host: &Host, socket: u64, level: i32, option: i32, value: i32) -> i32 {
    let bytes = value.to_ne_bytes();
    iot_socket_set_raw_option(host.worker, socket, level, option, bytes.as_ptr(), 4)
}

/// The option's bytes as the kernel wrote them, with room for 16.
fn get_raw(host: &Host, socket: u64, level: i32, option: i32) -> Vec<u8> {
    let mut out = [0xAAu8; 16];
    let mut len = out.len() as u32;
    ok(
        "get raw option",
        iot_socket_get_raw_option(
            host.worker,
            socket,
            level,
            option,
            out.as_mut_ptr(),
            &mut len,
        ),
    );
    out[..len as usize].to_vec()
}

fn get_int(host: &Host, socket: u64, level: i32, option: i32) -> i32 {
    let bytes = get_raw(host, socket, level, option);
    assert_eq!(bytes.len(), 4, "an int option is 4 bytes");
    i32::from_ne_bytes(bytes.try_into().unwrap())
}

#[test]
fn tcp_nodelay_is_on_and_can_be_turned_off() {
    let mut host = Host::new();
    let (socket, _peer) = connected(&mut host);
    let (tcp, nodelay) = (libc::IPPROTO_TCP, libc::TCP_NODELAY);
    assert_eq!(
        get_int(&host, socket, tcp, nodelay),
        1,
        "connections start with it on"
    );
    ok("nodelay off", set_int(&host, socket, tcp, nodelay, 0));
    assert_eq!(get_int(&host, socket, tcp, nodelay), 0);
    ok("nodelay on", set_int(&host, socket, tcp, nodelay, 1));
    assert_eq!(get_int(&host, socket, tcp, nodelay), 1);
}

#[test]
fn keepalive_round_trips_and_rcvbuf_is_doubled() {
    let mut host = Host::new();
    let (socket, _peer) = connected(&mut host);
    let (sol, keepalive) = (libc::SOL_SOCKET, libc::SO_KEEPALIVE);
    for on in [1, 0, 1] {
        ok("keepalive", set_int(&host, socket, sol, keepalive, on));
        assert_eq!(get_int(&host, socket, sol, keepalive), on);
    }
    ok("rcvbuf", set_int(&host, socket, sol, libc::SO_RCVBUF, 8192));
    assert_eq!(get_int(&host, socket, sol, libc::SO_RCVBUF), 16384);
}

#[test]
fn listeners_take_raw_options_too() {
    let host = Host::new();
    let (listener, _) = host.listen("127.0.0.1", 0);
    ok(
        "rcvbuf",
        set_int(&host, listener, libc::SOL_SOCKET, libc::SO_RCVBUF, 4096),
    );
    assert_eq!(
        get_int(&host, listener, libc::SOL_SOCKET, libc::SO_RCVBUF),
        8192
    );
}

#[test]
fn kernel_errors_come_back_as_negative_errno() {
    let mut host = Host::new();
    let (socket, _peer) = connected(&mut host);
    // ENOPROTOOPT or EOPNOTSUPP, by call and kernel version.
    let unknown_level = [-libc::ENOPROTOOPT, -libc::EOPNOTSUPP];
    let code = set_int(&host, socket, 9999, 1, 1);
    assert!(unknown_level.contains(&code), "unknown level: {code}");
    let mut out = [0u8; 4];
    let mut len = 4;
    let code = iot_socket_get_raw_option(host.worker, socket, 9999, 1, out.as_mut_ptr(), &mut len);
    assert!(unknown_level.contains(&code), "unknown level: {code}");
    assert_eq!(len, 4, "untouched on failure");
    // An int option given one byte.
    let byte = [1u8];
    assert_eq!(
        iot_socket_set_raw_option(
            host.worker,
            socket,
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            byte.as_ptr(),
            1
        ),
        -libc::EINVAL
    );
}

#[test]
fn bad_handles_and_null_pointers_are_rejected() {
    let mut host = Host::new();
    let (socket, _peer) = connected(&mut host);
    let mut out = [0u8; 4];
    let mut len = 4u32;
    let (sol, keepalive) = (libc::SOL_SOCKET, libc::SO_KEEPALIVE);
    assert_eq!(
        iot_socket_get_raw_option(
            host.worker,
            socket,
            sol,
            keepalive,
            out.as_mut_ptr(),
            null_mut()
        ),
        IOT_E_NULL_POINTER
    );
    assert_eq!(
        iot_socket_get_raw_option(host.worker, socket, sol, keepalive, null_mut(), &mut len),
        IOT_E_NULL_POINTER
    );
    assert_eq!(
        iot_socket_set_raw_option(host.worker, socket, sol, keepalive, null(), 4),
        IOT_E_NULL_POINTER
    );
    ok("close", iot_socket_close(host.worker, socket));
    assert_eq!(set_int(&host, socket, sol, keepalive, 1), IOT_E_BAD_HANDLE);
    assert_eq!(
        iot_socket_get_raw_option(
            host.worker,
            socket,
            sol,
            keepalive,
            out.as_mut_ptr(),
            &mut len
        ),
        IOT_E_BAD_HANDLE
    );
    assert_eq!(
        iot_socket_get_raw_option(0, socket, sol, keepalive, out.as_mut_ptr(), &mut len),
        IOT_E_BAD_HANDLE
    );
    assert_eq!(len, 4);
}

/// A port free on `ip` just now.
fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn connect_from(host: &Host, port: u16, source: Option<&str>, source_port: u16, tag: u64) -> i32 {
    let ip = cstr("127.0.0.1");
    let source = source.map(cstr);
    let source_ptr = source.as_ref().map_or(null(), |s| s.as_ptr());
    let code = iot_tcp_connect_from(
        host.worker,
        ip.as_ptr(),
        port,
        source_ptr,
        source_port,
        tag,
        0,
    );
    host.flush();
    code
}

/// Connects from `source`:`source_port` to a std listener; returns the address the
/// listener saw the connection come from (the connection itself completes tagged
/// `tag`).
fn accepted_from(host: &Host, source: Option<&str>, source_port: u16, tag: u64) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    ok(
        "connect_from",
        connect_from(host, port, source, source_port, tag),
    );
    listener.accept().unwrap().1
}

#[test]
fn connect_from_a_source_address_and_port() {
    let mut host = Host::new();
    let source_port = free_port("127.0.0.2");
    let from = accepted_from(&host, Some("127.0.0.2"), source_port, 1);
    let c = host.next_tagged(1);
    assert_eq!(c.result, 0, "connect: {}", message(c.result));
    let expected: SocketAddr = format!("127.0.0.2:{source_port}").parse().unwrap();
    assert_eq!(from, expected, "the server sees the source");
    assert_eq!(
        host.address(c.handle, IOT_ADDRESS_LOCAL),
        ("127.0.0.2".to_string(), source_port)
    );
    // Address only: any port.
    let from = accepted_from(&host, Some("127.0.0.3"), 0, 2);
    assert_eq!(host.next_tagged(2).result, 0);
    assert_eq!(from.ip().to_string(), "127.0.0.3");
    assert_ne!(from.port(), 0);
}

#[test]
fn connect_from_a_source_port_only() {
    let mut host = Host::new();
    let source_port = free_port("0.0.0.0");
    let from = accepted_from(&host, None, source_port, 1);
    assert_eq!(host.next_tagged(1).result, 0);
    assert_eq!(from.port(), source_port);
}

#[test]
fn connect_from_a_bad_source_leaves_no_socket() {
    let host = Host::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_eq!(
        connect_from(&host, port, Some("::1"), 0, 1),
        -libc::EINVAL,
        "family"
    );
    assert_eq!(
        connect_from(&host, port, Some("nope"), 0, 1),
        -libc::EINVAL,
        "text"
    );
    let taken = TcpListener::bind("127.0.0.2:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    assert_eq!(
        connect_from(&host, port, Some("127.0.0.2"), taken_port, 1),
        -libc::EADDRINUSE
    );
    assert_eq!(
        connect_from(&host, port, Some("192.0.2.1"), 0, 1),
        -libc::EADDRNOTAVAIL,
        "not a local address"
    );
    assert_eq!(host.stats().sockets_open, 0);
}
