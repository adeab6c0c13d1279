/// The TLS errors: [TlsHandshakeException] (a handshake failed) and
/// [TlsConfigException] (a [TlsContext] could not be built).
library;

import 'dart:io' show InternetAddress;

import '../exception.dart';
import '../ffi/bindings.dart';

/// Why a TLS handshake failed, by kind (see [TlsHandshakeException.failure]).
enum TlsFailure {
  /// The peer's certificate is not valid: expired, not yet valid, badly
  /// encoded or revoked (`IOT_E_TLS_BAD_CERTIFICATE`).
  badCertificate,

  /// The peer's certificate was not issued by a trusted certificate
  /// authority (`IOT_E_TLS_UNKNOWN_ISSUER`).
  unknownIssuer,

  /// The server's certificate is not valid for the name the client asked
  /// for (`IOT_E_TLS_NAME_MISMATCH`).
  nameMismatch,

  /// The peers share no protocol version, cipher suite or ALPN protocol
  /// (`IOT_E_TLS_NO_COMMON_PROTOCOL`).
  noCommonProtocol,

  /// The peer refused the handshake with an alert
  /// (`IOT_E_TLS_ALERT_RECEIVED`): the reason names the alert, say
  /// `UnknownCA` when the peer did not trust this side's certificate.
  alertReceived,

  /// The peer does not speak TLS correctly, for example a plaintext client
  /// on a TLS port (`IOT_E_TLS_PROTOCOL`).
  protocolError,

  /// A record failed to decrypt or authenticate (`IOT_E_TLS_DECRYPT`).
  decryptError,

  /// The server requires a client certificate and none was sent
  /// (`IOT_E_TLS_CERTIFICATE_REQUIRED`).
  certificateRequired,

  /// The peer did not answer in time (the handshake timeout expired).
  timeout,

  /// The connection itself failed (reset, closed by the peer); see
  /// [TransportException.errno].
  connection,

  /// The handshake was abandoned here (the connection or the worker was
  /// closed, or the listener stopped).
  cancelled,

  /// Any other native failure.
  other;

  /// The kind of native result [code].
  static TlsFailure fromCode(int code) => switch (code) {
        IOT_E_TLS_BAD_CERTIFICATE => badCertificate,
        IOT_E_TLS_UNKNOWN_ISSUER => unknownIssuer,
        IOT_E_TLS_NAME_MISMATCH => nameMismatch,
        IOT_E_TLS_NO_COMMON_PROTOCOL => noCommonProtocol,
        IOT_E_TLS_ALERT_RECEIVED => alertReceived,
        IOT_E_TLS_PROTOCOL => protocolError,
        IOT_E_TLS_DECRYPT => decryptError,
        IOT_E_TLS_CERTIFICATE_REQUIRED => certificateRequired,
        -62 || -110 => timeout, // ETIME, ETIMEDOUT
        -125 => cancelled, // ECANCELED
        > -4096 && < 0 => connection,
        _ => other,
      };
}

/// A TLS handshake failed (either side): the connection is closed.
///
/// [failure] says why by kind, [code] is the native result (an
/// `IOT_E_TLS_*` code from -5041 to -5049, or a negated errno when the
/// connection itself failed), [reason] the native library's own words (what
/// the TLS library reported, such as `invalid peer certificate: UnknownIssuer`
/// or `received fatal alert: CertificateRequired`), and [address], [port]
/// (or [path], for a Unix socket) the peer. An [IOException], like every
/// [TransportException].
final class TlsHandshakeException extends TransportException {
  TlsHandshakeException(super.message,
      {required this.failure,
      required this.reason,
      super.code,
      super.nativeMessage,
      super.path,
      this.address,
      this.port,
      this.isServer = false})
      : super(operation: 'handshake');

  /// Why the handshake failed, by kind.
  final TlsFailure failure;

  /// The native library's detailed reason (empty when it had none).
  final String reason;

  /// The peer's address, when known.
  final InternetAddress? address;

  /// The peer's port, when known (TCP).
  final int? port;

  /// Whether this side was the server.
  final bool isServer;

  @override
  String toString() {
    final buffer = StringBuffer('TlsHandshakeException: ')
      ..write(isServer ? 'server' : 'client')
      ..write(' handshake');
    if (address != null) {
      buffer.write(' with ${address!.address}');
      if (port != null) buffer.write(':$port');
    } else if (path != null) {
      buffer.write(" on '$path'");
    }
    buffer.write(' failed (${failure.name}): $message');
    if (reason.isNotEmpty && reason != message) buffer.write(' - $reason');
    if (code != null) buffer.write(' (code $code)');
    return buffer.toString();
  }
}

/// A [TlsContext] could not be built: no or bad PEM, a private key that does
/// not match the certificate, no trusted certificates where they are
/// needed, a bad ALPN list, or an unreadable file. [reason] is the native
/// library's (or the file system's) own words.
final class TlsConfigException extends TransportException {
  TlsConfigException(super.message, {required this.reason, super.code})
      : super(operation: 'TLS configuration', nativeMessage: reason);

  /// What was wrong, in detail.
  final String reason;

  @override
  String toString() => 'TlsConfigException: $message'
      '${reason.isEmpty || reason == message ? '' : ': $reason'}'
      '${code == null ? '' : ' (code $code)'}';
}
