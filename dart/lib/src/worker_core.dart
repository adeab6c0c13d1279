/// The worker: one io_uring ring per isolate, driven by the isolate's event
/// loop.
///
/// One turn of the loop: the native notifier wakes the isolate (it posts the
/// worker id to a `RawReceivePort` with `Dart_PostCObject`, which is harmless
/// once the port or the isolate is gone), the worker drains completions in
/// batches into one preallocated array of `iot_completion` records read in
/// place, dispatches each to the handler registered for its tag (messages
/// from other workers go to the worker's messenger, `messenger.dart`), flushes
/// the submissions the handlers queued with one `io_uring_enter`, and arms
/// the notifier again. Operations queued outside a turn (by program code
/// running in microtasks or other events) are flushed by one microtask per
/// burst. Nothing polls and nothing uses timers to wait.
library;

import 'dart:async';
import 'dart:collection';
import 'dart:ffi';
import 'dart:isolate';
import 'dart:math' as math;
import 'dart:typed_data';

import 'package:ffi/ffi.dart';

import 'buffers.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/library.dart';
import 'ffi/native_block.dart';
import 'ffi/scratch.dart';
import 'ffi/socket_handles.dart';
import 'ffi/worker_handle.dart';
import 'futures.dart';
import 'worker_config.dart';
import 'worker_stats.dart';

/// Receives the completions of the operations queued with the tags it
/// registered ([WorkerCore.register]).
abstract interface class CompletionHandler {
  /// One completion, read in place from the completion array.
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset);

  /// The worker closed while this handler still had tags registered.
  void onWorkerClosed(TransportClosedException error);
}

/// Something waiting for a send buffer ([WorkerCore.waitForSendBuffer]).
abstract interface class SendBufferWaiter {
  /// A send completed since the waiter registered: try again.
  void onSendBufferAvailable();

  /// The worker closed while waiting.
  void onWorkerClosed(TransportClosedException error);
}

/// The worker's messaging (messenger.dart), as the core sees it: it gets every
/// messaging completion and is told when the worker closes.
abstract interface class MessagingHandler {
  /// A messaging completion ([kind] is one of `IOT_KIND_MESSAGE` ..
  /// `IOT_KIND_STOPPED`), read from the completion array.
  void onCompletion(int kind, int tag, int result, int handle);

  /// The worker closed.
  void onWorkerClosed(TransportClosedException error);

  /// Whether messaging waits for something, so the isolate must stay alive.
  bool get keepsAlive;
}

/// Size of one `iot_completion` record.
const int _recordSize = 32;

/// At most this many full batches are drained per turn before the worker
/// yields to the isolate's other events (the notifier fires again at once).
const int _maxBatchesPerTurn = 4;

/// Stream receives dispatched per turn at most; the others drained in the
/// turn wait in order for the next turns (see [WorkerCore._drainTurn]).
const int _receivesPerTurn = 64;

/// A receive budget no turn reaches.
const int _everyReceive = 1 << 30;

/// Completion records read through typed views: record i is 32 bytes at
/// 32 * i: tag u64 @0, handle u64 @8, result i32 @16, flags u32 @20,
/// buffer_id u16 @24, kind u16 @26, offset u32 @28.
final class _Records {
  _Records(this.bytes)
      : _u64 =
            bytes.buffer.asUint64List(bytes.offsetInBytes, bytes.length ~/ 8),
        _i32 = bytes.buffer.asInt32List(bytes.offsetInBytes, bytes.length ~/ 4),
        _u32 =
            bytes.buffer.asUint32List(bytes.offsetInBytes, bytes.length ~/ 4),
        _u16 =
            bytes.buffer.asUint16List(bytes.offsetInBytes, bytes.length ~/ 2);

  final Uint8List bytes;
  final Uint64List _u64;
  final Int32List _i32;
  final Uint32List _u32;
  final Uint16List _u16;

  int get length => bytes.length ~/ _recordSize;
  int tag(int i) => _u64[i * 4];
  int handle(int i) => _u64[i * 4 + 1];
  int result(int i) => _i32[i * 8 + 4];
  int flags(int i) => _u32[i * 8 + 5];
  int bufferId(int i) => _u16[i * 16 + 12];
  int kind(int i) => _u16[i * 16 + 13];
  int offset(int i) => _u32[i * 8 + 7];
}

