//! The ring runs with COOP_TASKRUN: the kernel never interrupts the thread that
//! submitted an op to finish it (a receive whose data came after it was submitted
//! finishes as task work of that thread). That thread may be busy in user space
//! meanwhile, running anything but this worker: a Dart pool thread running another
//! isolate, a host thread that submitted and went on with its work while another
//! thread waits. The completion must still arrive while it stays busy (the kernel runs
//! the task work when the busy thread is next interrupted), not only once it enters
//! the kernel again. And the thread may exit, which makes the kernel cancel what it
//! submitted: the worker then makes the attempt again from the thread draining.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;

/// Far longer than any scheduler tick: a completion later than this waited for the
/// busy thread to stop.
const BUSY_FOR: Duration = Duration::from_secs(3);

#[test]
fn a_receive_completes_while_its_submitting_thread_is_busy_in_user_space() {
    let mut host = Host::new();
    let (socket, mut peer) = host.connected_pair();
    let worker = host.worker;
    ok("recv", iot_recv(worker, socket, 7, 0, 0));
    // Submitted from this thread: the receive's task work is this thread's.
    host.flush();

    let received = Arc::new(AtomicBool::new(false));
    let waiter = {
        let received = received.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + DEADLINE;
            let mut batch = [iot_completion::default(); 8];
            while Instant::now() < deadline {
                ok("wait", iot_worker_wait(worker, 100));
                let n = ok(
                    "drain",
                    iot_worker_drain(worker, batch.as_mut_ptr(), batch.len() as u32),
                ) as usize;
                if let Some(c) = batch[..n].iter().find(|c| c.tag == 7) {
                    received.store(true, Ordering::Release);
                    return *c;
                }
            }
            panic!("no receive completion within {DEADLINE:?}");
        })
    };
    peer.write_all(b"ping").unwrap();

    // Busy without a system call (the clock is read through the vDSO) until the
    // waiter has the completion or BUSY_FOR passes.
    let start = Instant::now();
    while !received.load(Ordering::Acquire) && start.elapsed() < BUSY_FOR {
        std::hint::spin_loop();
    }
    let busy = start.elapsed();
    assert!(
        received.load(Ordering::Acquire),
        "the receive completed only after its submitting thread stopped being busy \
         ({busy:?})"
    );

    let c = waiter.join().unwrap();
    assert_eq!(c.result, 4, "{}", message(c.result));
    assert_eq!(host.payload(&c), b"ping");
    host.release(c.buffer_id);
    ok("close", iot_socket_close(worker, socket));
}

#[test]
fn a_receive_outlives_the_thread_that_submitted_it() {
    let mut host = Host::new();
    let (socket, mut peer) = host.connected_pair();
    let worker = host.worker;
    // Submitted from a thread that then exits, as a retired Dart pool thread does.
    std::thread::spawn(move || {
        ok("recv", iot_recv(worker, socket, 7, 0, 0));
        ok("flush", iot_worker_flush(worker));
    })
    .join()
    .unwrap();
    peer.write_all(b"ping").unwrap();
    let c = host.next_tagged(7);
    assert_eq!(c.result, 4, "{}", message(c.result));
    assert_eq!(host.payload(&c), b"ping");
    host.release(c.buffer_id);

    // A multishot accept armed by an exited thread keeps accepting too.
    let (listener, port) = host.listen("127.0.0.1", 0);
    std::thread::spawn(move || {
        ok(
            "accept",
            iot_accept(worker, listener, 8, IOT_OP_MULTISHOT, 0),
        );
        ok("flush", iot_worker_flush(worker));
    })
    .join()
    .unwrap();
    let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let c = host.next_tagged(8);
    assert_eq!(c.result, 0, "{}", message(c.result));
    ok("close accepted", iot_socket_close(worker, c.handle));
    ok("close listener", iot_socket_close(worker, listener));
    ok("close", iot_socket_close(worker, socket));
}
