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

/// The operation does not apply to this kind of socket.
const int IOT_E_WRONG_SOCKET_KIND = -5007;

/// The target worker of a message is unknown, freed, or stopped.
const int IOT_E_WORKER_GONE = -5020;

/// Shut down the receiving side.
const int IOT_SHUTDOWN_READ = 0;

/// Shut down the sending side (sends queued before it still go out first).
const int IOT_SHUTDOWN_WRITE = 1;

/// Shut down both sides.
const int IOT_SHUTDOWN_BOTH = 2;

// ---------------------------------------------------------------- structs

/// Worker configuration. Fill with `iot_config_default`, then adjust.
final class iot_config extends Struct {
  /// Submission queue entries; the completion queue gets four times as many.
  @Uint32()
  external int ring_entries;

  /// Buffers the kernel fills for receives (a provided buffer ring), 1..=32768.
  @Uint32()
  external int recv_buffer_count;

  /// Buffers the host acquires for sends, 0..=32768.
  @Uint32()
  external int send_buffer_count;

  /// Size of every buffer in bytes, 1..=16 MiB.
  @Uint32()
  external int buffer_size;

  /// Reserved, must be 0.
  @Uint32()
  external int flags;
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

/// Counters for leak checks and monitoring.
final class iot_stats extends Struct {
  /// Operations the kernel still owns (including receives waiting for buffers).
  @Uint32()
  external int ops_in_flight;

  /// Open sockets (listeners and streams).
  @Uint32()
  external int sockets_open;

  /// Buffers held by the host or by in-flight sends.
  @Uint32()
  external int buffers_outstanding;

