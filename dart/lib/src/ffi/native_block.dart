/// [NativeBlock]: native memory freed exactly once.
library;

import 'dart:ffi';

import 'package:ffi/ffi.dart';

/// One zero-filled block of native memory, freed by [free] (idempotent) or,
/// as a safety net, by a [NativeFinalizer] on `free(3)`.
final class NativeBlock implements Finalizable {
  NativeBlock(this.size) : pointer = calloc<Uint8>(size) {
    _finalizer.attach(this, pointer.cast<Void>(),
        detach: this, externalSize: size);
  }

  static final NativeFinalizer _finalizer = NativeFinalizer(calloc.nativeFree);

  final int size;
  final Pointer<Uint8> pointer;
  bool _freed = false;

  void free() {
    if (_freed) return;
    _freed = true;
    _finalizer.detach(this);
    calloc.free(pointer);
  }
}
