//! Accepting survives running out of file descriptors: `EMFILE` arrives as a non-final
//! accept error, the worker re-arms the accept itself, and once descriptors are free
//! again every waiting connection and every new one is served. The limit is
//! process-wide, so this binary's tests take turns (`SERIAL`).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use support::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn nofile() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `limit`.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit
}

fn set_nofile(limit: &libc::rlimit) {
    // SAFETY: setrlimit reads one rlimit; lowering the soft limit needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, limit) }, 0);
}

/// Restores the soft limit when dropped, even when the test fails.
struct LowNofile(libc::rlimit);

impl Drop for LowNofile {
    fn drop(&mut self) {
        set_nofile(&self.0);
    }
}

/// Lowers the soft fd limit to `headroom` descriptors above what is open now (the
/// limit bounds descriptor numbers; the tests' descriptors are dense).
fn low_nofile(headroom: usize) -> LowNofile {
    let before = nofile();
    let low = libc::rlimit {
        rlim_cur: (open_fds() + headroom) as libc::rlim_t,
        rlim_max: before.rlim_max,
    };
    set_nofile(&low);
    LowNofile(before)
}

#[test]
fn emfile_is_not_final_and_every_waiting_connection_is_accepted() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    const WAITING: usize = 40;
    const ACCEPT: u64 = 1;
    let mut host = Host::new();
    let (listener, port) = host.listen("127.0.0.1", 0);
    // Connected in the kernel's backlog before the limit drops: they need no accept.
    let clients: Vec<TcpStream> = (0..WAITING)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    let limit = low_nofile(6);
    ok(
        "accept",
        iot_accept(host.worker, listener, ACCEPT, IOT_OP_MULTISHOT, 0),
    );
    let (mut accepted, mut errors) = (0, 0);
    let mut holding = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while accepted < WAITING {
        assert!(Instant::now() < deadline, "accepted only {accepted}");
        let c = host.next_tagged(ACCEPT);
        assert_ne!(
            c.flags & IOT_COMPLETION_MORE,
            0,
            "the accept ended: {}",
            message(c.result)
        );
        if c.result == -libc::EMFILE {
            errors += 1;
            // Descriptors come free only after the error: the accept must come back.
            for socket in holding.drain(..) {
                ok("close", iot_socket_close(host.worker, socket));
            }
            continue;
        }
        assert_eq!(c.result, 0, "{}", message(c.result));
        accepted += 1;
        if errors == 0 {
            holding.push(c.handle);
        } else {
            ok("close", iot_socket_close(host.worker, c.handle));
        }
    }
    assert!(errors > 0, "the limit never bit");
    drop(limit);
    drop(clients);

    // A new connection after the storm is served.
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect after");
    let c = host.next_tagged(ACCEPT);
    assert_eq!(c.result, 0, "{}", message(c.result));
    client.write_all(b"after the storm").unwrap();
    let received = host.recv_exact(c.handle, 15, 2);
    assert_eq!(&received[..], b"after the storm");
    host.cancel_to_end(ACCEPT);
}

#[test]
fn the_echo_example_serves_again_after_an_fd_storm() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    const STORM: usize = 300;
    let exe = example_path("echo_server");
    // A limit of 64 descriptors, as `ulimit -n 64` would set it, for the child only.
    let mut server = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" --port 0")
        .arg(&exe)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start echo_server");
    let mut stdout = BufReader::new(server.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("first line");
    let port: u16 = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    // More connections than the server has descriptors; each says hello.
    let storm: Vec<TcpStream> = (0..STORM)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(storm.len() > 64, "only {} connections made", storm.len());
    for mut s in &storm {
        let _ = s.write_all(b"x");
    }
    for s in &storm {
        let _ = s.shutdown(Shutdown::Both);
    }
    drop(storm);
    // Every descriptor is free again: a new client is echoed.
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect after");
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    client.write_all(b"still accepting").unwrap();
    let mut back = [0u8; 15];
    client.read_exact(&mut back).expect("echo after the storm");
    assert_eq!(&back, b"still accepting");
    // SAFETY: SIGTERM to our own child, which stops cleanly on it.
    unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
    let output = server.wait_with_output().expect("echo_server exit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "echo_server: {stderr}");
    assert!(
        stderr.contains("RLIMIT_NOFILE"),
        "the storm should have been reported: {stderr:?}"
    );
}

#[test]
fn no_descriptor_for_a_worker_names_the_fd_limit() {
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let code = {
        // The limit bounds descriptor numbers: with 3, no new one fits anywhere.
        let before = nofile();
        set_nofile(&libc::rlimit {
            rlim_cur: 3,
            rlim_max: before.rlim_max,
        });
        let _restore = LowNofile(before);
        let mut worker = 0;
        iot_worker_new(std::ptr::null(), &mut worker)
    };
    assert_eq!(code, -libc::EMFILE, "{}", message(code));
    assert!(message(code).contains("RLIMIT_NOFILE"), "{}", message(code));
}
