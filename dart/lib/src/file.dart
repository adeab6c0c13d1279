/// [IoFile]: files opened on a worker: open, read and write at an offset or
/// at the file position, sync, allocate, truncate, stat, and whole-file read
/// streams through native buffers (the machinery is in `file_queue.dart`,
/// `file_ops.dart` and `file_read_stream.dart`).
library;

import 'dart:ffi';
import 'dart:typed_data';

import 'package:ffi/ffi.dart';

import 'buffers.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/file_handles.dart';
import 'file_info.dart';
import 'file_ops.dart';
import 'file_queue.dart';
import 'file_read_stream.dart';
import 'futures.dart';
import 'single_op.dart';
import 'timeouts.dart';
import 'worker.dart';
import 'worker_core.dart';

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
      : _queue = FileQueue(core, handle, path);

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
    final op = SingleOp<FileInfo>(core, 'stat', (_, __) => fileInfoOf(out.ref),
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
      // The worker closed after the open completed, before the read started:
      // the stream ends quietly too (checked in the same turn as the listen).
      if (owner.isClosed && !closedAtListen) return;
      yield* file.readStream(offset: start, window: window, timeout: timeout);
    } finally {
      await file.close();
    }
  }

  final FileQueue _queue;
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
    return handledFuture(_queue.add(ReadOp(_queue, length, offset, timeout)));
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
    return ReadStream<T>(_queue, () => isClosed, offset, window, timeout,
            timeoutMs, convert)
        .controller
        .stream;
  }

  Uint8List _copyOut(int bufferId, int offset, int length) {
    final core = _queue.core;
    final bytes = core.buffers.copy(bufferId, offset, length);
    core.releaseBuffer(bufferId, offset);
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
        _queue.add(WriteOp(_queue, data, offset, timeout)));
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
    final op = PayloadWriteOp(_queue, payload.bufferId, payload.offset,
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
        () => fileInfoOf(out.ref),
        onEnd: () => calloc.free(out));
  }

  /// Completes when every operation called before it ended; fails with the
  /// first write error since the last flush, if any.
  Future<void> flush() => handledFuture(_flush());

  Future<void> _flush() async {
    final refusal = _refusal('flush');
    if (refusal != null) throw refusal;
    await _queue.add(Barrier(_queue));
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
      await _queue.add(Barrier(_queue));
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
        SingleFileOp<T>(_queue, operation, timeout, submit, result, onEnd)));
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
