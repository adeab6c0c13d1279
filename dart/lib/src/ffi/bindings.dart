// ignore_for_file: non_constant_identifier_names, constant_identifier_names, camel_case_types

/// Raw bindings to `libiouring_transport.so`, mirroring
/// `native/include/iouring_transport.h` one to one (checked by
/// `tool/check_bindings.py`). Nothing here is exported by the package: the
/// idiomatic API in `lib/src/*.dart` is built on top of it.
///
/// Every function whose header doc says "Not a leaf call" is bound with
/// `isLeaf: false`; all others are cheap, non-blocking calls bound with
/// `isLeaf: true`.
library;

import 'dart:ffi';

import 'package:ffi/ffi.dart';

// ---------------------------------------------------------------- constants

/// More completions will follow for the same tag (multishot accept/recv).
const int IOT_COMPLETION_MORE = 1;

/// `buffer_id` is valid and now owned by the host.
const int IOT_COMPLETION_BUFFER = 2;

/// The buffer is a piece: bytes `[offset, offset + result)` of `buffer_id`,
/// which other receives may share; released with its `offset` (without this
/// flag a buffer is held whole and released with offset 0).
const int IOT_COMPLETION_PIECE = 16;

const int IOT_KIND_ACCEPT = 1;
const int IOT_KIND_CONNECT = 2;
const int IOT_KIND_RECV = 3;
const int IOT_KIND_SEND = 4;
const int IOT_KIND_SHUTDOWN = 5;

/// A message from another worker: `tag` and the sender's 32-bit value in
/// `result` (read as unsigned; not an error code for this kind).
const int IOT_KIND_MESSAGE = 20;

/// This worker's message left: `result` 0 means posted into the target's
/// queue; on failure a carried payload or socket comes back in `handle`.
const int IOT_KIND_MESSAGE_SENT = 21;

/// A payload from another worker: `handle` is the payload (this host owns it
/// now), `result` its length in bytes.
const int IOT_KIND_PAYLOAD = 22;

/// A socket handed over by another worker: `handle` is its handle here.
const int IOT_KIND_SOCKET = 23;

/// The transport asks every worker to stop; `result` is the value given.
const int IOT_KIND_STOP_REQUESTED = 24;

/// After `iot_worker_stop`: nothing more will arrive; free the worker now.
const int IOT_KIND_STOPPED = 25;

/// Operation flag: keep the operation armed and complete once per event.
const int IOT_OP_MULTISHOT = 1;

/// Listen flag: set `SO_REUSEPORT` so several workers can listen on one port.
const int IOT_LISTEN_REUSEPORT = 1;

/// Listen flag: an IPv6 socket accepts only IPv6 (`IPV6_V6ONLY`).
const int IOT_LISTEN_V6ONLY = 2;

/// `iot_socket_address` selector: the local address.
const int IOT_ADDRESS_LOCAL = 0;

/// `iot_socket_address` selector: the peer's address.
const int IOT_ADDRESS_PEER = 1;

/// A handle (worker, socket) is null, stale, closed or was never issued.
const int IOT_E_BAD_HANDLE = -5001;

/// io_uring is unavailable or lacks an operation this library needs.
const int IOT_E_UNSUPPORTED = -5002;

/// The kernel refused to pin or account memory for the ring or its buffers.
const int IOT_E_MEMLOCK = -5003;

/// A required pointer argument was NULL.
const int IOT_E_NULL_POINTER = -5004;

/// A buffer id is out of range or not owned by the host.
const int IOT_E_BAD_BUFFER = -5005;

/// An internal panic was caught at the ABI boundary; the worker should be freed.
const int IOT_E_PANIC = -5006;

/// The operation does not apply to this kind of handle (socket kind or file).
const int IOT_E_WRONG_SOCKET_KIND = -5007;

/// Out of address space mapping the ring or its buffers (`ulimit -v`).
const int IOT_E_ADDRESS_SPACE = -5008;

/// A thread could not be started (thread or address-space limits).
const int IOT_E_THREAD = -5009;

/// A single-thread worker was called from another thread than its own.
const int IOT_E_WRONG_THREAD = -5010;

/// The target worker of a message is unknown, freed, or stopped.
const int IOT_E_WORKER_GONE = -5020;

/// Shut down the receiving side.
const int IOT_SHUTDOWN_READ = 0;

/// Shut down the sending side (sends queued before it still go out first).
const int IOT_SHUTDOWN_WRITE = 1;

/// Shut down both sides.
const int IOT_SHUTDOWN_BOTH = 2;

// Datagrams, files, Unix sockets and socket options (issue #3).

/// The datagram was longer than the buffer's payload space: `result` bytes
/// were kept, the rest was discarded.
const int IOT_COMPLETION_TRUNCATED = 4;

/// The host buffers a send, send_to or file write borrowed are back in the
/// pool: a writer waiting for a send buffer may try again.
const int IOT_COMPLETION_BUFFERS_RETURNED = 8;

/// A datagram received with its sender; `result` is the payload length (0 is an
/// empty datagram, not end of stream).
const int IOT_KIND_RECV_FROM = 10;

/// A datagram sent to an address.
const int IOT_KIND_SEND_TO = 11;
const int IOT_KIND_FILE_OPEN = 12;

/// A file read (single, vectored or streamed).
const int IOT_KIND_FILE_READ = 13;

