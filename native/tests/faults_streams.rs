//! Abuse an echo server survives, kept so it stays survived: byte-exact integrity of a
//! large echo, half-close with megabytes in flight, a storm of connect + reset, and
//! slowloris clients next to a normal one. Sizes suit CI; `tool/faults.sh` runs the
//! large variants (`IOT_FAULT_INTEGRITY_BYTES=1073741824`, ...) by hand.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use support::echo::EchoServer;
use support::*;

const CHUNK: usize = 64 << 10;

/// `name` from the environment, else `default`.
fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Chunk `i` of a test stream: regenerated on both ends, never held whole.
fn chunk(i: usize) -> Vec<u8> {
    pattern(CHUNK, i as u32 + 1)
}

fn client(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
}

/// Sends `bytes` from a writer thread (then half-closes) while this thread reads the
/// echo back, comparing every byte; then expects the server's end of stream.
fn echo_exact(port: u16, bytes: usize) {
    let mut reader = client(port);
    let mut writer = reader.try_clone().unwrap();
    let chunks = bytes.div_ceil(CHUNK);
    let sending = std::thread::spawn(move || {
        for i in 0..chunks {
            writer.write_all(&chunk(i)).expect("write");
        }
        writer.shutdown(Shutdown::Write).expect("half-close");
    });
    let mut back = vec![0u8; CHUNK];
    for i in 0..chunks {
        reader
            .read_exact(&mut back)
            .unwrap_or_else(|e| panic!("chunk {i} of {chunks}: {e}"));
        assert!(back == chunk(i), "chunk {i} differs");
    }
    assert_eq!(reader.read(&mut back).expect("end of stream"), 0);
    sending.join().expect("writer thread");
}

#[test]
fn a_large_echo_is_byte_exact() {
    let server = EchoServer::start("127.0.0.1");
    echo_exact(server.port, size("IOT_FAULT_INTEGRITY_BYTES", 64 << 20));
    let stats = server.stop();
    assert_eq!((stats.sockets_open, stats.buffers_outstanding), (0, 0));
}

#[test]
fn half_close_with_megabytes_in_flight() {
    let server = EchoServer::start("127.0.0.1");
    // Everything is written and half-closed before a byte is read back, so the FIN
    // arrives while the echo still has megabytes to send.
    let bytes = size("IOT_FAULT_HALF_CLOSE_BYTES", 4 << 20);
    let mut stream = client(server.port);
    let mut reader = stream.try_clone().unwrap();
    let chunks = bytes / CHUNK;
    let reading = std::thread::spawn(move || {
        let mut back = vec![0u8; CHUNK];
        for i in 0..chunks {
            reader.read_exact(&mut back).expect("echo");
            assert!(back == chunk(i), "chunk {i} differs");
        }
        reader.read(&mut back).expect("end of stream")
    });
    for i in 0..chunks {
        stream.write_all(&chunk(i)).expect("write");
    }
    stream.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(
        reading.join().expect("reader thread"),
        0,
        "no end of stream"
    );
    let stats = server.stop();
    assert_eq!((stats.sockets_open, stats.buffers_outstanding), (0, 0));
}

#[test]
fn a_storm_of_resets_leaves_nothing_behind() {
    let server = EchoServer::start("127.0.0.1");
    let storm = size("IOT_FAULT_RESETS", 300);
    for i in 0..storm {
        let mut stream = client(server.port);
        if i % 2 == 0 {
            let _ = stream.write_all(b"about to reset");
        }
        // Linger 0: close sends RST instead of FIN.
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    echo_exact(server.port, CHUNK);
    // Every reset connection is closed by the server once it sees the error.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut stats = iot_stats::default();
        ok("stats", iot_worker_stats(server.worker, &mut stats));
        // The listener is the one socket left.
        if stats.sockets_open == 1 && stats.buffers_outstanding == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {stats:?}");
        std::thread::yield_now();
    }
    let stats = server.stop();
    assert_eq!((stats.sockets_open, stats.buffers_outstanding), (0, 0));
}

#[test]
fn slowloris_clients_do_not_slow_a_normal_one() {
    let server = EchoServer::start("127.0.0.1");
    let slow: Vec<TcpStream> = (0..size("IOT_FAULT_SLOW_CLIENTS", 100))
        .map(|_| client(server.port))
        .collect();
    let mut normal = client(server.port);
    let rounds = size("IOT_FAULT_SLOW_ROUNDS", 5);
    let mut slowest = Duration::ZERO;
    for round in 0..rounds {
        // Each slow client trickles one byte per round.
        for mut s in &slow {
            s.write_all(&[round as u8]).expect("slow byte");
        }
        for i in 0..20 {
            let message = pattern(64, (round * 20 + i) as u32);
            let start = Instant::now();
            normal.write_all(&message).unwrap();
            let mut back = [0u8; 64];
            normal.read_exact(&mut back).expect("normal echo");
            slowest = slowest.max(start.elapsed());
            assert_eq!(back[..], message[..]);
        }
    }
    // Generous: a noisy 2-core machine may lose a slice; a stalled worker loses seconds.
    assert!(
        slowest < Duration::from_millis(500),
        "slowest round trip {slowest:?}"
    );
    for mut s in slow {
        let mut back = vec![0u8; rounds];
        s.read_exact(&mut back).expect("slow echo");
        assert_eq!(back, (0..rounds).map(|r| r as u8).collect::<Vec<_>>());
    }
    drop(normal);
    let stats = server.stop();
    assert_eq!((stats.sockets_open, stats.buffers_outstanding), (0, 0));
}
