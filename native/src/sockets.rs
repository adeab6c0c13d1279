//! The worker's handle table: sockets and open files. A handle is
//! `generation << 32 | slot`; the generation changes every time a slot is reused, so a
//! stale handle never reaches a new socket or file.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use slab::Slab;

use crate::error::{Result, IOT_E_BAD_HANDLE, IOT_E_WRONG_SOCKET_KIND};
use crate::ops::Op;
use crate::unix::BoundPath;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SocketKind {
    /// A listening TCP or Unix stream socket.
    Listener,
    /// A connected TCP or Unix stream socket.
    Stream,
    /// A UDP or Unix datagram socket.
    Datagram,
    /// An open file (or anything else opened by path: FIFOs, devices).
    File,
}

pub(crate) struct Socket {
    pub(crate) fd: OwnedFd,
    pub(crate) kind: SocketKind,
    generation: u32,
    /// Ops that must run one at a time in call order, not yet started: the kernel does
    /// not order concurrent sends on a stream, nor writes at a file's position.
    pub(crate) outbound: VecDeque<Op>,
    /// An op from `outbound` is in flight.
    pub(crate) sending: bool,
    /// The Unix socket file this socket created; removed when the socket closes
    /// (declared after `fd`, so the socket is closed first).
    pub(crate) bound_path: Option<BoundPath>,
}

impl Socket {
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[derive(Default)]
pub(crate) struct SocketTable {
    slots: Slab<Socket>,
    next_generation: u32,
}

fn split(handle: u64) -> (usize, u32) {
    ((handle & 0xffff_ffff) as usize, (handle >> 32) as u32)
}

impl SocketTable {
    pub(crate) fn insert(&mut self, fd: OwnedFd, kind: SocketKind) -> u64 {
        // Generations start at 1 so no handle is 0.
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let generation = self.next_generation;
        let slot = self.slots.insert(Socket {
            fd,
            kind,
            generation,
            outbound: VecDeque::new(),
            sending: false,
            bound_path: None,
        });
        (u64::from(generation) << 32) | slot as u64
    }

    pub(crate) fn get(&self, handle: u64) -> Result<&Socket> {
        let (slot, generation) = split(handle);
        match self.slots.get(slot) {
            Some(s) if s.generation == generation => Ok(s),
            _ => Err(IOT_E_BAD_HANDLE),
        }
    }

    pub(crate) fn get_mut(&mut self, handle: u64) -> Result<&mut Socket> {
        let (slot, generation) = split(handle);
        match self.slots.get_mut(slot) {
            Some(s) if s.generation == generation => Ok(s),
            _ => Err(IOT_E_BAD_HANDLE),
        }
    }

    pub(crate) fn get_kind(&self, handle: u64, kind: SocketKind) -> Result<&Socket> {
        let socket = self.get(handle)?;
        if socket.kind == kind {
            Ok(socket)
        } else {
            Err(IOT_E_WRONG_SOCKET_KIND)
        }
    }

    pub(crate) fn remove(&mut self, handle: u64) -> Result<Socket> {
        self.get(handle)?;
        Ok(self.slots.remove(split(handle).0))
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Socket> + '_ {
        self.slots.drain()
    }

    /// Handles with a queued (not yet started) op tagged `tag`.
    pub(crate) fn handles_with_queued(&self, tag: u64) -> Vec<u64> {
        self.slots
            .iter()
            .filter(|(_, s)| s.outbound.iter().any(|op| op.tag == tag))
            .map(|(slot, s)| (u64::from(s.generation) << 32) | slot as u64)
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}
