/// [SocketHandle]: one socket of a worker and every native call on it, plus
/// the calls that make sockets (listen, bind, connect).
library;

import 'dart:ffi';
import 'dart:typed_data';

import 'package:ffi/ffi.dart';

import 'bindings.dart';
import 'resource_handle.dart';
import 'worker_handle.dart';

/// Owns one socket handle of a worker (`iot_tcp_listen`, an accepted or
/// connected socket .. `iot_socket_close`).
final class SocketHandle extends ResourceHandle {
  SocketHandle(WorkerHandle worker, int id) : super(worker, id, _close);

  static int _close(WorkerHandle worker, int id) =>
      worker.bindings.iot_socket_close(worker.id, id);

  // ------------------------------------------------------------ streams

  /// Accepts connections (multishot with `IOT_OP_MULTISHOT`).
  int accept(int tag, int flags, int timeoutMs) =>
      bindings.iot_accept(worker.id, id, tag, flags, timeoutMs);

  /// Receives into the worker's receive buffers.
  int recv(int tag, int flags, int timeoutMs) =>
      bindings.iot_recv(worker.id, id, tag, flags, timeoutMs);

  /// Sends [length] bytes of buffer [bufferId] from [offset].
  int send(int bufferId, int offset, int length, int tag, int timeoutMs) =>
      bindings.iot_send(
          worker.id, id, bufferId, offset, length, tag, timeoutMs);

  /// Shuts down one or both directions ([how]: `IOT_SHUTDOWN_*`).
  int shutdown(int how, int tag) =>
      bindings.iot_socket_shutdown(worker.id, id, how, tag);

  // ------------------------------------------------------------ datagrams

  /// Receives datagrams (with their senders).
  int recvDatagram(int tag, int flags, int timeoutMs) =>
      bindings.iot_datagram_recv(worker.id, id, tag, flags, timeoutMs);

  /// Sends a datagram to [ip] (numeric, in the scratch text) and [port].
  int sendToIp(int bufferId, int offset, int length, Pointer<Utf8> ip,
          int port, int tag, int timeoutMs) =>
      bindings.iot_udp_send_to(
          worker.id, id, bufferId, offset, length, ip, port, tag, timeoutMs);

  /// Sends a datagram to the Unix socket at [path].
  int sendToPath(int bufferId, int offset, int length, Pointer<Utf8> path,
          int tag, int timeoutMs) =>
      bindings.iot_unix_send_to(
          worker.id, id, bufferId, offset, length, path, tag, timeoutMs);

  /// Connects a UDP socket to [ip] and [port].
  int connectUdp(Pointer<Utf8> ip, int port) =>
      bindings.iot_udp_connect(worker.id, id, ip, port);

  /// Joins ([join]) or leaves a multicast [group] on interface [index].
  int multicast(bool join, Pointer<Utf8> group, int index) => join
      ? bindings.iot_udp_join_multicast(worker.id, id, group, index)
      : bindings.iot_udp_leave_multicast(worker.id, id, group, index);

  /// Datagrams dropped for want of buffers, into `scratch.value`.
  int dropped() {
    if (worker.isFreed) return IOT_E_BAD_HANDLE;
    return bindings.iot_socket_dropped(worker.id, id, worker.scratch.value);
  }

  // ------------------------------------------------------------ options

  /// Option [option] (`IOT_OPT_*`) into `scratch.value`.
  int getOption(int option) {
    if (worker.isFreed) return IOT_E_BAD_HANDLE;
    return bindings.iot_socket_get_option(
        worker.id, id, option, worker.scratch.value);
  }

  /// Sets option [option] (`IOT_OPT_*`) to [value].
  int setOption(int option, int value) =>
      bindings.iot_socket_set_option(worker.id, id, option, value);

  /// `setsockopt` of [option] at [level] with [value] (at most
  /// `scratch.capacity` bytes).
  int setRawOption(int level, int option, Uint8List value) {
    if (worker.isFreed) return IOT_E_BAD_HANDLE;
    final scratch = worker.scratch;
    scratch.putBytes(value);
    return bindings.iot_socket_set_raw_option(
        worker.id, id, level, option, scratch.bytes, value.length);
  }

  /// `getsockopt` of [option] at [level] with room for `into.length` bytes
  /// (at most `scratch.capacity`): the bytes the kernel wrote are copied to
  /// the start of [into]; returns how many, or a negative native result.
  int getRawOption(int level, int option, Uint8List into) {
    if (worker.isFreed) return IOT_E_BAD_HANDLE;
    final scratch = worker.scratch;
    scratch.value.value = into.length;
    final rc = bindings.iot_socket_get_raw_option(
        worker.id, id, level, option, scratch.bytes, scratch.value);
    if (rc < 0) return rc;
    final written = scratch.value.value;
    scratch.takeBytes(into, written);
    return written;
  }

  /// The local ([which] `IOT_ADDRESS_LOCAL`) or peer (`IOT_ADDRESS_PEER`)
  /// address: its text's full length (the text is in the scratch, see
  /// `NativeScratch.read`) and the port in `scratch.port`.
  int address(int which) {
    if (worker.isFreed) return IOT_E_BAD_HANDLE;
    final scratch = worker.scratch;
    return bindings.iot_socket_address(
        worker.id, id, which, scratch.text, scratch.capacity, scratch.port);
  }

  // ------------------------------------------------------------ hand-off

  /// Hands the socket over to worker [target] (its handle goes stale here).
  int handOff(int target, int tag) =>
      bindings.iot_socket_handoff(worker.id, id, target, tag);
}

/// The calls that make a worker's sockets. Listens and binds leave the new
/// socket's id in `scratch.u64`; connects complete with it.
extension SocketCalls on WorkerHandle {
  int tcpListen(Pointer<Utf8> ip, int port, int backlog, int flags) =>
      bindings.iot_tcp_listen(id, ip, port, backlog, flags, scratch.u64);

  int tcpConnect(Pointer<Utf8> ip, int port, Pointer<Utf8> sourceIp,
          int sourcePort, int tag, int timeoutMs) =>
      bindings.iot_tcp_connect_from(
          id, ip, port, sourceIp, sourcePort, tag, timeoutMs);

  int udpBind(Pointer<Utf8> ip, int port, int flags) =>
      bindings.iot_udp_bind(id, ip, port, flags, scratch.u64);

  int unixListen(Pointer<Utf8> path, int backlog, int flags) =>
      bindings.iot_unix_listen(id, path, backlog, flags, scratch.u64);

  int unixConnect(Pointer<Utf8> path, int tag, int timeoutMs) =>
      bindings.iot_unix_connect(id, path, tag, timeoutMs);

  int unixDatagramBind(Pointer<Utf8> path, int flags) =>
      bindings.iot_unix_datagram_bind(id, path, flags, scratch.u64);

  /// The sender of the datagram in buffer [bufferId]: its text's full length
  /// (the text is in the scratch) and the port in `scratch.port`.
  int datagramSender(int bufferId) => bindings.iot_datagram_sender(
      id, bufferId, scratch.text, scratch.capacity, scratch.port);
}
