//! The completion record the host drains in batches, and its flag and kind values.

/// One finished (or progressing, see `IOT_COMPLETION_MORE`) operation, or a message.
/// Fixed 32-byte layout; the host reads an array of these in place.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct iot_completion {
    /// The tag the host gave when it queued the operation.
    pub tag: u64,
    /// A new socket handle (accept, connect), else 0.
    pub handle: u64,
    /// Bytes transferred or 0 on success; a negative ABI error code on failure.
    /// `IOT_KIND_RECV` with result 0 means end of stream.
    pub result: i32,
    /// `IOT_COMPLETION_*` bits.
    pub flags: u32,
    /// The buffer holding received bytes when `IOT_COMPLETION_BUFFER` is set; the host
    /// owns it and must give it back with `iot_buffer_release`.
    pub buffer_id: u16,
    /// `IOT_KIND_*`: which operation this completes.
    pub kind: u16,
    /// Where the received bytes start inside the buffer (non-zero when the kernel put a
    /// header first, e.g. a datagram's sender address).
    pub offset: u32,
}

/// More completions will follow for the same tag (multishot accept/recv).
pub const IOT_COMPLETION_MORE: u32 = 1;
/// `buffer_id` is valid and now owned by the host.
pub const IOT_COMPLETION_BUFFER: u32 = 2;

pub const IOT_KIND_ACCEPT: u16 = 1;
pub const IOT_KIND_CONNECT: u16 = 2;
pub const IOT_KIND_RECV: u16 = 3;
pub const IOT_KIND_SEND: u16 = 4;
pub const IOT_KIND_SHUTDOWN: u16 = 5;

/// Operation flag: keep the operation armed and complete once per event.
pub const IOT_OP_MULTISHOT: u32 = 1;

/// Listen flag: set `SO_REUSEPORT` so several workers can listen on one port.
pub const IOT_LISTEN_REUSEPORT: u32 = 1;
/// Listen flag: an IPv6 socket accepts only IPv6 (`IPV6_V6ONLY`).
pub const IOT_LISTEN_V6ONLY: u32 = 2;

/// `iot_socket_address` selector: the local address.
pub const IOT_ADDRESS_LOCAL: u32 = 0;
/// `iot_socket_address` selector: the peer's address.
pub const IOT_ADDRESS_PEER: u32 = 1;

impl iot_completion {
    pub(crate) fn new(tag: u64, kind: u16, result: i32) -> Self {
        iot_completion {
            tag,
            kind,
            result,
            ..Default::default()
        }
    }
}