/// A file write (single or vectored).
const int IOT_KIND_FILE_WRITE = 14;
const int IOT_KIND_FILE_SYNC = 15;
const int IOT_KIND_FILE_ALLOCATE = 16;
const int IOT_KIND_FILE_TRUNCATE = 17;
const int IOT_KIND_FILE_STAT = 18;

/// Bind flag (`iot_udp_bind`): set `SO_REUSEADDR`.
const int IOT_BIND_REUSEADDR = 4;

/// Config flag: register the buffer pool as fixed buffers (pinned memory).
const int IOT_CONFIG_REGISTER_BUFFERS = 1;

/// Config flag: every stream receive takes a whole buffer (no packing).
const int IOT_CONFIG_WHOLE_BUFFERS = 2;

/// Config flag: stream receives are one-shot kernel attempts (no kernel multishot).
const int IOT_CONFIG_ONE_SHOT_RECEIVES = 4;

/// Config flag: one thread makes, drives and frees the worker (never set by
/// this package: an isolate may run on another thread at every turn).
const int IOT_CONFIG_SINGLE_THREAD = 8;

/// File offset meaning "at the file position" (-1 as a 64-bit value).
const int IOT_OFFSET_CURRENT = 0xFFFFFFFFFFFFFFFF;

/// Open flags (`iot_file_open`); READ and WRITE together open for both.
const int IOT_OPEN_READ = 1;
const int IOT_OPEN_WRITE = 2;
const int IOT_OPEN_CREATE = 4;
const int IOT_OPEN_EXCLUSIVE = 8;
const int IOT_OPEN_TRUNCATE = 16;
const int IOT_OPEN_APPEND = 32;

/// Sync flag: fdatasync rather than fsync.
const int IOT_SYNC_DATA_ONLY = 1;

/// Socket options (`iot_socket_set_option`, `iot_socket_get_option`).
const int IOT_OPTION_RECV_BUFFER = 1;
const int IOT_OPTION_SEND_BUFFER = 2;
const int IOT_OPTION_BROADCAST = 3;
const int IOT_OPTION_MULTICAST_LOOP = 4;
const int IOT_OPTION_MULTICAST_HOPS = 5;
const int IOT_OPTION_MULTICAST_INTERFACE = 6;

/// Unix bind flag: replace a stale socket file nobody is bound to any more.
const int IOT_UNIX_REPLACE_STALE = 8;

// TLS (issue #13).

/// A TLS handshake on a connected stream socket (`iot_tls_accept`,
/// `iot_tls_connect`) finished: `result` 0, or a negative code
/// (`IOT_E_TLS_*`, or an errno when the connection itself failed); `handle`
/// is the socket.
const int IOT_KIND_TLS_HANDSHAKE = 30;

/// The configuration is a server's (else a client's).
const int IOT_TLS_SERVER = 1;

/// Server: ask clients for a certificate, verify one when given.
const int IOT_TLS_CLIENT_AUTH_OPTIONAL = 2;

/// Server: refuse clients without a trusted certificate.
const int IOT_TLS_CLIENT_AUTH_REQUIRED = 4;

/// Only TLS 1.2 (default: 1.2 and 1.3).
const int IOT_TLS_ONLY_TLS12 = 8;

/// Only TLS 1.3.
const int IOT_TLS_ONLY_TLS13 = 16;

/// Client: trust the system's CA certificates besides the given ones.
const int IOT_TLS_SYSTEM_ROOTS = 32;

/// `iot_tls_info.flags`: the session was resumed (no full handshake).
const int IOT_TLS_INFO_RESUMED = 1;

/// `iot_tls_info.flags`: the peer presented a certificate.
const int IOT_TLS_INFO_PEER_CERTIFICATE = 2;

/// A TLS configuration could not be built (bad PEM, key mismatch, ...).
const int IOT_E_TLS_CONFIG = -5040;

/// The peer's certificate is not valid (expired, badly encoded, revoked).
const int IOT_E_TLS_BAD_CERTIFICATE = -5041;

/// The peer's certificate was not issued by a trusted authority.
const int IOT_E_TLS_UNKNOWN_ISSUER = -5042;

/// The server's certificate is not valid for the requested name (SNI).
const int IOT_E_TLS_NAME_MISMATCH = -5043;

/// No protocol version, cipher suite or ALPN protocol in common.
const int IOT_E_TLS_NO_COMMON_PROTOCOL = -5044;

/// The peer refused the handshake or ended the session with an alert.
const int IOT_E_TLS_ALERT_RECEIVED = -5045;

/// The peer does not speak TLS correctly (also a plaintext client).
const int IOT_E_TLS_PROTOCOL = -5046;

/// A record failed to decrypt or authenticate.
const int IOT_E_TLS_DECRYPT = -5047;

/// The server requires a client certificate and the client sent none.
const int IOT_E_TLS_CERTIFICATE_REQUIRED = -5048;

/// The socket has no established TLS session for this call.
const int IOT_E_TLS_STATE = -5049;

// ---------------------------------------------------------------- structs

/// Worker configuration. Fill with `iot_config_default`, then adjust.
final class iot_config extends Struct {
  /// Submission queue entries; the completion queue holds four completions per
  /// entry plus one per buffer (the next power of two, at most 65,536).
  @Uint32()
  external int ring_entries;

  /// Receive buffers at most, 1..=32768: the provided buffer ring starts with up
  /// to 256 and grows when receives find it empty, by what they need, at most
  /// doubling (past a budget when packed, only a drain later).
  @Uint32()
  external int recv_buffer_count;

