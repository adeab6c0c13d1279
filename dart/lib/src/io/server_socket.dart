/// [IoUringServerSocket]: a dart:io [ServerSocket] whose connections are
/// accepted and served by the isolate's io_uring worker.
library;

import 'dart:async';
import 'dart:io';

import '../exception.dart';
import '../tcp.dart';
import '../worker.dart';
import 'socket.dart';
import 'socket_exception.dart';

/// A listening TCP socket with dart:io's [ServerSocket] semantics: a stream
/// of [IoUringSocket]s. It goes wherever a [ServerSocket] goes, for example
/// `HttpServer.listenOn(await IoUringServerSocket.bind('127.0.0.1', 8080))`.
final class IoUringServerSocket extends Stream<Socket> implements ServerSocket {
  IoUringServerSocket._(this._listener);

  /// Binds to [address] (a `String` or an [InternetAddress]) and [port] (0
  /// picks a free one), like [ServerSocket.bind]. [backlog] 0 is the system
  /// maximum; [v6Only] refuses IPv4 connections on an IPv6 address;
  /// [shared] lets listeners of other isolates bind the same port (the
  /// kernel spreads connections, `SO_REUSEPORT`). Fails with a
  /// [SocketException].
  static Future<IoUringServerSocket> bind(Object address, int port,
      {int backlog = 0,
      bool v6Only = false,
      bool shared = false,
      Worker? worker}) async {
    try {
      return IoUringServerSocket._(await TcpListener.bind(address, port,
          backlog: backlog, v6Only: v6Only, reusePort: shared, worker: worker));
    } on TransportException catch (error) {
      throw socketError(error,
          address: address is InternetAddress ? address : null, port: port);
    }
  }

  final TcpListener _listener;

  @override
  InternetAddress get address => _listener.address;

  @override
  int get port => _listener.port;

  @override
  StreamSubscription<Socket> listen(void Function(Socket socket)? onData,
          {Function? onError, void Function()? onDone, bool? cancelOnError}) =>
      _listener
          .map<Socket>(IoUringSocket.fromTcp)
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
