//! TLS through the C ABI: our server and client against rustls peers on std sockets
//! and against each other; what each failure reports; nothing leaked.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use support::tls::*;
use support::*;

/// Our TLS echo server on a thread: serves `connections` clients one after another.
fn echo_server(
    pki: &Pki,
    connections: usize,
) -> (u16, std::thread::JoinHandle<(usize, iot_stats)>) {
    let mut host = Host::new();
    let config = server_config(pki, 0, &[]);
    let (listener, port) = host.listen("127.0.0.1", 0);
    let thread = std::thread::spawn(move || {
        let mut echoed = 0;
        for _ in 0..connections {
            let socket = host.accept_one(listener);
            let result = host.tls_accept(socket, config, 10_000);
            assert_eq!(
                result,
                0,
                "handshake: {} {}",
                message(result),
                host.tls_error(socket)
            );
            echoed += host.echo_until_end(socket);
        }
        ok("close", iot_socket_close(host.worker, listener));
        ok("free config", iot_tls_config_free(config));
        (echoed, host.stats())
    });
    (port, thread)
}

#[test]
fn a_rustls_client_gets_every_byte_back() {
    let _fds = fd_check();
    let pki = Pki::new("echo CA");
    let sizes = [1usize, 100, 16_385, 1 << 20];
    let (port, server) = echo_server(&pki, sizes.len());
    let config = rustls_client(&pki, &[]);
    for (seed, &size) in sizes.iter().enumerate() {
        let mut stream = rustls_stream(config.clone(), port);
        let payload = pattern(size, seed as u32);
        // In 64 KiB steps, each read back before the next, so neither side's socket
        // buffers must hold the whole payload.
        for chunk in payload.chunks(64 << 10) {
            stream.write_all(chunk).unwrap();
            let mut back = vec![0; chunk.len()];
            stream.read_exact(&mut back).unwrap();
            assert!(back == chunk, "echo of {size} bytes differs");
        }
        stream.conn.send_close_notify();
        stream.flush().unwrap();
        // The server shuts down with close_notify: a clean end, not a cut connection.
        let mut rest = Vec::new();
        stream
            .read_to_end(&mut rest)
            .expect("a clean close_notify end");
        assert!(rest.is_empty());
        let version = stream.conn.protocol_version();
        assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_3));
        // The server's choice, not the first suite rustls offers (AES-256).
        let suite = stream.conn.negotiated_cipher_suite().unwrap().suite();
        assert_eq!(u16::from(suite), cheapest_suite(0x0304), "{suite:?}");
    }
    let (echoed, stats) = server.join().unwrap();
    assert_eq!(echoed, sizes.iter().sum::<usize>());
    assert_eq!((stats.sockets_open, stats.buffers_outstanding), (0, 0));
    assert_eq!(stats.ops_in_flight, 0);
}

#[test]
fn our_client_talks_to_a_rustls_server() {
    let _fds = fd_check();
    let pki = Pki::new("client test CA");
    let server_config = rustls_server(&pki.server);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let payload = pattern(100_000, 3);
    let expected = payload.clone();
    let peer = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        let connection = rustls::ServerConnection::new(server_config).unwrap();
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        let mut got = vec![0; expected.len()];
        stream.read_exact(&mut got).unwrap();
        assert!(got == expected);
        stream.write_all(b"thanks").unwrap();
        stream.conn.send_close_notify();
        stream.flush().unwrap();
    });
    let mut host = Host::new();
    let config = client_config(&pki, 0, &[]);
    let socket = host.tls_connect(port, config);
    host.send_all(socket, &payload, 3);
    let reply = host.recv_exact(socket, 100, 4);
    assert_eq!(reply, b"thanks", "the reply, then the end of the stream");
    peer.join().unwrap();
    ok("close", iot_socket_close(host.worker, socket));
    ok("free config", iot_tls_config_free(config));
    assert_eq!(host.stats().buffers_outstanding, 0);
}

/// The suite our server picks at `version` on this CPU: AES-128-GCM where AES runs in
/// hardware, else ChaCha20-Poly1305 (ECDSA key exchange under TLS 1.2).
fn cheapest_suite(version: u16) -> u16 {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    let aes = std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    let aes = true;
    match (version, aes) {
        (0x0304, true) => 0x1301,
        (0x0304, false) => 0x1303,
        (_, true) => 0xc02b,
        (_, false) => 0xcca9,
    }
}

