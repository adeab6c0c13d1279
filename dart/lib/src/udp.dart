/// UDP sockets: datagrams to and from IP addresses, a default peer
/// (connected UDP), broadcast and multicast.
library;

import 'dart:async';
import 'dart:io' show InternetAddress, InternetAddressType, NetworkInterface;
import 'dart:typed_data';

import 'address.dart';
import 'datagram.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/socket_handles.dart';
import 'futures.dart';
import 'ip_bind.dart';
import 'worker.dart';
import 'worker_core.dart';

/// One received UDP datagram.
///
/// Datagrams up to the protocol maximum (65,507 bytes over IPv4, 65,527
/// over IPv6) arrive whole, as with dart:io: one larger than a native
/// buffer arrives in a span of consecutive buffers. Unlike dart:io's
/// `Datagram`, it says whether the datagram was [truncated], which happens
/// only on a worker whose buffers are too small to make spans of
/// (`WorkerConfig.bufferSize` under 2,053 bytes): a datagram then arrives in
/// one buffer, whose first 144 bytes hold the sender's address, so at most
/// `Worker.bufferSize - 144` bytes of it are kept; the rest is discarded by
/// the kernel and flagged here, never dropped silently.
final class UdpDatagram {
  const UdpDatagram(this.data, this.address, this.port,
      {this.truncated = false});

  /// The payload (a copy; the native buffer went back to the pool).
  final Uint8List data;

  /// The sender's address.
  final InternetAddress address;

  /// The sender's port.
  final int port;

  /// Whether the datagram was longer than the worker could take and [data]
  /// holds only its first bytes.
  final bool truncated;

  @override
  String toString() => 'UdpDatagram(${data.length} bytes from '
      '${address.address}:$port${truncated ? ', truncated' : ''})';
}

/// A UDP socket: a single-subscription stream of received [UdpDatagram]s,
/// and [send] (or [write], once [connect]ed) for outgoing datagrams.
///
/// **Receiving.** Listening starts receiving (one multishot receive stays
/// armed, or with a [readTimeout] one one-shot receive at a time). Pausing
/// the subscription cancels the receive: datagrams then wait in the
/// kernel's receive queue, and what overflows it is dropped by the kernel
/// and counted in [dropped]. On loopback nothing else loses a datagram. An
/// ICMP error from a connected peer (a refused port) arrives as an error
/// event and receiving goes on; other errors (a [readTimeout]) end the
/// stream after the error event.
///
/// **Sending.** Each [send] copies its bytes into one native send buffer
/// (or, past `Worker.bufferSize` bytes, into a span of consecutive buffers,
/// up to the protocol maximum) and completes when the kernel took the
/// datagram. When every send buffer (or span) is in flight, sends wait for
/// one, in call order. An ignored send future never causes an uncaught
/// error.
///
/// **Closing.** [close] closes at once: sends in flight fail with a
/// [TransportClosedException] and the stream ends.
final class UdpSocket extends Stream<UdpDatagram> {
  UdpSocket._(WorkerCore core, SocketHandle socket, this.address, this.port) {
    _channel = DatagramChannel<UdpDatagram>(core, socket, _datagram);
  }

  /// Binds a UDP socket to [address] (a `String` or an [InternetAddress]; a
  /// name is looked up and its first address used) and [port] (0 picks a
  /// free one, see [port]).
  ///
  /// [reuseAddress] sets `SO_REUSEADDR` (several multicast receivers on one
  /// port), on by default as in dart:io's `RawDatagramSocket.bind`;
  /// [reusePort] `SO_REUSEPORT` (sockets in several isolates share the port
  /// and the kernel spreads datagrams among them). For an IPv6 address,
  /// [v6Only] refuses IPv4 traffic.
  static Future<UdpSocket> bind(Object address, int port,
      {bool reuseAddress = true,
      bool reusePort = false,
      bool v6Only = false,
      Worker? worker}) async {
    var flags = 0;
    if (reuseAddress) flags |= IOT_BIND_REUSEADDR;
    if (reusePort) flags |= IOT_LISTEN_REUSEPORT;
    if (v6Only) flags |= IOT_LISTEN_V6ONLY;
    final bound = await bindIp(
        address,
        port,
        worker,
        (core, ip) => core.handle.udpBind(ip, port, flags));
    return UdpSocket._(bound.core, bound.socket, bound.address, bound.port);
  }

  late final DatagramChannel<UdpDatagram> _channel;

  /// The address the socket is bound to.
  final InternetAddress address;

  /// The port the socket is bound to (the chosen one when bound to 0).
  final int port;

  InternetAddress? _remoteAddress;
  int? _remotePort;

