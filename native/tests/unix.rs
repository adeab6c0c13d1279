//! Unix stream and datagram sockets through the C ABI, against std::os::unix::net
//! peers (and socat, where installed). Every test holds `fd_check()`: the tests run one
//! at a time and each must leave no fd behind.

mod support;

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::echo::EchoServer;
use support::*;

/// An abstract name no other test run uses.
fn abstract_name(what: &str) -> String {
    format!("iot-test-{}-{what}", std::process::id())
}

fn text(path: &Path) -> String {
    path.to_str().expect("UTF-8 temp path").to_string()
}

fn listen(host: &Host, path: &str, flags: u32) -> Result<u64, i32> {
    let mut listener = 0;
    match iot_unix_listen(host.worker, cstr(path).as_ptr(), 0, flags, &mut listener) {
        0 => Ok(listener),
        code => Err(code),
    }
}

fn echo_through(mut stream: UnixStream, message: &[u8]) {
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(message).unwrap();
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, message);
}

#[test]
fn stream_echo_on_a_path_removes_its_file_on_close() {
    let _fds = fd_check();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let server = EchoServer::unix(&text(&path));
    assert_eq!(
        address_of(server.worker, server.listener, IOT_ADDRESS_LOCAL),
        (text(&path), 0)
    );
    for i in 0..3u8 {
        echo_through(UnixStream::connect(&path).unwrap(), &[i; 1000]);
    }
    assert!(path.exists());
    let stats = server.stop();
    assert_eq!((stats.sockets_open, stats.buffers_outstanding), (0, 0));
    assert!(
        !path.exists(),
        "closing the listener removes its socket file"
    );
}

