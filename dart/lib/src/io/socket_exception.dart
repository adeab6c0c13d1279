/// The errors of the dart:io-shaped API: a [TransportException] becomes the
/// [SocketException] that code written against dart:io catches.
library;

import 'dart:io';

import '../exception.dart';

/// [error] as a [SocketException] naming [address] and [port]: its
/// [SocketException.osError] carries the errno, when the native library gave
/// one. Anything else is returned as it is.
Object socketError(Object error, {InternetAddress? address, int? port}) {
  if (error is! TransportException) return error;
  final errno = error.errno;
  final operation = error.operation;
  return SocketException(
      operation == null ? error.message : '$operation: ${error.message}',
      osError: errno == null
          ? null
          : OSError(error.nativeMessage ?? error.message, errno),
      address: address,
      port: port);
}
