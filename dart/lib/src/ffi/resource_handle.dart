/// [ResourceHandle]: what socket and file handles share: one native handle
/// of a worker, closed exactly once.
library;

import 'bindings.dart';
import 'worker_handle.dart';

/// Owns one handle of a worker (a socket or a file), closed by [close]
/// (idempotent). A dart:core [Finalizer] closes one that became unreachable
/// without being closed (a handle with operations in flight stays reachable
/// through its worker, so only idle ones are collected).
abstract base class ResourceHandle {
  ResourceHandle(this.worker, this.id, this._closeNative) {
    _finalizer.attach(this, _Token(worker, id, _closeNative), detach: this);
  }

  static final Finalizer<_Token> _finalizer =
      Finalizer<_Token>((token) => token.close());

  final WorkerHandle worker;

  /// The worker's bindings.
  Bindings get bindings => worker.bindings;

  /// The native handle (unique per worker).
  final int id;

  bool _closed = false;

  /// The native close of this kind of handle.
  final int Function(WorkerHandle worker, int id) _closeNative;

  /// Whether [close] was called or the worker was freed.
  bool get isClosed => _closed || worker.isFreed;

  /// Whether [close] (or [forget]) was called: the owner itself let go.
  bool get closeCalled => _closed;

  /// Closes the handle now; operations on it complete with `-ECANCELED`.
  /// Returns the native result; later calls return 0 and do nothing.
  int close() {
    if (_closed) return 0;
    _closed = true;
    _finalizer.detach(this);
    if (worker.isFreed) return 0;
    return _closeNative(worker, id);
  }

  /// Marks the handle closed without closing anything natively: it already
  /// went stale (a socket handed over to another worker). Idempotent.
  void forget() {
    if (_closed) return;
    _closed = true;
    _finalizer.detach(this);
  }
}

final class _Token {
  _Token(this.worker, this.id, this.closeNative);

  final WorkerHandle worker;
  final int id;
  final int Function(WorkerHandle worker, int id) closeNative;

  void close() {
    if (!worker.isFreed) closeNative(worker, id);
  }
}