  /// Buffers the host acquires for sends, 0..=32768.
  @Uint32()
  external int send_buffer_count;

  /// Size of every buffer in bytes, 1..=16 MiB.
  @Uint32()
  external int buffer_size;

  /// `IOT_CONFIG_*` bits; others must be 0.
  @Uint32()
  external int flags;

  /// Receive buffers one stream socket may hold at a time; 0: 32 (an eighth of
  /// the ring's first 256), at most `recv_buffer_count`.
  @Uint32()
  external int socket_buffer_limit;
}

/// One finished (or progressing, see [IOT_COMPLETION_MORE]) operation.
/// Fixed 32-byte layout; the host reads an array of these in place.
final class iot_completion extends Struct {
  /// The tag the host gave when it queued the operation.
  @Uint64()
  external int tag;

  /// A new socket handle (accept, connect, a handed-over socket), a payload
  /// handle ([IOT_KIND_PAYLOAD]), else 0.
  @Uint64()
  external int handle;

  /// Bytes transferred or 0 on success; a negative ABI error code on failure.
  @Int32()
  external int result;

  /// `IOT_COMPLETION_*` bits.
  @Uint32()
  external int flags;

  /// The buffer holding received bytes when [IOT_COMPLETION_BUFFER] is set.
  @Uint16()
  external int buffer_id;

  /// `IOT_KIND_*`: which operation this completes.
  @Uint16()
  external int kind;

  /// Where the received bytes start inside the buffer.
  @Uint32()
  external int offset;
}

/// Host callback: receives the worker handle. Called from a native thread.
typedef iot_notify_fn = Pointer<NativeFunction<Void Function(Uint64)>>;

/// `Dart_PostCObject` (Dart: `NativeApi.postCObject`): posts `message` to a
/// port and returns whether it was accepted. Callable from any thread, and
/// safe to call after the receiving isolate is gone.
typedef iot_post_fn
    = Pointer<NativeFunction<Int8 Function(Int64, Pointer<Void>)>>;

/// Counters for leak checks and monitoring.
final class iot_stats extends Struct {
  /// Operations the kernel still owns (including receives waiting for buffers).
  @Uint32()
  external int ops_in_flight;

  /// Open sockets (listeners, streams, datagram sockets) and files.
  @Uint32()
  external int sockets_open;

  /// Buffers held by the host or by in-flight sends.
  @Uint32()
  external int buffers_outstanding;

  /// Completions ready to drain without entering the kernel.
  @Uint32()
  external int completions_ready;

  /// Drains that found the completion queue full and completions parked in the
  /// kernel's overflow list (0 in a steady state: the queue is sized for the load).
  @Uint32()
  external int completion_overflows;

  /// Receive buffers the receive ring has grown to (see `recv_buffer_count`).
  @Uint32()
  external int recv_ring_buffers;

  /// Pieces of receive buffers held by the host or by in-flight sends.
  @Uint32()
  external int pieces_outstanding;

  /// 1 when stream receives are packed into shared buffers, else 0.
  @Uint32()
  external int packs_receives;
}

/// Part of one pool buffer, for `iot_file_readv`/`iot_file_writev`.
final class iot_buffer_slice extends Struct {
  /// A buffer the host owns.
  @Uint32()
  external int buffer_id;

  /// Where the slice starts in the buffer.
  @Uint32()
  external int offset;

  /// Its length; `offset + len` must fit the buffer.
  @Uint32()
  external int len;
}

/// What `iot_file_stat`/`iot_path_stat` report. Times are since the Unix
/// epoch.
final class iot_file_info extends Struct {
  /// Length in bytes.
  @Uint64()
  external int size;

  /// Bytes of storage allocated (`st_blocks * 512`).
  @Uint64()
  external int allocated;

  @Int64()
  external int accessed_sec;

  @Int64()
  external int modified_sec;

  /// Last status change (metadata or data).
  @Int64()
  external int changed_sec;

  @Uint32()
  external int accessed_nsec;

  @Uint32()
  external int modified_nsec;

  @Uint32()
  external int changed_nsec;

  /// File type and permission bits, as `st_mode`.
  @Uint32()
  external int mode;
}

/// An established TLS session, as `iot_tls_get_info` reports it.
final class iot_tls_info extends Struct {
  /// 0x0303 for TLS 1.2, 0x0304 for TLS 1.3.
  @Uint16()
  external int protocol_version;

  /// The IANA number of the cipher suite.
  @Uint16()
  external int cipher_suite;

  /// `IOT_TLS_INFO_*` bits.
  @Uint32()
  external int flags;
}

// ---------------------------------------------------------------- functions

/// Every function of the C ABI. Each is looked up, and its call stub made, at
/// its first use: a program pays for the functions it calls (77 made at load
/// cost a JIT VM about 1 MiB). A library without one of them still fails at
/// load time, not mid-run.
final class Bindings {
  /// Checks that [_lib] has every function of the header; each is looked up
  /// (and its trampoline made) at its first use.
  Bindings(this._lib) {
    for (final symbol in _symbols) {
      if (!_lib.providesSymbol(symbol)) {
        throw ArgumentError('Failed to lookup symbol \'$symbol\'');
      }
    }
  }

  final DynamicLibrary _lib;