#[test]
fn both_versions_alpn_and_the_session_details() {
    let _fds = fd_check();
    let pki = Pki::new("details CA");
    let mut host = Host::new();
    for (only, version) in [(IOT_TLS_ONLY_TLS12, 0x0303), (IOT_TLS_ONLY_TLS13, 0x0304)] {
        let server = server_config(&pki, only, &["h2", "http/1.1"]);
        let client = client_config(&pki, 0, &["http/1.1"]);
        let pair = host.tls_pair(server, client, "localhost");
        assert_eq!((pair.server_result, pair.client_result), (0, 0));
        for socket in [pair.server, pair.client] {
            let info = host.tls_info(socket);
            assert_eq!(info.protocol_version, version);
            assert_ne!(info.cipher_suite, 0);
            // Our server's choice of the cheapest suite, whatever the client's
            // order (AES-256 first here).
            assert_eq!(
                info.cipher_suite,
                cheapest_suite(version),
                "{:#x}",
                info.cipher_suite
            );
            assert_eq!(host.tls_text(socket, iot_tls_alpn), b"http/1.1");
        }
        assert_eq!(
            host.tls_text(pair.server, iot_tls_server_name),
            b"localhost"
        );
        let client_info = host.tls_info(pair.client);
        assert_ne!(client_info.flags & IOT_TLS_INFO_PEER_CERTIFICATE, 0);
        assert_eq!(
            host.tls_text(pair.client, iot_tls_peer_certificate),
            pki.server.der
        );
        assert_eq!(
            host.tls_info(pair.server).flags & IOT_TLS_INFO_PEER_CERTIFICATE,
            0
        );
        host.close_all(&[pair.server, pair.client]);
        ok("free", iot_tls_config_free(server));
        ok("free", iot_tls_config_free(client));
    }
}

#[test]
fn a_second_connection_resumes_the_session() {
    let _fds = fd_check();
    let pki = Pki::new("resumption CA");
    let mut host = Host::new();
    let server = server_config(&pki, 0, &[]);
    let client = client_config(&pki, 0, &[]);
    let mut resumed = Vec::new();
    for round in 0..2 {
        let pair = host.tls_pair(server, client, "localhost");
        assert_eq!((pair.server_result, pair.client_result), (0, 0));
        // TLS 1.3 tickets arrive after the handshake: a round trip makes sure the
        // client took them in before the next connection.
        host.send_all(pair.client, b"ping", 10 + round);
        assert_eq!(host.recv_exact(pair.server, 4, 20 + round), b"ping");
        host.send_all(pair.server, b"pong", 30 + round);
        assert_eq!(host.recv_exact(pair.client, 4, 40 + round), b"pong");
        let flags = [pair.server, pair.client].map(|s| host.tls_info(s).flags);
        resumed.push(flags.map(|f| f & IOT_TLS_INFO_RESUMED != 0));
        host.close_all(&[pair.server, pair.client]);
    }
    assert_eq!(resumed, [[false, false], [true, true]]);
}

/// A failed pair's codes, with the reasons both sides give.
fn failed_pair(host: &mut Host, server: u64, client: u64, name: &str) -> (i32, i32, String) {
    let pair = host.tls_pair(server, client, name);
    let reason = host.tls_error(pair.client);
    host.close_all(&[pair.server, pair.client]);
    (pair.server_result, pair.client_result, reason)
}