  /// Completions ready to drain without entering the kernel.
  @Uint32()
  external int completions_ready;
}

// ---------------------------------------------------------------- functions

/// Every function of the C ABI, looked up once when the library is loaded
/// (a library without one of them fails at load time, not mid-run).
final class Bindings {
  Bindings(DynamicLibrary lib)
      : iot_worker_buffers = lib.lookupFunction<
            Int32 Function(Uint64, Pointer<Pointer<Uint8>>, Pointer<Uint32>,
                Pointer<Uint32>),
            int Function(int, Pointer<Pointer<Uint8>>, Pointer<Uint32>,
                Pointer<Uint32>)>('iot_worker_buffers', isLeaf: true),
        iot_buffer_acquire = lib.lookupFunction<
            Int32 Function(Uint64, Pointer<Uint32>),
            int Function(int, Pointer<Uint32>)>('iot_buffer_acquire',
            isLeaf: true),
        iot_buffer_release = lib.lookupFunction<Int32 Function(Uint64, Uint32),
            int Function(int, int)>('iot_buffer_release', isLeaf: true),
        iot_error_message = lib.lookupFunction<
            Size Function(Int32, Pointer<Utf8>, Size),
            int Function(int, Pointer<Utf8>, int)>('iot_error_message',
            isLeaf: true),
        iot_tcp_listen = lib.lookupFunction<
            Int32 Function(
                Uint64, Pointer<Utf8>, Uint16, Uint32, Uint32, Pointer<Uint64>),
            int Function(int, Pointer<Utf8>, int, int, int,
                Pointer<Uint64>)>('iot_tcp_listen', isLeaf: true),
        iot_tcp_accept = lib.lookupFunction<
            Int32 Function(Uint64, Uint64, Uint64, Uint32, Uint32),
            int Function(int, int, int, int, int)>('iot_tcp_accept',
            isLeaf: true),
        iot_tcp_connect = lib.lookupFunction<
            Int32 Function(Uint64, Pointer<Utf8>, Uint16, Uint64, Uint32),
            int Function(int, Pointer<Utf8>, int, int, int)>('iot_tcp_connect',
            isLeaf: true),
        iot_recv = lib.lookupFunction<
            Int32 Function(Uint64, Uint64, Uint64, Uint32, Uint32),
            int Function(int, int, int, int, int)>('iot_recv', isLeaf: true),
        iot_send = lib.lookupFunction<
            Int32 Function(Uint64, Uint64, Uint32, Uint32, Uint32, Uint64, Uint32),
            int Function(
                int, int, int, int, int, int, int)>('iot_send', isLeaf: true),
        iot_socket_shutdown = lib.lookupFunction<
            Int32 Function(Uint64, Uint64, Int32, Uint64),
            int Function(int, int, int, int)>('iot_socket_shutdown',
            isLeaf: true),
        iot_socket_close = lib.lookupFunction<Int32 Function(Uint64, Uint64),
            int Function(int, int)>('iot_socket_close', isLeaf: true),
        iot_socket_address = lib.lookupFunction<
            Int32 Function(
                Uint64, Uint64, Uint32, Pointer<Utf8>, Size, Pointer<Uint16>),
            int Function(int, int, int, Pointer<Utf8>, int,
                Pointer<Uint16>)>('iot_socket_address', isLeaf: true),
        iot_config_default = lib.lookupFunction<
            Int32 Function(Pointer<iot_config>),
            int Function(Pointer<iot_config>)>('iot_config_default',
            isLeaf: true),
        iot_worker_new = lib.lookupFunction<
            Int32 Function(Pointer<iot_config>, Pointer<Uint64>),
            int Function(Pointer<iot_config>, Pointer<Uint64>)>(
            'iot_worker_new',
            isLeaf: true),
        iot_worker_free = lib.lookupFunction<Int32 Function(Uint64),
            int Function(int)>('iot_worker_free', isLeaf: false),
        iot_worker_flush = lib.lookupFunction<Int32 Function(Uint64),
            int Function(int)>('iot_worker_flush', isLeaf: true),
        iot_worker_drain = lib.lookupFunction<
            Int32 Function(Uint64, Pointer<iot_completion>, Uint32),
            int Function(int, Pointer<iot_completion>, int)>(
            'iot_worker_drain',
            isLeaf: true),
        iot_worker_wait = lib.lookupFunction<Int32 Function(Uint64, Uint32),
            int Function(int, int)>('iot_worker_wait', isLeaf: false),
        iot_worker_set_notifier = lib.lookupFunction<
            Int32 Function(Uint64, iot_notify_fn),
            int Function(int, iot_notify_fn)>('iot_worker_set_notifier',
            isLeaf: false),
        iot_worker_arm = lib.lookupFunction<Int32 Function(Uint64),
            int Function(int)>('iot_worker_arm', isLeaf: true),
        iot_worker_stats = lib.lookupFunction<
            Int32 Function(Uint64, Pointer<iot_stats>),
            int Function(int, Pointer<iot_stats>)>('iot_worker_stats',
            isLeaf: true),
        iot_cancel = lib.lookupFunction<Int32 Function(Uint64, Uint64),
            int Function(int, int)>('iot_cancel', isLeaf: true),
        iot_messaging_supported = lib.lookupFunction<Int32 Function(),
            int Function()>('iot_messaging_supported', isLeaf: true),
        iot_message_send = lib.lookupFunction<
            Int32 Function(Uint64, Uint64, Uint64, Uint32),
            int Function(int, int, int, int)>('iot_message_send',
            isLeaf: true),
        iot_message_send_payload = lib.lookupFunction<
            Int32 Function(Uint64, Uint64, Uint64, Uint64, Uint32),
            int Function(int, int, int, int, int)>('iot_message_send_payload',
            isLeaf: true),
        iot_socket_handoff = lib.lookupFunction<
            Int32 Function(Uint64, Uint64, Uint64, Uint64),
            int Function(int, int, int, int)>('iot_socket_handoff',
            isLeaf: true),
        iot_worker_stop = lib.lookupFunction<Int32 Function(Uint64),
            int Function(int)>('iot_worker_stop', isLeaf: true),
        iot_payload_pool_configure = lib.lookupFunction<
            Int32 Function(Uint32, Uint32),
            int Function(int, int)>('iot_payload_pool_configure',
            isLeaf: true),
        iot_payload_pool = lib.lookupFunction<
            Int32 Function(
                Pointer<Pointer<Uint8>>, Pointer<Uint32>, Pointer<Uint32>),
            int Function(Pointer<Pointer<Uint8>>, Pointer<Uint32>,
                Pointer<Uint32>)>('iot_payload_pool', isLeaf: true),
        iot_payloads_in_use = lib.lookupFunction<Int32 Function(),
            int Function()>('iot_payloads_in_use', isLeaf: true),
        iot_payload_acquire = lib.lookupFunction<
            Int32 Function(Uint64, Pointer<Uint64>),
            int Function(int, Pointer<Uint64>)>('iot_payload_acquire',
            isLeaf: true),
        iot_payload_release = lib.lookupFunction<
            Int32 Function(Uint64, Uint64),
            int Function(int, int)>('iot_payload_release', isLeaf: true),
        iot_transport_request_stop = lib.lookupFunction<Int32 Function(Uint32),
            int Function(int)>('iot_transport_request_stop', isLeaf: false),
        iot_worker_least_loaded = lib.lookupFunction<
            Int32 Function(Pointer<Uint64>, Uint32, Pointer<Uint64>),
            int Function(Pointer<Uint64>, int,
                Pointer<Uint64>)>('iot_worker_least_loaded', isLeaf: true),
        workerFreeFinalizer = lib
            .lookup<NativeFunction<Int32 Function(Uint64)>>('iot_worker_free')
            .cast<NativeFinalizerFunction>();

