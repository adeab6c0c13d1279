/// [TlsContext]: a TLS configuration (certificates, key, trusted
/// authorities, ALPN, client authentication, versions) for secure
/// listeners and connections.
library;

import 'dart:convert';
import 'dart:io' show File, FileSystemException;
import 'dart:typed_data';

import '../ffi/bindings.dart';
import '../ffi/library.dart';
import '../ffi/tls_handles.dart';
import 'tls_exception.dart';

/// Whether a server asks its clients for a certificate.
enum TlsClientAuth {
  /// Clients are not asked for a certificate.
  none,

  /// Clients are asked; one that sends a certificate must send one the
  /// trusted certificates vouch for, one that sends none is still accepted.
  optional,

  /// Clients without a certificate the trusted certificates vouch for are
  /// refused ([TlsFailure.certificateRequired] on the server).
  required,
}

/// Which TLS versions a context speaks.
enum TlsVersions {
  /// TLS 1.2 and TLS 1.3 (the default).
  tls12AndTls13,

  /// Only TLS 1.2.
  tls12Only,

  /// Only TLS 1.3.
  tls13Only,
}

/// A TLS configuration: a server's ([TlsContext.server]) or a client's
/// ([TlsContext.client]), built once from PEM and shared by any number of
/// listeners and connections on any worker of the process.
///
/// The native configuration is freed by [close], or, for a context nobody
/// closed, once it became unreachable. Closing does not affect connections
/// already secured with it; only new handshakes are refused. A context is
/// tied to the isolate that made it: other isolates make their own (from
/// the same PEM bytes).
///
/// ```dart
/// final context = await TlsContext.serverFromFiles(
///     certificateChain: 'server.pem', privateKey: 'server.key');
/// final listener = await TcpListener.bindSecure('0.0.0.0', 8443, context);
/// ```
final class TlsContext {
  TlsContext._(this._handle, this.isServer, this.alpnProtocols) {
    _finalizer.attach(this, _handle, detach: this);
  }

  static final Finalizer<int> _finalizer =
      Finalizer<int>((handle) => freeTlsConfig(bindings, handle));

  /// A server's configuration.
  ///
  /// [certificateChain] is the PEM of the server's certificate followed by
  /// its intermediates (leaf first); [privateKey] the PEM of its key
  /// (PKCS#8, PKCS#1 or SEC1). With [clientAuth] other than
  /// [TlsClientAuth.none], [trustedCertificates] (PEM, one or more
  /// certificates) are the authorities client certificates must come from.
  /// [alpnProtocols] are the application protocols offered, most preferred
  /// first (a client offering none of them is refused). Throws a
  /// [TlsConfigException] when the configuration cannot be built.
  factory TlsContext.server(
      {required List<int> certificateChain,
      required List<int> privateKey,
      List<int>? trustedCertificates,
      TlsClientAuth clientAuth = TlsClientAuth.none,
      List<String> alpnProtocols = const [],
      TlsVersions versions = TlsVersions.tls12AndTls13}) {
    var flags = IOT_TLS_SERVER | _versionFlags(versions);
    switch (clientAuth) {
      case TlsClientAuth.none:
        break;
      case TlsClientAuth.optional:
        flags |= IOT_TLS_CLIENT_AUTH_OPTIONAL;
      case TlsClientAuth.required:
        flags |= IOT_TLS_CLIENT_AUTH_REQUIRED;
    }
    return _build(flags, certificateChain, privateKey, trustedCertificates,
        alpnProtocols, true);
  }

  /// A client's configuration.
  ///
  /// [trustedCertificates] (PEM) are the authorities server certificates
  /// must come from; with [useSystemRoots], the system's (`/etc/ssl/certs`)
  /// are trusted too. [certificateChain] and [privateKey] (PEM, both or
  /// neither) are the client's own certificate, for servers that ask for
  /// one. [alpnProtocols] are offered to the server, most preferred first.
  /// Throws a [TlsConfigException] when the configuration cannot be built
  /// (for example with nothing to trust).
  factory TlsContext.client(
      {List<int>? trustedCertificates,
      bool useSystemRoots = false,
      List<int>? certificateChain,
      List<int>? privateKey,
      List<String> alpnProtocols = const [],
      TlsVersions versions = TlsVersions.tls12AndTls13}) {
    var flags = _versionFlags(versions);
    if (useSystemRoots) flags |= IOT_TLS_SYSTEM_ROOTS;
    return _build(flags, certificateChain, privateKey, trustedCertificates,
        alpnProtocols, false);
  }