  /// The last sender, reused while datagrams keep coming from it.
  String? _lastSenderText;
  InternetAddress? _lastSender;

  /// Whether [close] was called (or the worker was closed).
  bool get isClosed => _channel.isClosed;

  /// The default peer set by [connect], or null.
  InternetAddress? get remoteAddress => _remoteAddress;

  /// The port of the default peer set by [connect], or null.
  int? get remotePort => _remotePort;

  /// Bounds each wait for a datagram (null: no limit). Set it before
  /// listening. When it expires, the stream gets a
  /// [TransportTimeoutException] and ends.
  Duration? get readTimeout => _channel.readTimeout;

  set readTimeout(Duration? value) => _channel.readTimeout = value;

  UdpDatagram _datagram(Uint8List data, int bufferId, bool truncated) {
    final from = _channel.sender(bufferId);
    var sender = _lastSender;
    if (sender == null || from.address != _lastSenderText) {
      sender = InternetAddress(from.address);
      _lastSender = sender;
      _lastSenderText = from.address;
    }
    return UdpDatagram(data, sender, from.port, truncated: truncated);
  }

  @override
  StreamSubscription<UdpDatagram> listen(
          void Function(UdpDatagram datagram)? onData,
          {Function? onError,
          void Function()? onDone,
          bool? cancelOnError}) =>
      _channel.stream.listen(onData,
          onError: onError, onDone: onDone, cancelOnError: cancelOnError);

  /// Sends [data] as one datagram to [address] (numeric, IPv4 or IPv6) and
  /// [port]; completes when the kernel took it.
  ///
  /// [data] is read when a send buffer is free: do not modify it until the
  /// future completes. A datagram over the protocol maximum (65,507 bytes
  /// to an IPv4 address, 65,527 to an IPv6 one) fails with errno 90
  /// (`EMSGSIZE`), as in dart:io, and so does one over `Worker.bufferSize`
  /// on a worker whose buffers are too small to make spans of (under 2,053
  /// bytes). [timeout] bounds the wait for room in the socket's send queue.
  Future<void> send(List<int> data, InternetAddress address, int port,
      {Duration? timeout}) {
    RangeError.checkValueInInterval(port, 1, 65535, 'port');
    _checkIp(address, 'address');
    final tooLarge = _overMaximum(data.length, address);
    if (tooLarge != null) return failedFuture(tooLarge);
    return _channel.send(data, _UdpTarget(address.address, port), timeout);
  }

  /// Gives the socket a default peer: [write] sends there, and only the
  /// peer's datagrams arrive. [host] is a `String` or an [InternetAddress]
  /// (a name is looked up and its first address used). Nothing goes on the
  /// wire; an unreachable peer shows as an error event on the stream after a
  /// [write].
  Future<void> connect(Object host, int port) async {
    RangeError.checkValueInInterval(port, 1, 65535, 'port');
    final addresses = await resolveHost(host, 'connect');
    final core = _channel.core;
    if (isClosed) throw closedError('connect', 'socket');
    final ip = addresses.first;
    final rc =
        _channel.socket.connectUdp(core.scratchText(ip.address), port);
    if (rc < 0) throw core.error(rc, 'connect');
    _remoteAddress = ip;
    _remotePort = port;
  }

  /// Sends [data] as one datagram to the peer given to [connect]; as
  /// [send] otherwise. Throws a [StateError] before [connect].
  Future<void> write(List<int> data, {Duration? timeout}) {
    final peer = _remoteAddress;
    if (peer == null) {
      throw StateError('the socket has no default peer (connect first)');
    }
    final tooLarge = _overMaximum(data.length, peer);
    if (tooLarge != null) return failedFuture(tooLarge);
    return _channel.send(data, const _Connected(), timeout);
  }

  // ------------------------------------------------------------ options

  /// Whether datagrams may go to broadcast addresses (`SO_BROADCAST`).
  bool get broadcastEnabled =>
      _channel.getOption(IOT_OPTION_BROADCAST, 'broadcastEnabled') != 0;

  set broadcastEnabled(bool value) => _channel.setOption(
      IOT_OPTION_BROADCAST, value ? 1 : 0, 'broadcastEnabled');

  /// Whether multicast this socket sends is delivered to this host too
  /// (`IP_MULTICAST_LOOP`/`IPV6_MULTICAST_LOOP`).
  bool get multicastLoopback =>
      _channel.getOption(IOT_OPTION_MULTICAST_LOOP, 'multicastLoopback') != 0;

  set multicastLoopback(bool value) => _channel.setOption(
      IOT_OPTION_MULTICAST_LOOP, value ? 1 : 0, 'multicastLoopback');

