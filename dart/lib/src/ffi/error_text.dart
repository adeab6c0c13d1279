/// The native library's text for a result code (`iot_error_message`).
library;

import 'dart:ffi';

import 'package:ffi/ffi.dart';

import 'bindings.dart';

/// Error texts.
extension ErrorText on Bindings {
  /// The native library's text for result [code].
  String errorText(int code) {
    var capacity = 256;
    while (true) {
      final buffer = calloc<Uint8>(capacity);
      try {
        final length = iot_error_message(code, buffer.cast<Utf8>(), capacity);
        if (length < capacity) {
          return buffer.cast<Utf8>().toDartString(length: length);
        }
        capacity = length + 1;
      } finally {
        calloc.free(buffer);
      }
    }
  }
}
