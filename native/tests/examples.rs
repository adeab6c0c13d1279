//! The echo example, run as a user would: prints one `listening on` line, echoes over
//! TCP (one and several workers), and exits 0 on SIGTERM and SIGINT.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn start(workers: &str) -> (Child, u16, BufReader<std::process::ChildStdout>) {
    let exe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/examples/echo_server");
    let mut child = Command::new(exe)
        .args(["--port", "0", "--workers", workers])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start echo_server (built by cargo test)");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let port = line
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
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
    assert!(status.success(), "echo_server exited with {status}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "exactly one line of output");
}

#[test]
fn one_worker_echoes_and_stops_on_sigterm() {
    let (child, port, stdout) = start("1");
    echo(port, b"ping");
    stop(child, libc::SIGTERM, stdout);
}

#[test]
fn several_workers_share_the_port_and_stop_on_sigint() {
    let (child, port, stdout) = start("3");
    let clients: Vec<_> = (0..30u8)
        .map(|i| std::thread::spawn(move || echo(port, &[i; 100])))
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    stop(child, libc::SIGINT, stdout);
}
