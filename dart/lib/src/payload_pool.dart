/// The process-wide payload pool that carries [Worker.sendBytes]' bytes.
library;

import 'dart:ffi';
import 'dart:typed_data';

import 'package:ffi/ffi.dart';

import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/message_calls.dart';

/// The process-wide payload pool as this isolate sees it: payload `p` is
/// [size] bytes at `base + (p & 0xffffffff) * size`, mapped until the
/// process exits.
final class PayloadPool {
  PayloadPool(this.base, this.size, this.count);

  static PayloadPool? _instance;

  /// The pool (created natively on first use).
  static PayloadPool of(Bindings b) {
    final existing = _instance;
    if (existing != null) return existing;
    final out = calloc<Uint8>(16);
    try {
      final outBase = out.cast<Pointer<Uint8>>();
      final outSize = (out + 8).cast<Uint32>();
      final outCount = (out + 12).cast<Uint32>();
      final rc = b.payloadPool(outBase, outSize, outCount);
      if (rc < 0) throw transportError(b, rc, 'payload pool');
      return _instance =
          PayloadPool(outBase.value.address, outSize.value, outCount.value);
    } finally {
      calloc.free(out);
    }
  }

  final int base;
  final int size;
  final int count;

  /// The first [length] bytes of [payload], as a view (no copy).
  Uint8List view(int payload, int length) =>
      Pointer<Uint8>.fromAddress(base + (payload & 0xffffffff) * size)
          .asTypedList(length);
}
