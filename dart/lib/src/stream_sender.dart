/// [StreamSender]: the sending side of a stream connection, its writes,
/// payload sends and shutdown in order with back-pressure.
library;

import 'dart:async';
import 'dart:math' as math;

import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/socket_handles.dart';
import 'futures.dart';
import 'timeouts.dart';
import 'worker_core.dart';

/// One queued write, payload send or shutdown.
final class Outbound {
  Outbound.bytes(List<int> this.data, this.timeout)
      : bufferId = -1,
        offset = 0,
        length = data.length,
        isShutdown = false;

  Outbound.buffer(this.bufferId, this.offset, this.length, this.timeout)
      : data = null,
        isShutdown = false;

  Outbound.shutdown()
      : data = null,
        bufferId = -1,
        offset = 0,
        length = 0,
        timeout = null,
        isShutdown = true;

  /// Bytes to copy into send buffers (a write) until all of them are queued,
  /// then null: the entry may stay the sender's last one (for
  /// [StreamSender.flush]) until it was sent or the next write, and must not
  /// keep the writer's bytes alive.
  List<int>? data;

  /// Whether a host-owned buffer is sent as is (a payload).
  bool get isBuffer => bufferId >= 0;

  /// A host-owned buffer to send as is (a payload), or -1.
  final int bufferId;

  /// Where the bytes start in [bufferId]: a payload's piece starts there (it
  /// is released with it); 0 for a send buffer.
  final int offset;
  final int length;
  final Duration? timeout;
  final bool isShutdown;

  /// Told the outcome (null: sent) instead of a future, when set before the
  /// entry is queued.
  void Function(Object? error)? onDone;

  /// Created only when someone asks for [future].
  Completer<void>? _completer;

  /// The outcome once known: [_sent], or the error.
  static const Object _sent = Object();
  Object? _outcome;

  /// Bytes of [data] already copied and queued.
  int position = 0;

  /// Native operations of this entry not completed yet.
  int inFlight = 0;

  /// The next entry of its sender (see [StreamSender]).
  Outbound? next;

  /// Everything of this entry was queued natively.
  bool submitted = false;

  /// Completes when the entry was sent; fails with its error.
  Future<void> get future {
    final outcome = _outcome;
    if (outcome == null) return (_completer ??= Completer<void>()).future;
    return identical(outcome, _sent)
        ? Future<void>.value()
        : Future<void>.error(outcome);
  }

  void complete() {
    if (_outcome != null) return;
    _outcome = _sent;
    _completer?.complete();
    onDone?.call(null);
  }

  void fail(TransportException error) {
    if (_outcome != null) return;
    _outcome = error;
    _completer?.completeError(error);
    onDone?.call(error);
  }
}

/// The sending side of a connection: one tag for all its sends and its
/// shutdown (the native library runs them in order, one at a time, so their
/// completions arrive in the order they were queued).
///
/// Its entries form one list through [Outbound.next], in order: from
/// [_head], those with native operations in flight (each completes when its
/// last one did), then from [_next] those not yet (completely) queued
/// natively. The entry at [_next] may have operations in flight too (cut
/// into several sends and stopped at the per-connection limit). No queue
/// objects: an idle connection keeps three null fields.
final class StreamSender implements CompletionHandler, SendBufferWaiter {
  StreamSender(this._core, this._socket);

  final WorkerCore _core;
  final SocketHandle _socket;

  /// Whether the connection's owner asked to close it (a failure then
  /// counts as caused locally); set by the connection.
  bool closeRequested = false;

  /// The oldest entry not completed, and the last one.
  Outbound? _head;
  Outbound? _tail;

  /// The first entry not yet (completely) queued natively.
  Outbound? _next;

  /// Native operations in flight.
  int _ops = 0;

  int _tag = 0;
  bool _waiting = false;

  /// Stopped at the per-connection limit of send buffers in flight.
  bool _throttled = false;
  TransportException? _error;
  Outbound? _last;

  /// Whether writes are queued or in flight.
  bool get hasPending => _head != null;

  Future<void> enqueue(Outbound entry) {
    final future = handledFuture(entry.future);
    enqueueQuietly(entry);
    return future;
  }

  /// Queues [entry], whose [Outbound.onDone] is told the outcome (at once
  /// when the sender failed already): no future.
  void enqueueQuietly(Outbound entry) {
    final error = _error;
    if (error != null) {
      if (entry.isBuffer) {
        _core.releaseBuffer(entry.bufferId, entry.offset);
      }
      entry.fail(error);
      return;
    }
    _add(entry);
  }

  void _add(Outbound entry) {
    // An empty write would queue no operation, so no completion would ever
    // take it off the list (the connection's write returns flush instead).
    assert(entry.data?.isNotEmpty ?? true, 'an empty write reached the sender');
    final tail = _tail;
    if (tail == null) {
      _head = entry;
    } else {
      tail.next = entry;
    }
    _tail = entry;
    _next ??= entry;
    _last = entry;
    if (!_waiting) _pump();
  }

  Future<void> flush() {
    final last = _last;
    final error = _error;
    if (last == null) {
      return error == null ? Future<void>.value() : failedFuture(error);
    }
    return handledFuture(last.future);
  }

