/// The TLS calls: building and freeing configurations (`iot_tls_config_*`),
/// handshakes on a socket (`iot_tls_accept`, `iot_tls_connect`) and what an
/// established session reports.
library;

import 'dart:ffi';
import 'dart:typed_data';

import 'package:ffi/ffi.dart';

import 'bindings.dart';
import 'socket_handles.dart';

/// Room for the reason a configuration was refused.
const int _configErrorCapacity = 1024;

/// What [createTlsConfig] made: the configuration's handle ([rc] 0), or the
/// negative native result and the native reason.
typedef TlsConfigResult = ({int rc, int handle, String reason});

/// Builds a TLS configuration (`iot_tls_config_new`) from PEM bytes and an
/// ALPN list in wire format (each name after its length byte); empty inputs
/// are passed as NULL.
TlsConfigResult createTlsConfig(Bindings bindings, int flags,
    Uint8List certificate, Uint8List key, Uint8List trusted, Uint8List alpn) {
  final inputs = [certificate, key, trusted, alpn];
  final total = inputs.fold<int>(0, (sum, bytes) => sum + bytes.length);
  final block = calloc<Uint8>(total + 8 + _configErrorCapacity);
  try {
    final out = block.cast<Uint64>();
    final error = (block + 8).cast<Utf8>();
    var at = 8 + _configErrorCapacity;
    final pointers = <Pointer<Uint8>>[];
    for (final bytes in inputs) {
      if (bytes.isEmpty) {
        pointers.add(nullptr);
        continue;
      }
      final start = block + at;
      start.asTypedList(bytes.length).setAll(0, bytes);
      pointers.add(start);
      at += bytes.length;
    }
    final rc = bindings.iot_tls_config_new(
        flags,
        pointers[0],
        certificate.length,
        pointers[1],
        key.length,
        pointers[2],
        trusted.length,
        pointers[3],
        alpn.length,
        out,
        error,
        _configErrorCapacity);
    if (rc < 0) return (rc: rc, handle: 0, reason: error.toDartString());
    return (rc: rc, handle: out.value, reason: '');
  } finally {
    // The PEM held private key material: wipe it before giving it back.
    final size = total + 8 + _configErrorCapacity;
    block.asTypedList(size).fillRange(0, size, 0);
    calloc.free(block);
  }
}

/// Frees configuration [handle] (`iot_tls_config_free`).
int freeTlsConfig(Bindings bindings, int handle) =>
    bindings.iot_tls_config_free(handle);

/// What `iot_tls_get_info` reports of an established session.
final class TlsInfo {
  TlsInfo(this.rc, this.version, this.cipherSuite, this.flags);

  /// The native result (negative: the call failed, the rest is 0).
  final int rc;

  /// 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3).
  final int version;

  /// The IANA number of the cipher suite.
  final int cipherSuite;

  /// `IOT_TLS_INFO_*` bits.
  final int flags;
}

/// The TLS calls on one socket.
extension TlsSocketCalls on SocketHandle {
  /// Queues the server side of a handshake with configuration [config].
  int tlsAccept(int config, int tag, int timeoutMs) =>
      bindings.iot_tls_accept(worker.id, id, config, tag, timeoutMs);

  /// Queues the client side of a handshake for [serverName].
  int tlsConnect(int config, String serverName, int tag, int timeoutMs) {
    final name = serverName.toNativeUtf8();
    try {
      return bindings.iot_tls_connect(
          worker.id, id, config, name, tag, timeoutMs);
    } finally {
      calloc.free(name);
    }
  }

  /// Version, cipher suite and flags of the established session.
  TlsInfo tlsInfo() {
    if (worker.isFreed) return TlsInfo(IOT_E_BAD_HANDLE, 0, 0, 0);
    final out = calloc<iot_tls_info>();
    try {
      final rc = bindings.iot_tls_get_info(worker.id, id, out);
      final info = out.ref;
      return TlsInfo(rc, info.protocol_version, info.cipher_suite, info.flags);
    } finally {
      calloc.free(out);
    }
  }

  /// The negotiated ALPN protocol's bytes (empty: none), or null when the
  /// call failed.
  Uint8List? tlsAlpn() => _bytes(bindings.iot_tls_alpn);

  /// The SNI name a client asked a server for (empty: none).
  Uint8List? tlsServerName() => _bytes(bindings.iot_tls_server_name);

  /// The peer's certificate, DER (empty: none).
  Uint8List? tlsPeerCertificate() => _bytes(bindings.iot_tls_peer_certificate);

  /// Why the session failed (empty while it has not).
  Uint8List? tlsErrorText() => _bytes(bindings.iot_tls_error_text);

  /// The bytes [call] copies out (it returns their full length; a longer
  /// answer is asked again with room for all of it).
  Uint8List? _bytes(
      int Function(int worker, int socket, Pointer<Utf8> buf, int len) call) {
    if (worker.isFreed) return null;
    var capacity = 4096;
    while (true) {
      final buffer = calloc<Uint8>(capacity);
      try {
        final length = call(worker.id, id, buffer.cast<Utf8>(), capacity);
        if (length < 0) return null;
        if (length < capacity) {
          return Uint8List.fromList(buffer.asTypedList(length));
        }
        capacity = length + 1;
      } finally {
        calloc.free(buffer);
      }
    }
  }
}