#[test]
fn stream_echo_in_the_abstract_namespace() {
    let _fds = fd_check();
    let name = abstract_name("echo");
    let server = EchoServer::unix(&format!("@{name}"));
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    echo_through(UnixStream::connect_addr(&addr).unwrap(), b"abstract hello");
    // socat spells the same socket ABSTRACT-CONNECT:name.
    match Command::new("socat")
        .args(["-t5", "-", &format!("ABSTRACT-CONNECT:{name}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(mut socat) => {
            socat.stdin.take().unwrap().write_all(b"via socat").unwrap();
            let out = socat.wait_with_output().unwrap();
            assert!(out.status.success());
            assert_eq!(out.stdout, b"via socat");
        }
        Err(_) => println!("SKIPPED the socat half: no socat on PATH (apt-get install socat)"),
    }
    server.stop();
}

#[test]
fn connect_to_a_std_listener_and_talk_both_ways() {
    let _fds = fd_check();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("std.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut host = Host::new();
    ok(
        "connect",
        iot_unix_connect(host.worker, cstr(&text(&path)).as_ptr(), 1, 5_000),
    );
    host.flush();
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    let c = host.next_tagged(1);
    assert_eq!(
        (c.kind, c.result),
        (IOT_KIND_CONNECT, 0),
        "{}",
        message(c.result)
    );
    let socket = c.handle;
    assert_eq!(host.address(socket, IOT_ADDRESS_PEER), (text(&path), 0));
    assert_eq!(host.address(socket, IOT_ADDRESS_LOCAL), (String::new(), 0));
    let payload = pattern(100_000, 3);
    host.send_all(socket, &payload, 2);
    let mut got = vec![0; payload.len()];
    peer.read_exact(&mut got).unwrap();
    assert!(got == payload);
    peer.write_all(b"and back").unwrap();
    drop(peer);
    assert_eq!(host.recv_exact(socket, 100, 3), b"and back");
    ok("close", iot_socket_close(host.worker, socket));
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn stale_files_need_the_flag_and_live_ones_are_never_replaced() {
    let _fds = fd_check();
    let dir = tempfile::tempdir().unwrap();
    let mut host = Host::new();
    // A socket file left behind by a listener that is gone (std does not unlink).
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    assert_eq!(listen(&host, &text(&stale), 0), Err(-libc::EADDRINUSE));
    let replaced = listen(&host, &text(&stale), IOT_UNIX_REPLACE_STALE).unwrap();
    accepts(&mut host, replaced, &stale);
    // A live listener, or a file that is no socket, is never removed.
    let live = dir.path().join("live.sock");
    let _alive = UnixListener::bind(&live).unwrap();
    assert_eq!(
        listen(&host, &text(&live), IOT_UNIX_REPLACE_STALE),
        Err(-libc::EADDRINUSE)
    );
    let regular = dir.path().join("regular");
    std::fs::write(&regular, b"data").unwrap();
    assert_eq!(
        listen(&host, &text(&regular), IOT_UNIX_REPLACE_STALE),
        Err(-libc::EADDRINUSE)
    );
    assert_eq!(std::fs::read(&regular).unwrap(), b"data");
    // Datagram sockets follow the same rules.
    let stale_dgram = dir.path().join("stale.dgram");
    drop(UnixDatagram::bind(&stale_dgram).unwrap());
    let mut socket = 0;
    let path = cstr(&text(&stale_dgram));
    assert_eq!(
        iot_unix_datagram_bind(host.worker, path.as_ptr(), 0, &mut socket),
        -libc::EADDRINUSE
    );
    ok(
        "replace stale datagram socket",
        iot_unix_datagram_bind(
            host.worker,
            path.as_ptr(),
            IOT_UNIX_REPLACE_STALE,
            &mut socket,
        ),
    );
    ok("close", iot_socket_close(host.worker, socket));
    assert!(!stale_dgram.exists());
}

/// The listener at `path` really accepts: a std client connects, we accept it.
fn accepts(host: &mut Host, listener: u64, path: &Path) {
    let _client = UnixStream::connect(path).unwrap();
    ok("accept", iot_accept(host.worker, listener, 9, 0, 5_000));
    let c = host.next_tagged(9);
    assert_eq!(c.result, 0, "{}", message(c.result));
    ok("close accepted", iot_socket_close(host.worker, c.handle));
}

#[test]
fn closing_leaves_a_file_that_replaced_ours() {
    let _fds = fd_check();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moved.sock");
    let host = Host::new();
    let listener = listen(&host, &text(&path), 0).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"someone else's").unwrap();
    ok("close", iot_socket_close(host.worker, listener));
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
}

#[test]
fn connect_errors_and_bad_paths() {
    let _fds = fd_check();
    let dir = tempfile::tempdir().unwrap();
    let mut host = Host::new();
    let missing = cstr(&text(&dir.path().join("missing.sock")));
    ok(
        "connect",
        iot_unix_connect(host.worker, missing.as_ptr(), 1, 0),
    );
    assert_eq!(host.next_tagged(1).result, -libc::ENOENT);
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    ok(
        "connect",
        iot_unix_connect(host.worker, cstr(&text(&stale)).as_ptr(), 2, 0),
    );
    assert_eq!(host.next_tagged(2).result, -libc::ECONNREFUSED);
    assert_eq!(
        host.stats().sockets_open,
        0,
        "failed connects leave no socket"
    );
    let too_long = cstr(&format!("/tmp/{}", "x".repeat(200)));
    assert_eq!(
        iot_unix_connect(host.worker, too_long.as_ptr(), 3, 0),
        -libc::ENAMETOOLONG
    );
    assert_eq!(
        iot_unix_connect(host.worker, cstr("@").as_ptr(), 3, 0),
        -libc::EINVAL
    );
    assert_eq!(
        iot_unix_connect(host.worker, std::ptr::null(), 3, 0),
        IOT_E_NULL_POINTER
    );
}

#[test]
fn stream_timeouts_and_cancel() {
    let _fds = fd_check();
    let mut host = Host::new();
    let name = format!("@{}", abstract_name("timeouts"));
    let listener = listen(&host, &name, 0).unwrap();
    ok("accept", iot_accept(host.worker, listener, 1, 0, 100));
    assert_eq!(host.next_tagged(1).result, -libc::ETIMEDOUT);
    ok(
        "accept",
        iot_accept(host.worker, listener, 2, IOT_OP_MULTISHOT, 0),
    );
    host.flush();
    host.cancel_to_end(2);
    ok(
        "connect",
        iot_unix_connect(host.worker, cstr(&name).as_ptr(), 3, 0),
    );
    ok("accept", iot_accept(host.worker, listener, 4, 0, 5_000));
    let client = host.next_tagged(3).handle;
    let server = host.next_tagged(4).handle;
    assert!(client != 0 && server != 0);
    ok("recv", iot_recv(host.worker, server, 5, 0, 100));
    assert_eq!(host.next_tagged(5).result, -libc::ETIMEDOUT);
    assert_eq!(host.stats().ops_in_flight, 0);
}

fn datagram_bind(host: &Host, path: Option<&str>) -> u64 {
    let path = path.map(cstr);
    let mut socket = 0;
    ok(
        "datagram bind",
        iot_unix_datagram_bind(
            host.worker,
            path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
            0,
            &mut socket,
        ),
    );
    socket
}

/// Receives one datagram: (payload, sender). Unix senders have no port.
fn receive(host: &mut Host, socket: u64, tag: u64) -> (Vec<u8>, String) {
    let got = host.recv_datagram(socket, tag);
    assert_eq!(got.port, 0, "Unix senders have no port");
    (got.payload, got.sender)
}

#[test]
fn datagram_senders_by_path_abstract_name_and_unbound() {
    let _fds = fd_check();
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.dgram");
    let mut host = Host::new();
    let socket = datagram_bind(&host, Some(&text(&ours)));
    let by_path = dir.path().join("peer.dgram");
    let peer = UnixDatagram::bind(&by_path).unwrap();
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    peer.send_to(b"from a path", &ours).unwrap();
    assert_eq!(
        receive(&mut host, socket, 1),
        (b"from a path".to_vec(), text(&by_path))
    );
    let name = abstract_name("sender");
    let abstract_peer =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    abstract_peer.send_to(b"from a name", &ours).unwrap();
    assert_eq!(
        receive(&mut host, socket, 2),
        (b"from a name".to_vec(), format!("@{name}"))
    );
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"", &ours)
        .unwrap();
    assert_eq!(receive(&mut host, socket, 3), (Vec::new(), String::new()));
    // Answer the path sender through send-to.
    let id = host.filled_buffer(b"reply");
    let to = cstr(&text(&by_path));
    ok(
        "send_to",
        iot_unix_send_to(host.worker, socket, id, 0, 5, to.as_ptr(), 4, 0),
    );
    assert_eq!(host.next_tagged(4).result, 5);
    let mut back = [0u8; 16];
    let (n, from) = peer.recv_from(&mut back).unwrap();
    assert_eq!(
        (&back[..n], from.as_pathname()),
        (&b"reply"[..], Some(ours.as_path()))
    );
    ok("close", iot_socket_close(host.worker, socket));
    assert!(!ours.exists(), "closing removes the socket file");
}

#[test]
fn an_autobound_socket_can_be_answered() {
    let _fds = fd_check();
    let dir = tempfile::tempdir().unwrap();
    let server_path: PathBuf = dir.path().join("server.dgram");
    let server = UnixDatagram::bind(&server_path).unwrap();
    server.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut host = Host::new();
    let socket = datagram_bind(&host, None);
    let (local, _) = host.address(socket, IOT_ADDRESS_LOCAL);
    assert!(
        local.starts_with('@'),
        "autobind picks an abstract name: {local:?}"
    );
    let id = host.filled_buffer(b"question");
    ok(
        "send_to",
        iot_unix_send_to(
            host.worker,
            socket,
            id,
            0,
            8,
            cstr(&text(&server_path)).as_ptr(),
            1,
            0,
        ),
    );
    assert_eq!(host.next_tagged(1).result, 8);
    let mut got = [0u8; 16];
    let (n, from) = server.recv_from(&mut got).unwrap();
    assert_eq!(&got[..n], b"question");
    assert_eq!(
        format!(
            "@{}",
            String::from_utf8_lossy(from.as_abstract_name().unwrap())
        ),
        local
    );
    server.send_to_addr(b"answer", &from).unwrap();
    assert_eq!(
        receive(&mut host, socket, 2),
        (b"answer".to_vec(), text(&server_path))
    );
}

#[test]
fn datagram_send_to_a_full_receiver_times_out_and_missing_ones_fail() {
    let _fds = fd_check();
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.dgram");
    let _receiver = UnixDatagram::bind(&full).unwrap(); // never reads
    let mut host = Host::new();
    let socket = datagram_bind(&host, None);
    let to = cstr(&text(&full));
    // The receiver's queue holds net.unix.max_dgram_qlen datagrams; then sends wait.
    let mut timed_out = None;
    for tag in 1..=1000u64 {
        let id = host.filled_buffer(b"x");
        ok(
            "send_to",
            iot_unix_send_to(host.worker, socket, id, 0, 1, to.as_ptr(), tag, 200),
        );
        let result = host.next_tagged(tag).result;
        if result == -libc::ETIMEDOUT {
            timed_out = Some(tag);
            break;
        }
        assert_eq!(result, 1, "{}", message(result));
    }
    assert!(
        timed_out.is_some(),
        "a full receiver never made a send wait"
    );
    let missing = cstr(&text(&dir.path().join("missing.dgram")));
    let id = host.filled_buffer(b"x");
    ok(
        "send_to",
        iot_unix_send_to(host.worker, socket, id, 0, 1, missing.as_ptr(), 2000, 0),
    );
    assert_eq!(host.next_tagged(2000).result, -libc::ENOENT);
    ok("recv", iot_datagram_recv(host.worker, socket, 2001, 0, 100));
    assert_eq!(host.next_tagged(2001).result, -libc::ETIMEDOUT);
    let stats = host.stats();
    assert_eq!((stats.ops_in_flight, stats.buffers_outstanding), (0, 0));
}
