//! TLS against independent implementations, on loopback only: `openssl s_client` and
//! `openssl s_server` (OpenSSL's command line) and Python's `ssl` module (the scripts in
//! tests/interop/) as clients and servers of ours, and hand-made faults from a rustls
//! client that owns its socket. Each case checks the bytes, what each side says it
//! negotiated, and that nothing leaked (fds, buffers, ops).
//!
//! openssl and python3 are required: a missing one fails the test with the reason
//! (tool/setup_system.sh installs both). Every peer runs as a child process with a
//! deadline, and is killed when it passes.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::tls::*;
use support::*;

/// How long any peer process may run.
const PEER_DEADLINE: Duration = Duration::from_secs(60);

/// Fails (never skips) when `tool` cannot run: CI installs it.
fn require(tool: &str, version_arg: &str) {
    let ran = Command::new(tool)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match ran {
        Ok(status) if status.success() => {}
        other => panic!(
            "`{tool} {version_arg}` does not run ({other:?}): the TLS interop tests need {tool} \
             (tool/setup_system.sh installs it)"
        ),
    }
}

fn openssl() -> Command {
    require("openssl", "version");
    Command::new("openssl")
}

fn python(script: &str) -> Command {
    require("python3", "--version");
    let mut command = Command::new("python3");
    command.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/interop")
            .join(script),
    );
    command
}

/// A peer process's result.
struct Finished {
    success: bool,
    stdout: Vec<u8>,
    stderr: String,
}

impl Finished {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A peer child process, killed when dropped (a failed test leaves none behind).
struct Peer {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    stdin: Option<JoinHandle<()>>,
}

impl Peer {
    /// Starts `command` with `input` written to its stdin (then closed) and its output
    /// collected, all on threads, so no pipe can fill up and stop it.
    fn start(mut command: Command, input: Vec<u8>) -> Peer {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            // A peer that exits early closes the pipe: that is its own result to report.
            let _ = stdin.write_all(&input);
        });
        Peer {
            stdout: Some(collect(child.stdout.take().unwrap())),
            stderr: Some(collect(child.stderr.take().unwrap())),
            stdin: Some(writer),
            child,
        }
    }

    /// Waits for the peer to exit (killing it at the deadline) and returns its output.
    fn finish(mut self) -> Finished {
        let deadline = Instant::now() + PEER_DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.stdin.take().unwrap().join().unwrap();
        let stdout = self.stdout.take().unwrap().join().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        let Some(status) = status else {
            panic!("peer still running after {PEER_DEADLINE:?}, killed; stderr: {stderr}");
        };
        Finished {
            success: status.success(),
            stdout,
            stderr,
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = from.read_to_end(&mut all);
        all
    })
}

/// A directory with the PKI as files: ca.pem, chain.pem (server leaf + CA), key.pem.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(pki: &Pki) -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &pki.ca).unwrap();
        std::fs::write(dir.path().join("chain.pem"), &pki.server.chain).unwrap();
        std::fs::write(dir.path().join("key.pem"), &pki.server.key).unwrap();
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }
}

/// What our server saw of one connection.
struct Seen {
    handshake: i32,
    reason: String,
    alpn: Vec<u8>,
    info: iot_tls_info,
    echoed: usize,
}

/// Our TLS echo server (configuration `flags`, `alpn`) on a thread, serving one client
/// per entry of `sizes` in turn: it echoes exactly that many bytes, then ends its side
/// with close_notify and closes. A failed handshake is recorded and the socket closed.
fn our_server(
    pki: &Pki,
    flags: u32,
    alpn: &[&str],
    sizes: Vec<usize>,
) -> (u16, JoinHandle<(Vec<Seen>, iot_stats)>) {
    our_server_on("127.0.0.1", pki, flags, alpn, sizes)
}

