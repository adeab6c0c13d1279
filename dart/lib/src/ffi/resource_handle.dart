/// [ResourceHandle]: what socket and file handles share: one native handle
/// of a worker, closed exactly once.
library;

import 'bindings.dart';
import 'worker_handle.dart';

/// Owns one handle of a worker (a socket or a file), closed by [close]
/// (idempotent). A dart:core [Finalizer] closes one that became unreachable
/// without being closed (a handle with operations in flight stays reachable
/// through its worker, so only idle ones are collected).
///
/// The finalizer is attached without a detach key: a detach key costs an
/// `Expando` entry and a set of its own per handle (about 150 bytes of an
/// idle connection on a 32-bit VM). Closing marks the token instead, and the
/// finalizer of a closed handle does nothing.
abstract base class ResourceHandle {
  ResourceHandle(WorkerHandle worker, int id,
      int Function(WorkerHandle worker, int id) closeNative)
      : _token = _Token(worker, id, closeNative) {
    _finalizer.attach(this, _token);
  }

  static final Finalizer<_Token> _finalizer =
      Finalizer<_Token>((token) => token.close());

  /// The worker (kept by the token only: one field per handle, not two).
  WorkerHandle get worker => _token.worker;

  /// The worker's bindings.
  Bindings get bindings => worker.bindings;

  /// The native handle (unique per worker).
  int get id => _token.id;

  /// What the finalizer closes; [close] and [forget] disarm it (its flag
  /// is this handle's closed state too: one field, not two that could
  /// disagree).
  final _Token _token;

  /// Whether [close] was called or the worker was freed.
  bool get isClosed => _token.disarmed || worker.isFreed;

  /// Whether [close] (or [forget]) was called: the owner itself let go.
  bool get closeCalled => _token.disarmed;

  /// Closes the handle now; operations on it complete with `-ECANCELED`.
  /// Returns the native result; later calls return 0 and do nothing.
  int close() {
    if (_token.disarmed) return 0;
    _token.disarmed = true;
    final token = _token;
    if (token.worker.isFreed) return 0;
    return token.closeNative(token.worker, token.id);
  }

  /// Marks the handle closed without closing anything natively: it already
  /// went stale (a socket handed over to another worker). Idempotent.
  void forget() {
    _token.disarmed = true;
  }
}

final class _Token {
  _Token(this.worker, this.id, this.closeNative);

  final WorkerHandle worker;
  final int id;
  final int Function(WorkerHandle worker, int id) closeNative;

  /// The owner closed (or forgot) the handle itself.
  bool disarmed = false;

  void close() {
    if (!disarmed && !worker.isFreed) closeNative(worker, id);
  }
}
