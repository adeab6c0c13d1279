/// The kinds of [FileOp]: reads and writes in pieces, a payload write, a
/// single native call (sync, allocate, truncate, stat), and a barrier.
library;

import 'dart:math' as math;
import 'dart:typed_data';

import 'ffi/bindings.dart';
import 'ffi/file_handles.dart';
import 'file_queue.dart';
import 'worker_core.dart';

/// Most native reads or writes one call keeps in flight (each holds one
/// send buffer of the worker).
const int _maxChunksInFlight = 16;

/// A read or write of [total] bytes in pieces of at most one buffer each,
/// at [offset] (null: at the file position).
abstract base class Pieces<T> extends FileOp<T> {
  Pieces(FileQueue queue, String operation, this.total, this.offset,
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
final class ReadOp extends Pieces<Uint8List> {
  ReadOp(FileQueue queue, int length, int? offset, Duration? timeout)
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
base mixin WriteErrors on FileOp<void> {
  @override
  void result() {}

  @override
  void onEnd() {
    final error = this.error;
    if (error != null) queue.writeFailed(error);
  }
}

/// A write of [data], copied into buffers piece by piece.
final class WriteOp extends Pieces<void> with WriteErrors {
  WriteOp(FileQueue queue, this.data, int? offset, Duration? timeout)
      : super(queue, 'write', data.length, offset, timeout);

  final List<int> data;

  @override
  int submitPiece(int bufferId, int position, int length, int at) {
    core.buffers.fill(bufferId, data, position, length);
    return file.write(bufferId, 0, length, at, tag, timeoutMs);
  }
}

/// A write of a payload's buffer itself.
final class PayloadWriteOp extends FileOp<void> with WriteErrors {
  PayloadWriteOp(FileQueue queue, this.bufferId, this.bufferOffset,
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
    if (!_handedOver) core.releaseBuffer(bufferId, bufferOffset);
    super.onEnd();
  }
}

/// An operation of one native call that moves no buffer (sync, allocate,
/// truncate, stat); it runs alone.
final class SingleFileOp<T> extends FileOp<T> {
  SingleFileOp(FileQueue queue, String operation, Duration? timeout,
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
final class Barrier extends FileOp<void> {
  Barrier(FileQueue queue) : super(queue, 'flush', null);

  @override
  bool get exclusive => true;

  @override
  void queueMore() => allQueued();

  @override
  void result() {}
}
