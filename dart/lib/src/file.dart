/// Files: open, read and write at an offset or at the file position, sync,
/// allocate, truncate, stat, and whole-file read streams through native
/// buffers.
library;

import 'dart:async';
import 'dart:collection';
import 'dart:ffi';
import 'dart:math' as math;
import 'dart:typed_data';

import 'package:ffi/ffi.dart';

import 'buffers.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/file_handles.dart';
import 'futures.dart';
import 'single_op.dart';
import 'timeouts.dart';
import 'worker.dart';
import 'worker_core.dart';

/// Most native reads or writes one call keeps in flight (each holds one
/// send buffer of the worker).
const int _maxChunksInFlight = 16;

/// Permission bits of a file [IoFile.open] creates: `0644` (less the umask).
const int defaultFilePermissions = 0x1a4;

/// How [IoFile.open] opens a file.
enum IoFileMode {
  /// Reading only; the file must exist.
  read(IOT_OPEN_READ),

  /// Reading and writing; created if missing, truncated to length 0.
  write(IOT_OPEN_READ | IOT_OPEN_WRITE | IOT_OPEN_CREATE | IOT_OPEN_TRUNCATE),

  /// Reading and writing; created if missing, its contents kept.
  readWrite(IOT_OPEN_READ | IOT_OPEN_WRITE | IOT_OPEN_CREATE),

  /// Reading and writing; created if missing; every write lands at the end
  /// of the file, whatever its offset (`O_APPEND`).
  append(IOT_OPEN_READ | IOT_OPEN_WRITE | IOT_OPEN_CREATE | IOT_OPEN_APPEND),

  /// Writing only; created if missing, truncated to length 0.
  writeOnly(IOT_OPEN_WRITE | IOT_OPEN_CREATE | IOT_OPEN_TRUNCATE),

  /// Writing only; created if missing; every write lands at the end.
  writeOnlyAppend(IOT_OPEN_WRITE | IOT_OPEN_CREATE | IOT_OPEN_APPEND);

  const IoFileMode(this._flags);

  /// `IOT_OPEN_*` bits.
  final int _flags;
}

/// What [IoFile.stat] and [IoFile.statPath] report.
final class FileInfo {
  FileInfo._(iot_file_info info)
      : size = info.size,
        allocated = info.allocated,
        accessed = _time(info.accessed_sec, info.accessed_nsec),
        modified = _time(info.modified_sec, info.modified_nsec),
        changed = _time(info.changed_sec, info.changed_nsec),
        mode = info.mode;

  static DateTime _time(int seconds, int nanoseconds) =>
      DateTime.fromMicrosecondsSinceEpoch(
          seconds * 1000000 + nanoseconds ~/ 1000);

  /// Length in bytes.
  final int size;

  /// Bytes of storage allocated: more than [size] after [IoFile.allocate],
  /// less for a sparse file.
  final int allocated;

  /// Last access (local time).
  final DateTime accessed;

  /// Last modification of the contents (local time).
  final DateTime modified;

  /// Last change of the contents or the metadata (local time).
  final DateTime changed;

  /// File type and permission bits, as `st_mode`.
  final int mode;

  /// The permission bits (`mode & 07777`).
  int get permissions => mode & 0xfff;

  /// Whether it is a regular file.
  bool get isFile => (mode & 0xf000) == 0x8000;

  /// Whether it is a directory.
  bool get isDirectory => (mode & 0xf000) == 0x4000;

  @override
  String toString() => 'FileInfo(size: $size, modified: $modified, '
      'mode: 0${mode.toRadixString(8)})';
}

/// A file opened on a worker.
///
/// Every operation returns a future and takes an optional `timeout` (for a
/// read, each native read of at most `Worker.bufferSize` bytes; for a write,
/// each native write). Reads and writes move through the worker's send
/// buffers: large ones are cut into buffer-size pieces (several in flight
/// at explicit offsets), and when every send buffer is in use they wait for
/// one, in call order.
///
/// **Offsets.** Given an `offset`, a read or write works there and leaves
/// the file position alone. Without one it works at the file position and
/// moves it, like `read(2)`/`write(2)`; in [IoFileMode.append] mode every
/// write lands at the end whatever its offset.
///
/// **Order.** Operations start in call order. Reads and writes run
/// concurrently with each other ([read] at an explicit offset does not see
/// a [write] still in flight); [sync], [allocate], [truncate], [stat] and
/// [flush] each wait until everything called before them ended, and
/// everything called after them waits for them. So `write` then `sync`
/// covers the write, and `truncate` then `write` writes after the truncate.
///
/// **Errors** are [TransportException]s with the kernel's errno: writing a
/// file opened read-only fails with 9 (`EBADF`), reading a directory with
/// 21 (`EISDIR`). An ignored write future never causes an uncaught error;
/// [flush] and [close] report the first write error since the last flush.
final class IoFile {
  IoFile._(WorkerCore core, FileHandle handle, this.path)
      : _queue = _FileQueue(core, handle, path);

