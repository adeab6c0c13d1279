/// [TlsSession]: what a secured connection negotiated, and [secureStream],
/// the TLS handshake on a connected stream socket (TCP or Unix).
library;

import 'dart:async';
import 'dart:convert';
import 'dart:io' show InternetAddress;
import 'dart:typed_data';

import '../exception.dart';
import '../ffi/bindings.dart';
import '../ffi/tls_handles.dart';
import '../futures.dart';
import '../stream_connection.dart';
import '../timeouts.dart';
import '../worker_core.dart';
import 'tls_context.dart';
import 'tls_exception.dart';

/// What the TLS handshake of a secured connection settled on, read once
/// when it succeeded (so still known after the connection is closed).
final class TlsSession {
  TlsSession._(
      {required this.isServer,
      required this.protocolVersion,
      required this.cipherSuite,
      required this.alpnProtocol,
      required this.serverName,
      required this.peerCertificate,
      required this.isResumed});

  /// Whether this side is the server.
  final bool isServer;

  /// The protocol version's number: `0x0303` for TLS 1.2, `0x0304` for
  /// TLS 1.3.
  final int protocolVersion;

  /// The protocol version as OpenSSL (and dart:io) name it: `TLSv1.2`,
  /// `TLSv1.3`.
  String get protocol => switch (protocolVersion) {
        0x0303 => 'TLSv1.2',
        0x0304 => 'TLSv1.3',
        _ => '0x${protocolVersion.toRadixString(16)}',
      };

  /// The IANA number of the negotiated cipher suite (`0x1301` is
  /// `TLS_AES_128_GCM_SHA256`).
  final int cipherSuite;

  /// The application protocol both sides chose with ALPN, or null when
  /// none was negotiated.
  final String? alpnProtocol;

  /// On a server, the name the client asked for (SNI), or null when it sent
  /// none (a client connecting to an IP address sends none). On a client,
  /// the name it asked for.
  final String? serverName;

  /// The peer's certificate (DER), or null when it presented none (a client
  /// without a certificate).
  final Uint8List? peerCertificate;

  /// Whether the session was resumed from an earlier one (no full
  /// handshake).
  final bool isResumed;

  @override
  String toString() => 'TlsSession($protocol, cipher suite '
      '0x${cipherSuite.toRadixString(16).padLeft(4, '0')}'
      '${alpnProtocol == null ? '' : ', ALPN $alpnProtocol'}'
      '${isResumed ? ', resumed' : ''})';
}

final Expando<TlsSession> _sessions = Expando<TlsSession>('TLS session');

/// The TLS side of a connection: its [tlsSession] once secured.
extension TlsConnectionInfo on StreamConnection {
  /// The TLS session of a connection that was secured (by
  /// `TcpListener.bindSecure`, `TcpConnection.connectSecure` or their Unix
  /// counterparts), else null.
  TlsSession? get tlsSession => _sessions[this];

  /// Whether the connection was secured with TLS: its bytes are encrypted
  /// on the wire (reading and writing carry plaintext as usual).
  bool get isSecure => _sessions[this] != null;
}

/// Connects with [connect], then runs the client side of a TLS handshake
/// with [context] for [serverName] on the connection ([secureStream]);
/// [timeout] bounds the two together. A server context, or a closed one,
/// fails before connecting.
Future<T> connectSecured<T extends StreamConnection>(
    TlsContext context, String serverName, Duration? timeout,
    Future<T> Function() connect) async {
  if (context.isServer) {
    throw ArgumentError.value(
        context, 'context', 'not a client context (TlsContext.client)');
  }
  tlsContextHandle(context); // not closed: fail before connecting
  final watch = Stopwatch()..start();
  final connection = await connect();
  Duration? left;
  if (timeout != null) {
    left = timeout - watch.elapsed;
    if (left < const Duration(milliseconds: 1)) {
      left = const Duration(milliseconds: 1);
    }
  }
  return secureStream(connection, context,
      server: false, serverName: serverName, timeout: left);
}

/// Runs a TLS handshake on [connection], connected and never read nor
/// written: the server side with [server], else the client side asking for
/// [serverName]. Completes with [connection] once it is secured (its
/// [TlsConnectionInfo.tlsSession] set); on failure the connection is
/// destroyed and the future fails with a [TlsHandshakeException].
/// [timeout] bounds the whole handshake.
Future<T> secureStream<T extends StreamConnection>(
    T connection, TlsContext context,
    {required bool server, String? serverName, Duration? timeout}) {
  if (!server && (serverName == null || serverName.isEmpty)) {
    throw ArgumentError.value(serverName, 'serverName', 'a client needs one');
  }
  final handshake = _Handshake<T>(connection, context, server, serverName,
      timeout, connectionCore(connection));
  return handledFuture(handshake.start());
}