#[test]
fn handshake_failures_say_why_on_both_sides() {
    let _fds = fd_check();
    let pki = Pki::new("trusted CA");
    let stranger = Pki::new("unknown CA");
    let mut host = Host::new();
    let server = server_config(&pki, 0, &["h2"]);
    let client = client_config(&pki, 0, &[]);

    let untrusting = client_config(&stranger, 0, &[]);
    let (server_side, client_side, reason) =
        failed_pair(&mut host, server, untrusting, "localhost");
    assert_eq!(client_side, IOT_E_TLS_UNKNOWN_ISSUER, "{reason}");
    assert!(reason.to_lowercase().contains("issuer"), "{reason}");
    assert_eq!(
        server_side, IOT_E_TLS_ALERT_RECEIVED,
        "the client's alert reached the server"
    );

    let (_, client_side, reason) = failed_pair(&mut host, server, client, "example.com");
    assert_eq!(client_side, IOT_E_TLS_NAME_MISMATCH, "{reason}");

    let h3_only = client_config(&pki, 0, &["h3"]);
    let (server_side, _, _) = failed_pair(&mut host, server, h3_only, "localhost");
    assert_eq!(server_side, IOT_E_TLS_NO_COMMON_PROTOCOL);

    let tls13 = server_config(&pki, IOT_TLS_ONLY_TLS13, &[]);
    let tls12 = client_config(&pki, IOT_TLS_ONLY_TLS12, &[]);
    let (server_side, client_side, _) = failed_pair(&mut host, tls13, tls12, "localhost");
    assert_eq!(server_side, IOT_E_TLS_NO_COMMON_PROTOCOL);
    assert!(client_side < 0);

    for config in [server, client, untrusting, h3_only, tls13, tls12] {
        ok("free", iot_tls_config_free(config));
    }
    host.assert_idle();
}

#[test]
fn client_certificates_optional_and_required() {
    let _fds = fd_check();
    let pki = Pki::new("client auth CA");
    let mut host = Host::new();
    let required = try_config(
        IOT_TLS_SERVER | IOT_TLS_CLIENT_AUTH_REQUIRED,
        Some(&pki.server),
        &pki.ca,
        &[],
    )
    .unwrap();
    let optional = try_config(
        IOT_TLS_SERVER | IOT_TLS_CLIENT_AUTH_OPTIONAL,
        Some(&pki.server),
        &pki.ca,
        &[],
    )
    .unwrap();
    let anonymous = client_config(&pki, 0, &[]);
    let with_cert = try_config(0, Some(&pki.client), &pki.ca, &[]).unwrap();

    let (server_side, _, _) = failed_pair(&mut host, required, anonymous, "localhost");
    assert_eq!(server_side, IOT_E_TLS_CERTIFICATE_REQUIRED);

    for (server, client, presented) in [
        (required, with_cert, true),
        (optional, with_cert, true),
        (optional, anonymous, false),
    ] {
        let pair = host.tls_pair(server, client, "localhost");
        assert_eq!((pair.server_result, pair.client_result), (0, 0));
        let certificate = host.tls_text(pair.server, iot_tls_peer_certificate);
        assert_eq!(certificate == pki.client.der, presented);
        assert_eq!(certificate.is_empty(), !presented);
        host.close_all(&[pair.server, pair.client]);
    }
}

#[test]
fn a_plaintext_client_on_a_tls_port_is_refused() {
    let _fds = fd_check();
    let pki = Pki::new("plaintext CA");
    let mut host = Host::new();
    let config = server_config(&pki, 0, &[]);
    let (listener, port) = host.listen("127.0.0.1", 0);
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain.set_read_timeout(Some(DEADLINE)).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let socket = host.accept_one(listener);
    let result = host.tls_accept(socket, config, 5_000);
    assert_eq!(result, IOT_E_TLS_PROTOCOL, "{}", message(result));
    assert!(!host.tls_error(socket).is_empty());
    // The client got an alert (or the end), never a hang.
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    host.close_all(&[socket, listener]);
    ok("free", iot_tls_config_free(config));
}

#[test]
fn a_handshake_that_never_finishes_times_out_and_leaks_nothing() {
    let _fds = fd_check();
    let pki = Pki::new("timeout CA");
    let mut host = Host::new();
    let config = server_config(&pki, 0, &[]);
    let (listener, port) = host.listen("127.0.0.1", 0);
    let silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let socket = host.accept_one(listener);
    let result = host.tls_accept(socket, config, 200);
    assert!(
        result == -libc::ETIME || result == -libc::ECANCELED || result == -libc::ETIMEDOUT,
        "{}",
        message(result)
    );
    host.close_all(&[socket, listener]);
    drop(silent);
    ok("free", iot_tls_config_free(config));
    host.assert_idle();
}

/// A rustls client on a thread: connects to `port`, completes the handshake, then
/// puts on the wire what `write` writes, before the server receives any of it.
fn peer_that_writes(
    client: std::sync::Arc<rustls::ClientConfig>,
    port: u16,
    write: impl FnOnce(&mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>) + Send + 'static,
) -> std::thread::JoinHandle<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    std::thread::spawn(move || {
        let mut stream = rustls_stream(client, port);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        write(&mut stream);
        while stream.conn.wants_write() {
            stream.conn.write_tls(&mut stream.sock).unwrap();
        }
        stream
    })
}