/// `our_server` listening on `ip`.
fn our_server_on(
    ip: &str,
    pki: &Pki,
    flags: u32,
    alpn: &[&str],
    sizes: Vec<usize>,
) -> (u16, JoinHandle<(Vec<Seen>, iot_stats)>) {
    let mut host = Host::new();
    let config = server_config(pki, flags, alpn);
    let (listener, port) = host.listen(ip, 0);
    let thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for (i, size) in sizes.into_iter().enumerate() {
            let socket = host.accept_one(listener);
            let handshake = host.tls_accept(socket, config, 10_000);
            if handshake != 0 {
                seen.push(Seen {
                    handshake,
                    reason: host.tls_error(socket),
                    alpn: Vec::new(),
                    info: iot_tls_info::default(),
                    echoed: 0,
                });
                ok("close", iot_socket_close(host.worker, socket));
                continue;
            }
            let alpn = host.tls_text(socket, iot_tls_alpn);
            let info = host.tls_info(socket);
            let echoed = echo_exactly(&mut host, socket, size, 100 * (i as u64 + 1));
            seen.push(Seen {
                handshake,
                reason: String::new(),
                alpn,
                info,
                echoed,
            });
        }
        ok("close", iot_socket_close(host.worker, listener));
        ok("free config", iot_tls_config_free(config));
        (seen, host.stats())
    });
    (port, thread)
}

/// Echoes `size` bytes (one-shot receives, each buffer sent back as it came; tags
/// `tag` and `tag + 1`), then shuts down the sending side (close_notify, `tag + 2`) and
/// closes the socket.
fn echo_exactly(host: &mut Host, socket: u64, size: usize, tag: u64) -> usize {
    let (mut echoed, mut sends, mut receiving) = (0, 0, false);
    while echoed < size || sends > 0 {
        if echoed < size && !receiving {
            ok("recv", iot_recv(host.worker, socket, tag, 0, 0));
            receiving = true;
        }
        let c = host.next_where(|c| c.tag == tag || c.tag == tag + 1);
        if c.tag == tag + 1 {
            assert!(c.result >= 0, "echo send: {}", message(c.result));
            sends -= 1;
            continue;
        }
        receiving = false;
        assert!(
            c.result > 0,
            "echo recv after {echoed} of {size} bytes: {} ({}) {}",
            message(c.result),
            c.result,
            host.tls_error(socket)
        );
        let code = iot_send(
            host.worker,
            socket,
            u32::from(c.buffer_id),
            c.offset,
            c.result as u32,
            tag + 1,
            0,
        );
        ok("echo send", code);
        echoed += c.result as usize;
        sends += 1;
    }
    ok(
        "shutdown",
        iot_socket_shutdown(host.worker, socket, libc::SHUT_WR, tag + 2),
    );
    let done = host.next_tagged(tag + 2);
    assert_eq!(done.result, 0, "shutdown: {}", message(done.result));
    ok("close", iot_socket_close(host.worker, socket));
    echoed
}

fn assert_clean(stats: &iot_stats) {
    assert_eq!(
        (
            stats.sockets_open,
            stats.buffers_outstanding,
            stats.ops_in_flight
        ),
        (0, 0, 0),
        "sockets open, buffers out, ops in flight"
    );
}

/// `openssl s_client` to our server on `port`, trusting the CA in `files`.
fn s_client(files: &Files, port: u16, extra: &[&str]) -> Command {
    s_client_to(files, &format!("127.0.0.1:{port}"), extra)
}

/// `openssl s_client` to our server at `address`, trusting the CA in `files`.
fn s_client_to(files: &Files, address: &str, extra: &[&str]) -> Command {
    let mut command = openssl();
    command.args(["s_client", "-connect", address]);
    command.args(["-CAfile", &files.arg("ca.pem"), "-servername", "localhost"]);
    command.args(["-verify_return_error", "-verify_hostname", "localhost"]);
    command.args(extra);
    command
}

#[test]
fn openssl_s_client_gets_every_byte_back_1_byte_to_8_mib() {
    let _fds = fd_check();
    let pki = Pki::new("s_client echo CA");
    let files = Files::new(&pki);
    let sizes = vec![1, 100, 16_384, 16_385, 1 << 20, 8 << 20];
    let (port, server) = our_server(&pki, 0, &[], sizes.clone());
    for (seed, &size) in sizes.iter().enumerate() {
        let payload = pattern(size, seed as u32 + 1);
        // -quiet: only the peer's bytes on stdout; it implies -ign_eof, so s_client
        // keeps reading after its stdin ends, until our close_notify.
        let client = s_client(&files, port, &["-quiet", "-nocommands"]);
        let out = Peer::start(client, payload.clone()).finish();
        assert!(out.success, "s_client, {size} bytes: {}", out.stderr);
        assert_eq!(out.stdout.len(), size, "s_client got back: {}", out.stderr);
        assert!(out.stdout == payload, "the echo of {size} bytes differs");
    }
    let (seen, stats) = server.join().unwrap();
    for (s, &size) in seen.iter().zip(&sizes) {
        assert_eq!((s.handshake, s.echoed), (0, size), "{}", s.reason);
        assert_eq!(s.info.protocol_version, 0x0304);
    }
    assert_clean(&stats);
}

