//! A datagram receive (`recvmsg`), with the sender's address and truncation reported.
//!
//! Every received datagram's buffer has the layout of a multishot `recvmsg`: a
//! `struct io_uring_recvmsg_out` (16 bytes), then `NAME_SPACE` bytes holding the
//! sender's `sockaddr`, then the payload at `HEADER_LEN` (the completion's `offset`).
//! Multishot receives get it from the kernel, in receive-ring buffers. A one-shot
//! receive cannot: the kernel hands no ring buffer to an empty datagram, and puts a
//! one-shot sender outside the buffer. So a one-shot receive takes a free span (or
//! send-pool buffer), receives behind the header room and writes the header itself.
//! The host reads every datagram alike and `iot_datagram_sender` parses any of them.
//!
//! Where the pool has spans (`buffers.rs`), multishot receives take them from the
//! datagram ring: a span holds the header and the largest datagram, so no datagram is
//! cut; the kernel still writes a small one into the first page of its span only.

use std::cell::UnsafeCell;

use io_uring::types::Fd;
use io_uring::{opcode, squeue};
use socket2::SockAddr;

use crate::abi::*;
use crate::buffers::{BufferPool, DATAGRAM_GROUP, DATAGRAM_SPAN_BYTES};
use crate::error::{Result, IOT_E_WRONG_SOCKET_KIND};
use crate::pieces::BufferRef;

/// Room for the sender's address in each buffer: any family fits.
const NAME_SPACE: usize = std::mem::size_of::<libc::sockaddr_storage>();
/// Size of `struct io_uring_recvmsg_out`.
const OUT_LEN: usize = std::mem::size_of::<OutHeader>();
/// Where the payload starts in a datagram buffer (16 + 128 = 144, 8-byte aligned).
pub(crate) const HEADER_LEN: usize = OUT_LEN + NAME_SPACE;

// A span holds this header and the largest datagram.
const _: () = assert!(HEADER_LEN + 65_535 <= DATAGRAM_SPAN_BYTES as usize);

/// The `msghdr` of a datagram receive, with room for a one-shot receive's sender.
/// The kernel reads and writes it while the op is in flight, hence the cell; it is
/// boxed so its address (and the pointers into it) stay fixed.
pub(crate) struct MessageHeader {
    parts: UnsafeCell<Parts>,
    /// One-shot receives: the pool buffer the datagram lands in, until the host gets it.
    buffer: Option<u32>,
    /// Multishot receives: the buffer group they take from.
    group: u16,
}

struct Parts {
    msg: libc::msghdr,
    name: libc::sockaddr_storage,
    iov: libc::iovec,
}

// SAFETY: the raw pointers inside point into this same allocation or into the worker's
// buffer pool, which move between threads with the op and its worker.
unsafe impl Send for MessageHeader {}

impl MessageHeader {
    /// For a multishot receive from buffer group `group`: only the name space reserved
    /// in each buffer matters. Made in `reuse` when given (a kept header).
    pub(crate) fn multishot(reuse: Option<Box<MessageHeader>>, group: u16) -> Box<MessageHeader> {
        let mut header = MessageHeader::new(reuse, None);
        header.group = group;
        header
    }

    /// For a one-shot receive into pool buffer (or span) `buffer` at `base`, `size`
    /// bytes long:
    /// the payload goes behind the header room, the sender into `name`. Made in `reuse`
    /// when given (a kept header).
    pub(crate) fn one_shot(
        reuse: Option<Box<MessageHeader>>,
        buffer: u32,
        base: *mut u8,
        size: usize,
    ) -> Box<MessageHeader> {
        let header = MessageHeader::new(reuse, Some(buffer));
        let parts = header.parts.get();
        // SAFETY: `parts` is valid and unaliased (the box is not shared yet); the iovec
        // covers the buffer from HEADER_LEN < size to its end.
        unsafe {
            (*parts).iov = libc::iovec {
                iov_base: base.add(HEADER_LEN).cast(),
                iov_len: size - HEADER_LEN,
            };
            (*parts).msg.msg_iov = std::ptr::addr_of_mut!((*parts).iov);
            (*parts).msg.msg_iovlen = 1;
        }
        header
    }

    /// A header in `reuse` (whose op ended: the kernel no longer uses it) or in a new
    /// box, all zero but for where the sender goes.
    fn new(reuse: Option<Box<MessageHeader>>, buffer: Option<u32>) -> Box<MessageHeader> {
        // SAFETY: all-zero bytes are valid for msghdr, sockaddr_storage and iovec.
        let zeroed = || UnsafeCell::new(unsafe { std::mem::zeroed() });
        let mut header = match reuse {
            Some(mut kept) => {
                kept.parts = zeroed();
                kept
            }
            None => Box::new(MessageHeader {
                parts: zeroed(),
                buffer: None,
                group: crate::buffers::RECV_GROUP,
            }),
        };
        header.buffer = buffer;
        header.group = crate::buffers::RECV_GROUP;
        let parts = header.parts.get();
        // SAFETY: `parts` is valid and unaliased; the box is not yet shared.
        unsafe {
            (*parts).msg.msg_name = std::ptr::addr_of_mut!((*parts).name).cast();
            // Multishot: the space reserved in each buffer; one-shot: the room in `name`.
            (*parts).msg.msg_namelen = NAME_SPACE as libc::socklen_t;
        }
        header
    }

