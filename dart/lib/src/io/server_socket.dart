/// [IoUringServerSocket]: a dart:io [ServerSocket] whose connections are
/// accepted and served by the isolate's io_uring worker.
library;

import 'dart:async';
import 'dart:io';

import '../connection_listener.dart';
import '../exception.dart';
import '../stream_connection.dart';
import '../tcp.dart';
import '../unix.dart';
import '../worker.dart';
import 'socket.dart';
import 'socket_exception.dart';

/// A listening TCP or Unix stream socket with dart:io's [ServerSocket]
/// semantics: a stream of [IoUringSocket]s. It goes wherever a
/// [ServerSocket] goes, for example
/// `HttpServer.listenOn(await IoUringServerSocket.bind('127.0.0.1', 8080))`.
final class IoUringServerSocket extends Stream<Socket> implements ServerSocket {
  IoUringServerSocket._(this._listener, this.address, this.port);

  /// Binds to [address] and [port] (0 picks a free one), like
  /// [ServerSocket.bind]: [address] is a `String`, an [InternetAddress], or
  /// a Unix socket address (`InternetAddress(path, type:
  /// InternetAddressType.unix)`, [port] ignored; the socket file is removed
  /// by [close]). [backlog] 0 is the system maximum; [v6Only] refuses IPv4
  /// connections on an IPv6 address; [shared] lets TCP listeners of other
  /// isolates bind the same port (the kernel spreads connections,
  /// `SO_REUSEPORT`). Fails with a [SocketException].
  static Future<IoUringServerSocket> bind(Object address, int port,
      {int backlog = 0,
      bool v6Only = false,
      bool shared = false,
      Worker? worker}) async {
    final given = address is InternetAddress
        ? address
        : address is String
            ? InternetAddress.tryParse(address)
            : null;
    try {
      if (given != null && given.type == InternetAddressType.unix) {
        final listener = await UnixListener.bind(given.address,
            backlog: backlog, worker: worker);
        return IoUringServerSocket._(listener, given, 0);
      }
      final listener = await TcpListener.bind(address, port,
          backlog: backlog, v6Only: v6Only, reusePort: shared, worker: worker);
      return IoUringServerSocket._(listener, listener.address, listener.port);
    } on TransportException catch (error) {
      throw socketError(error, address: given, port: port);
    }
  }

  final ConnectionListener<StreamConnection> _listener;

  @override
  final InternetAddress address;

  /// The port listened on (0 for a Unix socket).
  @override
  final int port;

  @override
  StreamSubscription<Socket> listen(void Function(Socket socket)? onData,
          {Function? onError, void Function()? onDone, bool? cancelOnError}) =>
      _listener
          .map<Socket>(
              (connection) => acceptedSocket(connection, address, port))
          .handleError((Object error) =>
              throw socketError(error, address: address, port: port))
          .listen(onData,
              onError: onError, onDone: onDone, cancelOnError: cancelOnError);

  /// Stops listening; accepted sockets stay open.
  @override
  Future<ServerSocket> close() async {
    await _listener.close();
    return this;
  }

  @override
  String toString() => 'IoUringServerSocket(${address.address}:$port)';
}