#[test]
fn openssl_s_client_over_ipv6_loopback_in_tls12_and_tls13() {
    let _fds = fd_check();
    let pki = Pki::new("s_client IPv6 CA");
    let files = Files::new(&pki);
    let payload = pattern(300_000, 6);
    let (port, server) = our_server_on("::1", &pki, 0, &[], vec![payload.len(); 2]);
    for version in ["-tls1_2", "-tls1_3"] {
        let extra = ["-quiet", "-nocommands", version];
        let client = s_client_to(&files, &format!("[::1]:{port}"), &extra);
        let out = Peer::start(client, payload.clone()).finish();
        assert!(out.success, "s_client {version} over ::1: {}", out.stderr);
        assert!(
            out.stdout == payload,
            "the echo over ::1 differs ({version})"
        );
    }
    let (seen, stats) = server.join().unwrap();
    let versions: Vec<u16> = seen.iter().map(|s| s.info.protocol_version).collect();
    assert_eq!(versions, [0x0303, 0x0304]);
    assert_clean(&stats);
}

#[test]
fn openssl_sees_the_alpn_protocol_we_chose_and_refuses_when_none_is_common() {
    let _fds = fd_check();
    let pki = Pki::new("s_client ALPN CA");
    let files = Files::new(&pki);
    let cases = [
        (vec!["http/1.1"], "http/1.1"),
        (vec!["h2", "http/1.1"], "h2"),
        (vec!["h3"], ""),
    ];
    for (ours, chosen) in cases {
        let (port, server) = our_server(&pki, 0, &ours, vec![6]);
        let client = s_client(&files, port, &["-alpn", "h2,http/1.1", "-ign_eof"]);
        let out = Peer::start(client, b"hello\n".to_vec()).finish();
        let (seen, stats) = server.join().unwrap();
        let text = out.text();
        if chosen.is_empty() {
            assert!(!out.success, "s_client should fail: {text}");
            assert_eq!(
                seen[0].handshake, IOT_E_TLS_NO_COMMON_PROTOCOL,
                "{}",
                seen[0].reason
            );
            assert!(
                out.stderr.contains("no application protocol") || out.stderr.contains("alert"),
                "openssl names the alert: {}",
                out.stderr
            );
        } else {
            assert!(out.success, "s_client: {}", out.stderr);
            assert!(
                text.contains(&format!("ALPN protocol: {chosen}")),
                "ALPN {chosen} in s_client's report: {text}"
            );
            assert!(text.contains("hello\n"), "the echo: {text}");
            assert_eq!(seen[0].alpn, chosen.as_bytes());
        }
        assert_clean(&stats);
    }
}

#[test]
fn openssl_resumes_its_session_with_our_server_in_tls12_and_tls13() {
    let _fds = fd_check();
    let pki = Pki::new("s_client resumption CA");
    let files = Files::new(&pki);
    for (version, code) in [("-tls1_2", 0x0303), ("-tls1_3", 0x0304)] {
        let (port, server) = our_server(&pki, 0, &[], vec![5, 5]);
        let session = files.arg("session.pem");
        let _ = std::fs::remove_file(&session);
        let first = s_client(&files, port, &[version, "-ign_eof", "-sess_out", &session]);
        let first = Peer::start(first, b"ping\n".to_vec()).finish();
        assert!(first.success, "{version} first: {}", first.stderr);
        assert!(first.text().contains("New, TLSv1."), "{}", first.text());
        assert!(
            Path::new(&session).exists(),
            "{version}: s_client saved no session (no ticket or session id from us)"
        );
        let second = s_client(&files, port, &[version, "-ign_eof", "-sess_in", &session]);
        let second = Peer::start(second, b"pong\n".to_vec()).finish();
        assert!(second.success, "{version} second: {}", second.stderr);
        assert!(
            second.text().contains("Reused, TLSv1."),
            "{version}: openssl reports no resumption: {}",
            second.text()
        );
        assert!(second.text().contains("pong\n"));
        let (seen, stats) = server.join().unwrap();
        let resumed: Vec<bool> = seen
            .iter()
            .map(|s| s.info.flags & IOT_TLS_INFO_RESUMED != 0)
            .collect();
        assert_eq!(resumed, [false, true], "{version}: resumed as we see it");
        assert!(seen.iter().all(|s| s.info.protocol_version == code));
        assert_clean(&stats);
    }
}