  /// The hop limit (time to live) of outgoing multicast, 0..255
  /// (`IP_MULTICAST_TTL`/`IPV6_MULTICAST_HOPS`).
  int get multicastHops =>
      _channel.getOption(IOT_OPTION_MULTICAST_HOPS, 'multicastHops');

  set multicastHops(int value) {
    RangeError.checkValueInInterval(value, 0, 255, 'multicastHops');
    _channel.setOption(IOT_OPTION_MULTICAST_HOPS, value, 'multicastHops');
  }

  /// Sends outgoing multicast through [interface] (null: the kernel's choice
  /// by route).
  void setMulticastInterface(NetworkInterface? interface) =>
      _channel.setOption(IOT_OPTION_MULTICAST_INTERFACE, interface?.index ?? 0,
          'multicastInterface');

  /// The kernel's receive queue size in bytes (`SO_RCVBUF`; reading gives
  /// the kernel's doubled value, and the kernel caps what may be set).
  int get receiveBufferSize =>
      _channel.getOption(IOT_OPTION_RECV_BUFFER, 'receiveBufferSize');

  set receiveBufferSize(int value) =>
      _channel.setOption(IOT_OPTION_RECV_BUFFER, value, 'receiveBufferSize');

  /// The kernel's send queue size in bytes (`SO_SNDBUF`, as
  /// [receiveBufferSize]).
  int get sendBufferSize =>
      _channel.getOption(IOT_OPTION_SEND_BUFFER, 'sendBufferSize');

  set sendBufferSize(int value) =>
      _channel.setOption(IOT_OPTION_SEND_BUFFER, value, 'sendBufferSize');

  /// Joins multicast [group] on [interface] (null: the kernel's choice by
  /// route): datagrams sent to the group and this socket's port then
  /// arrive like any other.
  void joinMulticast(InternetAddress group, [NetworkInterface? interface]) =>
      _membership(group, interface, join: true);

  /// Leaves a multicast group joined with [joinMulticast].
  void leaveMulticast(InternetAddress group, [NetworkInterface? interface]) =>
      _membership(group, interface, join: false);

  void _membership(InternetAddress group, NetworkInterface? interface,
      {required bool join}) {
    _checkIp(group, 'group');
    final operation = join ? 'joinMulticast' : 'leaveMulticast';
    if (isClosed) throw closedError(operation, 'socket');
    final core = _channel.core;
    final text = core.scratchText(group.address);
    final index = interface?.index ?? 0;
    final rc = _channel.socket.multicast(join, text, index);
    if (rc < 0) throw core.error(rc, operation);
  }

  /// How many datagrams the kernel dropped because this socket's receive
  /// queue was full (since it was created).
  int get dropped => _channel.dropped;

  /// Closes the socket at once: sends in flight fail with a
  /// [TransportClosedException], the stream of datagrams ends. Idempotent.
  Future<void> close() {
    _channel.close();
    return Future<void>.value();
  }

  @override
  String toString() => 'UdpSocket(${address.address}:$port)';
}

/// The largest UDP payload: 65,535 bytes less the UDP header (8) and, over
/// IPv4, the IP header (20).
const int _maxUdpIPv4 = 65507;
const int _maxUdpIPv6 = 65527;

/// The error for a datagram of [length] bytes to [to] over the protocol
/// maximum, or null. (The kernel would refuse it too, after a span was
/// filled.)
TransportException? _overMaximum(int length, InternetAddress to) {
  final (max, family) = to.type == InternetAddressType.IPv6
      ? (_maxUdpIPv6, 'IPv6')
      : (_maxUdpIPv4, 'IPv4');
  if (length <= max) return null;
  return datagramTooLarge(length, 'UDP over $family ($max bytes)');
}

void _checkIp(InternetAddress address, String name) {
  if (address.type != InternetAddressType.IPv4 &&
      address.type != InternetAddressType.IPv6) {
    throw ArgumentError.value(address, name, 'not an IPv4 or IPv6 address');
  }
}

/// A datagram to an address.
final class _UdpTarget implements DatagramTarget {
  const _UdpTarget(this.ip, this.port);

  final String ip;
  final int port;

  @override
  int submit(WorkerCore core, SocketHandle socket, int bufferId, int length,
          int tag, int timeoutMs) =>
      socket.sendToIp(
          bufferId, 0, length, core.scratchText(ip), port, tag, timeoutMs);
}

/// A datagram to the default peer.
final class _Connected implements DatagramTarget {
  const _Connected();

  @override
  int submit(WorkerCore core, SocketHandle socket, int bufferId, int length,
          int tag, int timeoutMs) =>
      socket.send(bufferId, 0, length, tag, timeoutMs);
}