/// The worker's machinery, shared by the transport's libraries; not part of
/// the public API.
final class WorkerCore implements PayloadOwner {
  WorkerCore._(this.bindings, this.handle, this.buffers, this._memory,
      this._capacity, this.sendBufferCount, this.sendBufferLimit,
      this._newMessaging)
      : _completions = _memory.pointer.cast<iot_completion>(),
        _records =
            _Records(_memory.pointer.asTypedList(_capacity * _recordSize));

  /// Creates the native worker and starts its notifier; [newMessaging]
  /// makes the worker's messaging when it is first needed.
  static WorkerCore open(WorkerConfig config,
      MessagingHandler Function(WorkerCore core) newMessaging) {
    final b = loadBindings();
    final size = sizeOf<iot_completion>();
    if (size != _recordSize) {
      throw StateError('iot_completion is $size bytes, expected $_recordSize');
    }
    final capacity = config.completionBatch;
    if (capacity < 1 || capacity > 65536) {
      throw RangeError.range(capacity, 1, 65536, 'completionBatch');
    }
    final scratch = NativeScratch();
    final int id;
    final int sendBuffers;
    try {
      final rc = WorkerHandle.defaultConfig(b, scratch);
      if (rc < 0) throw transportError(b, rc, 'create worker');
      final c = scratch.config.ref;
      final ring = config.ringEntries;
      if (ring != null) c.ring_entries = ring;
      final receive = config.receiveBufferCount;
      if (receive != null) c.recv_buffer_count = receive;
      final send = config.sendBufferCount;
      if (send != null) c.send_buffer_count = send;
      final bufferSize = config.bufferSize;
      if (bufferSize != null) c.buffer_size = bufferSize;
      final socketLimit = config.socketBufferLimit;
      if (socketLimit != null) c.socket_buffer_limit = socketLimit;
      if (config.wholeReceiveBuffers) c.flags |= IOT_CONFIG_WHOLE_BUFFERS;
      sendBuffers = c.send_buffer_count;
      final created = WorkerHandle.create(b, scratch);
      if (created < 0) throw transportError(b, created, 'create worker');
      id = scratch.u64.value;
    } catch (_) {
      scratch.free();
      rethrow;
    }
    final described = WorkerHandle.describeBuffers(b, id, scratch);
    if (described < 0) {
      WorkerHandle.freeUnowned(b, id);
      scratch.free();
      throw transportError(b, described, 'create worker');
    }
    final bufferSize = scratch.size.value;
    final bufferCount = scratch.count.value;
    final handle = WorkerHandle(b, id, scratch,
        externalSize: bufferSize * bufferCount);
    final pool =
        BufferPool(handle, scratch.pointer.value, bufferSize, bufferCount);
    final memory = NativeBlock(capacity * _recordSize);
    // As the native receive limit: a connection whose peer does not read
    // must not take the send buffers every other connection needs.
    final sendLimit =
        config.socketBufferLimit ?? math.max(16, sendBuffers ~/ 8);
    final core = WorkerCore._(b, handle, pool, memory, capacity, sendBuffers,
        sendLimit, newMessaging);
    core._start();
    return core;
  }

  final Bindings bindings;

  /// The owning native handle.
  final WorkerHandle handle;

  /// The native buffer pool.
  final BufferPool buffers;

  /// Number of send buffers (0: this worker cannot write).
  final int sendBufferCount;

  /// Send buffers one connection may have in flight at a time
  /// ([WorkerConfig.socketBufferLimit]; default an eighth of the send
  /// buffers, at least 16).
  final int sendBufferLimit;

  final NativeBlock _memory;
  final int _capacity;
  final Pointer<iot_completion> _completions;

  /// The completion array, read in place.
  final _Records _records;

  /// Stream receives drained and not dispatched yet (records
  /// `[_deferredHead, _deferredEnd)`), oldest first. A turn that handed out
  /// many requests lets their answers go out, and their sends complete,
  /// before it hands out more: a turn of hundreds of requests kept all of
  /// them (an HTTP request and its response buffers) alive at once, each
  /// until a later turn reached its send's completion behind the next
  /// requests, and young collections copied them all.
  _Records _deferred = _Records(Uint8List(_receivesPerTurn * _recordSize));
  int _deferredHead = 0;
  int _deferredEnd = 0;

  /// A turn for the deferred receives was posted to [_port].
  bool _turnPosted = false;

  /// Where the native notifier posts wake-ups (the worker id, an int).
  late final RawReceivePort _port;

