/// [SingleOp]: a native operation with a single completion (a connect, an
/// open, a sync, a stat) as a future, and [Cancellation] of a multi-step one.
library;

import 'dart:async';

import 'exception.dart';
import 'futures.dart';
import 'worker_core.dart';

/// One native operation with a single completion (a connect, an open, a
/// sync, a stat): [future] completes with what [convert] makes of the
/// completion's result and handle, or fails with the operation's error.
final class SingleOp<T> implements CompletionHandler {
  SingleOp(this.core, this.operation, this.convert,
      {this.timeout, this.onEnd, this.path});

  final WorkerCore core;

  /// The operation's name in errors (`connect`, `open`, ...).
  final String operation;

  /// Turns a successful completion into the future's value; may throw, which
  /// fails the future.
  final T Function(int result, int handle) convert;

  /// The timeout given to the native call (for the timeout error).
  final Duration? timeout;

  /// The file or socket path the operation is on (for its errors).
  final String? path;

  /// Called exactly once when the operation is over, whatever the outcome,
  /// after [convert] ran: frees what the operation held for the kernel.
  final void Function()? onEnd;

  final Completer<T> _completer = Completer<T>();
  bool _ended = false;

  /// The tag while the operation is queued natively, else 0.
  int _tag = 0;

  Future<T> get future => _completer.future;

  /// Queues the operation: [submit] makes the native call with the tag it is
  /// given and returns the call's result. Returns [future] (its error counts
  /// as handled: an ignored failure is no uncaught error), failed at once
  /// when the call was refused or [cancellation] was cancelled; rethrows what
  /// [submit] throws (an invalid argument) after cleaning up. Cancelling
  /// [cancellation] later cancels the operation natively: it fails with a
  /// [TransportCancelledException].
  Future<T> start(int Function(int tag) submit, {Cancellation? cancellation}) {
    if (core.isClosed || (cancellation?.isCancelled ?? false)) {
      _end();
      final refused = core.isClosed
          ? closedError(operation, 'worker')
          : TransportCancelledException('cancelled', operation: operation);
      return handledFuture(Future<T>.error(refused));
    }
    final tag = core.register(this);
    final int rc;
    try {
      rc = submit(tag);
    } catch (_) {
      core.unregister(tag);
      _end();
      rethrow;
    }
    if (rc < 0) {
      core.unregister(tag);
      _end();
      final refused = core.error(rc, operation, timeout: timeout, path: path);
      return handledFuture(Future<T>.error(refused));
    }
    _tag = tag;
    cancellation?._current = this;
    core.submitted();
    return handledFuture(_completer.future);
  }

  void _cancel() {
    if (_tag != 0) core.cancel(_tag);
  }

  void _end() {
    if (_ended) return;
    _ended = true;
    onEnd?.call();
  }

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    core.unregister(tag);
    _tag = 0;
    try {
      if (result < 0) {
        _completer.completeError(
            core.error(result, operation, timeout: timeout, path: path));
      } else {
        _completer.complete(convert(result, handle));
      }
    } catch (error, stack) {
      if (!_completer.isCompleted) _completer.completeError(error, stack);
    } finally {
      _end();
    }
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    _tag = 0;
    _end();
    if (!_completer.isCompleted) _completer.completeError(error);
  }
}

/// Cancels a multi-step operation (a connect that tries one address after
/// another): the step in flight is cancelled natively, and no further step
/// starts.
final class Cancellation {
  bool _cancelled = false;
  SingleOp<Object?>? _current;

  bool get isCancelled => _cancelled;

  void cancel() {
    if (_cancelled) return;
    _cancelled = true;
    _current?._cancel();
  }
}