  /// Opens the file at [path] in [mode].
  ///
  /// With [exclusive] (only for a mode that creates the file), opening fails
  /// with errno 17 (`EEXIST`) when the file exists. A file created here gets
  /// [permissions] (less the process umask). A missing file fails with errno
  /// 2 (`ENOENT`), a directory opened for writing with 21 (`EISDIR`).
  /// Opening a FIFO waits for its other end: bound it with [timeout].
  static Future<IoFile> open(String path,
      {IoFileMode mode = IoFileMode.read,
      bool exclusive = false,
      int permissions = defaultFilePermissions,
      Duration? timeout,
      Worker? worker}) {
    RangeError.checkValueInInterval(permissions, 0, 0xfff, 'permissions');
    var flags = mode._flags;
    if (exclusive) {
      if (flags & IOT_OPEN_CREATE == 0) {
        throw ArgumentError.value(
            exclusive, 'exclusive', 'needs a mode that creates the file');
      }
      flags |= IOT_OPEN_EXCLUSIVE;
    }
    final timeoutMs = timeoutMillis(timeout, 'timeout');
    final core = workerCore(worker ?? Worker.current);
    final op = SingleOp<IoFile>(core, 'open', (_, handle) {
      if (handle == 0) {
        throw core.error(-Errno.ecanceled, 'open', path: path);
      }
      return IoFile._(core, FileHandle(core.handle, handle), path);
    }, timeout: timeout, path: path);
    return op.start((tag) => core.handle.openFile(
        core.scratchFor('open').path(path),
        flags,
        permissions,
        tag,
        timeoutMs));
  }

  /// Stats the file at [path] (following symbolic links) without opening
  /// it. A missing path fails with errno 2 (`ENOENT`).
  static Future<FileInfo> statPath(String path,
      {Duration? timeout, Worker? worker}) {
    final timeoutMs = timeoutMillis(timeout, 'timeout');
    final core = workerCore(worker ?? Worker.current);
    final out = calloc<iot_file_info>();
    final op = SingleOp<FileInfo>(core, 'stat', (_, __) => FileInfo._(out.ref),
        timeout: timeout, onEnd: () => calloc.free(out), path: path);
    return op.start((tag) => core.handle
        .statPath(core.scratchFor('stat').path(path), out, tag, timeoutMs));
  }

  /// The whole file at [path] (from byte [start]) as a stream of chunks of
  /// at most `Worker.bufferSize` bytes, read through the worker's native
  /// buffers: see [readStream]. The file is opened on listen and closed when
  /// the stream ends or the subscription is cancelled.
  static Stream<Uint8List> openRead(String path,
      {int start = 0,
      int window = 0,
      Duration? timeout,
      Worker? worker}) async* {
    final owner = worker ?? Worker.current;
    final closedAtListen = owner.isClosed;
    final IoFile file;
    try {
      file = await IoFile.open(path, timeout: timeout, worker: owner);
    } on TransportClosedException {
      // Listened to on a closed worker, the stream fails, as any stream
      // does. The worker closed while the file was opening: the stream ends
      // quietly, as every stream of a worker that closes does.
      if (closedAtListen) rethrow;
      return;
    }
    try {
      yield* file.readStream(offset: start, window: window, timeout: timeout);
    } finally {
      await file.close();
    }
  }

  final _FileQueue _queue;
  bool _closing = false;
  Future<void>? _closeFuture;

  /// The path the file was opened with.
  final String path;

  /// Whether [close] was called (or the worker was closed).
  bool get isClosed => _closing || _queue.handle.isClosed;

  // ------------------------------------------------------------ reading

