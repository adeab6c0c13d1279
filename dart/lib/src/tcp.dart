/// TCP: listeners that yield connections, and connections that are a stream
/// of received bytes plus an ordered, back-pressured writer (the machinery
/// TCP and Unix stream sockets share is in `stream_connection.dart`).
library;

import 'dart:ffi' show nullptr;
import 'dart:io' show InternetAddress, InternetAddressType;

import 'address.dart';
import 'connect_task.dart';
import 'connection_listener.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/socket_handles.dart';
import 'futures.dart';
import 'ip_bind.dart';
import 'single_op.dart';
import 'stream_connect.dart';
import 'stream_connection.dart';
import 'timeouts.dart';
import 'tls/secure_listener.dart';
import 'tls/tls_context.dart';
import 'tls/tls_session.dart';
import 'worker.dart';
import 'worker_core.dart';

/// A listening TCP socket: a single-subscription stream of accepted
/// [TcpConnection]s.
///
/// Accepting starts when the stream is listened to (one multishot accept
/// stays armed). Pausing the subscription stops accepting, so new
/// connections wait in the kernel's backlog; resuming accepts again.
/// Cancelling the subscription closes the listener. Accept errors (such as
/// running out of file descriptors) are reported as error events and
/// accepting goes on.
final class TcpListener extends ConnectionListener<TcpConnection> {
  TcpListener._(WorkerCore core, SocketHandle socket, this.address, this.port)
      : super.internal(
            core, socket, (accepted) => TcpConnection._(core, accepted));

  /// Binds a listening socket to [address] (a `String` or an
  /// [InternetAddress]; a name is looked up and its first address used) and
  /// [port] (0 picks a free one, see [port]).
  ///
  /// [backlog] is the kernel's accept queue length (0: the system maximum).
  /// [reusePort] sets `SO_REUSEPORT`, so listeners in several isolates (each
  /// with its own worker) can bind the same port and the kernel spreads
  /// connections among them. For an IPv6 address, [v6Only] refuses IPv4
  /// connections (by default an IPv6 listener takes both).
  static Future<TcpListener> bind(Object address, int port,
      {int backlog = 0,
      bool reusePort = false,
      bool v6Only = false,
      Worker? worker}) async {
    RangeError.checkValueInInterval(backlog, 0, 0x7fffffff, 'backlog');
    var flags = 0;
    if (reusePort) flags |= IOT_LISTEN_REUSEPORT;
    if (v6Only) flags |= IOT_LISTEN_V6ONLY;
    final bound = await bindIp(
        address,
        port,
        worker,
        (core, ip) => core.handle.tcpListen(ip, port, backlog, flags));
    return TcpListener._(bound.core, bound.socket, bound.address, bound.port);
  }

  /// Binds a listening socket as [bind] does, serving TLS with the server
  /// configuration [context]: the returned [SecureListener] yields
  /// connections only once their handshake succeeded (see
  /// `TlsConnectionInfo.tlsSession`). A failed handshake closes that
  /// connection and is reported on [SecureListener.handshakeErrors]; it never
  /// ends the listener. [handshakeTimeout] (default 30 s) bounds each
  /// client's handshake.
  static Future<SecureListener<TcpConnection>> bindSecure(
      Object address, int port, TlsContext context,
      {Duration? handshakeTimeout,
      int backlog = 0,
      bool reusePort = false,
      bool v6Only = false,
      Worker? worker}) async {
    if (!context.isServer) {
      throw ArgumentError.value(
          context, 'context', 'not a server context (TlsContext.server)');
    }
    timeoutMillis(handshakeTimeout, 'handshakeTimeout');
    final listener = await bind(address, port,
        backlog: backlog, reusePort: reusePort, v6Only: v6Only, worker: worker);
    return SecureListener<TcpConnection>.internal(listener, context,
        address: listener.address,
        port: listener.port,
        handshakeTimeout: handshakeTimeout);
  }

  /// The address the listener is bound to.
  final InternetAddress address;

  /// The port the listener is bound to (the chosen one when bound to 0).
  final int port;

  @override
  String toString() => 'TcpListener(${address.address}:$port)';
}

