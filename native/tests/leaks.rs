//! Freeing a worker with operations in flight leaks no fd and no buffer. One test per
//! binary, because counting /proc/self/fd needs no other test running alongside.

mod support;

use std::io::Write;
use std::net::TcpStream;

use support::*;

#[test]
fn free_with_operations_in_flight_leaks_nothing() {
    let baseline = open_fds();
    {
        let mut host = Host::with_config(&config(8, 8, 4096));
        let (listener, port) = host.listen("127.0.0.1", 0);
        ok(
            "accept",
            iot_tcp_accept(host.worker, listener, 1, IOT_OP_MULTISHOT, 0),
        );
        host.flush();
        let clients: Vec<TcpStream> = (0..10)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        let mut accepted = Vec::new();
        while accepted.len() < clients.len() {
            let c = host.next_tagged(1);
            assert_eq!(c.result, 0);
            accepted.push(c.handle);
        }
        for (i, &socket) in accepted.iter().enumerate() {
            ok(
                "recv",
                iot_recv(host.worker, socket, 100 + i as u64, IOT_OP_MULTISHOT, 0),
            );
        }
        // The host holds a received buffer, and sends are stuck on a peer that never
        // reads (its receive window fills), so the worker dies with all of it in flight.
        (&clients[0]).write_all(b"held").unwrap();
        let held = host.next_tagged(100);
        assert_eq!(held.flags & IOT_COMPLETION_BUFFER, IOT_COMPLETION_BUFFER);
        for tag in 0..8 {
            let mut id = 0;
            if iot_buffer_acquire(host.worker, &mut id) < 0 {
                break;
            }
            ok(
                "send",
                iot_send(host.worker, accepted[1], id, 0, 4096, 200 + tag, 0),
            );
        }
        ok("connect", host.connect("127.0.0.1", port, 300, 0));
        host.poll();
        let stats = host.stats();
        assert!(stats.ops_in_flight >= 11, "{stats:?}");
        assert!(stats.buffers_outstanding >= 2, "{stats:?}");
        assert!(open_fds() > baseline);
        drop(clients);
        // Host::drop frees the worker and asserts every op was reaped.
    }
    assert_eq!(open_fds(), baseline, "fds leaked after iot_worker_free");
}