  /// Reads up to [length] bytes at [offset] (null: at the file position,
  /// which moves past them). Fewer bytes come back only at the end of the
  /// file (none at or past it) or from a pipe that had fewer ready.
  Future<Uint8List> read(int length, {int? offset, Duration? timeout}) {
    RangeError.checkNotNegative(length, 'length');
    _checkOffset(offset);
    final refusal = _refusal('read', needsBuffers: true);
    if (refusal != null) {
      final failed = Future<Uint8List>.error(refusal);
      return handledFuture(failed);
    }
    if (length == 0) return Future<Uint8List>.value(Uint8List(0));
    return handledFuture(_queue.add(_ReadOp(_queue, length, offset, timeout)));
  }

  /// The file from byte [offset] to its end, as a single-subscription stream
  /// of fresh copies of chunks of at most `Worker.bufferSize` bytes.
  ///
  /// One native read stream runs ahead of the listener by at most [window]
  /// chunks (0: a quarter of the worker's receive buffers), in receive
  /// buffers. Pausing the subscription keeps the chunks that arrive in their
  /// native buffers, so the read stream stops when [window] of them are
  /// held and goes on when the subscription resumes. Cancelling stops it.
  /// [timeout] bounds each chunk's read. Closing the file ends the stream.
  Stream<Uint8List> readStream(
          {int offset = 0, int window = 0, Duration? timeout}) =>
      _stream<Uint8List>(offset, window, timeout, _copyOut);

  /// As [readStream], but each chunk is a [Payload]: a view of the native
  /// buffer itself, no copy. **Release every payload** (or hand it to
  /// [writePayload] or `StreamConnection.writePayload`, which write the
  /// buffer itself); the read stream counts held payloads against [window].
  Stream<Payload> readPayloads(
          {int offset = 0, int window = 0, Duration? timeout}) =>
      _stream<Payload>(offset, window, timeout, _payload);

  Stream<T> _stream<T>(int offset, int window, Duration? timeout,
      T Function(int bufferId, int offset, int length) convert) {
    RangeError.checkNotNegative(offset, 'offset');
    RangeError.checkValueInInterval(window, 0, 0xffffffff, 'window');
    final timeoutMs = timeoutMillis(timeout, 'timeout');
    return _ReadStream<T>(this, offset, window, timeout, timeoutMs, convert)
        .controller
        .stream;
  }

  Uint8List _copyOut(int bufferId, int offset, int length) {
    final core = _queue.core;
    final bytes = core.buffers.copy(bufferId, offset, length);
    core.releaseBuffer(bufferId);
    return bytes;
  }

  Payload _payload(int bufferId, int offset, int length) {
    final core = _queue.core;
    return Payload.internal(
        core, bufferId, offset, core.buffers.view(bufferId, offset, length));
  }

  // ------------------------------------------------------------ writing

  /// Writes all of [data] at [offset] (null: at the file position, which
  /// moves past it); completes when every byte was written.
  ///
  /// [data] is read while it is being written: do not modify it until the
  /// future completes.
  Future<void> write(List<int> data, {int? offset, Duration? timeout}) {
    _checkOffset(offset);
    final refusal = _refusal('write', needsBuffers: true);
    if (refusal != null) return failedFuture(refusal);
    if (data.isEmpty) return Future<void>.value();
    return handledFuture(
        _queue.add(_WriteOp(_queue, data, offset, timeout)));
  }

  /// Writes the bytes of [payload] (of this file's worker: a chunk of
  /// [readPayloads], or bytes received on a connection) without copying
  /// them: its native buffer itself is written, and returns to the pool when
  /// the write is done. The payload counts as released from this call on.
  /// Throws a [StateError] if it was already released.
  Future<void> writePayload(Payload payload,
      {int? offset, Duration? timeout}) {
    if (!identical(payload.owner, _queue.core)) {
      throw ArgumentError.value(
          payload, 'payload', 'belongs to another worker');
    }
    _checkOffset(offset);
    final op = _PayloadWriteOp(_queue, payload.bufferId, payload.offset,
        payload.length, offset, timeout);
    if (payload.isReleased) throw StateError('payload was already released');
    final refusal = _refusal('write');
    if (refusal != null) {
      payload.release(); // a no-op once the worker is closed
      return failedFuture(refusal);
    }
    if (!payload.takeForSend()) {
      throw StateError('payload was already released');
    }
    return handledFuture(_queue.add(op));
  }

  // ------------------------------------------------------------ the rest

