/// Thin owning wrappers around native handles: each frees its handle exactly
/// once, on `close()`/`free()` (idempotent), with a finalizer as the safety
/// net for handles nobody closed.
library;

import 'dart:ffi';

import 'package:ffi/ffi.dart';

import 'bindings.dart';

/// Owns one native worker handle (`iot_worker_new` .. `iot_worker_free`).
///
/// A [NativeFinalizer] on `iot_worker_finalize` frees a worker whose owner
/// was never closed (at the latest when the isolate group shuts down). That
/// native function takes the worker id as its `void *` token and does not
/// block: the worker's handle goes stale at once and it is reaped on a native
/// background thread.
final class WorkerHandle implements Finalizable {
  WorkerHandle(this.bindings, this.id, {int externalSize = 0}) {
    _finalizerFor(bindings).attach(this, Pointer<Void>.fromAddress(id),
        detach: this, externalSize: externalSize);
  }

  static NativeFinalizer? _finalizer;

  static NativeFinalizer _finalizerFor(Bindings bindings) =>
      _finalizer ??= NativeFinalizer(bindings.workerFinalizer);

  final Bindings bindings;

  /// The native worker id.
  final int id;

  bool _freed = false;

  /// Whether [free] was called.
  bool get isFreed => _freed;

  /// Frees the worker (blocking while the kernel returns its operations,
  /// bounded by the native library at 5 s). Returns the native result; a
  /// second call returns 0 and does nothing.
  int free() {
    if (_freed) return 0;
    _freed = true;
    _finalizer?.detach(this);
    return bindings.iot_worker_free(id);
  }
}

/// Owns one socket handle of a worker (`iot_tcp_listen`, an accepted or
/// connected socket .. `iot_socket_close`).
///
/// A dart:core [Finalizer] closes a socket that became unreachable without
/// being closed (a socket with operations in flight stays reachable through
/// its worker, so only idle sockets are collected).
final class SocketHandle {
  SocketHandle(this.worker, this.id) {
    _finalizer.attach(this, _SocketToken(worker, id), detach: this);
  }

  static final Finalizer<_SocketToken> _finalizer =
      Finalizer<_SocketToken>((token) => token.close());

  final WorkerHandle worker;

  /// The native socket id (unique per worker).
  final int id;

  bool _closed = false;

  /// Whether [close] was called or the worker was freed.
  bool get isClosed => _closed || worker.isFreed;

  /// Whether [close] (or [forget]) was called: the owner itself let go.
  bool get closeCalled => _closed;

  /// Closes the socket now; operations on it complete with `-ECANCELED`.
  /// Returns the native result; later calls return 0 and do nothing.
  int close() {
    if (_closed) return 0;
    _closed = true;
    _finalizer.detach(this);
    if (worker.isFreed) return 0;
    return worker.bindings.iot_socket_close(worker.id, id);
  }

  /// Marks the socket closed without closing anything natively: its handle
  /// already went stale (the socket was handed over to another worker).
  /// Idempotent.
  void forget() {
    if (_closed) return;
    _closed = true;
    _finalizer.detach(this);
  }
}

final class _SocketToken {
  _SocketToken(this.worker, this.id);

  final WorkerHandle worker;
  final int id;

  void close() {
    if (!worker.isFreed) worker.bindings.iot_socket_close(worker.id, id);
  }
}

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