    pub(crate) fn entry(&self, fd: Fd, multishot: bool) -> squeue::Entry {
        // SAFETY: only a pointer is formed; the kernel is its sole user while in flight.
        let msg = unsafe { std::ptr::addr_of_mut!((*self.parts.get()).msg) };
        if multishot {
            opcode::RecvMsgMulti::new(fd, msg, self.group).build()
        } else {
            opcode::RecvMsg::new(fd, msg).build()
        }
    }

    /// Whether this multishot receive takes spans from the datagram ring.
    pub(crate) fn takes_spans(&self) -> bool {
        self.buffer.is_none() && self.group == DATAGRAM_GROUP
    }

    /// The one-shot receive's pool buffer, while the op holds it.
    pub(crate) fn buffer(&self) -> &[u32] {
        self.buffer.as_slice()
    }

    /// What a finished one-shot receive wrote back: sender length, `MSG_*` flags, and
    /// the sender bytes.
    fn received(&self) -> (usize, u32, [u8; NAME_SPACE]) {
        // SAFETY: the kernel is done with the header once the op's CQE arrived.
        let parts = unsafe { &*self.parts.get() };
        // SAFETY: sockaddr_storage is exactly NAME_SPACE plain bytes.
        let name = unsafe {
            std::ptr::addr_of!(parts.name)
                .cast::<[u8; NAME_SPACE]>()
                .read()
        };
        (
            parts.msg.msg_namelen as usize,
            parts.msg.msg_flags as u32,
            name,
        )
    }

    /// Turns a datagram receive's raw result into the payload's length and place
    /// (`offset`) in a host-owned buffer, flagging truncation. Failed receives are
    /// left alone.
    pub(crate) fn describe(&mut self, completion: &mut iot_completion, buffers: &mut BufferPool) {
        if completion.result < 0 {
            return;
        }
        let raw = completion.result as usize;
        let (kept, flags) = if completion.flags & IOT_COMPLETION_BUFFER != 0 {
            // Multishot: the kernel wrote the header; the result counts it too.
            let buffer = buffers.ptr(u32::from(completion.buffer_id));
            // SAFETY: the kernel filled at least `raw` >= OUT_LEN bytes of this buffer.
            let out = read_out_header(unsafe { std::slice::from_raw_parts(buffer, OUT_LEN) });
            (raw.saturating_sub(HEADER_LEN), out.flags)
        } else if let Some(id) = self.buffer.take() {
            // One-shot: the payload is behind the header room; write the header.
            let (namelen, msg_flags, name) = self.received();
            let out = OutHeader {
                namelen: namelen as u32,
                controllen: 0,
                payloadlen: raw as u32,
                flags: msg_flags,
            };
            // SAFETY: the receive is over and the buffer is still the op's; the header
            // room at its start is HEADER_LEN < buffer size bytes.
            let room = unsafe { std::slice::from_raw_parts_mut(buffers.ptr(id), HEADER_LEN) };
            room[..OUT_LEN].copy_from_slice(&out.to_bytes());
            room[OUT_LEN..].copy_from_slice(&name);
            buffers.return_to_host(BufferRef::whole(id));
            completion.flags |= IOT_COMPLETION_BUFFER;
            completion.buffer_id = id as u16;
            (raw, msg_flags)
        } else {
            return;
        };
        completion.offset = HEADER_LEN as u32;
        completion.result = kept as i32;
        if flags & libc::MSG_TRUNC as u32 != 0 {
            completion.flags |= IOT_COMPLETION_TRUNCATED;
        }
    }
}

/// The sender of the datagram received into the buffer holding `bytes`.
pub(crate) fn sender(bytes: &[u8]) -> Result<SockAddr> {
    if bytes.len() <= HEADER_LEN {
        return Err(IOT_E_WRONG_SOCKET_KIND);
    }
    let namelen = (read_out_header(bytes).namelen as usize).min(NAME_SPACE);
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SAFETY: namelen <= NAME_SPACE = size of storage; the source is in bounds.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes[OUT_LEN..].as_ptr(),
            std::ptr::addr_of_mut!(storage).cast::<u8>(),
            namelen,
        )
    };
    let len = if namelen == 0 {
        // An unbound Unix socket sent it: an unnamed Unix address.
        storage.ss_family = libc::AF_UNIX as libc::sa_family_t;
        std::mem::size_of::<libc::sa_family_t>()
    } else {
        namelen
    };
    // SAFETY: storage holds `len` bytes of the address the kernel reported.
    Ok(unsafe { SockAddr::new(storage, len as libc::socklen_t) })
}

/// `struct io_uring_recvmsg_out` from linux/io_uring.h, native endian.
#[repr(C)]
struct OutHeader {
    namelen: u32,
    controllen: u32,
    payloadlen: u32,
    flags: u32,
}

impl OutHeader {
    fn to_bytes(&self) -> [u8; OUT_LEN] {
        let mut bytes = [0; OUT_LEN];
        let fields = [self.namelen, self.controllen, self.payloadlen, self.flags];
        for (chunk, field) in bytes.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&field.to_ne_bytes());
        }
        bytes
    }
}

fn read_out_header(buffer: &[u8]) -> OutHeader {
    let field = |i: usize| {
        let mut word = [0; 4];
        word.copy_from_slice(&buffer[i * 4..i * 4 + 4]);
        u32::from_ne_bytes(word)
    };
    OutHeader {
        namelen: field(0),
        controllen: field(1),
        payloadlen: field(2),
        flags: field(3),
    }
}