  /// Messaging state, created on first use (or the first message).
  MessagingHandler? _messaging;
  final MessagingHandler Function(WorkerCore core) _newMessaging;

  final Map<int, CompletionHandler> _handlers = <int, CompletionHandler>{};
  final Queue<SendBufferWaiter> _sendWaiters = Queue<SendBufferWaiter>();
  int _nextTag = 1;
  bool _inTurn = false;
  bool _dispatching = false;
  bool _flushScheduled = false;
  bool _flushRetryScheduled = false;
  bool _buffersReturned = false;

  /// Whether [_port] keeps the isolate alive (see [updateKeepAlive]).
  bool _keepsAlive = true;
  bool _closed = false;
  TransportException? _failure;
  Future<void>? _closeFuture;

  /// The native worker id.
  int get id => handle.id;

  @override
  bool get isClosed => _closed;

  /// Whether the notifier's turn is dispatching completions: a handler may
  /// then call the program back at once (not when [close] drains what the
  /// kernel posted, which runs inside a call of the program's).
  bool get dispatching => _dispatching;

  /// Why the worker broke (a drain failed), or null while it is open and
  /// after [close]. Streams still read when the worker closes end quietly
  /// after [close], as a destroyed socket's do, and with an error after a
  /// failure.
  TransportException? get failure => _failure;

  /// The worker's messaging (messenger.dart), created on first use or on the
  /// first message.
  MessagingHandler get messaging => _messaging ??= _newMessaging(this);

  void _start() {
    assert(_layoutMatches());
    // A post to a port that was closed, or whose isolate is gone, is simply
    // refused: unlike a NativeCallable, an isolate that dies without closing
    // its worker can never be called into.
    _port = RawReceivePort(_onNotify, 'iouring_transport worker $id');
    final post = NativeApi.postCObject
        .cast<NativeFunction<Int8 Function(Int64, Pointer<Void>)>>();
    final rc = handle.setNotifierPort(post, _port.sendPort.nativePort);
    if (rc < 0) {
      _closed = true;
      _port.close();
      handle.free();
      _memory.free();
      throw transportError(bindings, rc, 'create worker');
    }
    handle.arm();
    updateKeepAlive();
  }

  /// Keeps the isolate alive only while this worker has work in flight (an
  /// operation, a receive or accept armed, a write waiting for a buffer) or
  /// messaging that waits for something: an idle worker, like an idle
  /// socket, does not stop a finished program from exiting. Called at the end
  /// of every turn and flush, and when a message stream gains or loses its
  /// listener.
  void updateKeepAlive() {
    if (_closed) return;
    final wanted = _handlers.isNotEmpty ||
        _sendWaiters.isNotEmpty ||
        (_messaging?.keepsAlive ?? false);
    if (wanted == _keepsAlive) return;
    _keepsAlive = wanted;
    _port.keepIsolateAlive = wanted;
  }

  /// Checks (in debug mode) that the typed views read the fields dart:ffi
  /// sees in `iot_completion`.
  bool _layoutMatches() {
    final record = _completions.ref
      ..tag = 0x0102030405060708
      ..handle = 0x1112131415161718
      ..result = -2
      ..flags = 3
      ..buffer_id = 4
      ..kind = 5
      ..offset = 6;
    final r = _records;
    final ok = r.tag(0) == 0x0102030405060708 &&
        r.handle(0) == 0x1112131415161718 &&
        r.result(0) == -2 &&
        r.flags(0) == 3 &&
        r.bufferId(0) == 4 &&
        r.kind(0) == 5 &&
        r.offset(0) == 6;
    record
      ..tag = 0
      ..handle = 0
      ..result = 0
      ..flags = 0
      ..buffer_id = 0
      ..kind = 0
      ..offset = 0;
    return ok;
  }

  // ------------------------------------------------------------ the loop

  /// The notifier fired (its message is the worker id), or the worker posted
  /// itself a turn for deferred receives (null): completions are ready.
  void _onNotify(Object? message) {
    if (_closed) return;
    _turnPosted = false;
    _dispatching = true;
    final TransportException? failure;
    try {
      failure = _drainTurn(_receivesPerTurn);
    } finally {
      _dispatching = false;
    }
    if (failure != null) {
      _fail(failure);
      return;
    }
    if (_closed) return;
    _flushNow();
    updateKeepAlive();
    // Completions that came in during the turn or its flush (a loopback send
    // completes within the flush) are drained in a turn this worker posts
    // itself: cheaper than the notifier's wake-up, and the event loop still
    // runs its microtasks and other events in between. The notifier fires
    // only for completions still in the ring, not for deferred receives.
    final armed = handle.armIfIdle() != 0;
    if ((!armed || _deferredHead < _deferredEnd) && !_turnPosted) {
      _turnPosted = true;
      _port.sendPort.send(null);
    }
  }

