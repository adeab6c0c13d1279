/// [ReadStream]: a file read from an offset to its end as a stream of
/// chunks, the native read stream paced by the subscription.
library;

import 'dart:async';
import 'dart:collection';

import 'buffers.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/file_handles.dart';
import 'file_queue.dart';
import 'worker_core.dart';

/// A native read stream of a file into a stream of [T].
final class ReadStream<T> implements CompletionHandler {
  ReadStream(this.queue, this.isFileClosed, this.offset, this.window,
      this.timeout, this.timeoutMs, this.convert) {
    controller = StreamController<T>(
        onListen: _start, onResume: _drain, onCancel: _cancel);
  }

  /// The file's queue (its worker, handle and path).
  final FileQueue queue;

  /// Whether the file was closed.
  final bool Function() isFileClosed;
  final int offset;
  final int window;
  final Duration? timeout;
  final int timeoutMs;

  /// Owns the buffer: copies and releases it, or hands it out.
  final T Function(int bufferId, int offset, int length) convert;
  late final StreamController<T> controller;

  /// Chunks that arrived while the subscription was paused, still in their
  /// buffers (held, so the native stream stops at its window).
  final Queue<(int, int, int)> _held = Queue<(int, int, int)>();

  int _tag = 0;

  /// No more events: ended, failed or cancelled.
  bool _done = false;

  /// The native stream ended; the end is delivered after the held chunks.
  bool _ended = false;
  TransportException? _endError;

  WorkerCore get _core => queue.core;
  FileHandle get _handle => queue.handle;

  void _start() {
    if (_done) return;
    final core = _core;
    if (core.isClosed || isFileClosed()) {
      _ended = true;
      _endError =
          core.isClosed ? closedError('read', 'worker') : closedError('read', 'file');
      _drain();
      return;
    }
    final tag = core.register(this);
    final rc = _handle.readStream(offset, window, tag, timeoutMs);
    if (rc < 0) {
      core.unregister(tag);
      _ended = true;
      _endError = core.error(rc, 'read', path: queue.path);
      _drain();
      return;
    }
    _tag = tag;
    core.submitted();
  }

  void _emit(int bufferId, int at, int length) {
    try {
      controller.add(convert(bufferId, at, length));
    } catch (error, stack) {
      controller.addError(error, stack);
    }
  }

  /// Delivers the held chunks, then the end if it came.
  void _drain() {
    while (_held.isNotEmpty && !_done) {
      final (id, at, length) = _held.removeFirst();
      _emit(id, at, length);
    }
    if (!_ended || _done) return;
    final error = _endError;
    _endError = null;
    if (error != null) controller.addError(error);
    _finish();
  }

  void _finish() {
    if (_done) return;
    _done = true;
    _releaseHeld();
    unawaited(controller.close());
  }

  void _releaseHeld() {
    for (final (id, offset, _) in _held) {
      _core.releaseBuffer(id, offset);
    }
    _held.clear();
  }

  void _cancel() {
    _done = true;
    _releaseHeld();
    if (_tag != 0) _core.cancel(_tag);
  }

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    final core = _core;
    if (flags & IOT_COMPLETION_BUFFER != 0) {
      if (_done || result <= 0) {
        core.releaseBuffer(bufferId, heldAt(flags, offset));
      } else if (controller.isPaused || _held.isNotEmpty) {
        _held.add((bufferId, offset, result));
      } else {
        _emit(bufferId, offset, result);
      }
    }
    if (flags & IOT_COMPLETION_MORE != 0) return;
    core.unregister(tag);
    _tag = 0;
    if (_done) return;
    _ended = true;
    if (result < 0 && !(_handle.isClosed && result == -Errno.ecanceled)) {
      _endError =
          core.error(result, 'read', timeout: timeout, path: queue.path);
    }
    if (!controller.isPaused) _drain();
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    _tag = 0;
    _held.clear(); // the buffers went with the worker
    if (_done) return;
    if (_core.failure != null && !_handle.closeCalled) controller.addError(error);
    _finish();
  }
}