/// `openssl s_server` with `args` on a free port of 127.0.0.1, once it prints ACCEPT.
/// The port is found by binding a listener and dropping it; a port taken in between
/// makes s_server exit, and another is tried (five times at most).
fn s_server(files: &Files, args: &[&str]) -> (Peer, u16) {
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = openssl();
        command.args(["s_server", "-accept", &format!("127.0.0.1:{port}")]);
        command.args([
            "-cert",
            &files.arg("chain.pem"),
            "-key",
            &files.arg("key.pem"),
        ]);
        command.args(["-naccept", "1"]).args(args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start openssl s_server");
        let (lines, ready) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut all = Vec::new();
            let mut line = String::new();
            while stdout.read_line(&mut line).unwrap_or(0) > 0 {
                if line.trim() == "ACCEPT" {
                    let _ = lines.send(());
                }
                all.extend_from_slice(line.as_bytes());
                line.clear();
            }
            all
        });
        let mut peer = Peer {
            stderr: Some(collect(child.stderr.take().unwrap())),
            stdout: Some(reader),
            stdin: Some(std::thread::spawn(|| {})),
            child,
        };
        match ready.recv_timeout(DEADLINE) {
            Ok(()) => return (peer, port),
            Err(_) => {
                let _ = peer.child.kill();
                let out = peer.finish();
                assert!(
                    out.stderr.contains("in use"),
                    "s_server did not start: {}",
                    out.stderr
                );
            }
        }
    }
    panic!("no free port for s_server in five tries");
}

#[test]
fn our_client_gets_a_page_from_openssl_s_server_in_tls12_and_tls13() {
    let _fds = fd_check();
    let pki = Pki::new("s_server CA");
    let files = Files::new(&pki);
    let mut host = Host::new();
    let client = client_config(&pki, 0, &["h2", "http/1.1"]);
    for (version, code) in [("-tls1_2", 0x0303), ("-tls1_3", 0x0304)] {
        let (server, port) = s_server(&files, &["-www", "-alpn", "http/1.1", version]);
        let socket = host.tls_connect(port, client);
        assert_eq!(host.tls_info(socket).protocol_version, code);
        assert_eq!(host.tls_text(socket, iot_tls_alpn), b"http/1.1");
        assert_eq!(
            host.tls_text(socket, iot_tls_peer_certificate),
            pki.server.der
        );
        host.send_all(socket, b"GET / HTTP/1.0\r\n\r\n", 3);
        // The whole page, up to the end of the stream s_server closes.
        let page = host.recv_exact(socket, 1 << 20, 4);
        let page = String::from_utf8_lossy(&page);
        assert!(page.starts_with("HTTP/1.0 200 ok"), "{page}");
        assert!(
            page.contains("Ciphers supported in s_server binary"),
            "{page}"
        );
        assert!(
            page.contains(if code == 0x0304 { "TLSv1.3" } else { "TLSv1.2" }),
            "{page}"
        );
        ok("close", iot_socket_close(host.worker, socket));
        let out = server.finish();
        assert!(out.success, "s_server: {}", out.stderr);
    }
    ok("free", iot_tls_config_free(client));
    assert_clean(&host.stats());
}

#[test]
fn python_ssl_clients_in_tls12_and_tls13_get_every_byte_back() {
    let _fds = fd_check();
    let pki = Pki::new("python client CA");
    let files = Files::new(&pki);
    let sizes = [1usize, 70_000, 3 << 20];
    for (version, code) in [("1.2", 0x0303), ("1.3", 0x0304)] {
        let (port, server) = our_server(&pki, 0, &["http/1.1"], sizes.to_vec());
        for (seed, size) in sizes.iter().enumerate() {
            let mut client = python("tls_echo_client.py");
            client.args([&port.to_string(), &files.arg("ca.pem"), version]);
            client.args([&size.to_string(), &seed.to_string()]);
            let out = Peer::start(client, Vec::new()).finish();
            assert!(
                out.success,
                "python {version}, {size} bytes: {}",
                out.stderr
            );
            let expected = format!("ok TLSv{version} ");
            assert!(out.text().starts_with(&expected), "{}", out.text());
            assert!(
                out.text().trim_end().ends_with(" http/1.1"),
                "{}",
                out.text()
            );
        }
        let (seen, stats) = server.join().unwrap();
        for (s, &size) in seen.iter().zip(&sizes) {
            assert_eq!((s.handshake, s.echoed), (0, size), "{}", s.reason);
            assert_eq!(s.info.protocol_version, code);
        }
        assert_clean(&stats);
    }
}