  void _pump() {
    final core = _core;
    while (true) {
      final entry = _next;
      if (entry == null) return;
      if (core.isClosed) {
        _abort(closedError('write', 'worker'));
        return;
      }
      if (_tag == 0) _tag = core.register(this);
      final timeoutMs = timeoutMillis(entry.timeout, 'timeout');
      final data = entry.data;
      if (data != null) {
        while (entry.position < data.length) {
          if (_ops >= core.sendBufferLimit) {
            // This connection's share of the send buffers is in flight: go
            // on when one of its sends completes (onCompletion).
            _throttled = true;
            return;
          }
          final id = acquireSendBuffer(core, this);
          if (id < 0) {
            _waiting = id == -Errno.enobufs;
            if (!_waiting) _abort(core.error(id, 'write'));
            return;
          }
          final n =
              math.min(core.buffers.bufferSize, data.length - entry.position);
          core.buffers.fill(id, data, entry.position, n);
          final rc = _socket.send(id, 0, n, _tag, timeoutMs);
          if (rc < 0) {
            core.buffers.release(id);
            _abort(core.error(rc, 'write', closedLocally: closeRequested));
            return;
          }
          entry.position += n;
          _queued(entry);
        }
        entry.data = null;
      } else if (entry.isShutdown) {
        final rc = _socket.shutdown(IOT_SHUTDOWN_WRITE, _tag);
        if (rc < 0) {
          _abort(core.error(rc, 'shutdown', closedLocally: closeRequested));
          return;
        }
        _queued(entry);
      } else {
        final rc = _socket.send(
            entry.bufferId, entry.offset, entry.length, _tag, timeoutMs);
        if (rc < 0) {
          // The buffer is still ours when the send was refused: _abort
          // releases it with the other entries not queued natively (this
          // one is still [_next]).
          _abort(core.error(rc, 'write', closedLocally: closeRequested));
          return;
        }
        _queued(entry);
      }
      entry.submitted = true;
      _next = entry.next;
    }
  }

  /// One more native operation of [entry] was queued.
  void _queued(Outbound entry) {
    entry.inFlight += 1;
    _ops += 1;
    _core.submitted();
  }

  @override
  void onSendBufferAvailable() {
    _waiting = false;
    if (_error == null) _pump();
  }

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    if (_ops == 0) return;
    // Completions come in order: this one is of the oldest entry with
    // operations in flight, the head.
    final entry = _head!;
    entry.inFlight -= 1;
    _ops -= 1;
    if (entry.inFlight == 0 && !identical(entry, _next)) _pop(entry);
    if (result < 0) {
      _abort(_core.error(
          result, kind == IOT_KIND_SHUTDOWN ? 'shutdown' : 'write',
          timeout: entry.timeout, closedLocally: _socket.isClosed));
      // Its last operation is no longer in flight (and the entry no longer
      // in the list) where _abort fails entries: fail it with the error that
      // won.
      entry.fail(_error!);
      _idle(tag);
      return;
    }
    if (_throttled && _error == null) {
      _throttled = false;
      if (!_waiting) _pump();
    }
    _idle(tag);
    if (entry.inFlight == 0 && entry.submitted) {
      // An idle connection keeps no entry (nor its future) alive: flush has
      // nothing to wait for once the last entry was sent.
      if (identical(entry, _last)) _last = null;
      // Last: what the entry's owner does next (write more) finds this
      // sender's state settled.
      entry.complete();
    }
  }

  /// Removes [entry], the head, whose operations all completed.
  void _pop(Outbound entry) {
    final next = entry.next;
    entry.next = null;
    _head = next;
    if (next == null) _tail = null;
  }

  void _idle(int tag) {
    if (_ops == 0 && _next == null) {
      // Idle: no tag registered, so the worker does not keep the isolate
      // alive for this connection; the next write registers a new one.
      _core.unregister(tag);
      _tag = 0;
    }
  }

  /// Fails every entry (first error wins) and stops sending.
  void _abort(TransportException error) {
    final first = _error == null;
    final failure = _error ??= error;
    if (first && _tag != 0 && !_socket.isClosed) {
      // Drop the sends still queued natively behind the failed one.
      _core.cancel(_tag);
    }
    final unsent = _next;
    final failed = <Outbound>[];
    Outbound? beforeUnsent;
    for (var e = _head; e != null; e = e.next) {
      failed.add(e);
      if (identical(e.next, unsent)) beforeUnsent = e;
    }
    // Drop the entries not queued natively, but the first of them when it
    // still has operations in flight (it leaves the list once they
    // completed).
    if (unsent != null) {
      for (var e = unsent.inFlight > 0 ? unsent.next : unsent;
          e != null;
          e = e.next) {
        if (e.isBuffer && !_core.isClosed) {
          _core.releaseBuffer(e.bufferId, e.offset);
        }
      }
      final keep = unsent.inFlight > 0 ? unsent : beforeUnsent;
      if (keep == null) {
        _head = _tail = null;
      } else {
        keep.next = null;
        _tail = keep;
      }
      _next = null;
    }
    // Last: an owner told of the failure may close the connection, which
    // aborts again.
    for (final entry in failed) {
      entry.fail(failure);
    }
  }

  /// The connection was closed locally.
  void onClosed(TransportClosedException error) {
    _abort(error);
    if (_ops == 0 && _tag != 0) {
      _core.unregister(_tag);
      _tag = 0;
    }
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    _abort(error);
    _head = _tail = _next = null;
    _ops = 0;
    _tag = 0;
  }
}