#[test]
fn garbage_after_the_handshake_fails_the_receive() {
    let _fds = fd_check();
    let pki = Pki::new("garbage CA");
    let mut host = Host::new();
    let config = server_config(&pki, 0, &[]);
    let (listener, port) = host.listen("127.0.0.1", 0);
    let client = rustls_client(&pki, &[]);
    let peer = peer_that_writes(client, port, |stream| {
        // An application-data record whose ciphertext is noise.
        let mut record = vec![23, 3, 3, 0, 40];
        record.extend(pattern(40, 9));
        stream.sock.write_all(&record).unwrap();
    });
    let socket = host.accept_one(listener);
    assert_eq!(host.tls_accept(socket, config, 5_000), 0);
    let _stream = peer.join().unwrap();
    ok(
        "recv",
        iot_recv(host.worker, socket, 6, IOT_OP_MULTISHOT, 0),
    );
    let c = host.next_tagged(6);
    assert_eq!(c.result, IOT_E_TLS_DECRYPT, "{}", message(c.result));
    assert_eq!(c.flags & IOT_COMPLETION_MORE, 0, "the receive ended");
    assert!(!host.tls_error(socket).is_empty());
    let code = iot_recv(host.worker, socket, 7, 0, 0);
    assert_eq!(
        code, IOT_E_TLS_STATE,
        "a failed session takes no more receives"
    );
    host.close_all(&[socket, listener]);
    assert_eq!(host.stats().buffers_outstanding, 0);
}

/// rustls takes no more ciphertext while it holds over 16 KiB of plaintext: a
/// receive that completes a full-size record and then small ones must not fail
/// (dart:io's HttpClient sending a chunked request right behind a large body did this).
#[test]
fn a_full_record_then_small_ones_in_one_receive_arrive_whole() {
    let _fds = fd_check();
    let pki = Pki::new("backlog CA");
    let mut host = Host::new();
    let config = server_config(&pki, 0, &[]);
    let (listener, port) = host.listen("127.0.0.1", 0);
    let client = rustls_client(&pki, &[]);
    let big = pattern(16_384, 3);
    let small: Vec<Vec<u8>> = (0..100).map(|i| pattern(100, 10 + i)).collect();
    let expected: Vec<u8> = big.iter().chain(small.iter().flatten()).copied().collect();
    // One record of the largest size, then a record per small write.
    let peer = peer_that_writes(client, port, move |stream| {
        stream.conn.writer().write_all(&big).unwrap();
        for piece in &small {
            stream.conn.writer().write_all(piece).unwrap();
        }
    });
    let socket = host.accept_one(listener);
    assert_eq!(host.tls_accept(socket, config, 5_000), 0);
    let _stream = peer.join().unwrap();
    let received = host.recv_exact(socket, expected.len(), 6);
    assert!(received == expected, "the plaintext differs");
    assert!(
        host.tls_error(socket).is_empty(),
        "{}",
        host.tls_error(socket)
    );
    host.close_all(&[socket, listener]);
    ok("free config", iot_tls_config_free(config));
    assert_eq!(host.stats().buffers_outstanding, 0);
}

/// Records of mixed sizes arriving in small buffers: plaintext left over from one
/// receive meets the ciphertext of the next (the session spills what rustls holds when
/// it refuses more), and every byte comes out once, in order.
#[test]
fn mixed_records_through_small_buffers_arrive_whole() {
    let _fds = fd_check();
    let pki = Pki::new("mixed CA");
    let mut host = Host::with_config(&config(64, 16, 4096));
    let server = server_config(&pki, 0, &[]);
    let (listener, port) = host.listen("127.0.0.1", 0);
    // Full-size records among small ones, from a fixed linear congruential sequence.
    let mut state = 12_345u32;
    let writes: Vec<Vec<u8>> = (0..60)
        .map(|i| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let len = match (state >> 16) % 3 {
                0 => 16_384,
                _ => 1 + (state >> 8) as usize % 3_000,
            };
            pattern(len, i)
        })
        .collect();
    let expected: Vec<u8> = writes.iter().flatten().copied().collect();
    let peer = peer_that_writes(rustls_client(&pki, &[]), port, move |stream| {
        for piece in &writes {
            stream.conn.writer().write_all(piece).unwrap();
            while stream.conn.wants_write() {
                stream.conn.write_tls(&mut stream.sock).unwrap();
            }
        }
    });
    let socket = host.accept_one(listener);
    assert_eq!(host.tls_accept(socket, server, 5_000), 0);
    let received = host.recv_exact(socket, expected.len(), 6);
    let _stream = peer.join().unwrap();
    assert!(received == expected, "the plaintext differs");
    host.close_all(&[socket, listener]);
    ok("free config", iot_tls_config_free(server));
    assert_eq!(host.stats().buffers_outstanding, 0);
}