#[test]
fn our_client_echoes_through_python_ssl_servers_in_tls12_and_tls13() {
    let _fds = fd_check();
    let pki = Pki::new("python server CA");
    let files = Files::new(&pki);
    let mut host = Host::new();
    let client = client_config(&pki, 0, &["h2", "http/1.1"]);
    for (version, code) in [("1.2", 0x0303), ("1.3", 0x0304)] {
        let mut command = python("tls_echo_server.py");
        command.args([&files.arg("chain.pem"), &files.arg("key.pem"), version]);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start python3");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (ports, port_line) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            let _ = ports.send(line);
            let mut rest = Vec::new();
            let _ = stdout.read_to_end(&mut rest);
            rest
        });
        let server = Peer {
            stderr: Some(collect(child.stderr.take().unwrap())),
            stdout: Some(reader),
            stdin: Some(std::thread::spawn(|| {})),
            child,
        };
        let line = port_line
            .recv_timeout(DEADLINE)
            .expect("python prints its port");
        let port: u16 = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));

        let socket = host.tls_connect(port, client);
        assert_eq!(host.tls_info(socket).protocol_version, code);
        assert_eq!(host.tls_text(socket, iot_tls_alpn), b"http/1.1");
        let payload = pattern(1 << 20, 77);
        for chunk in payload.chunks(64 << 10) {
            host.send_all(socket, chunk, 3);
            assert!(
                host.recv_exact(socket, chunk.len(), 4) == chunk,
                "the echo differs"
            );
        }
        ok(
            "shutdown",
            iot_socket_shutdown(host.worker, socket, libc::SHUT_WR, 5),
        );
        assert_eq!(host.next_tagged(5).result, 0);
        // Python answers our close_notify with its own: a clean end.
        assert_eq!(host.recv_exact(socket, 1, 6), b"");
        ok("close", iot_socket_close(host.worker, socket));
        let out = server.finish();
        assert!(out.success, "python server {version}: {}", out.stderr);
        let expected = format!("done TLSv{version} ");
        assert!(out.text().starts_with(&expected), "{}", out.text());
        assert!(
            out.text()
                .trim_end()
                .ends_with(&format!(" http/1.1 {}", payload.len())),
            "{}",
            out.text()
        );
    }
    ok("free", iot_tls_config_free(client));
    assert_clean(&host.stats());
}

// Faults: a rustls client that owns its socket does the handshake, then misbehaves on
// the wire.

