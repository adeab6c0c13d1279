/// [SecureListener]: a listening stream socket (TCP or Unix) whose
/// connections arrive once their TLS handshake succeeded.
library;

import 'dart:async';
import 'dart:io' show InternetAddress;

import '../connection_listener.dart';
import '../stream_connection.dart';
import 'tls_context.dart';
import 'tls_exception.dart';
import 'tls_session.dart';

/// How long a listener waits by default for a client to finish its
/// handshake: a client that connects and stays silent is dropped then.
const Duration defaultHandshakeTimeout = Duration(seconds: 30);

/// A listening TCP or Unix stream socket serving TLS ([T] is `TcpConnection`
/// or `UnixConnection`): a single-subscription stream of connections whose
/// server handshake (with [context]) succeeded. Their `tlsSession` says what
/// was negotiated; reading and writing carry plaintext.
///
/// Each accepted connection's handshake runs on its own, so a slow or
/// hostile client holds up nobody else. A handshake that fails (an unknown
/// client certificate, a plaintext client, a version mismatch, a client
/// that stays silent beyond [handshakeTimeout]) closes that connection and
/// is reported on [handshakeErrors] as a [TlsHandshakeException]; it is not
/// an error of this stream, and accepting goes on. Accept errors (such as
/// running out of file descriptors) are error events, as for the plain
/// listener.
///
/// Pausing the subscription stops accepting (handshakes already running
/// finish, their connections are buffered). Cancelling it, or [close],
/// closes the listener and the connections still in their handshake.
final class SecureListener<T extends StreamConnection> extends Stream<T> {
  /// For the transport's own listeners (`TcpListener.bindSecure`,
  /// `UnixListener.bindSecure`).
  SecureListener.internal(ConnectionListener<T> listener, this.context,
      {required this.address, required this.port, Duration? handshakeTimeout})
      : _listener = listener,
        handshakeTimeout = handshakeTimeout ?? defaultHandshakeTimeout {
    if (!context.isServer) {
      throw ArgumentError.value(
          context, 'context', 'not a server context (TlsContext.server)');
    }
    _controller = StreamController<T>(
        onListen: _start,
        onPause: () => _accepting?.pause(),
        onResume: () => _accepting?.resume(),
        onCancel: close);
  }

  /// The plain listener underneath.
  final ConnectionListener<T> _listener;

  /// The server configuration every handshake uses.
  final TlsContext context;

  /// The address listened on (for a Unix socket, its path as an
  /// `InternetAddressType.unix` address).
  final InternetAddress address;

  /// The port listened on (the chosen one when bound to 0; 0 for Unix).
  final int port;

  /// Bounds each connection's handshake.
  final Duration handshakeTimeout;

  late final StreamController<T> _controller;
  final StreamController<TlsHandshakeException> _failures =
      StreamController<TlsHandshakeException>.broadcast(sync: true);
  StreamSubscription<T>? _accepting;
  final Set<T> _pending = <T>{};
  bool _listenerDone = false;
  bool _closed = false;
  int _failed = 0;

  /// Handshakes that failed (a broadcast stream: only failures while it is
  /// listened to are seen). Each failed connection was closed already.
  Stream<TlsHandshakeException> get handshakeErrors => _failures.stream;

  /// How many handshakes failed so far.
  int get failedHandshakes => _failed;

  /// Connections accepted whose handshake is still running.
  int get pendingHandshakes => _pending.length;

  /// Whether [close] was called (or the listener ended).
  bool get isClosed => _closed || _listener.isClosed;

  @override
  StreamSubscription<T> listen(void Function(T connection)? onData,
          {Function? onError, void Function()? onDone, bool? cancelOnError}) =>
      _controller.stream.listen(onData,
          onError: onError, onDone: onDone, cancelOnError: cancelOnError);

  void _start() {
    _accepting = _listener.listen(_accepted,
        onError: _controller.addError, onDone: () {
      _listenerDone = true;
      _accepting = null;
      _maybeDone();
    });
  }

  void _accepted(T connection) {
    if (_closed) {
      connection.destroy();
      return;
    }
    _pending.add(connection);
    secureStream<T>(connection, context,
            server: true, timeout: handshakeTimeout)
        .then((secured) {
      _pending.remove(secured);
      if (_closed || _controller.isClosed) {
        secured.destroy();
      } else {
        _controller.add(secured);
      }
      _maybeDone();
    }, onError: (Object error) {
      _pending.remove(connection);
      if (!_closed && error is TlsHandshakeException) {
        _failed++;
        _failures.add(error);
      }
      _maybeDone();
    });
  }

  void _maybeDone() {
    if (_listenerDone && _pending.isEmpty && !_controller.isClosed) {
      _closed = true;
      unawaited(_controller.close());
      unawaited(_failures.close());
    }
  }

  /// Stops listening and closes the socket, and the connections still in
  /// their handshake; the stream of connections ends. Connections already
  /// delivered stay open. Idempotent.
  Future<void> close() async {
    if (_closed) return;
    _closed = true;
    final accepting = _accepting;
    _accepting = null;
    await _listener.close();
    for (final connection in _pending.toList()) {
      connection.destroy();
    }
    _pending.clear();
    _listenerDone = true;
    if (!_controller.isClosed) unawaited(_controller.close());
    if (!_failures.isClosed) unawaited(_failures.close());
    await accepting?.cancel();
  }

  @override
  String toString() => 'SecureListener(${address.address}:$port)';
}
