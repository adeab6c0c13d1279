/// [FileQueue]: the operations of one file in call order, and [FileOp], one
/// call on a file as the queue runs it (its kinds are in `file_ops.dart`).
library;

import 'dart:async';
import 'dart:collection';

import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/file_handles.dart';
import 'timeouts.dart';
import 'worker_core.dart';

/// The operations of one file, started in call order: reads and writes
/// overlap; an exclusive operation ([FileOp.exclusive]) runs alone.
final class FileQueue implements SendBufferWaiter {
  FileQueue(this.core, this.handle, this.path);

  final WorkerCore core;
  final FileHandle handle;

  /// The file's path (for errors).
  final String path;

  /// Operations not completely queued natively, in call order.
  final Queue<FileOp<Object?>> _pending = Queue<FileOp<Object?>>();

  /// Operations started and not ended.
  int _running = 0;
  bool _exclusiveRunning = false;
  bool _waiting = false;
  bool _pumping = false;

  /// The first write error since the last [takeWriteError].
  Object? _writeError;

  Future<T> add<T>(FileOp<T> op) {
    _pending.add(op);
    _pump();
    return op.completer.future;
  }

  void _pump() {
    if (_pumping) return;
    _pumping = true;
    try {
      while (_pending.isNotEmpty && !_waiting && !_exclusiveRunning) {
        final op = _pending.first;
        if (core.isClosed) {
          for (final waiting in _pending.toList()) {
            waiting.abort(closedError(waiting.operation, 'worker'));
          }
          _pending.clear();
          return;
        }
        if (!op.started) {
          if (op.exclusive && _running > 0) return;
          op.started = true;
          _running++;
          if (op.exclusive) _exclusiveRunning = true;
        }
        if (!op.pump()) return;
        _pending.remove(op);
      }
    } finally {
      _pumping = false;
    }
  }

  /// A free send buffer for [op], or null: none is free (the queue stops
  /// until one may be) or taking one failed (the operation was refused).
  int? takeBuffer(FileOp<Object?> op) {
    final id = acquireSendBuffer(core, this);
    if (id >= 0) return id;
    _waiting = id == -Errno.enobufs;
    if (!_waiting) op.refused(id);
    return null;
  }

  /// [op] completed a native operation and may queue more.
  void progressed() => _pump();

  /// [op] is over.
  void ended(FileOp<Object?> op) {
    if (op.started) {
      _running--;
      if (op.exclusive) _exclusiveRunning = false;
    }
    _pending.remove(op);
    _pump();
  }

  void writeFailed(Object error) {
    _writeError ??= error;
  }

  Object? takeWriteError() {
    final error = _writeError;
    _writeError = null;
    return error;
  }

  @override
  void onSendBufferAvailable() {
    _waiting = false;
    _pump();
  }

  /// The pump fails what is pending once the worker is closed.
  @override
  void onWorkerClosed(TransportClosedException error) =>
      onSendBufferAvailable();
}

/// One call on a file: one or more native operations under one tag.
abstract base class FileOp<T> implements CompletionHandler {
  FileOp(this.queue, this.operation, this.timeout)
      : timeoutMs = timeoutMillis(timeout, 'timeout');

  final FileQueue queue;
  final String operation;
  final Duration? timeout;
  final int timeoutMs;
  final Completer<T> completer = Completer<T>();

  /// Counted as running by the queue.
  bool started = false;

  int _tag = 0;
  int _inFlight = 0;
  bool _allQueued = false;
  bool _ended = false;
  Object? _error;

  /// The operation's first error, or null.
  Object? get error => _error;

  WorkerCore get core => queue.core;

  /// The file.
  FileHandle get file => queue.handle;

  /// Runs alone: starts when every earlier operation ended, and later ones
  /// start when it ended.
  bool get exclusive => false;

  /// Native operations in flight.
  int get inFlight => _inFlight;

  /// The operation's tag, registered on first use.
  int get tag => _tag != 0 ? _tag : (_tag = core.register(this));

  /// Queues native operations (reporting each with [queued], a refusal with
  /// [refused], the end with [allQueued]); returns early when
  /// [FileQueue.takeBuffer] found no buffer, or with enough in flight.
  void queueMore();

  /// One native operation completed (before the error, if any, is noted).
  void completed(int result, int flags, int bufferId, int offset) {
    if (flags & IOT_COMPLETION_BUFFER != 0) core.releaseBuffer(bufferId);
  }

  /// The future's value when every native operation succeeded.
  T result();

  /// The operation ended (whatever the outcome): give back what it held.
  void onEnd() {}

  void queued() {
    _inFlight++;
    core.submitted();
  }

  void refused(int code) {
    _error ??= core.error(code, operation,
        timeout: timeout,
        closedLocally: queue.handle.isClosed,
        path: queue.path);
    _allQueued = true;
  }

  void allQueued() {
    _allQueued = true;
  }

  /// Fails the operation before or while it runs; it ends once nothing of it
  /// is in flight.
  void abort(Object error) {
    _error ??= error;
    _allQueued = true;
    _maybeEnd();
  }

  /// Called by the queue: queues what it can. Returns true when the queue is
  /// done with this operation (everything queued, or it failed).
  bool pump() {
    if (!_allQueued && _error == null) {
      if (queue.handle.isClosed) {
        _error = closedError(operation, core.isClosed ? 'worker' : 'file');
        _allQueued = true;
      } else {
        queueMore();
      }
    }
    final done = _allQueued || _error != null;
    if (done) _maybeEnd();
    return done;
  }

  void _maybeEnd() {
    if (_ended || _inFlight > 0 || !(_allQueued || _error != null)) return;
    _ended = true;
    if (_tag != 0) core.unregister(_tag);
    try {
      final error = _error;
      if (error != null) {
        completer.completeError(error);
      } else {
        completer.complete(result());
      }
    } catch (error, stack) {
      if (!completer.isCompleted) completer.completeError(error, stack);
    } finally {
      onEnd();
    }
    queue.ended(this);
  }

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    _inFlight--;
    completed(result, flags, bufferId, offset);
    if (result < 0 && _error == null) {
      _error = core.error(result, operation,
          timeout: timeout,
          closedLocally: queue.handle.isClosed,
          path: queue.path);
      // The operation failed: its other pieces would only wait out their
      // own timeouts, or (at the file position) write after the gap the
      // failed piece left. Drop them (they complete as cancelled).
      if (_inFlight > 0 && !queue.handle.isClosed) core.cancel(tag);
    }
    if (_ended) return;
    _maybeEnd();
    if (!_ended) queue.progressed();
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    _inFlight = 0;
    _tag = 0;
    abort(error);
  }
}
