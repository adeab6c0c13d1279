/// Turns the host arguments of `bind` and `connect` (a `String` or an
/// [InternetAddress]) into the numeric IP addresses the native library takes.
library;

import 'dart:io';

import 'exception.dart';

/// The numeric addresses for [host], in the order to try them.
///
/// An [InternetAddress] or a numeric string is used as is; any other string
/// is looked up with [InternetAddress.lookup].
Future<List<InternetAddress>> resolveHost(Object host, String operation) async {
  if (host is InternetAddress) {
    if (host.type != InternetAddressType.IPv4 &&
        host.type != InternetAddressType.IPv6) {
      throw ArgumentError.value(host, 'host', 'not an IPv4 or IPv6 address');
    }
    return [host];
  }
  if (host is! String) {
    throw ArgumentError.value(
        host, 'host', 'must be a String or an InternetAddress');
  }
  final numeric = InternetAddress.tryParse(host);
  if (numeric != null) return [numeric];
  final List<InternetAddress> found;
  try {
    found = await InternetAddress.lookup(host);
  } on SocketException catch (error) {
    throw TransportException('cannot resolve "$host": ${error.message}',
        operation: operation);
  }
  final usable = [
    for (final address in found)
      if (address.type == InternetAddressType.IPv4 ||
          address.type == InternetAddressType.IPv6)
        address
  ];
  if (usable.isEmpty) {
    throw TransportException('no IP address for "$host"',
        operation: operation);
  }
  return usable;
}