  /// Flushes the file's data and metadata to storage (`fsync`; with
  /// [dataOnly], only what reading the data back needs: `fdatasync`), after
  /// every operation called before.
  Future<void> sync({bool dataOnly = false, Duration? timeout}) {
    final flags = dataOnly ? IOT_SYNC_DATA_ONLY : 0;
    return _single<void>(
        'sync',
        timeout,
        (core, file, tag, ms) => file.sync(flags, tag, ms),
        () {});
  }

  /// Allocates storage for [length] bytes at [offset] (`fallocate`), so
  /// later writes there cannot fail for lack of space. The file grows to
  /// `offset + length` if shorter, unless [keepSize].
  Future<void> allocate(int offset, int length,
      {bool keepSize = false, Duration? timeout}) {
    RangeError.checkNotNegative(offset, 'offset');
    RangeError.checkNotNegative(length, 'length');
    final mode = keepSize ? 1 : 0; // FALLOC_FL_KEEP_SIZE
    return _single<void>(
        'allocate',
        timeout,
        (core, file, tag, ms) => file.allocate(mode, offset, length, tag, ms),
        () {});
  }

  /// Cuts (or extends, with zeros) the file to [length] bytes.
  ///
  /// Needs Linux 6.9 or later (`IORING_OP_FTRUNCATE`); older kernels fail
  /// with an [IoUringUnavailableException].
  Future<void> truncate(int length, {Duration? timeout}) {
    RangeError.checkNotNegative(length, 'length');
    return _single<void>(
        'truncate',
        timeout,
        (core, file, tag, ms) => file.truncate(length, tag, ms),
        () {});
  }

  /// The file's size, times and mode, after every operation called before.
  Future<FileInfo> stat({Duration? timeout}) {
    timeoutMillis(timeout, 'timeout'); // before anything is allocated
    final out = calloc<iot_file_info>();
    return _single<FileInfo>(
        'stat',
        timeout,
        (core, file, tag, ms) => file.stat(out, tag, ms),
        () => FileInfo._(out.ref),
        onEnd: () => calloc.free(out));
  }

  /// Completes when every operation called before it ended; fails with the
  /// first write error since the last flush, if any.
  Future<void> flush() => handledFuture(_flush());

  Future<void> _flush() async {
    final refusal = _refusal('flush');
    if (refusal != null) throw refusal;
    await _queue.add(_Barrier(_queue));
    final error = _queue.takeWriteError();
    if (error != null) throw error;
  }

  /// Waits until every operation called before ended, then closes the file
  /// (read streams of it end). Fails with the first write error since the
  /// last [flush], if any; the file is closed either way. Idempotent.
  Future<void> close() => _closeFuture ??= handledFuture(_close());

  Future<void> _close() async {
    _closing = true;
    try {
      await _queue.add(_Barrier(_queue));
    } on TransportClosedException {
      // The worker closed, and the file with it.
    } finally {
      _queue.handle.close();
    }
    final error = _queue.takeWriteError();
    if (error != null) throw error;
  }

  Future<T> _single<T>(
      String operation,
      Duration? timeout,
      int Function(WorkerCore core, FileHandle file, int tag, int timeoutMs)
          submit,
      T Function() result,
      {void Function()? onEnd}) {
    final refusal = _refusal(operation);
    if (refusal != null) {
      onEnd?.call();
      final failed = Future<T>.error(refusal);
      return handledFuture(failed);
    }
    return handledFuture(_queue.add(
        _SingleFileOp<T>(_queue, operation, timeout, submit, result, onEnd)));
  }

  void _checkOffset(int? offset) {
    if (offset != null) RangeError.checkNotNegative(offset, 'offset');
  }

  /// Why the file cannot take [operation] (closed, or [needsBuffers] on a
  /// worker without send buffers), or null when it can.
  Object? _refusal(String operation, {bool needsBuffers = false}) {
    final core = _queue.core;
    if (core.isClosed) return closedError(operation, 'worker');
    if (isClosed) return closedError(operation, 'file');
    if (needsBuffers && core.sendBufferCount == 0) {
      return StateError(
          'the worker has no send buffers (WorkerConfig.sendBufferCount)');
    }
    return null;
  }

  @override
  String toString() => 'IoFile($path${isClosed ? ', closed' : ''})';
}

// ------------------------------------------------------------ internals

/// The operations of one file, started in call order: reads and writes
/// overlap; an exclusive operation ([_FileOp.exclusive]) runs alone.
final class _FileQueue implements SendBufferWaiter {
  _FileQueue(this.core, this.handle, this.path);

