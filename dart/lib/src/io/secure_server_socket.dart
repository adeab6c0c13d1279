/// [IoUringSecureServerSocket]: a dart:io [ServerSocket] serving TLS, whose
/// connections are accepted, secured and served by the isolate's io_uring
/// worker.
library;

import 'dart:async';
import 'dart:io';

import '../exception.dart';
import '../stream_connection.dart';
import '../tcp.dart';
import '../tls/secure_listener.dart';
import '../tls/tls_context.dart';
import '../tls/tls_exception.dart';
import '../unix.dart';
import '../worker.dart';
import 'secure_socket.dart';

/// A listening TCP or Unix stream socket serving TLS with dart:io's
/// [ServerSocket] semantics: a stream of [IoUringSecureSocket]s (each a
/// [SecureSocket]), delivered once their handshake succeeded.
///
/// It goes wherever a [ServerSocket] goes; in particular
/// `HttpServer.listenOn(await IoUringSecureServerSocket.bind('0.0.0.0',
/// 8443, context))` serves HTTPS (requests see the `https` scheme and the
/// client's certificate). dart:io's own `SecureServerSocket` cannot be
/// subclassed or implemented (it has no public constructor), so this class
/// is a [ServerSocket] whose sockets are [SecureSocket]s.
///
/// As with dart:io's `SecureServerSocket`, a failed handshake is an error
/// event ([IoUringHandshakeException], a [HandshakeException]) and the
/// stream goes on (subscribe with `cancelOnError: false`, the default);
/// `HttpServer` ignores those.
final class IoUringSecureServerSocket extends Stream<Socket>
    implements ServerSocket {
  IoUringSecureServerSocket._(this._listener) {
    _controller = StreamController<Socket>(
        onListen: _start,
        onPause: () => _accepting?.pause(),
        onResume: () => _accepting?.resume(),
        onCancel: close);
  }

  /// Binds to [address] and [port] as `IoUringServerSocket.bind` does
  /// (a Unix socket address too, [port] ignored) and serves TLS with
  /// [context] (a `TlsContext.server`: certificate, key, client
  /// authentication, ALPN, versions). [handshakeTimeout] (default 30 s)
  /// bounds each client's handshake. Fails with a [SocketException].
  static Future<IoUringSecureServerSocket> bind(
      Object address, int port, TlsContext context,
      {int backlog = 0,
      bool v6Only = false,
      bool shared = false,
      Duration? handshakeTimeout,
      Worker? worker}) async {
    final given = address is InternetAddress
        ? address
        : address is String
            ? InternetAddress.tryParse(address)
            : null;
    try {
      final SecureListener<StreamConnection> listener;
      if (given != null && given.type == InternetAddressType.unix) {
        listener = await UnixListener.bindSecure(given.address, context,
            backlog: backlog, handshakeTimeout: handshakeTimeout,
            worker: worker);
      } else {
        listener = await TcpListener.bindSecure(address, port, context,
            backlog: backlog,
            v6Only: v6Only,
            reusePort: shared,
            handshakeTimeout: handshakeTimeout,
            worker: worker);
      }
      return IoUringSecureServerSocket._(listener);
    } on TransportException catch (error) {
      throw secureSocketError(error, address: given, port: port);
    }
  }

  final SecureListener<StreamConnection> _listener;
  late final StreamController<Socket> _controller;
  StreamSubscription<StreamConnection>? _accepting;
  StreamSubscription<TlsHandshakeException>? _failures;

  /// The secure listener underneath (its `handshakeErrors`,
  /// `failedHandshakes`, `pendingHandshakes`).
  SecureListener<StreamConnection> get listener => _listener;

  @override
  InternetAddress get address => _listener.address;

  /// The port listened on (0 for a Unix socket).
  @override
  int get port => _listener.port;

  @override
  StreamSubscription<Socket> listen(void Function(Socket socket)? onData,
          {Function? onError, void Function()? onDone, bool? cancelOnError}) =>
      _controller.stream.listen(onData,
          onError: onError, onDone: onDone, cancelOnError: cancelOnError);

  void _start() {
    _failures = _listener.handshakeErrors.listen((error) {
      if (!_controller.isClosed) {
        _controller.addError(IoUringHandshakeException(error));
      }
    });
    _accepting = _listener.listen(
        (connection) =>
            _controller.add(acceptedSecureSocket(connection, address, port)),
        onError: (Object error) => _controller
            .addError(secureSocketError(error, address: address, port: port)),
        onDone: () {
          _accepting = null;
          unawaited(_failures?.cancel());
          unawaited(_controller.close());
        });
  }

  /// Stops listening; accepted sockets stay open, handshakes in progress
  /// are dropped.
  @override
  Future<ServerSocket> close() async {
    await _listener.close();
    await _failures?.cancel();
    if (!_controller.isClosed) unawaited(_controller.close());
    return this;
  }

  @override
  String toString() => 'IoUringSecureServerSocket(${address.address}:$port)';
}
