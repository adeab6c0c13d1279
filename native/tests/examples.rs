//! The echo examples, run as a user would: each prints one `listening on` line, echoes
//! (TCP with one and several workers, UDP, Unix stream, TLS), and exits 0 on SIGTERM and
//! SIGINT.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::example_path;

/// Starts `example` with `args` and returns it with what its one line says it
/// listens on.
fn start(example: &str, args: &[&str]) -> (Child, String, BufReader<std::process::ChildStdout>) {
    let exe = example_path(example);
    let mut child = Command::new(&exe)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {} (built by cargo test): {e}", exe.display()));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, address, stdout)
}

/// Starts the TCP echo server on a free port.
fn start_tcp(workers: &str) -> (Child, u16, BufReader<std::process::ChildStdout>) {
    let (child, address, stdout) = start("echo_server", &["--port", "0", "--workers", workers]);
    let port = address
        .strip_prefix("127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected address {address:?}"))
        .parse()
        .unwrap();
    (child, port, stdout)
}

fn echo(port: u16, message: &[u8]) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(message).unwrap();
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, message);
}

fn stop(mut child: Child, signal: i32, mut stdout: BufReader<std::process::ChildStdout>) {
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "the example exited with {status}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "exactly one line of output");
}

#[test]
fn one_worker_echoes_and_stops_on_sigterm() {
    let (child, port, stdout) = start_tcp("1");
    echo(port, b"ping");
    stop(child, libc::SIGTERM, stdout);
}

#[test]
fn several_workers_share_the_port_and_stop_on_sigint() {
    let (child, port, stdout) = start_tcp("3");
    let clients: Vec<_> = (0..30u8)
        .map(|i| std::thread::spawn(move || echo(port, &[i; 100])))
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    stop(child, libc::SIGINT, stdout);
}

#[test]
fn udp_echo_answers_every_sender_and_stops_on_sigterm() {
    let (child, address, stdout) = start("udp_echo", &["--port", "0"]);
    let server: std::net::SocketAddr = address.parse().unwrap();
    assert!(server.ip().is_loopback(), "{address}");
    let clients: Vec<_> = (0..3u8)
        .map(|i| {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            (i, socket)
        })
        .collect();
    for round in 0..10u8 {
        for (i, socket) in &clients {
            socket.send_to(&[*i, round, 42], server).unwrap();
        }
        for (i, socket) in &clients {
            let mut back = [0u8; 8];
            let (n, from) = socket.recv_from(&mut back).unwrap();
            assert_eq!((&back[..n], from), (&[*i, round, 42][..], server));
        }
    }
    stop(child, libc::SIGTERM, stdout);
}

#[test]
fn unix_echo_serves_a_path_removes_it_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let path_text = path.to_str().unwrap();
    // A stale file from a crashed run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let (child, address, stdout) = start("unix_echo", &["--path", path_text]);
    assert_eq!(address, path_text);
    for i in 0..5u8 {
        let mut stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(&[i; 300]).unwrap();
        let mut back = [0u8; 300];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(back, [i; 300]);
    }
    stop(child, libc::SIGTERM, stdout);
    assert!(!path.exists(), "the server removes its socket file");
}

/// One TLS echo through the TLS example, trusting `ca` (PEM) for the name localhost,
/// ended with close_notify both ways.
fn tls_echo(port: u16, ca: &str, message: &[u8]) {
    use support::tls::{rustls_client, Pki};
    // rustls_client only reads the CA of the Pki it is given.
    let mut pki = Pki::new("unused");
    pki.ca = ca.to_string();
    let mut stream = support::tls::rustls_stream(rustls_client(&pki, &[]), port);
    stream.write_all(message).unwrap();
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, message);
    stream.conn.send_close_notify();
    stream.flush().unwrap();
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("the server's close_notify: a clean end");
    assert!(rest.is_empty());
}

#[test]
fn tls_echo_makes_a_certificate_writes_its_ca_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let (child, address, stdout) = start(
        "tls_echo_server",
        &["--port", "0", "--write-ca", ca_path.to_str().unwrap()],
    );
    let port = address
        .strip_prefix("127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected address {address:?}"))
        .parse()
        .unwrap();
    // Written before the line, so a client can trust it at once.
    let ca = std::fs::read_to_string(&ca_path).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    let clients: Vec<_> = (0..10u8)
        .map(|i| {
            let ca = ca.clone();
            std::thread::spawn(move || tls_echo(port, &ca, &[i; 20_000]))
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    // A plaintext client fails its own handshake and does not stop the server.
    echo_refused(port);
    tls_echo(port, &ca, b"still serving");
    stop(child, libc::SIGTERM, stdout);
}

/// A plaintext client on the TLS port gets no echo: an alert and the end.
fn echo_refused(port: u16) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    assert!(!reply.starts_with(b"GET"), "echoed in plaintext: {reply:?}");
}

#[test]
fn tls_echo_serves_given_pem_files_with_two_workers_and_stops_on_sigint() {
    let pki = support::tls::Pki::new("example CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("chain.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &pki.server.chain).unwrap();
    std::fs::write(&key, &pki.server.key).unwrap();
    let args = [
        "--port",
        "0",
        "--workers",
        "2",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let (child, address, stdout) = start("tls_echo_server", &args);
    let port: u16 = address.rsplit_once(':').unwrap().1.parse().unwrap();
    for i in 0..6u8 {
        tls_echo(port, &pki.ca, &[i; 1000]);
    }
    stop(child, libc::SIGINT, stdout);
    // A key without its certificate is refused before listening.
    let exe = support::example_path("tls_echo_server");
    let out = Command::new(exe)
        .args(["--port", "0", "--key", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cert and --key"));
}