  static const List<String> _symbols = [
    'iot_worker_buffers',
    'iot_buffer_acquire',
    'iot_buffer_release',
    'iot_buffer_acquire_span',
    'iot_error_message',
    'iot_tcp_listen',
    'iot_tcp_accept',
    'iot_tcp_connect',
    'iot_tcp_connect_from',
    'iot_recv',
    'iot_send',
    'iot_socket_shutdown',
    'iot_socket_close',
    'iot_socket_address',
    'iot_config_default',
    'iot_worker_new',
    'iot_worker_free',
    'iot_worker_flush',
    'iot_worker_drain',
    'iot_worker_wait',
    'iot_worker_set_notifier',
    'iot_worker_set_notifier_port',
    'iot_worker_finalize',
    'iot_worker_arm',
    'iot_worker_arm_if_idle',
    'iot_worker_stats',
    'iot_cancel',
    'iot_messaging_supported',
    'iot_message_send',
    'iot_message_send_payload',
    'iot_socket_handoff',
    'iot_worker_stop',
    'iot_payload_pool_configure',
    'iot_payload_pool',
    'iot_payloads_in_use',
    'iot_payload_acquire',
    'iot_payload_release',
    'iot_transport_request_stop',
    'iot_worker_least_loaded',
    'iot_accept',
    'iot_socket_set_option',
    'iot_socket_get_option',
    'iot_socket_set_raw_option',
    'iot_socket_get_raw_option',
    'iot_socket_dropped',
    'iot_udp_bind',
    'iot_udp_connect',
    'iot_udp_send_to',
    'iot_udp_join_multicast',
    'iot_udp_leave_multicast',
    'iot_unix_listen',
    'iot_unix_connect',
    'iot_unix_datagram_bind',
    'iot_unix_send_to',
    'iot_datagram_recv',
    'iot_datagram_sender',
    'iot_file_open',
    'iot_file_read',
    'iot_file_write',
    'iot_file_readv',
    'iot_file_writev',
    'iot_file_read_stream',
    'iot_file_sync',
    'iot_file_allocate',
    'iot_file_truncate',
    'iot_file_stat',
    'iot_path_stat',
    'iot_file_close',
    'iot_tls_config_new',
    'iot_tls_config_free',
    'iot_tls_accept',
    'iot_tls_connect',
    'iot_tls_get_info',
    'iot_tls_alpn',
    'iot_tls_server_name',
    'iot_tls_peer_certificate',
    'iot_tls_error_text',
  ];

  late final int Function(int worker, Pointer<Pointer<Uint8>> outBase,
      Pointer<Uint32> outSize, Pointer<Uint32> outCount)
      iot_worker_buffers = _lib.lookupFunction<
          Int32 Function(Uint64, Pointer<Pointer<Uint8>>, Pointer<Uint32>,
              Pointer<Uint32>),
          int Function(int, Pointer<Pointer<Uint8>>, Pointer<Uint32>,
              Pointer<Uint32>)>('iot_worker_buffers', isLeaf: true);
  late final int Function(int worker, Pointer<Uint32> outId)
      iot_buffer_acquire = _lib.lookupFunction<
          Int32 Function(Uint64, Pointer<Uint32>),
          int Function(int, Pointer<Uint32>)>('iot_buffer_acquire',
          isLeaf: true);
  late final int Function(int worker, int id, int offset)
      iot_buffer_release = _lib.lookupFunction<
          Int32 Function(Uint64, Uint32, Uint32),
          int Function(int, int, int)>('iot_buffer_release', isLeaf: true);