/// One sealed application-data record carrying `text`, as the wire bytes.
fn sealed(stream: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> Vec<u8> {
    stream
        .conn
        .writer()
        .write_all(b"a record that never arrives whole")
        .unwrap();
    let mut wire = Vec::new();
    while stream.conn.wants_write() {
        stream.conn.write_tls(&mut wire).unwrap();
    }
    wire
}

/// One receive's result on `socket` (its buffer released), the session's reason.
fn receive(host: &mut Host, socket: u64, tag: u64) -> (i32, String) {
    ok("recv", iot_recv(host.worker, socket, tag, 0, 0));
    let c = host.next_tagged(tag);
    if c.flags & IOT_COMPLETION_BUFFER != 0 {
        host.release(c.buffer_id);
    }
    (c.result, host.tls_error(socket))
}

fn close_and_check(host: &mut Host, socket: u64, config: u64) {
    ok("close", iot_socket_close(host.worker, socket));
    ok("free", iot_tls_config_free(config));
    assert_clean(&host.stats());
}

#[test]
fn bytes_that_are_no_tls_record_after_the_handshake_fail_the_receive() {
    let _fds = fd_check();
    let pki = Pki::new("garbage CA");
    let mut host = Host::new();
    let config = server_config(&pki, 0, &[]);
    let (socket, mut stream) = host.handshaken(&pki, config);
    stream
        .sock
        .write_all(b"\x00\x01 not a record, content type 0 \xff\xfe")
        .unwrap();
    let (code, reason) = receive(&mut host, socket, 10);
    assert_eq!(code, IOT_E_TLS_PROTOCOL, "{} ({reason})", message(code));
    assert!(!reason.is_empty());
    // The peer hears about it: an alert, then the end, or a reset; never a hang.
    stream.sock.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut rest = Vec::new();
    let _ = stream.sock.read_to_end(&mut rest);
    assert_eq!(iot_recv(host.worker, socket, 11, 0, 0), IOT_E_TLS_STATE);
    close_and_check(&mut host, socket, config);
}

#[test]
fn a_record_cut_short_by_the_end_of_the_stream_is_an_error_not_an_end() {
    let _fds = fd_check();
    let pki = Pki::new("truncation CA");
    let mut host = Host::new();
    let config = server_config(&pki, 0, &[]);
    let (socket, mut stream) = host.handshaken(&pki, config);
    let wire = sealed(&mut stream);
    stream.sock.write_all(&wire[..wire.len() / 2]).unwrap();
    stream.sock.shutdown(std::net::Shutdown::Write).unwrap();
    let (code, reason) = receive(&mut host, socket, 10);
    // Half a record then FIN: data was lost, so not the clean end (0) a stream that
    // stops between records gets.
    assert!(
        code < 0,
        "a truncated record ended the stream as if clean: result {code} ({reason})"
    );
    drop(stream);
    close_and_check(&mut host, socket, config);
}

#[test]
fn a_reset_in_the_middle_of_a_record_is_econnreset() {
    let _fds = fd_check();
    let pki = Pki::new("reset CA");
    let mut host = Host::new();
    let config = server_config(&pki, 0, &[]);
    let (socket, mut stream) = host.handshaken(&pki, config);
    let wire = sealed(&mut stream);
    stream.sock.write_all(&wire[..wire.len() / 2]).unwrap();
    // SO_LINGER 0: close sends RST instead of FIN.
    socket2::SockRef::from(&stream.sock)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
    let (code, reason) = receive(&mut host, socket, 10);
    assert_eq!(code, -libc::ECONNRESET, "{} ({reason})", message(code));
    close_and_check(&mut host, socket, config);
}

#[test]
fn a_client_that_stops_after_its_hello_times_the_handshake_out() {
    let _fds = fd_check();
    let pki = Pki::new("stalled hello CA");
    let mut host = Host::new();
    let config = server_config(&pki, 0, &[]);
    let (listener, port) = host.listen("127.0.0.1", 0);
    // A real ClientHello, then silence: our server answers and waits for the client's
    // Finished, which never comes.
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut hello =
        rustls::ClientConnection::new(rustls_client(&pki, &[]), "localhost".try_into().unwrap())
            .unwrap();
    let mut wire = Vec::new();
    hello.write_tls(&mut wire).unwrap();
    tcp.write_all(&wire).unwrap();
    let socket = host.accept_one(listener);
    let started = Instant::now();
    let result = host.tls_accept(socket, config, 300);
    assert!(
        [-libc::ETIME, -libc::ETIMEDOUT, -libc::ECANCELED].contains(&result),
        "{} ({result})",
        message(result)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // It did answer the hello before waiting.
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut first = [0u8; 5];
    tcp.read_exact(&mut first).unwrap();
    assert_eq!(first[0], 22, "a handshake record");
    ok("close", iot_socket_close(host.worker, listener));
    drop(tcp);
    close_and_check(&mut host, socket, config);
}

#[test]
fn our_client_times_out_on_a_server_that_never_answers_its_hello() {
    let _fds = fd_check();
    let pki = Pki::new("silent server CA");
    let mut host = Host::new();
    let config = client_config(&pki, 0, &[]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    ok("connect", host.connect("127.0.0.1", port, 1, 0));
    let (silent, _) = listener.accept().unwrap();
    let connected = host.next_tagged(1);
    assert_eq!(connected.result, 0);
    let socket = connected.handle;
    let name = cstr("localhost");
    let started = Instant::now();
    ok(
        "tls connect",
        iot_tls_connect(host.worker, socket, config, name.as_ptr(), 2, 300),
    );
    let result = host.next_tagged(2).result;
    assert!(
        [-libc::ETIME, -libc::ETIMEDOUT, -libc::ECANCELED].contains(&result),
        "{} ({result})",
        message(result)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop((silent, listener));
    close_and_check(&mut host, socket, config);
}
