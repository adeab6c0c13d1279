//! A buffer lent to an operation is the host's again only in that operation's
//! completion, whatever ends it: a cancel or close while it waits in its file's queue,
//! a cancel or timeout in the kernel. Before the host drains that completion the buffer
//! can be neither released nor handed out again (exactly one owner).

mod support;

use std::path::Path;

use support::*;

const FIRST: u64 = 1;
const QUEUED: u64 = 2;

fn acquire(host: &Host) -> u32 {
    let mut id = 0;
    ok("acquire", iot_buffer_acquire(host.worker, &mut id));
    id
}

fn read(host: &Host, file: u64, id: u32, tag: u64, timeout_ms: u32) {
    ok(
        "read",
        iot_file_read(
            host.worker,
            file,
            id,
            0,
            16,
            IOT_OFFSET_CURRENT,
            tag,
            timeout_ms,
        ),
    );
}

/// The host does not own `id`: it cannot release it, and no acquire hands it out.
fn not_the_hosts(host: &Host, id: u32) {
    assert_eq!(iot_buffer_release(host.worker, id, 0), IOT_E_BAD_BUFFER);
    let mut others = Vec::new();
    let mut next = 0;
    while iot_buffer_acquire(host.worker, &mut next) == 0 {
        assert_ne!(
            next, id,
            "buffer {id} handed out while an operation owns it"
        );
        others.push(next);
    }
    for other in others {
        ok("release", iot_buffer_release(host.worker, other, 0));
    }
}

/// The completion tagged `tag` brings `id` back, with `result`; then it is the host's,
/// exactly once.
fn handed_back(host: &mut Host, tag: u64, id: u32, result: i32) {
    let c = host.next_tagged(tag);
    assert_eq!(c.result, result, "{}", message(c.result));
    assert_ne!(c.flags & IOT_COMPLETION_BUFFER, 0);
    assert_eq!(u32::from(c.buffer_id), id);
    ok("release", iot_buffer_release(host.worker, id, 0));
    assert_eq!(iot_buffer_release(host.worker, id, 0), IOT_E_BAD_BUFFER);
}

/// A read queued behind another read of the same file (in call order), ended by `end`
/// before the host drains anything.
fn queued_read_ended_by(end: impl FnOnce(&Host, u64) -> i32) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut host = Host::with_config(&config(4, 4, 4096));
    let file = host.open_rw(&dir.path().join("data"));
    let (first, queued) = (acquire(&host), acquire(&host));
    read(&host, file, first, FIRST, 0);
    read(&host, file, queued, QUEUED, 0);
    ok("end the queued read", end(&host, file));
    not_the_hosts(&host, queued);
    handed_back(&mut host, QUEUED, queued, -libc::ECANCELED);
    let c = host.next_tagged(FIRST);
    host.release(c.buffer_id);
    let _ = iot_file_close(host.worker, file);
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn a_cancelled_queued_read_keeps_its_buffer_until_its_completion() {
    queued_read_ended_by(|host, _| iot_cancel(host.worker, QUEUED));
}

#[test]
fn a_closed_files_queued_read_keeps_its_buffer_until_its_completion() {
    queued_read_ended_by(|host, file| iot_file_close(host.worker, file));
}

/// A worker with one buffer lent to a read of an empty FIFO (with `timeout_ms`, 0 for
/// none), which waits in the kernel; the host no longer owns the buffer.
fn read_waiting_in_the_kernel(dir: &Path, timeout_ms: u32) -> (Host, u64, u32) {
    let mut host = Host::with_config(&config(4, 4, 4096));
    let fifo = host.empty_fifo(dir);
    let id = acquire(&host);
    read(&host, fifo, id, FIRST, timeout_ms);
    host.flush();
    not_the_hosts(&host, id);
    (host, fifo, id)
}

#[test]
fn a_read_cancelled_in_the_kernel_keeps_its_buffer_until_its_completion() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut host, fifo, id) = read_waiting_in_the_kernel(dir.path(), 0);
    ok("cancel", iot_cancel(host.worker, FIRST));
    not_the_hosts(&host, id);
    handed_back(&mut host, FIRST, id, -libc::ECANCELED);
    ok("close", iot_file_close(host.worker, fifo));
}

#[test]
fn a_timed_out_read_keeps_its_buffer_until_its_completion() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut host, fifo, id) = read_waiting_in_the_kernel(dir.path(), 20);
    handed_back(&mut host, FIRST, id, -libc::ETIMEDOUT);
    ok("close", iot_file_close(host.worker, fifo));
}

#[test]
fn freeing_a_worker_with_lent_buffers_reaps_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _lent = read_waiting_in_the_kernel(dir.path(), 0);
    // Dropping the host frees the worker, which must reap the read (checked by Drop).
}