  /// Dispatches the deferred receives, then drains and dispatches up to
  /// [_maxBatchesPerTurn] batches of completions, all but the first
  /// [receives] stream receives (counting the deferred ones): those wait in
  /// [_deferred], in order. Returns the error of a drain that failed.
  ///
  /// Only a socket's receives wait: its sends (and everything else) complete
  /// at once, possibly before receives it got earlier, as if they had come
  /// later.
  TransportException? _drainTurn(int receives) {
    _inTurn = true;
    try {
      // A handler (or a zone's error handler it reached) may close the
      // worker: the completion array is freed then, so stop reading it.
      while (receives > 0 && _deferredHead < _deferredEnd && !_closed) {
        receives--;
        _dispatch(_deferred, _deferredHead++);
      }
      for (var batch = 0; batch < _maxBatchesPerTurn && !_closed; batch++) {
        final n = handle.drain(_completions, _capacity);
        if (n < 0) return transportError(bindings, n, 'drain');
        for (var i = 0; i < n && !_closed; i++) {
          if (_records.kind(i) == IOT_KIND_RECV) {
            if (receives == 0) {
              _defer(i);
              continue;
            }
            receives--;
          }
          _dispatch(_records, i);
        }
        if (n < _capacity) break;
      }
      // A woken waiter may give a buffer back (and wake others) in turn.
      while (_buffersReturned && !_closed) {
        _buffersReturned = false;
        _wakeSendWaiters();
      }
      return null;
    } finally {
      _inTurn = false;
    }
  }

  /// Keeps record [i] of the completion array for a later turn.
  void _defer(int i) {
    if (_deferredHead == _deferredEnd) _deferredHead = _deferredEnd = 0;
    var deferred = _deferred;
    if (_deferredEnd == deferred.length) {
      final live = _deferredEnd - _deferredHead;
      final grown = live * 2 > deferred.length
          ? _Records(Uint8List(deferred.bytes.length * 2))
          : deferred;
      grown.bytes.setRange(0, live * _recordSize, deferred.bytes,
          _deferredHead * _recordSize);
      _deferred = deferred = grown;
      _deferredHead = 0;
      _deferredEnd = live;
    }
    deferred.bytes.setRange(_deferredEnd * _recordSize,
        (_deferredEnd + 1) * _recordSize, _records.bytes, i * _recordSize);
    _deferredEnd++;
  }

  void _dispatch(_Records r, int i) {
    final tag = r.tag(i);
    final flags = r.flags(i);
    final kind = r.kind(i);
    // The buffers a send, datagram send or file write borrowed are back in
    // the pool: writers waiting for a send buffer may go on.
    if (flags & IOT_COMPLETION_BUFFERS_RETURNED != 0) _buffersReturned = true;
    // Something from another worker (IOT_KIND_MESSAGE, _PAYLOAD, _SOCKET,
    // _STOP_REQUESTED) carries the sender's tag, which may equal one
    // registered here: never route it by tag. The outcome of this worker's
    // own sends (_MESSAGE_SENT) and _STOPPED belong to the messenger, which
    // keys its sends in the upper half of the tag.
    if (_isMessaging(kind)) {
      try {
        messaging.onCompletion(kind, tag, r.result(i), r.handle(i));
      } catch (error, stack) {
        Zone.current.handleUncaughtError(error, stack);
      }
      return;
    }
    final handler = _handlers[tag];
    if (handler == null) {
      _orphan(r, i, kind, flags);
      return;
    }
    try {
      handler.onCompletion(tag, kind, r.result(i), flags, r.handle(i),
          r.bufferId(i), r.offset(i));
    } catch (error, stack) {
      Zone.current.handleUncaughtError(error, stack);
    }
  }

  static bool _isMessaging(int kind) =>
      kind == IOT_KIND_MESSAGE ||
      kind == IOT_KIND_MESSAGE_SENT ||
      kind == IOT_KIND_PAYLOAD ||
      kind == IOT_KIND_SOCKET ||
      kind == IOT_KIND_STOP_REQUESTED ||
      kind == IOT_KIND_STOPPED;