/// Bytes after the peer's close_notify, in the same receive, are dropped: the stream
/// ends there (rustls takes no ciphertext after close_notify; the receive must not
/// keep offering it).
#[test]
fn bytes_after_close_notify_are_dropped_and_the_stream_ends() {
    let _fds = fd_check();
    let pki = Pki::new("after-close CA");
    let mut host = Host::new();
    let config = server_config(&pki, 0, &[]);
    let (listener, port) = host.listen("127.0.0.1", 0);
    let peer = peer_that_writes(rustls_client(&pki, &[]), port, |stream| {
        stream.conn.writer().write_all(b"last words").unwrap();
        stream.conn.send_close_notify();
        while stream.conn.wants_write() {
            stream.conn.write_tls(&mut stream.sock).unwrap();
        }
        stream.sock.write_all(&pattern(40_000, 4)).unwrap();
    });
    let socket = host.accept_one(listener);
    assert_eq!(host.tls_accept(socket, config, 5_000), 0);
    let _stream = peer.join().unwrap();
    // On a thread: a receive that spins on the dropped bytes never comes back.
    let (done, finished) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let received = host.recv_exact(socket, 100, 6);
        // A receive after the end takes the dropped bytes' next buffer in.
        ok("recv", iot_recv(host.worker, socket, 7, 0, 0));
        let again = host.next_tagged(7).result;
        let error = host.tls_error(socket);
        host.close_all(&[socket, listener]);
        ok("free config", iot_tls_config_free(config));
        let _ = done.send((received, again, error, host.stats().buffers_outstanding));
    });
    let (received, again, error, outstanding) = finished
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the receive came back");
    server.join().unwrap();
    assert_eq!(
        received, b"last words",
        "the stream ended after close_notify"
    );
    assert_eq!(again, 0, "{}", message(again));
    assert!(error.is_empty(), "{error}");
    assert_eq!(outstanding, 0);
}

#[test]
fn a_peer_that_closes_without_close_notify_ends_the_stream() {
    let _fds = fd_check();
    let pki = Pki::new("ragged CA");
    let mut host = Host::new();
    let config = server_config(&pki, 0, &[]);
    let (listener, port) = host.listen("127.0.0.1", 0);
    let client = rustls_client(&pki, &[]);
    let peer = std::thread::spawn(move || {
        let mut stream = rustls_stream(client, port);
        stream.write_all(b"last words").unwrap();
        while stream.conn.wants_write() || stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        // The end of the stream without close_notify. Then read until the server
        // closes: a socket closed with unread bytes (its session tickets) would
        // reset the connection instead.
        stream.sock.shutdown(std::net::Shutdown::Write).unwrap();
        let _ = stream.sock.read_to_end(&mut Vec::new());
    });
    let socket = host.accept_one(listener);
    assert_eq!(host.tls_accept(socket, config, 5_000), 0);
    assert_eq!(host.recv_exact(socket, 100, 6), b"last words");
    host.close_all(&[socket, listener]);
    peer.join().unwrap();
}