/// A TCP connection: a single-subscription stream of received bytes, and an
/// ordered writer with back-pressure. Reading, writing and closing are those
/// of every [StreamConnection]; this class adds connecting by address and
/// the IP addresses of both ends.
final class TcpConnection extends StreamConnection {
  TcpConnection._(WorkerCore core, SocketHandle socket,
      {InternetAddress? remoteAddress, int? remotePort})
      : _remoteAddress = remoteAddress,
        _remotePort = remotePort,
        super.internal(core, socket);

  /// Connects to [host] (a `String` or an [InternetAddress]; a name is looked
  /// up and its addresses tried in turn) on [port].
  ///
  /// With a [timeout], a connection that is not established in time fails
  /// with a [TransportTimeoutException] (the timeout covers all addresses
  /// tried). A refused connection fails with a [TransportException] whose
  /// [TransportException.errno] is 111 (`ECONNREFUSED`).
  ///
  /// With [sourceAddress] (an [InternetAddress] or a numeric `String`) or
  /// [sourcePort], the socket is bound to that local address and port
  /// before connecting (port 0: any free one), as dart:io's
  /// `Socket.connect` does. A source the host does not have, or a port in
  /// use, fails with a [TransportException] (`EADDRNOTAVAIL`,
  /// `EADDRINUSE`).
  static Future<TcpConnection> connect(Object host, int port,
          {Object? sourceAddress,
          int sourcePort = 0,
          Duration? timeout,
          Worker? worker}) =>
      handledFuture(_connect(
          host, port, sourceAddress, sourcePort, timeout, worker, null));

  /// Connects as [connect] does, then runs a TLS client handshake with
  /// [context] (a `TlsContext.client`): completes with the connection once
  /// it is secured (its `tlsSession` says what was negotiated; reading and
  /// writing carry plaintext).
  ///
  /// [serverName] is the name sent to the server (SNI) and checked against
  /// its certificate; by default [host] itself (a name, or an IP address,
  /// which the certificate must then list). [timeout] bounds the connect
  /// and the handshake together. A failed handshake closes the connection
  /// and fails with a `TlsHandshakeException` saying why (an unknown
  /// certificate authority, a name mismatch, no common version, a timeout,
  /// ...); a failed connect fails as [connect] does.
  static Future<TcpConnection> connectSecure(
          Object host, int port, TlsContext context,
          {String? serverName,
          Object? sourceAddress,
          int sourcePort = 0,
          Duration? timeout,
          Worker? worker}) =>
      handledFuture(_connectSecure(host, port, context, serverName,
          sourceAddress, sourcePort, timeout, worker));

  static Future<TcpConnection> _connectSecure(
      Object host,
      int port,
      TlsContext context,
      String? serverName,
      Object? sourceAddress,
      int sourcePort,
      Duration? timeout,
      Worker? worker) async {
    final name = serverName ??
        switch (host) {
          InternetAddress() => host.host,
          String() => host,
          _ => throw ArgumentError.value(host, 'host'),
        };
    return connectSecured(context, name, timeout,
        () => _connect(host, port, sourceAddress, sourcePort, timeout, worker,
            null));
  }

  /// Starts connecting as [connect] does, and returns at once a task whose
  /// `socket` is the connection and whose `cancel` abandons the attempt
  /// (the connection then fails with a [TransportCancelledException]).
  static ConnectTask<TcpConnection> startConnect(Object host, int port,
      {Object? sourceAddress,
      int sourcePort = 0,
      Duration? timeout,
      Worker? worker}) {
    final cancellation = Cancellation();
    return ConnectTask.internal(
        handledFuture(_connect(host, port, sourceAddress, sourcePort, timeout,
            worker, cancellation)),
        cancellation);
  }