  /// [TlsContext.server] with the PEM read from files (paths).
  static Future<TlsContext> serverFromFiles(
          {required String certificateChain,
          required String privateKey,
          String? trustedCertificates,
          TlsClientAuth clientAuth = TlsClientAuth.none,
          List<String> alpnProtocols = const [],
          TlsVersions versions = TlsVersions.tls12AndTls13}) async =>
      TlsContext.server(
          certificateChain: await _read(certificateChain),
          privateKey: await _read(privateKey),
          trustedCertificates: trustedCertificates == null
              ? null
              : await _read(trustedCertificates),
          clientAuth: clientAuth,
          alpnProtocols: alpnProtocols,
          versions: versions);

  /// [TlsContext.client] with the PEM read from files (paths).
  static Future<TlsContext> clientFromFiles(
          {String? trustedCertificates,
          bool useSystemRoots = false,
          String? certificateChain,
          String? privateKey,
          List<String> alpnProtocols = const [],
          TlsVersions versions = TlsVersions.tls12AndTls13}) async =>
      TlsContext.client(
          trustedCertificates: trustedCertificates == null
              ? null
              : await _read(trustedCertificates),
          useSystemRoots: useSystemRoots,
          certificateChain:
              certificateChain == null ? null : await _read(certificateChain),
          privateKey: privateKey == null ? null : await _read(privateKey),
          alpnProtocols: alpnProtocols,
          versions: versions);

  static Future<Uint8List> _read(String path) async {
    try {
      return await File(path).readAsBytes();
    } on FileSystemException catch (error) {
      throw TlsConfigException('cannot read $path',
          reason: error.osError?.message ?? error.message);
    }
  }

  static int _versionFlags(TlsVersions versions) => switch (versions) {
        TlsVersions.tls12AndTls13 => 0,
        TlsVersions.tls12Only => IOT_TLS_ONLY_TLS12,
        TlsVersions.tls13Only => IOT_TLS_ONLY_TLS13,
      };

  static TlsContext _build(int flags, List<int>? certificate, List<int>? key,
      List<int>? trusted, List<String> alpn, bool server) {
    final wire = alpnWire(alpn);
    final built = createTlsConfig(bindings, flags, _bytes(certificate),
        _bytes(key), _bytes(trusted), wire);
    if (built.rc < 0) {
      throw TlsConfigException('invalid TLS configuration',
          reason: built.reason, code: built.rc);
    }
    return TlsContext._(built.handle, server, List.unmodifiable(alpn));
  }

  static Uint8List _bytes(List<int>? bytes) => bytes == null
      ? Uint8List(0)
      : bytes is Uint8List
          ? bytes
          : Uint8List.fromList(bytes);

  final int _handle;
  bool _closed = false;

  /// Whether this is a server's configuration.
  final bool isServer;

  /// The ALPN protocols offered, most preferred first.
  final List<String> alpnProtocols;

  /// Whether [close] was called.
  bool get isClosed => _closed;

  /// Frees the native configuration. Connections already secured with it
  /// are unaffected; handshakes started later fail with a [StateError].
  /// Idempotent.
  void close() {
    if (_closed) return;
    _closed = true;
    _finalizer.detach(this);
    freeTlsConfig(bindings, _handle);
  }

  @override
  String toString() => 'TlsContext(${isServer ? 'server' : 'client'}'
      '${_closed ? ', closed' : ''})';
}

/// [protocols] in ALPN wire format: each name's UTF-8 after its length byte.
/// Throws an [ArgumentError] for an empty name or one over 255 bytes.
Uint8List alpnWire(List<String> protocols) {
  final out = BytesBuilder();
  for (final protocol in protocols) {
    final bytes = utf8.encode(protocol);
    if (bytes.isEmpty || bytes.length > 255) {
      throw ArgumentError.value(
          protocol, 'alpnProtocols', 'must be 1 to 255 bytes long');
    }
    out
      ..addByte(bytes.length)
      ..add(bytes);
  }
  return out.takeBytes();
}

/// The native handle of [context], for a handshake; throws a [StateError]
/// once it was closed.
int tlsContextHandle(TlsContext context) {
  if (context._closed) throw StateError('the TlsContext was closed');
  return context._handle;
}