  /// A completion nobody waits for any more: give back what it carries.
  void _orphan(_Records r, int i, int kind, int flags) {
    if (flags & IOT_COMPLETION_BUFFER != 0) {
      buffers.release(r.bufferId(i), heldAt(flags, r.offset(i)));
    }
    final handle = r.handle(i);
    if (handle == 0) return;
    if (kind == IOT_KIND_ACCEPT || kind == IOT_KIND_CONNECT) {
      this.handle.closeSocket(handle);
    } else if (kind == IOT_KIND_FILE_OPEN) {
      this.handle.closeFile(handle);
    }
  }

  void _flushNow() {
    final rc = handle.flush();
    if (rc >= 0) return;
    if (rc == -Errno.eagain || rc == -Errno.ebusy || rc == -Errno.eintr) {
      // The kernel is short of room; the queued entries stay queued and go
      // out with the next flush. Make sure there is one.
      if (_flushRetryScheduled) return;
      _flushRetryScheduled = true;
      Timer.run(() {
        _flushRetryScheduled = false;
        if (!_closed) _flushNow();
      });
      return;
    }
    Zone.current.handleUncaughtError(
        transportError(bindings, rc, 'flush'), StackTrace.current);
  }

  void _flushMicrotask() {
    _flushScheduled = false;
    if (_closed) return;
    while (_buffersReturned) {
      _buffersReturned = false;
      _wakeSendWaiters();
    }
    _flushNow();
    updateKeepAlive();
  }

  // ------------------------------------------------------------ for handlers

  /// Registers [handler] for a new tag and returns the tag. Tags are never
  /// reused while the worker lives.
  int register(CompletionHandler handler) {
    final tag = _nextTag++;
    _handlers[tag] = handler;
    if (!_keepsAlive) updateKeepAlive();
    return tag;
  }

  /// Forgets [tag]; later completions with it are orphans (their buffers and
  /// sockets are given back).
  void unregister(int tag) {
    _handlers.remove(tag);
  }

  /// Call after every native call that queued a submission: flushes once at
  /// the end of the current turn, or in one microtask outside a turn.
  void submitted() {
    if (_inTurn || _flushScheduled || _closed) return;
    _flushScheduled = true;
    scheduleMicrotask(_flushMicrotask);
  }

  /// Gives the received piece of buffer [id] at [offset], or a buffer held
  /// whole (offset 0), back to the pool (resubmitting receives that were
  /// waiting for one). A send buffer given back (a file read's, a one-shot
  /// datagram receive's) wakes the send-buffer waiters at the end of the
  /// turn, or in the flush microtask outside a turn.
  @override
  void releaseBuffer(int id, [int offset = 0]) {
    if (_closed) return;
    buffers.release(id, offset);
    if (_sendWaiters.isNotEmpty) _buffersReturned = true;
    submitted();
  }

  /// Asks for [waiter] to be called after the next send completes (when
  /// `iot_buffer_acquire` said `-ENOBUFS`).
  void waitForSendBuffer(SendBufferWaiter waiter) {
    _sendWaiters.add(waiter);
    if (!_keepsAlive) updateKeepAlive();
  }

  void _wakeSendWaiters() {
    // In the order they came, until one finds the pool empty again (it
    // queued itself anew: it keeps its place at the front, and the others
    // would only find the pool empty too).
    while (_sendWaiters.isNotEmpty) {
      final waiter = _sendWaiters.removeFirst();
      final waiting = _sendWaiters.length;
      try {
        waiter.onSendBufferAvailable();
      } catch (error, stack) {
        Zone.current.handleUncaughtError(error, stack);
      }
      if (_sendWaiters.length > waiting) {
        _sendWaiters.addFirst(_sendWaiters.removeLast());
        return;
      }
    }
  }

  /// Cancels every operation with [tag]; returns the native result
  /// (`-ENOENT` when none is in flight any more).
  int cancel(int tag) {
    if (_closed) return IOT_E_BAD_HANDLE;
    final rc = handle.cancel(tag);
    submitted();
    return rc;
  }

  /// The worker's native area for call arguments and results; throws a
  /// [TransportClosedException] for [operation] once the worker is closed.
  NativeScratch scratchFor(String operation) {
    if (_closed) throw closedError(operation, 'worker');
    return handle.scratch;
  }