  final int Function(int worker, Pointer<Pointer<Uint8>> outBase,
      Pointer<Uint32> outSize, Pointer<Uint32> outCount) iot_worker_buffers;
  final int Function(int worker, Pointer<Uint32> outId) iot_buffer_acquire;
  final int Function(int worker, int id) iot_buffer_release;
  final int Function(int code, Pointer<Utf8> buf, int len) iot_error_message;
  final int Function(int worker, Pointer<Utf8> ip, int port, int backlog,
      int flags, Pointer<Uint64> outSocket) iot_tcp_listen;
  final int Function(
          int worker, int listener, int tag, int flags, int timeoutMs)
      iot_tcp_accept;
  final int Function(
          int worker, Pointer<Utf8> ip, int port, int tag, int timeoutMs)
      iot_tcp_connect;
  final int Function(int worker, int socket, int tag, int flags, int timeoutMs)
      iot_recv;
  final int Function(int worker, int socket, int bufferId, int offset, int len,
      int tag, int timeoutMs) iot_send;
  final int Function(int worker, int socket, int how, int tag)
      iot_socket_shutdown;
  final int Function(int worker, int socket) iot_socket_close;
  final int Function(int worker, int socket, int which, Pointer<Utf8> buf,
      int len, Pointer<Uint16> outPort) iot_socket_address;
  final int Function(Pointer<iot_config> out) iot_config_default;
  final int Function(Pointer<iot_config> config, Pointer<Uint64> outWorker)
      iot_worker_new;

  /// Blocks (bounded, 5 s) while the worker's operations are reaped.
  final int Function(int worker) iot_worker_free;
  final int Function(int worker) iot_worker_flush;
  final int Function(int worker, Pointer<iot_completion> out, int capacity)
      iot_worker_drain;

  /// Blocks: for hosts that own a thread. Never called from an isolate's event
  /// loop; bound only so the bindings mirror the whole header.
  final int Function(int worker, int timeoutMs) iot_worker_wait;

  /// May join the notifier thread.
  final int Function(int worker, iot_notify_fn callback)
      iot_worker_set_notifier;
  final int Function(int worker) iot_worker_arm;
  final int Function(int worker, Pointer<iot_stats> out) iot_worker_stats;
  final int Function(int worker, int tag) iot_cancel;

  // Messaging between workers (IORING_OP_MSG_RING).
  final int Function() iot_messaging_supported;
  final int Function(int worker, int target, int tag, int value)
      iot_message_send;
  final int Function(int worker, int target, int tag, int payload, int len)
      iot_message_send_payload;
  final int Function(int worker, int socket, int target, int tag)
      iot_socket_handoff;
  final int Function(int worker) iot_worker_stop;
  final int Function(int size, int count) iot_payload_pool_configure;
  final int Function(Pointer<Pointer<Uint8>> outBase, Pointer<Uint32> outSize,
      Pointer<Uint32> outCount) iot_payload_pool;
  final int Function() iot_payloads_in_use;
  final int Function(int worker, Pointer<Uint64> outPayload)
      iot_payload_acquire;
  final int Function(int worker, int payload) iot_payload_release;

  /// Waits for the kernel to post one message per worker.
  final int Function(int value) iot_transport_request_stop;
  final int Function(
          Pointer<Uint64> candidates, int count, Pointer<Uint64> outWorker)
      iot_worker_least_loaded;

  /// `iot_worker_free` as a [NativeFinalizer] callback (`void (*)(void *)`).
  ///
  /// The finalizer passes the worker id as the token pointer. This relies on
  /// the 64-bit Linux calling conventions (x86-64 System V, AArch64, RISC-V
  /// LP64): a `uint64_t` and a pointer travel in the same first argument
  /// register, and the `int32_t` result is simply ignored by a caller that
  /// expects `void`. It is only the safety net for a worker that was never
  /// closed; `Worker.close` detaches it and calls [iot_worker_free] itself.
  final Pointer<NativeFinalizerFunction> workerFreeFinalizer;
}
