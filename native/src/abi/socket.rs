//! Socket flags and selectors: operation, listen and bind flags, address selectors,
//! shutdown directions and socket option numbers.

/// Operation flag: keep the operation armed and complete once per event.
pub const IOT_OP_MULTISHOT: u32 = 1;

/// Listen flag: set `SO_REUSEPORT` so several workers can listen on one port.
pub const IOT_LISTEN_REUSEPORT: u32 = 1;
/// Listen flag: an IPv6 socket accepts only IPv6 (`IPV6_V6ONLY`).
pub const IOT_LISTEN_V6ONLY: u32 = 2;
/// Bind flag (`iot_udp_bind`): set `SO_REUSEADDR`, e.g. for several multicast receivers
/// on one port. TCP listeners always set it.
pub const IOT_BIND_REUSEADDR: u32 = 4;

/// `iot_socket_address` selector: the local address.
pub const IOT_ADDRESS_LOCAL: u32 = 0;
/// `iot_socket_address` selector: the peer's address.
pub const IOT_ADDRESS_PEER: u32 = 1;

/// Bind flag (`iot_unix_listen`, `iot_unix_datagram_bind`): when the path exists and
/// is a socket nobody is bound to any more (left behind by a crashed process), remove
/// it and bind. A live socket or any other file still fails with `-EADDRINUSE`.
pub const IOT_UNIX_REPLACE_STALE: u32 = 8;

/// Shut down the receiving side.
pub const IOT_SHUTDOWN_READ: i32 = 0;
/// Shut down the sending side (sends queued before it still go out first).
pub const IOT_SHUTDOWN_WRITE: i32 = 1;
/// Shut down both sides.
pub const IOT_SHUTDOWN_BOTH: i32 = 2;

/// `SO_RCVBUF` in bytes (reading it gives the kernel's doubled value).
pub const IOT_OPTION_RECV_BUFFER: u32 = 1;
/// `SO_SNDBUF` in bytes (reading it gives the kernel's doubled value).
pub const IOT_OPTION_SEND_BUFFER: u32 = 2;
/// `SO_BROADCAST`: 1 allows sending to broadcast addresses.
pub const IOT_OPTION_BROADCAST: u32 = 3;
/// `IP_MULTICAST_LOOP`/`IPV6_MULTICAST_LOOP`: 1 delivers our own multicast to us too.
pub const IOT_OPTION_MULTICAST_LOOP: u32 = 4;
/// `IP_MULTICAST_TTL`/`IPV6_MULTICAST_HOPS`.
pub const IOT_OPTION_MULTICAST_HOPS: u32 = 5;
/// `IP_MULTICAST_IF`/`IPV6_MULTICAST_IF` by interface index: where multicast goes out
/// (set only).
pub const IOT_OPTION_MULTICAST_INTERFACE: u32 = 6;