final class _Handshake<T extends StreamConnection>
    implements CompletionHandler {
  _Handshake(this.connection, this.context, this.server, this.serverName,
      this.timeout, this.core);

  final T connection;
  final TlsContext context;
  final bool server;
  final String? serverName;
  final Duration? timeout;
  final WorkerCore core;
  final Completer<T> _completer = Completer<T>();
  int _tag = 0;
  Timer? _timer;
  bool _timedOut = false;

  Future<T> start() {
    if (connection.isClosed || core.isClosed) {
      _fail(TlsFailure.cancelled, null, 'the connection is closed', '');
      return _completer.future;
    }
    final int ms, config;
    try {
      ms = timeoutMillis(timeout, 'timeout');
      if (connectionWasRead(connection) ||
          connectionHasPendingWrites(connection)) {
        throw StateError(
            'a connection that was read or written cannot be secured');
      }
      config = tlsContextHandle(context);
    } catch (_) {
      // The connection was the caller's to secure: it goes with the error.
      connection.destroy();
      rethrow;
    }
    // The peer, for the error of a failed handshake (a peer that gives up
    // has no address any more by then).
    _notePeer();
    final socket = connectionSocket(connection);
    final tag = core.register(this);
    final int rc;
    try {
      rc = server
          ? socket.tlsAccept(config, tag, ms)
          : socket.tlsConnect(config, serverName!, tag, ms);
    } catch (_) {
      core.unregister(tag);
      connection.destroy();
      rethrow;
    }
    if (rc < 0) {
      core.unregister(tag);
      _failCode(rc);
      return _completer.future;
    }
    _tag = tag;
    core.submitted();
    final t = timeout;
    if (t != null) {
      // The native timeout bounds each wait for the peer; this one the
      // whole handshake (a peer dribbling bytes).
      _timer = Timer(t, () {
        _timedOut = true;
        if (_tag != 0) core.cancel(_tag);
      });
    }
    return _completer.future;
  }

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    core.unregister(tag);
    _tag = 0;
    _timer?.cancel();
    if (result < 0) {
      _failCode(_timedOut && result == -Errno.ecanceled
          ? -Errno.etimedout
          : result);
      return;
    }
    final TlsSession session;
    try {
      session = _readSession();
    } on TransportException catch (error) {
      connection.destroy();
      _completer.completeError(error);
      return;
    }
    _sessions[connection] = session;
    _completer.complete(connection);
  }

  TlsSession _readSession() {
    final socket = connectionSocket(connection);
    final info = socket.tlsInfo();
    if (info.rc < 0) throw core.error(info.rc, 'handshake');
    final alpn = socket.tlsAlpn();
    final name = server ? socket.tlsServerName() : null;
    final certificate = info.flags & IOT_TLS_INFO_PEER_CERTIFICATE != 0
        ? socket.tlsPeerCertificate()
        : null;
    return TlsSession._(
        isServer: server,
        protocolVersion: info.version,
        cipherSuite: info.cipherSuite,
        alpnProtocol:
            alpn == null || alpn.isEmpty ? null : utf8.decode(alpn),
        serverName: server
            ? (name == null || name.isEmpty ? null : utf8.decode(name))
            : serverName,
        peerCertificate:
            certificate == null || certificate.isEmpty ? null : certificate,
        isResumed: info.flags & IOT_TLS_INFO_RESUMED != 0);
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    _tag = 0;
    _timer?.cancel();
    _fail(TlsFailure.cancelled, null, 'the worker was closed', '');
  }

  /// Fails with native result [code]: the reason is read from the session
  /// before the connection is destroyed.
  void _failCode(int code) {
    final text = connectionSocket(connection).isClosed
        ? null
        : connectionSocket(connection).tlsErrorText();
    final reason = text == null ? '' : utf8.decode(text, allowMalformed: true);
    final failure = TlsFailure.fromCode(code);
    final String message;
    if (failure == TlsFailure.timeout && timeout != null) {
      message = 'timed out after ${timeout!.inMilliseconds} ms';
    } else if (failure == TlsFailure.cancelled && connection.isClosed) {
      message = 'the connection was closed';
    } else {
      message =
          core.isClosed ? 'failed' : core.error(code, 'handshake').message;
    }
    _fail(failure, code, message, reason);
  }

  InternetAddress? _address;
  int? _port;
  String? _path;

  void _notePeer() {
    if (connection.isClosed || core.isClosed) return;
    try {
      final peer = connectionAddress(connection, IOT_ADDRESS_PEER, 'peer');
      if (peer.port != 0) {
        _address = InternetAddress.tryParse(peer.address);
        _port = peer.port;
      } else if (peer.address.isNotEmpty) {
        _path = peer.address;
      }
    } on TransportException {
      // The peer is gone already: the error names none.
    }
  }

  void _fail(TlsFailure failure, int? code, String message, String reason) {
    connection.destroy();
    _completer.completeError(TlsHandshakeException(message,
        failure: failure,
        reason: reason,
        code: code,
        nativeMessage: code == null || core.isClosed
            ? null
            : core.error(code, 'handshake').message,
        path: _path,
        address: _address,
        port: _port,
        isServer: server));
  }
}