  final WorkerCore core;
  final FileHandle handle;

  /// The file's path (for errors).
  final String path;

  /// Operations not completely queued natively, in call order.
  final Queue<_FileOp<Object?>> _pending = Queue<_FileOp<Object?>>();

  /// Operations started and not ended.
  int _running = 0;
  bool _exclusiveRunning = false;
  bool _waiting = false;
  bool _pumping = false;

  /// The first write error since the last [takeWriteError].
  Object? _writeError;

  Future<T> add<T>(_FileOp<T> op) {
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
  int? takeBuffer(_FileOp<Object?> op) {
    final id = acquireSendBuffer(core, this);
    if (id >= 0) return id;
    _waiting = id == -Errno.enobufs;
    if (!_waiting) op.refused(id);
    return null;
  }

  /// [op] completed a native operation and may queue more.
  void progressed() => _pump();

  /// [op] is over.
  void ended(_FileOp<Object?> op) {
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
abstract base class _FileOp<T> implements CompletionHandler {
  _FileOp(this.queue, this.operation, this.timeout)
      : timeoutMs = timeoutMillis(timeout, 'timeout');

  final _FileQueue queue;
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
  /// [_FileQueue.takeBuffer] found no buffer, or with enough in flight.
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

/// A read or write of [total] bytes in pieces of at most one buffer each,
/// at [offset] (null: at the file position).
abstract base class _Pieces<T> extends _FileOp<T> {
  _Pieces(_FileQueue queue, String operation, this.total, this.offset,
      Duration? timeout)
      : super(queue, operation, timeout);

  final int total;
  final int? offset;

  /// Bytes queued so far.
  int _queuedBytes = 0;

  /// Most pieces in flight at once.
  int get limit => _maxChunksInFlight;

  /// Whether no more pieces are needed.
  bool get finished => _queuedBytes >= total;

  /// Queues the native operation of the piece of [length] bytes that starts
  /// [position] bytes into the operation (at file offset [at]), in host
  /// buffer [bufferId]; returns the call's result.
  int submitPiece(int bufferId, int position, int length, int at);

  @override
  void queueMore() {
    final start = offset;
    final size = core.buffers.bufferSize;
    while (!finished) {
      if (inFlight >= limit) return;
      final id = queue.takeBuffer(this);
      if (id == null) return;
      final n = math.min(size, total - _queuedBytes);
      final at = start == null ? IOT_OFFSET_CURRENT : start + _queuedBytes;
      final rc = submitPiece(id, _queuedBytes, n, at);
      if (rc < 0) {
        core.releaseBuffer(id); // a refused call leaves the buffer with us
        refused(rc);
        return;
      }
      _queuedBytes += n;
      queued();
    }
    allQueued();
  }
}

/// A read of up to [total] bytes.
final class _ReadOp extends _Pieces<Uint8List> {
  _ReadOp(_FileQueue queue, int length, int? offset, Duration? timeout)
      : super(queue, 'read', length, offset, timeout);

  /// A piece came back short: the end of the file (or of what a pipe had).
  bool _short = false;

  /// Per piece, in file order: its size and what came back.
  final List<int> _sizes = <int>[];
  final List<Uint8List?> _pieces = <Uint8List?>[];

  /// Which piece each lent buffer holds.
  final Map<int, int> _pieceOfBuffer = <int, int>{};

  // At the file position the native reads run one after the other anyway,
  // and a short one must end the read before the next is asked for.
  @override
  int get limit => offset == null ? 1 : _maxChunksInFlight;

  @override
  bool get finished => _short || super.finished;

  @override
  int submitPiece(int bufferId, int position, int length, int at) {
    final rc = file.read(bufferId, 0, length, at, tag, timeoutMs);
    if (rc >= 0) {
      _pieceOfBuffer[bufferId] = _pieces.length;
      _pieces.add(null);
      _sizes.add(length);
    }
    return rc;
  }

  @override
  void completed(int result, int flags, int bufferId, int offset) {
    if (flags & IOT_COMPLETION_BUFFER == 0) return;
    final piece = _pieceOfBuffer.remove(bufferId);
    if (piece != null && result >= 0) {
      _pieces[piece] = core.buffers.copy(bufferId, offset, result);
      if (result < _sizes[piece]) _short = true;
    }
    core.releaseBuffer(bufferId);
  }

  @override
  Uint8List result() {
    // The pieces up to the first short one (past the end of a file, the
    // later ones are empty).
    var count = 0;
    var length = 0;
    for (var i = 0; i < _pieces.length; i++) {
      final n = _pieces[i]?.length ?? 0;
      length += n;
      count = i + 1;
      if (n < _sizes[i]) break;
    }
    if (count == 1) return _pieces[0] ?? Uint8List(0);
    final out = Uint8List(length);
    var at = 0;
    for (var i = 0; i < count; i++) {
      final piece = _pieces[i];
      if (piece == null) continue;
      out.setRange(at, at + piece.length, piece);
      at += piece.length;
    }
    return out;
  }
}

/// What every write does: no value, and its error is also kept for the
/// next [IoFile.flush].
base mixin _WriteErrors on _FileOp<void> {
  @override
  void result() {}

  @override
  void onEnd() {
    final error = _error;
    if (error != null) queue.writeFailed(error);
  }
}

/// A write of [data], copied into buffers piece by piece.
final class _WriteOp extends _Pieces<void> with _WriteErrors {
  _WriteOp(_FileQueue queue, this.data, int? offset, Duration? timeout)
      : super(queue, 'write', data.length, offset, timeout);

  final List<int> data;

  @override
  int submitPiece(int bufferId, int position, int length, int at) {
    core.buffers.fill(bufferId, data, position, length);
    return file.write(bufferId, 0, length, at, tag, timeoutMs);
  }
}

/// A write of a payload's buffer itself.
final class _PayloadWriteOp extends _FileOp<void> with _WriteErrors {
  _PayloadWriteOp(_FileQueue queue, this.bufferId, this.bufferOffset,
      this.length, this.offset, Duration? timeout)
      : super(queue, 'write', timeout);

  final int bufferId;
  final int bufferOffset;
  final int length;
  final int? offset;

  /// The buffer went to the native write (which returns it to the pool).
  bool _handedOver = false;

  @override
  void queueMore() {
    final start = offset;
    final at = start == null ? IOT_OFFSET_CURRENT : start;
    final rc =
        file.write(bufferId, bufferOffset, length, at, tag, timeoutMs);
    if (rc < 0) {
      refused(rc);
      return;
    }
    _handedOver = true;
    queued();
    allQueued();
  }

  @override
  void onEnd() {
    // Still ours when the write never started or was refused.
    if (!_handedOver) core.releaseBuffer(bufferId);
    super.onEnd();
  }
}

/// An operation of one native call that moves no buffer (sync, allocate,
/// truncate, stat); it runs alone.
final class _SingleFileOp<T> extends _FileOp<T> {
  _SingleFileOp(_FileQueue queue, String operation, Duration? timeout,
      this._submit, this._result, this._onEnd)
      : super(queue, operation, timeout);

  final int Function(
      WorkerCore core, FileHandle file, int tag, int timeoutMs) _submit;
  final T Function() _result;
  final void Function()? _onEnd;

  @override
  bool get exclusive => true;

  @override
  void queueMore() {
    final rc = _submit(core, file, tag, timeoutMs);
    if (rc < 0) {
      refused(rc);
      return;
    }
    queued();
    allQueued();
  }

  @override
  T result() => _result();

  @override
  void onEnd() => _onEnd?.call();
}

/// Nothing but a place in the order: completes when every operation before
/// it ended ([IoFile.flush], [IoFile.close]).
final class _Barrier extends _FileOp<void> {
  _Barrier(_FileQueue queue) : super(queue, 'flush', null);

  @override
  bool get exclusive => true;

  @override
  void queueMore() => allQueued();

  @override
  void result() {}
}

/// A native read stream of a file into a stream of [T].
final class _ReadStream<T> implements CompletionHandler {
  _ReadStream(this.file, this.offset, this.window, this.timeout,
      this.timeoutMs, this.convert) {
    controller = StreamController<T>(
        onListen: _start, onResume: _drain, onCancel: _cancel);
  }

  final IoFile file;
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

  WorkerCore get _core => file._queue.core;
  FileHandle get _handle => file._queue.handle;

  void _start() {
    if (_done) return;
    final core = _core;
    if (core.isClosed || file.isClosed) {
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
      _endError = core.error(rc, 'read', path: file.path);
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
    for (final (id, _, _) in _held) {
      _core.releaseBuffer(id);
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
        core.releaseBuffer(bufferId);
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
          core.error(result, 'read', timeout: timeout, path: file.path);
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