  /// A span of consecutive pool buffers holding at least `len` bytes (a large
  /// datagram to send): its head id in `outId`. `-EMSGSIZE` past a span,
  /// `-ENOBUFS` when every free span is in use.
  late final int Function(int worker, int len, Pointer<Uint32> outId)
      iot_buffer_acquire_span = _lib.lookupFunction<
          Int32 Function(Uint64, Uint32, Pointer<Uint32>),
          int Function(int, int, Pointer<Uint32>)>('iot_buffer_acquire_span',
          isLeaf: true);
  late final int Function(int code, Pointer<Utf8> buf, int len)
      iot_error_message = _lib.lookupFunction<
          Size Function(Int32, Pointer<Utf8>, Size),
          int Function(int, Pointer<Utf8>, int)>('iot_error_message',
          isLeaf: true);
  late final int Function(int worker, Pointer<Utf8> ip, int port, int backlog,
      int flags, Pointer<Uint64> outSocket)
      iot_tcp_listen = _lib.lookupFunction<
          Int32 Function(
              Uint64, Pointer<Utf8>, Uint16, Uint32, Uint32, Pointer<Uint64>),
          int Function(int, Pointer<Utf8>, int, int, int,
              Pointer<Uint64>)>('iot_tcp_listen', isLeaf: true);
  late final int Function(
          int worker, int listener, int tag, int flags, int timeoutMs)
      iot_tcp_accept = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint64, Uint32, Uint32),
          int Function(int, int, int, int, int)>('iot_tcp_accept',
          isLeaf: true);
  late final int Function(
          int worker, Pointer<Utf8> ip, int port, int tag, int timeoutMs)
      iot_tcp_connect = _lib.lookupFunction<
          Int32 Function(Uint64, Pointer<Utf8>, Uint16, Uint64, Uint32),
          int Function(int, Pointer<Utf8>, int, int, int)>('iot_tcp_connect',
          isLeaf: true);
  late final int Function(int worker, Pointer<Utf8> ip, int port,
      Pointer<Utf8> sourceIp, int sourcePort, int tag, int timeoutMs)
      iot_tcp_connect_from = _lib.lookupFunction<
          Int32 Function(Uint64, Pointer<Utf8>, Uint16, Pointer<Utf8>, Uint16,
              Uint64, Uint32),
          int Function(int, Pointer<Utf8>, int, Pointer<Utf8>, int, int,
              int)>('iot_tcp_connect_from', isLeaf: true);
  late final int Function(
          int worker, int socket, int tag, int flags, int timeoutMs)
      iot_recv = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint64, Uint32, Uint32),
          int Function(int, int, int, int, int)>('iot_recv', isLeaf: true);
  late final int Function(int worker, int socket, int bufferId, int offset,
      int len, int tag, int timeoutMs)
      iot_send = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Uint32, Uint32, Uint32, Uint64, Uint32),
          int Function(
              int, int, int, int, int, int, int)>('iot_send', isLeaf: true);
  late final int Function(int worker, int socket, int how, int tag)
      iot_socket_shutdown = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Int32, Uint64),
          int Function(int, int, int, int)>('iot_socket_shutdown',
          isLeaf: true);
  late final int Function(int worker, int socket)
      iot_socket_close = _lib.lookupFunction<Int32 Function(Uint64, Uint64),
          int Function(int, int)>('iot_socket_close', isLeaf: true);
  late final int Function(int worker, int socket, int which, Pointer<Utf8> buf,
      int len, Pointer<Uint16> outPort)
      iot_socket_address = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Uint32, Pointer<Utf8>, Size, Pointer<Uint16>),
          int Function(int, int, int, Pointer<Utf8>, int,
              Pointer<Uint16>)>('iot_socket_address', isLeaf: true);
  late final int Function(Pointer<iot_config> out)
      iot_config_default = _lib.lookupFunction<
          Int32 Function(Pointer<iot_config>),
          int Function(Pointer<iot_config>)>('iot_config_default',
          isLeaf: true);
  late final int Function(Pointer<iot_config> config, Pointer<Uint64> outWorker)
      iot_worker_new = _lib.lookupFunction<
          Int32 Function(Pointer<iot_config>, Pointer<Uint64>),
          int Function(Pointer<iot_config>, Pointer<Uint64>)>(
          'iot_worker_new',
          isLeaf: true);

  /// Blocks (bounded, 5 s) while the worker's operations are reaped.
  late final int Function(int worker)
      iot_worker_free = _lib.lookupFunction<Int32 Function(Uint64),
          int Function(int)>('iot_worker_free', isLeaf: false);
  late final int Function(int worker)
      iot_worker_flush = _lib.lookupFunction<Int32 Function(Uint64),
          int Function(int)>('iot_worker_flush', isLeaf: true);
  late final int Function(int worker, Pointer<iot_completion> out, int capacity)
      iot_worker_drain = _lib.lookupFunction<
          Int32 Function(Uint64, Pointer<iot_completion>, Uint32),
          int Function(int, Pointer<iot_completion>, int)>(
          'iot_worker_drain',
          isLeaf: true);

  /// Blocks: for hosts that own a thread. Never called from an isolate's event
  /// loop; bound only so the bindings mirror the whole header.
  late final int Function(int worker, int timeoutMs)
      iot_worker_wait = _lib.lookupFunction<Int32 Function(Uint64, Uint32),
          int Function(int, int)>('iot_worker_wait', isLeaf: false);

  /// May join the notifier thread.
  late final int Function(int worker, iot_notify_fn callback)
      iot_worker_set_notifier = _lib.lookupFunction<
          Int32 Function(Uint64, iot_notify_fn),
          int Function(int, iot_notify_fn)>('iot_worker_set_notifier',
          isLeaf: false);

  /// May join the notifier thread. A NULL `post` removes the notifier.
  late final int Function(int worker, iot_post_fn post, int port)
      iot_worker_set_notifier_port = _lib.lookupFunction<
          Int32 Function(Uint64, iot_post_fn, Int64),
          int Function(int, iot_post_fn, int)>(
          'iot_worker_set_notifier_port',
          isLeaf: false);

  /// Non-blocking free for a [NativeFinalizer] (see [workerFinalizer]); the
  /// package never calls it directly.
  late final void Function(Pointer<Void> token)
      iot_worker_finalize = _lib.lookupFunction<Void Function(Pointer<Void>),
          void Function(Pointer<Void>)>('iot_worker_finalize', isLeaf: true);
  late final int Function(int worker)
      iot_worker_arm = _lib.lookupFunction<Int32 Function(Uint64),
          int Function(int)>('iot_worker_arm', isLeaf: true);
  late final int Function(int worker)
      iot_worker_arm_if_idle = _lib.lookupFunction<Int32 Function(Uint64),
          int Function(int)>('iot_worker_arm_if_idle', isLeaf: true);
  late final int Function(int worker, Pointer<iot_stats> out)
      iot_worker_stats = _lib.lookupFunction<
          Int32 Function(Uint64, Pointer<iot_stats>),
          int Function(int, Pointer<iot_stats>)>('iot_worker_stats',
          isLeaf: true);
  late final int Function(int worker, int tag)
      iot_cancel = _lib.lookupFunction<Int32 Function(Uint64, Uint64),
          int Function(int, int)>('iot_cancel', isLeaf: true);

  // Messaging between workers (IORING_OP_MSG_RING).
  late final int Function()
      iot_messaging_supported = _lib.lookupFunction<Int32 Function(),
          int Function()>('iot_messaging_supported', isLeaf: true);
  late final int Function(int worker, int target, int tag, int value)
      iot_message_send = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint64, Uint32),
          int Function(int, int, int, int)>('iot_message_send',
          isLeaf: true);
  late final int Function(int worker, int target, int tag, int payload, int len)
      iot_message_send_payload = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint64, Uint64, Uint32),
          int Function(int, int, int, int, int)>('iot_message_send_payload',
          isLeaf: true);
  late final int Function(int worker, int socket, int target, int tag)
      iot_socket_handoff = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint64, Uint64),
          int Function(int, int, int, int)>('iot_socket_handoff',
          isLeaf: true);
  late final int Function(int worker)
      iot_worker_stop = _lib.lookupFunction<Int32 Function(Uint64),
          int Function(int)>('iot_worker_stop', isLeaf: true);
  late final int Function(int size, int count)
      iot_payload_pool_configure = _lib.lookupFunction<
          Int32 Function(Uint32, Uint32),
          int Function(int, int)>('iot_payload_pool_configure',
          isLeaf: true);
  late final int Function(Pointer<Pointer<Uint8>> outBase,
      Pointer<Uint32> outSize, Pointer<Uint32> outCount)
      iot_payload_pool = _lib.lookupFunction<
          Int32 Function(
              Pointer<Pointer<Uint8>>, Pointer<Uint32>, Pointer<Uint32>),
          int Function(Pointer<Pointer<Uint8>>, Pointer<Uint32>,
              Pointer<Uint32>)>('iot_payload_pool', isLeaf: true);
  late final int Function()
      iot_payloads_in_use = _lib.lookupFunction<Int32 Function(),
          int Function()>('iot_payloads_in_use', isLeaf: true);
  late final int Function(int worker, Pointer<Uint64> outPayload)
      iot_payload_acquire = _lib.lookupFunction<
          Int32 Function(Uint64, Pointer<Uint64>),
          int Function(int, Pointer<Uint64>)>('iot_payload_acquire',
          isLeaf: true);
  late final int Function(int worker, int payload)
      iot_payload_release = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64),
          int Function(int, int)>('iot_payload_release', isLeaf: true);

  /// Waits for the kernel to post one message per worker.
  late final int Function(int value)
      iot_transport_request_stop = _lib.lookupFunction<Int32 Function(Uint32),
          int Function(int)>('iot_transport_request_stop', isLeaf: false);
  late final int Function(
          Pointer<Uint64> candidates, int count, Pointer<Uint64> outWorker)
      iot_worker_least_loaded = _lib.lookupFunction<
          Int32 Function(Pointer<Uint64>, Uint32, Pointer<Uint64>),
          int Function(Pointer<Uint64>, int,
              Pointer<Uint64>)>('iot_worker_least_loaded', isLeaf: true);

  // Datagrams, files, Unix sockets and socket options (issue #3).
  late final int Function(
      int worker, int listener, int tag, int flags, int timeoutMs)
      iot_accept = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint64, Uint32, Uint32),
          int Function(int, int, int, int, int)>('iot_accept',
          isLeaf: true);
  late final int Function(int worker, int socket, int option, int value)
      iot_socket_set_option = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint32, Uint32),
          int Function(int, int, int, int)>('iot_socket_set_option',
          isLeaf: true);
  late final int Function(
      int worker, int socket, int option, Pointer<Uint32> outValue)
      iot_socket_get_option = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint32, Pointer<Uint32>),
          int Function(
              int, int, int, Pointer<Uint32>)>(
          'iot_socket_get_option',
          isLeaf: true);
  late final int Function(int worker, int socket, int level, int option,
      Pointer<Uint8> value, int len)
      iot_socket_set_raw_option = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Int32, Int32, Pointer<Uint8>, Uint32),
          int Function(int, int, int, int, Pointer<Uint8>,
              int)>('iot_socket_set_raw_option', isLeaf: true);
  late final int Function(int worker, int socket, int level, int option,
      Pointer<Uint8> out, Pointer<Uint32> inoutLen)
      iot_socket_get_raw_option = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Int32, Int32, Pointer<Uint8>, Pointer<Uint32>),
          int Function(int, int, int, int, Pointer<Uint8>,
              Pointer<Uint32>)>('iot_socket_get_raw_option', isLeaf: true);
  late final int Function(int worker, int socket, Pointer<Uint32> outCount)
      iot_socket_dropped = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Pointer<Uint32>),
          int Function(int, int, Pointer<Uint32>)>('iot_socket_dropped',
          isLeaf: true);
  late final int Function(
      int worker, Pointer<Utf8> ip, int port, int flags,
      Pointer<Uint64> outSocket)
      iot_udp_bind = _lib.lookupFunction<
          Int32 Function(
              Uint64, Pointer<Utf8>, Uint16, Uint32, Pointer<Uint64>),
          int Function(
              int, Pointer<Utf8>, int, int, Pointer<Uint64>)>(
          'iot_udp_bind',
          isLeaf: true);
  late final int Function(int worker, int socket, Pointer<Utf8> ip, int port)
      iot_udp_connect = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Pointer<Utf8>, Uint16),
          int Function(int, int, Pointer<Utf8>, int)>('iot_udp_connect',
          isLeaf: true);
  late final int Function(
      int worker, int socket, int bufferId, int offset, int len,
      Pointer<Utf8> ip, int port, int tag, int timeoutMs)
      iot_udp_send_to = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Uint32, Uint32, Uint32, Pointer<Utf8>, Uint16,
              Uint64, Uint32),
          int Function(
              int, int, int, int, int, Pointer<Utf8>, int, int, int)>(
          'iot_udp_send_to',
          isLeaf: true);
  late final int Function(
      int worker, int socket, Pointer<Utf8> group, int interfaceIndex)
      iot_udp_join_multicast = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Pointer<Utf8>, Uint32),
          int Function(
              int, int, Pointer<Utf8>, int)>(
          'iot_udp_join_multicast',
          isLeaf: true);
  late final int Function(
      int worker, int socket, Pointer<Utf8> group, int interfaceIndex)
      iot_udp_leave_multicast = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Pointer<Utf8>, Uint32),
          int Function(
              int, int, Pointer<Utf8>, int)>(
          'iot_udp_leave_multicast',
          isLeaf: true);
  late final int Function(
      int worker, Pointer<Utf8> path, int backlog, int flags,
      Pointer<Uint64> outSocket)
      iot_unix_listen = _lib.lookupFunction<
          Int32 Function(
              Uint64, Pointer<Utf8>, Uint32, Uint32, Pointer<Uint64>),
          int Function(
              int, Pointer<Utf8>, int, int, Pointer<Uint64>)>(
          'iot_unix_listen',
          isLeaf: true);
  late final int Function(
          int worker, Pointer<Utf8> path, int tag, int timeoutMs)
      iot_unix_connect = _lib.lookupFunction<
          Int32 Function(Uint64, Pointer<Utf8>, Uint64, Uint32),
          int Function(int, Pointer<Utf8>, int, int)>('iot_unix_connect',
          isLeaf: true);
  late final int Function(
      int worker, Pointer<Utf8> path, int flags, Pointer<Uint64> outSocket)
      iot_unix_datagram_bind = _lib.lookupFunction<
          Int32 Function(Uint64, Pointer<Utf8>, Uint32, Pointer<Uint64>),
          int Function(
              int, Pointer<Utf8>, int, Pointer<Uint64>)>(
          'iot_unix_datagram_bind',
          isLeaf: true);
  late final int Function(
      int worker, int socket, int bufferId, int offset, int len,
      Pointer<Utf8> path, int tag, int timeoutMs)
      iot_unix_send_to = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Uint32, Uint32, Uint32, Pointer<Utf8>, Uint64,
              Uint32),
          int Function(
              int, int, int, int, int, Pointer<Utf8>, int, int)>(
          'iot_unix_send_to',
          isLeaf: true);
  late final int Function(
          int worker, int socket, int tag, int flags, int timeoutMs)
      iot_datagram_recv = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint64, Uint32, Uint32),
          int Function(int, int, int, int, int)>('iot_datagram_recv',
          isLeaf: true);
  late final int Function(
      int worker, int bufferId, Pointer<Utf8> buf, int len,
      Pointer<Uint16> outPort)
      iot_datagram_sender = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint32, Pointer<Utf8>, Size, Pointer<Uint16>),
          int Function(
              int, int, Pointer<Utf8>, int, Pointer<Uint16>)>(
          'iot_datagram_sender',
          isLeaf: true);
  late final int Function(
      int worker, Pointer<Utf8> path, int flags, int mode, int tag,
      int timeoutMs)
      iot_file_open = _lib.lookupFunction<
          Int32 Function(
              Uint64, Pointer<Utf8>, Uint32, Uint32, Uint64, Uint32),
          int Function(
              int, Pointer<Utf8>, int, int, int, int)>(
          'iot_file_open',
          isLeaf: true);
  late final int Function(
      int worker, int file, int bufferId, int offset, int len, int fileOffset,
      int tag, int timeoutMs)
      iot_file_read = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Uint32, Uint32, Uint32, Uint64, Uint64, Uint32),
          int Function(
              int, int, int, int, int, int, int, int)>(
          'iot_file_read',
          isLeaf: true);
  late final int Function(
      int worker, int file, int bufferId, int offset, int len, int fileOffset,
      int tag, int timeoutMs)
      iot_file_write = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Uint32, Uint32, Uint32, Uint64, Uint64, Uint32),
          int Function(
              int, int, int, int, int, int, int, int)>(
          'iot_file_write',
          isLeaf: true);
  late final int Function(
      int worker, int file, Pointer<iot_buffer_slice> slices, int count,
      int fileOffset, int tag, int timeoutMs)
      iot_file_readv = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Pointer<iot_buffer_slice>, Uint32, Uint64,
              Uint64, Uint32),
          int Function(
              int, int, Pointer<iot_buffer_slice>, int, int, int, int)>(
          'iot_file_readv',
          isLeaf: true);
  late final int Function(
      int worker, int file, Pointer<iot_buffer_slice> slices, int count,
      int fileOffset, int tag, int timeoutMs)
      iot_file_writev = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Pointer<iot_buffer_slice>, Uint32, Uint64,
              Uint64, Uint32),
          int Function(
              int, int, Pointer<iot_buffer_slice>, int, int, int, int)>(
          'iot_file_writev',
          isLeaf: true);
  late final int Function(
      int worker, int file, int fileOffset, int window, int tag, int timeoutMs)
      iot_file_read_stream = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint64, Uint32, Uint64, Uint32),
          int Function(int, int, int, int, int, int)>('iot_file_read_stream',
          isLeaf: true);
  late final int Function(
          int worker, int file, int flags, int tag, int timeoutMs)
      iot_file_sync = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint32, Uint64, Uint32),
          int Function(int, int, int, int, int)>('iot_file_sync',
          isLeaf: true);
  late final int Function(
      int worker, int file, int mode, int offset, int len, int tag,
      int timeoutMs)
      iot_file_allocate = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Uint32, Uint64, Uint64, Uint64, Uint32),
          int Function(
              int, int, int, int, int, int, int)>(
          'iot_file_allocate',
          isLeaf: true);
  late final int Function(int worker, int file, int len, int tag, int timeoutMs)
      iot_file_truncate = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint64, Uint64, Uint32),
          int Function(int, int, int, int, int)>('iot_file_truncate',
          isLeaf: true);
  late final int Function(
      int worker, int file, Pointer<iot_file_info> out, int tag, int timeoutMs)
      iot_file_stat = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Pointer<iot_file_info>, Uint64, Uint32),
          int Function(
              int, int, Pointer<iot_file_info>, int, int)>(
          'iot_file_stat',
          isLeaf: true);
  late final int Function(
      int worker, Pointer<Utf8> path, Pointer<iot_file_info> out, int tag,
      int timeoutMs)
      iot_path_stat = _lib.lookupFunction<
          Int32 Function(
              Uint64, Pointer<Utf8>, Pointer<iot_file_info>, Uint64, Uint32),
          int Function(
              int, Pointer<Utf8>, Pointer<iot_file_info>, int, int)>(
          'iot_path_stat',
          isLeaf: true);
  late final int Function(int worker, int file)
      iot_file_close = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64),
          int Function(int, int)>('iot_file_close',
          isLeaf: true);

  // TLS (issue #13).
  late final int Function(
      int flags,
      Pointer<Uint8> certificatePem,
      int certificateLen,
      Pointer<Uint8> privateKeyPem,
      int privateKeyLen,
      Pointer<Uint8> trustedPem,
      int trustedLen,
      Pointer<Uint8> alpn,
      int alpnLen,
      Pointer<Uint64> outConfig,
      Pointer<Utf8> errorText,
      int errorLen)
      iot_tls_config_new = _lib.lookupFunction<
          Int32 Function(
              Uint32,
              Pointer<Uint8>,
              Uint32,
              Pointer<Uint8>,
              Uint32,
              Pointer<Uint8>,
              Uint32,
              Pointer<Uint8>,
              Uint32,
              Pointer<Uint64>,
              Pointer<Utf8>,
              Size),
          int Function(
              int,
              Pointer<Uint8>,
              int,
              Pointer<Uint8>,
              int,
              Pointer<Uint8>,
              int,
              Pointer<Uint8>,
              int,
              Pointer<Uint64>,
              Pointer<Utf8>,
              int)>('iot_tls_config_new', isLeaf: true);
  late final int Function(int config)
      iot_tls_config_free = _lib.lookupFunction<Int32 Function(Uint64),
          int Function(int)>('iot_tls_config_free', isLeaf: true);
  late final int Function(
          int worker, int socket, int config, int tag, int timeoutMs)
      iot_tls_accept = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Uint64, Uint64, Uint32),
          int Function(int, int, int, int, int)>('iot_tls_accept',
          isLeaf: true);
  late final int Function(int worker, int socket, int config,
      Pointer<Utf8> serverName, int tag, int timeoutMs)
      iot_tls_connect = _lib.lookupFunction<
          Int32 Function(
              Uint64, Uint64, Uint64, Pointer<Utf8>, Uint64, Uint32),
          int Function(int, int, int, Pointer<Utf8>, int, int)>(
          'iot_tls_connect',
          isLeaf: true);
  late final int Function(int worker, int socket, Pointer<iot_tls_info> out)
      iot_tls_get_info = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Pointer<iot_tls_info>),
          int Function(int, int, Pointer<iot_tls_info>)>('iot_tls_get_info',
          isLeaf: true);
  late final int Function(int worker, int socket, Pointer<Utf8> buf, int len)
      iot_tls_alpn = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Pointer<Utf8>, Size),
          int Function(int, int, Pointer<Utf8>, int)>('iot_tls_alpn',
          isLeaf: true);
  late final int Function(int worker, int socket, Pointer<Utf8> buf, int len)
      iot_tls_server_name = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Pointer<Utf8>, Size),
          int Function(int, int, Pointer<Utf8>, int)>('iot_tls_server_name',
          isLeaf: true);
  late final int Function(int worker, int socket, Pointer<Utf8> buf, int len)
      iot_tls_peer_certificate = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Pointer<Utf8>, Size),
          int Function(int, int, Pointer<Utf8>, int)>(
          'iot_tls_peer_certificate',
          isLeaf: true);
  late final int Function(int worker, int socket, Pointer<Utf8> buf, int len)
      iot_tls_error_text = _lib.lookupFunction<
          Int32 Function(Uint64, Uint64, Pointer<Utf8>, Size),
          int Function(int, int, Pointer<Utf8>, int)>('iot_tls_error_text',
          isLeaf: true);

  /// `iot_worker_finalize`, a real `void (*)(void *token)`, as the
  /// [NativeFinalizer] callback of a worker nobody closed: the token is the
  /// worker id as a pointer (`Pointer<Void>.fromAddress(id)`). It does not
  /// block (the worker is reaped on a native background thread), so it is
  /// safe to run during garbage collection on any thread. `Worker.close`
  /// detaches it and calls [iot_worker_free] itself.
  late final Pointer<NativeFinalizerFunction> workerFinalizer =
      _lib.lookup<NativeFinalizerFunction>('iot_worker_finalize');
}