  /// Writes [text] (a numeric IP address: ASCII, at most 63 bytes)
  /// NUL-terminated into the scratch and returns it, for the
  /// `const char *ip` arguments.
  Pointer<Utf8> scratchText(String text) => scratchFor('address').ip(text);

  /// The local or peer ([IOT_ADDRESS_LOCAL], [IOT_ADDRESS_PEER]) address of
  /// [socket] as text (an IP, or a Unix path with `@name` for abstract names
  /// and empty when unnamed) and its port (0 for Unix). Throws the native
  /// error for [operation], or a [TransportClosedException] once the worker
  /// is closed.
  ({String address, int port}) socketAddress(
      SocketHandle socket, int which, String operation) {
    final scratch = scratchFor(operation);
    final rc = socket.address(which);
    if (rc < 0) throw error(rc, operation);
    return (address: scratch.read(rc), port: scratch.port.value);
  }

  WorkerStats stats() {
    final out = scratchFor('stats').stats;
    final rc = handle.stats();
    if (rc < 0) throw transportError(bindings, rc, 'stats');
    final s = out.ref;
    return WorkerStats(
        opsInFlight: s.ops_in_flight,
        socketsOpen: s.sockets_open,
        buffersOutstanding: s.buffers_outstanding,
        completionsReady: s.completions_ready,
        completionOverflows: s.completion_overflows,
        receiveRingBuffers: s.recv_ring_buffers,
        piecesOutstanding: s.pieces_outstanding,
        packsReceives: s.packs_receives != 0);
  }

  /// The error for a native result [code] of [operation].
  TransportException error(int code, String operation,
          {Duration? timeout,
          bool closedLocally = false,
          String? path,
          String? reason}) =>
      transportError(bindings, code, operation,
          timeout: timeout,
          closedLocally: closedLocally,
          path: path,
          reason: reason);

  // ------------------------------------------------------------ closing

  Future<void> close() {
    final existing = _closeFuture;
    if (existing != null) return existing;
    final closed = Completer<void>();
    _closeFuture = handledFuture(closed.future);
    // Completions the kernel already posted report what really happened
    // (a send that went out succeeded); only what is still in flight then
    // fails as closed. Not from inside a turn: its batch is being read.
    if (!_inTurn && !_closed) _drainTurn(_everyReceive);
    closed.complete(_shutdown(null));
    return closed.future;
  }

  /// The worker broke (a drain failed): close it, failing everything.
  void _fail(TransportException cause) {
    _closeFuture ??= handledFuture(_shutdown(cause));
  }

  Future<void> _shutdown(TransportException? cause) {
    _closed = true;
    _failure = cause;
    final handlers = _handlers.values.toSet();
    _handlers.clear();
    final waiters = _sendWaiters.toList();
    _sendWaiters.clear();
    // Remove the notifier first (this joins its thread: nothing posts any
    // more), then close the port (wake-ups already queued are dropped), then
    // free the worker.
    handle.removeNotifier();
    _port.close();
    final rc = handle.free();
    _memory.free();
    final error = TransportClosedException(
        cause == null ? 'worker closed' : 'worker failed: $cause',
        operation: 'worker');
    for (final handler in handlers) {
      try {
        handler.onWorkerClosed(error);
      } catch (e, stack) {
        Zone.current.handleUncaughtError(e, stack);
      }
    }
    for (final waiter in waiters) {
      try {
        waiter.onWorkerClosed(error);
      } catch (e, stack) {
        Zone.current.handleUncaughtError(e, stack);
      }
    }
    try {
      _messaging?.onWorkerClosed(error);
    } catch (e, stack) {
      Zone.current.handleUncaughtError(e, stack);
    }
    if (cause != null) return Future<void>.error(cause);
    if (rc < 0) {
      return Future<void>.error(transportError(bindings, rc, 'close worker'));
    }
    return Future<void>.value();
  }
}

/// Takes a free send buffer of [core]: its id, or a negative native result:
/// `-ENOBUFS` when every send buffer is in use, after queueing [waiter] to be
/// woken when one may be free; another error when the worker is closed.
int acquireSendBuffer(WorkerCore core, SendBufferWaiter waiter) {
  final id = core.buffers.acquire();
  if (id == -Errno.enobufs) core.waitForSendBuffer(waiter);
  return id;
}
