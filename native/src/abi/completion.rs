//! The completion record the host drains in batches, and its flag and kind values.

/// One finished (or progressing, see `IOT_COMPLETION_MORE`) operation, or a message.
/// Fixed 32-byte layout; the host reads an array of these in place.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct iot_completion {
    /// The tag the host gave when it queued the operation.
    pub tag: u64,
    /// A new socket handle (accept, connect, a handed-over socket), a payload handle
    /// (`IOT_KIND_PAYLOAD`), else 0.
    pub handle: u64,
    /// Bytes transferred or 0 on success; a negative ABI error code on failure.
    /// `IOT_KIND_RECV` with result 0 means end of stream.
    pub result: i32,
    /// `IOT_COMPLETION_*` bits.
    pub flags: u32,
    /// The buffer holding received bytes when `IOT_COMPLETION_BUFFER` is set; the host
    /// holds them and must give them back with `iot_buffer_release` (see `offset`).
    pub buffer_id: u16,
    /// `IOT_KIND_*`: which operation this completes.
    pub kind: u16,
    /// Where the received bytes start inside the buffer. A stream receive (and a file
    /// read stream's chunk) is a piece of its buffer, which other receives may share
    /// when receives are packed (`iot_stats.packs_receives`): the host holds bytes
    /// `[offset, offset + result)` only, and releases them with this `offset`. A
    /// datagram's buffer is held whole, its payload behind the sender's address.
    pub offset: u32,
}

/// More completions will follow for the same tag (multishot accept/recv).
pub const IOT_COMPLETION_MORE: u32 = 1;
/// `buffer_id` is valid: the host now holds the piece at `offset` (or the whole
/// buffer, for a datagram or a file read's buffer).
pub const IOT_COMPLETION_BUFFER: u32 = 2;
/// The datagram was longer than the buffer's payload space: `result` bytes were kept,
/// the rest was discarded by the kernel.
pub const IOT_COMPLETION_TRUNCATED: u32 = 4;
/// The buffer is a piece (a stream receive's, a file read stream's chunk): the host
/// holds bytes `[offset, offset + result)` of `buffer_id`, which other receives may
/// share, and gives them back with `iot_buffer_release(worker, buffer_id, offset)`.
/// Without it, `IOT_COMPLETION_BUFFER` hands over a buffer whole (released with offset
/// 0), whatever `offset` says of where the bytes start in it.
pub const IOT_COMPLETION_PIECE: u32 = 16;
/// The host buffers this operation borrowed (a send's, send_to's or file write's
/// source buffers) are back in the free pool as of this completion, whatever its
/// result (also after a cancel, a close or a timeout); likewise the free buffer or
/// span a one-shot datagram receive took and did not fill (it failed, timed out or
/// was cancelled). Hosts track their buffers by this flag rather than by `kind`, and
/// retry an acquire that found none free when they see it.
pub const IOT_COMPLETION_BUFFERS_RETURNED: u32 = 8;

pub const IOT_KIND_ACCEPT: u16 = 1;
pub const IOT_KIND_CONNECT: u16 = 2;
pub const IOT_KIND_RECV: u16 = 3;
pub const IOT_KIND_SEND: u16 = 4;
pub const IOT_KIND_SHUTDOWN: u16 = 5;
/// A datagram received with its sender (`iot_datagram_recv`); `result` is the payload
/// length (0 is an empty datagram, not end of stream).
pub const IOT_KIND_RECV_FROM: u16 = 10;
/// A datagram sent to an address (`iot_udp_send_to`, `iot_unix_send_to`).
pub const IOT_KIND_SEND_TO: u16 = 11;
pub const IOT_KIND_FILE_OPEN: u16 = 12;
/// A file read (`iot_file_read`, `iot_file_readv`, `iot_file_read_stream`).
pub const IOT_KIND_FILE_READ: u16 = 13;
/// A file write (`iot_file_write`, `iot_file_writev`).
pub const IOT_KIND_FILE_WRITE: u16 = 14;
pub const IOT_KIND_FILE_SYNC: u16 = 15;
pub const IOT_KIND_FILE_ALLOCATE: u16 = 16;
pub const IOT_KIND_FILE_TRUNCATE: u16 = 17;
pub const IOT_KIND_FILE_STAT: u16 = 18;

// Cross-worker messaging (20..=29).

/// A message from another worker: `tag` is the sender's tag, `result` the sender's
/// 32-bit value (read it as `uint32_t`; for this kind it is not an error code).
pub const IOT_KIND_MESSAGE: u16 = 20;
/// This worker's message left: `result` 0 means the kernel posted it into the target's
/// completion queue ("sent"), negative that it was not delivered. On failure a payload
/// or socket the message carried comes back: `handle` names it again (else 0).
pub const IOT_KIND_MESSAGE_SENT: u16 = 21;
/// A payload from another worker: `handle` is the payload, now owned by this host until
/// `iot_payload_release` (or sent on); `result` is its length in bytes.
pub const IOT_KIND_PAYLOAD: u16 = 22;
/// A socket handed over by another worker: `handle` is its socket handle here.
pub const IOT_KIND_SOCKET: u16 = 23;
/// The transport asks every worker to stop (`iot_transport_request_stop`); `result` is
/// the value given there. The host should wind down and call `iot_worker_stop`.
pub const IOT_KIND_STOP_REQUESTED: u16 = 24;
/// After `iot_worker_stop`: every message sent to this worker has been drained and
/// every message it sent was reported; freeing it now loses no message.
pub const IOT_KIND_STOPPED: u16 = 25;

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
