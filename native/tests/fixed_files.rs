//! A stream's sends name its slot in the worker ring's registered files, not its fd.
//! The slot holds a reference to the socket, so everything that takes the socket from
//! the worker (close, hand-off, free) must empty it, or the socket stays open. The
//! kernel lists a ring's registered files in its fdinfo, which these tests read. Each
//! takes the descriptor check, which also runs them one at a time, so that no other
//! test's ring shows up in the listing.

mod support;

use std::io::Read;

use support::*;

/// The sockets (`socket:[inode]`) in the registered files of this process's rings.
fn registered_sockets() -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let is_ring = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy() == "anon_inode:[io_uring]");
        if !is_ring {
            continue;
        }
        let info = format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy());
        let Ok(info) = std::fs::read_to_string(info) else {
            continue; // closed since
        };
        // "UserFiles:\t<count>", then "<slot>: <path>" for each slot with a file.
        let files = info
            .lines()
            .skip_while(|line| !line.starts_with("UserFiles:"))
            .skip(1)
            .take_while(|line| line.trim_start().starts_with(|c: char| c.is_ascii_digit()));
        found.extend(
            files
                .filter_map(|line| line.split_once(": "))
                .map(|(_, path)| path.trim().to_owned())
                .filter(|path| path.starts_with("socket:")),
        );
    }
    found.sort();
    // Duplicates of one ring's fd list its files once each.
    found.dedup();
    found
}

/// `socket:[inode]` of `stream`'s socket, as fdinfo names it.
fn socket_name(stream: &impl std::os::fd::AsRawFd) -> String {
    let link = format!("/proc/self/fd/{}", stream.as_raw_fd());
    std::fs::read_link(link).unwrap().display().to_string()
}

/// Sends `data` on `socket` and has `peer` read it.
fn send_to_peer(host: &mut Host, socket: u64, peer: &mut std::net::TcpStream, data: &[u8]) {
    host.send_all(socket, data, 7);
    let mut got = vec![0; data.len()];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, data);
}

/// The peer reads the end of the stream (not a timeout: `connected_pair` set one).
fn assert_peer_sees_end(peer: &mut std::net::TcpStream) {
    let mut byte = [0; 1];
    match peer.read(&mut byte) {
        Ok(0) => {}
        other => panic!("the peer expected the end of the stream, got {other:?}"),
    }
}

#[test]
fn a_stream_that_sent_is_registered_until_it_closes_and_its_peer_then_sees_the_end() {
    let _fds = fd_check();
    let mut host = Host::new();
    let (socket, mut peer) = host.connected_pair();
    assert_eq!(
        registered_sockets(),
        Vec::<String>::new(),
        "before any send"
    );
    send_to_peer(&mut host, socket, &mut peer, b"registered");
    let registered = registered_sockets();
    assert_eq!(registered.len(), 1, "after a send: {registered:?}");
    // Our end is not the peer's socket.
    assert_ne!(registered[0], socket_name(&peer));
    // Sends keep going through the slot.
    send_to_peer(&mut host, socket, &mut peer, b"again");
    ok("close", iot_socket_close(host.worker, socket));
    host.flush();
    assert_eq!(
        registered_sockets(),
        Vec::<String>::new(),
        "after the close"
    );
    assert_peer_sees_end(&mut peer);
}

#[test]
fn a_send_waiting_on_a_peer_that_does_not_read_holds_back_no_other_close() {
    const SIZE: usize = 256 << 10;
    let _fds = fd_check();
    let mut host = Host::with_config(&config(64, 8, SIZE as u32));
    let (stuck, stuck_peer) = host.stuck_send(SIZE, 4);
    let (closing, mut peer) = host.connected_pair();
    send_to_peer(&mut host, closing, &mut peer, b"then closed");
    assert_eq!(registered_sockets().len(), 2);
    ok("close", iot_socket_close(host.worker, closing));
    host.flush();
    // Kernels that released a slot's socket only after every earlier request of the
    // table ended would hold this until the stuck send ends: never.
    assert_peer_sees_end(&mut peer);
    ok("close", iot_socket_close(host.worker, stuck));
    let cut = host.next_tagged(4);
    assert_eq!(cut.result, -libc::ECANCELED, "{}", message(cut.result));
    drop(stuck_peer);
}

#[test]
fn freeing_a_worker_empties_its_registered_files_and_ends_its_streams() {
    let _fds = fd_check();
    let mut host = Host::new();
    let (socket, mut peer) = host.connected_pair();
    send_to_peer(&mut host, socket, &mut peer, b"before the free");
    assert_eq!(registered_sockets().len(), 1);
    drop(host);
    assert_peer_sees_end(&mut peer);
}

#[test]
fn a_handed_over_stream_leaves_the_senders_registered_files_and_keeps_working() {
    let _fds = fd_check();
    require_messaging!();
    let mut from = Host::new();
    let mut to = Host::new();
    let (socket, mut peer) = from.connected_pair();
    send_to_peer(&mut from, socket, &mut peer, b"from the first worker");
    let first = registered_sockets();
    assert_eq!(first.len(), 1, "{first:?}");
    ok(
        "hand over",
        iot_socket_handoff(from.worker, socket, to.worker, 5),
    );
    from.flush();
    let arrived = to.next_where(|c| c.kind == IOT_KIND_SOCKET);
    assert_eq!(arrived.result, 0, "hand-off: {}", message(arrived.result));
    assert_eq!(from.next_tagged(5).result, 0);
    assert_eq!(
        registered_sockets(),
        Vec::<String>::new(),
        "after the hand-off"
    );
    // The new worker registers it at its own first send: the same socket.
    send_to_peer(
        &mut to,
        arrived.handle,
        &mut peer,
        b"from the second worker",
    );
    assert_eq!(registered_sockets(), first);
    ok("close", iot_socket_close(to.worker, arrived.handle));
    to.flush();
    assert_peer_sees_end(&mut peer);
}