  static Future<TcpConnection> _connect(
      Object host,
      int port,
      Object? sourceAddress,
      int sourcePort,
      Duration? timeout,
      Worker? worker,
      Cancellation? cancellation) async {
    RangeError.checkValueInInterval(port, 1, 65535, 'port');
    RangeError.checkValueInInterval(sourcePort, 0, 65535, 'sourcePort');
    final source = _sourceIp(sourceAddress);
    timeoutMillis(timeout, 'timeout');
    final core = workerCore(worker ?? Worker.current);
    final watch = Stopwatch()..start();
    final addresses = await resolveHost(host, 'connect');
    TransportException? lastError;
    for (final address in addresses) {
      if (core.isClosed) throw closedError('connect', 'worker');
      if (cancellation?.isCancelled ?? false) {
        throw TransportCancelledException('cancelled', operation: 'connect');
      }
      var remaining = 0;
      if (timeout != null) {
        final left = timeout - watch.elapsed;
        if (left <= Duration.zero) {
          throw TransportTimeoutException(
              'timed out after ${timeout.inMilliseconds} ms',
              operation: 'connect',
              timeout: timeout);
        }
        remaining = timeoutMillis(left, 'timeout');
      }
      try {
        return await connectStream<TcpConnection>(
            core,
            timeout,
            (tag) => core.handle.tcpConnect(
                core.scratchText(address.address),
                port,
                source == null
                    ? nullptr
                    : core.scratchFor('connect').sourceIp(source),
                sourcePort,
                tag,
                remaining),
            (socket) => TcpConnection._(core, socket,
                remoteAddress: address, remotePort: port),
            cancellation: cancellation);
      } on TransportTimeoutException {
        rethrow;
      } on TransportClosedException {
        rethrow;
      } on TransportCancelledException {
        rethrow;
      } on TransportException catch (error) {
        lastError = error;
      }
    }
    throw lastError ??
        TransportException('no address to connect to', operation: 'connect');
  }

  /// The numeric source address of a connect, or null for any.
  static String? _sourceIp(Object? sourceAddress) {
    switch (sourceAddress) {
      case null:
        return null;
      case InternetAddress(
            type: InternetAddressType.IPv4 || InternetAddressType.IPv6
          ):
        return sourceAddress.address;
      case String() when InternetAddress.tryParse(sourceAddress) != null:
        return sourceAddress;
    }
    throw ArgumentError.value(sourceAddress, 'sourceAddress',
        'not an IP address (an InternetAddress or numeric String)');
  }

  InternetAddress? _remoteAddress;
  int? _remotePort;

  /// The peer's address.
  InternetAddress get remoteAddress {
    final cached = _remoteAddress;
    if (cached != null) return cached;
    final peer = connectionAddress(this, IOT_ADDRESS_PEER, 'remoteAddress');
    _remotePort = peer.port;
    return _remoteAddress = InternetAddress(peer.address);
  }

  /// The peer's port.
  int get remotePort {
    final cached = _remotePort;
    if (cached != null) return cached;
    final peer = connectionAddress(this, IOT_ADDRESS_PEER, 'remotePort');
    _remoteAddress ??= InternetAddress(peer.address);
    return _remotePort = peer.port;
  }

  /// The local address of the connection.
  InternetAddress get localAddress => InternetAddress(
      connectionAddress(this, IOT_ADDRESS_LOCAL, 'localAddress').address);

  /// The local port of the connection.
  int get localPort =>
      connectionAddress(this, IOT_ADDRESS_LOCAL, 'localPort').port;

  @override
  String toString() => 'TcpConnection(${connectionSocket(this).id})';
}

// ------------------------------------------------------------ hand-off
// For messages.dart (`TcpConnection.handOff`, `Worker.handedOffConnections`);
// not exported.

/// Wraps [socket], a connected stream that another worker handed over to
/// [core]'s worker, as a connection.
TcpConnection adoptTcpConnection(WorkerCore core, SocketHandle socket) =>
    TcpConnection._(core, socket);

/// The worker and socket of [connection], checked idle enough to hand over:
/// never read (neither listened to nor [TcpConnection.payloads] taken) and no
/// write queued or in flight. Returns null when it is closed; throws a
/// [StateError] when it is busy.
({WorkerCore core, SocketHandle socket})? tcpConnectionForHandOff(
    TcpConnection connection) {
  final core = connectionCore(connection);
  if (connection.isClosed || core.isClosed) return null;
  if (connectionWasRead(connection)) {
    throw StateError('a connection that was read cannot be handed off');
  }
  if (connectionHasPendingWrites(connection)) {
    throw StateError('a connection with writes pending cannot be handed off');
  }
  return (core: core, socket: connectionSocket(connection));
}

/// [connection]'s socket was handed over: its handle is stale here, so it is
/// forgotten (not closed) and the connection counts as destroyed.
void tcpConnectionHandedOff(TcpConnection connection) {
  connectionSocket(connection).forget();
  connection.destroy();
}
