/// [IoUringSecureSocket]: a dart:io [SecureSocket] whose TLS runs in the
/// isolate's io_uring worker, and [IoUringHandshakeException], a failed
/// handshake as dart:io's [HandshakeException].
library;

import 'dart:async';
import 'dart:convert';
import 'dart:io';
import 'dart:typed_data';

import '../exception.dart';
import '../stream_connection.dart';
import '../tcp.dart';
import '../tls/tls_context.dart';
import '../tls/tls_exception.dart';
import '../tls/tls_session.dart';
import '../tls/x509.dart';
import '../unix.dart';
import '../worker.dart';
import 'socket.dart';
import 'socket_exception.dart';

/// A failed TLS handshake as dart:io reports one, a [HandshakeException]
/// (so `on HandshakeException` and `on TlsException` handlers written for
/// dart:io catch it, and `HttpServer` ignores it as it ignores dart:io's),
/// with the transport's [TlsHandshakeException] as its [cause].
final class IoUringHandshakeException extends HandshakeException {
  IoUringHandshakeException(this.cause)
      : super(cause.reason.isEmpty
            ? cause.message
            : '${cause.message}: ${cause.reason}');

  /// The transport's exception: the kind of failure, the native code and
  /// reason, the peer.
  final TlsHandshakeException cause;
}

/// [error] as the dart:io layer reports it: a [TlsHandshakeException]
/// becomes an [IoUringHandshakeException], another [TransportException] a
/// [SocketException] (see [socketError]).
Object secureSocketError(Object error,
        {InternetAddress? address, int? port}) =>
    error is TlsHandshakeException
        ? IoUringHandshakeException(error)
        : socketError(error, address: address, port: port);

/// A TLS connection (TCP or Unix) with dart:io's [SecureSocket] semantics,
/// on an io_uring worker: everything an [IoUringSocket] does (reading and
/// writing carry plaintext; [close] sends TLS's close_notify before the
/// FIN), plus what the handshake negotiated: [peerCertificate],
/// [selectedProtocol], and the transport's [session].
///
/// Made by [IoUringSecureSocket.connect], and by the listeners of
/// `IoUringSecureServerSocket`. [renegotiate] is not supported (TLS 1.3
/// has none; dart:io's throws too).
final class IoUringSecureSocket extends Stream<Uint8List>
    implements SecureSocket {
  IoUringSecureSocket._(this._socket, this.session);

  /// Connects to [host] on [port] and runs a TLS client handshake with
  /// [context] (a `TlsContext.client`), like [SecureSocket.connect]: the
  /// server's certificate must be valid for [serverName] (default: [host];
  /// a Unix socket address needs one). [timeout] bounds the connect and the
  /// handshake together. A failed handshake is an
  /// [IoUringHandshakeException] (a [HandshakeException]); a failed connect
  /// a [SocketException].
  static Future<IoUringSecureSocket> connect(Object host, int port,
      {required TlsContext context,
      String? serverName,
      Duration? timeout,
      Worker? worker}) async {
    final remote = host is InternetAddress
        ? host
        : host is String
            ? InternetAddress.tryParse(host)
            : null;
    try {
      if (remote != null && remote.type == InternetAddressType.unix) {
        if (serverName == null) {
          throw ArgumentError.notNull('serverName');
        }
        final connection = await UnixConnection.connectSecure(
            remote.address, context,
            serverName: serverName, timeout: timeout, worker: worker);
        return _wrap(connection, remote, 0);
      }
      final connection = await TcpConnection.connectSecure(
          host, port, context,
          serverName: serverName, timeout: timeout, worker: worker);
      return _wrap(
          connection, connection.remoteAddress, connection.localPort);
    } on TransportException catch (error) {
      throw secureSocketError(error, address: remote, port: port);
    }
  }

  static IoUringSecureSocket _wrap(
          StreamConnection connection, InternetAddress address, int port) =>
      IoUringSecureSocket._(acceptedSocket(connection, address, port),
          connection.tlsSession!);

  final IoUringSocket _socket;

  /// What the handshake negotiated (version, cipher suite, ALPN, SNI, the
  /// peer's certificate as DER, resumption).
  final TlsSession session;

  X509Certificate? _certificate;

  /// The peer's certificate (null when it sent none), as dart:io's.
  @override
  X509Certificate? get peerCertificate {
    final der = session.peerCertificate;
    if (der == null) return null;
    return _certificate ??= certificateFromDer(der);
  }

  /// The protocol both sides chose with ALPN, or null.
  @override
  String? get selectedProtocol => session.alpnProtocol;

  /// Throws an [UnsupportedError]: renegotiation is not supported.
  @override
  void renegotiate(
      {bool useSessionCache = true,
      bool requestClientCertificate = false,
      bool requireClientCertificate = false}) {
    throw UnsupportedError('TLS renegotiation is not supported');
  }

  // Everything else is the plain socket's.

  @override
  StreamSubscription<Uint8List> listen(void Function(Uint8List event)? onData,
          {Function? onError, void Function()? onDone, bool? cancelOnError}) =>
      _socket.listen(onData,
          onError: onError, onDone: onDone, cancelOnError: cancelOnError);

  @override
  Encoding get encoding => _socket.encoding;

  @override
  set encoding(Encoding value) => _socket.encoding = value;

  @override
  void add(List<int> data) => _socket.add(data);

  @override
  void addError(Object error, [StackTrace? stackTrace]) =>
      _socket.addError(error, stackTrace);

  @override
  Future<void> addStream(Stream<List<int>> stream) =>
      _socket.addStream(stream).then((_) => this);

  @override
  void write(Object? object) => _socket.write(object);

  @override
  void writeAll(Iterable<Object?> objects, [String separator = '']) =>
      _socket.writeAll(objects, separator);

  @override
  void writeCharCode(int charCode) => _socket.writeCharCode(charCode);

  @override
  void writeln([Object? object = '']) => _socket.writeln(object);

  @override
  Future<void> flush() => _socket.flush().then((_) => this);

  /// Sends close_notify and closes the sending side once everything added
  /// was sent; reading goes on. Completes like [done].
  @override
  Future<void> close() => _socket.close().then((_) => this);

  @override
  Future<void> get done => _socket.done.then((_) => this);

  @override
  void destroy() => _socket.destroy();

  @override
  InternetAddress get address => _socket.address;

  @override
  int get port => _socket.port;

  @override
  InternetAddress get remoteAddress => _socket.remoteAddress;

  @override
  int get remotePort => _socket.remotePort;

  @override
  bool setOption(SocketOption option, bool enabled) =>
      _socket.setOption(option, enabled);

  @override
  Uint8List getRawOption(RawSocketOption option) =>
      _socket.getRawOption(option);

  @override
  void setRawOption(RawSocketOption option) => _socket.setRawOption(option);

  @override
  String toString() => 'IoUringSecureSocket($_socket, $session)';
}

/// [connection], secured by a listener bound to [address] and [port], as
/// an [IoUringSecureSocket].
IoUringSecureSocket acceptedSecureSocket(
        StreamConnection connection, InternetAddress address, int port) =>
    IoUringSecureSocket._(
        acceptedSocket(connection, address, port), connection.tlsSession!);