#[test]
fn records_wait_for_the_handshake_and_sockets_with_sessions_stay() {
    let _fds = fd_check();
    let pki = Pki::new("state CA");
    let mut host = Host::new();
    let config = server_config(&pki, 0, &[]);
    let (listener, port) = host.listen("127.0.0.1", 0);
    let _silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let socket = host.accept_one(listener);
    ok(
        "tls accept",
        iot_tls_accept(host.worker, socket, config, 5, 0),
    );
    let id = host.filled_buffer(b"too early");
    assert_eq!(
        iot_send(host.worker, socket, id, 0, 9, 6, 0),
        IOT_E_TLS_STATE
    );
    assert_eq!(iot_recv(host.worker, socket, 7, 0, 0), IOT_E_TLS_STATE);
    assert_eq!(
        iot_tls_accept(host.worker, socket, config, 8, 0),
        IOT_E_TLS_STATE
    );
    let mut info = iot_tls_info::default();
    assert_eq!(
        iot_tls_get_info(host.worker, socket, &mut info),
        IOT_E_TLS_STATE
    );
    host.release(id as u16);
    ok("close", iot_socket_close(host.worker, socket));
    assert_eq!(host.next_tagged(5).result, -libc::ECANCELED);
    ok("close", iot_socket_close(host.worker, listener));
    assert_eq!(host.stats().ops_in_flight, 0);
}

/// Flags, identity, trusted PEM, ALPN, and a word the reason must hold.
type Refused<'a> = (u32, Option<&'a Identity>, &'a str, &'a [&'a str], &'a str);

#[test]
fn bad_configurations_are_refused_with_a_reason() {
    let _fds = fd_check();
    let pki = Pki::new("config CA");
    let other = Pki::new("other CA");
    let mismatched = Identity {
        key: other.server.key.clone(),
        ..pki.server.clone()
    };
    let cases: [Refused; 5] = [
        (IOT_TLS_SERVER, None, "", &[], "certificate"),
        (IOT_TLS_SERVER, Some(&mismatched), "", &[], "key"),
        (0, None, "", &[], "trusted"),
        (0, None, "not a pem", &[], "trusted"),
        (
            IOT_TLS_ONLY_TLS12 | IOT_TLS_ONLY_TLS13,
            None,
            &pki.ca,
            &[],
            "TLS",
        ),
    ];
    for (flags, identity, trusted, alpn, word) in cases {
        let (code, reason) = try_config(flags, identity, trusted, alpn).unwrap_err();
        assert_eq!(code, IOT_E_TLS_CONFIG, "{reason}");
        assert!(
            reason.to_lowercase().contains(&word.to_lowercase()),
            "{word}: {reason}"
        );
    }
    let mut handle = 0;
    let code = iot_tls_config_new(
        0,
        std::ptr::null(),
        0,
        std::ptr::null(),
        0,
        std::ptr::null(),
        0,
        [0u8].as_ptr(),
        1,
        &mut handle,
        std::ptr::null_mut(),
        0,
    );
    assert_eq!(code, IOT_E_TLS_CONFIG, "an empty ALPN name");
    assert_eq!(iot_tls_config_free(12345678), IOT_E_BAD_HANDLE);
}

/// A 16 KiB record's plaintext overflows the piece its ciphertext came in, the ring
/// holds every receive buffer (none spare) and the host every send buffer: the receive
/// waits for room. The pool itself has room, so it must not also wait in the queue of
/// receives waiting for the pool's room, which resumed it at once, again and again,
/// and the drain never returned.
#[test]
fn plaintext_without_room_waits_without_spinning_the_drain() {
    let _fds = fd_check();
    let pki = Pki::new("spin CA");
    let mut host = Host::with_config(&config(16, 2, 4096));
    let server = server_config(&pki, 0, &[]);
    let (listener, port) = host.listen("127.0.0.1", 0);
    let client = rustls_client(&pki, &[]);
    let peer = std::thread::spawn(move || {
        let mut stream = rustls_stream(client, port);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        stream.conn.writer().write_all(&pattern(16_384, 3)).unwrap();
        while stream.conn.wants_write() {
            stream.conn.write_tls(&mut stream.sock).unwrap();
        }
        stream
    });
    let socket = host.accept_one(listener);
    assert_eq!(host.tls_accept(socket, server, 5_000), 0);
    let _stream = peer.join().unwrap();
    let mut id = 0u32;
    while iot_buffer_acquire(host.worker, &mut id) == 0 {}
    ok(
        "recv",
        iot_recv(host.worker, socket, 6, IOT_OP_MULTISHOT, 0),
    );
    host.flush();
    // A drain that spins never returns: watch it from here, bounded.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        host.next_tagged(6);
        let _ = done.send(host);
    });
    let host = finished
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the drain never returned");
    ok("release", iot_buffer_release(host.worker, id, 0));
}
