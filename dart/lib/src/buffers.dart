/// The worker's native buffer pool as seen from Dart, and [Payload], a
/// received buffer handed to the program without a copy.
library;

import 'dart:ffi';
import 'dart:typed_data';

import 'dropped_bytes.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/worker_handle.dart';

/// Where the piece or buffer a completion with [flags] handed over starts,
/// to release it with: its [offset] for a piece of a shared receive buffer
/// (`IOT_COMPLETION_PIECE`), else 0 (a buffer held whole, such as a
/// datagram's, whose bytes start past a header).
int heldAt(int flags, int offset) =>
    flags & IOT_COMPLETION_PIECE != 0 ? offset : 0;

/// The worker's buffer pool: buffer `id` is `size` bytes at `base + id * size`
/// (`iot_worker_buffers`). Valid until the worker is freed.
final class BufferPool {
  BufferPool(this._worker, Pointer<Uint8> base, this.bufferSize, this.count)
      : _base = base,
        _all = base.asTypedList(bufferSize * count);

  final WorkerHandle _worker;
  final Pointer<Uint8> _base;

  /// Every buffer, as one view of native memory.
  final Uint8List _all;

  /// Size of each buffer in bytes.
  final int bufferSize;

  /// Number of buffers (receive, send, and those of the spans large
  /// datagrams travel in).
  final int count;

  /// Takes a free send buffer: its id, or a negative native result
  /// (`-ENOBUFS` when every send buffer is in use).
  int acquire() {
    final result = _worker.acquireBuffer();
    return result < 0 ? result : _worker.scratch.id.value;
  }

  /// Takes a free span for one datagram of [length] bytes, more than a
  /// buffer holds: consecutive buffers named by the first one's id, filled
  /// and sent like one buffer. Its id, or a negative native result
  /// (`-ENOBUFS` when every free span is in use, `-EMSGSIZE` when [length]
  /// exceeds a span or the pool has none).
  int acquireSpan(int length) {
    final result = _worker.acquireSpan(length);
    return result < 0 ? result : _worker.scratch.id.value;
  }

  /// Gives back the received piece of buffer [id] that starts at [offset]
  /// (several receives may share a buffer), or a buffer held whole (offset
  /// 0); returns the native result.
  int release(int id, [int offset = 0]) => _worker.releaseBuffer(id, offset);

  /// Copies `bytes[start, start + length)` into buffer [id] at [offset] (on
  /// into the next buffers for a span).
  void fill(int id, List<int> bytes, int start, int length, {int offset = 0}) {
    final at = id * bufferSize + offset;
    _all.setRange(at, at + length, bytes, start);
  }

  /// A fresh copy of [length] bytes of buffer [id] from [offset] (on into
  /// the next buffers for a datagram received in a span).
  Uint8List copy(int id, int offset, int length) {
    final at = id * bufferSize + offset;
    return _all.sublist(at, at + length);
  }

  /// A view (no copy) of [length] bytes of buffer [id] from [offset]: an
  /// object of its own, so a watch on it ([DroppedBytes]) finds it dropped
  /// only when it and every view made from it are unreachable.
  Uint8List view(int id, int offset, int length) =>
      (_base + (id * bufferSize + offset)).asTypedList(length);
}

/// Bytes handed to the program in native memory (a receive buffer or a
/// payload), given back exactly once: by [release], by being handed over, or
/// eventually, after a garbage collection, if the program drops them
/// unreleased ([DroppedBytes]). [Payload] and `BytesMessage` are the two
/// kinds.
abstract base class ReleasableBytes {
  ReleasableBytes(this._owner, this._bytes, this._token, this._what) {
    _watchSlot = _dropped.watch(_bytes, _token);
  }

  static final DroppedBytes _dropped = DroppedBytes();

  /// Where [_dropped] watches [_bytes].
  late final int _watchSlot;

  final PayloadOwner _owner;
  final GiveBackOnce _token;
  final Uint8List _bytes;

  /// What this is, for error messages.
  final String _what;

  bool _released = false;

  /// The bytes: a view of native memory, valid until [release] and never
  /// after the worker was closed.
  ///
  /// Throws [StateError] after [release] and a [TransportClosedException]
  /// after the worker was closed.
  Uint8List get bytes {
    if (_released) throw StateError('$_what was released');
    if (_owner.isClosed) throw closedError(_what, 'worker');
    return _bytes;
  }

  /// Number of bytes.
  int get length => _bytes.length;

  /// Whether the bytes were released (or handed over).
  bool get isReleased => _released;

  /// Gives the native memory back. Idempotent; a no-op after the worker
  /// closed.
  void release() {
    if (_released) return;
    _released = true;
    _dropped.forget(_watchSlot);
    _token.release();
  }

  /// Marks the bytes as handed over: someone else gives the memory back now.
  /// Returns false if they were already released or the worker closed.
  bool _handOver() {
    if (_released || _owner.isClosed) return false;
    _released = true;
    _dropped.forget(_watchSlot);
    _token.done = true;
    return true;
  }
}

/// Received bytes still in the worker's native buffer: no copy was made.
///
/// **A payload must be released** ([release], or handed to
/// `TcpConnection.writePayload`, which sends the same bytes back without a
/// copy and releases them when the send is done). Small receives share
/// native buffers (each payload is a piece of one, where the kernel packs
/// receives: Linux 6.12+), and a buffer returns to the receive pool only once
/// every payload in it is released; a program that holds many payloads
/// starves its own receives, which wait (without losing data) until buffers
/// come back. One connection receives no more while it holds
/// `WorkerConfig.socketBufferLimit` payloads (32 by default, each up to a 16
/// KiB buffer), or 2 once half the pool is held: a program that gathers a
/// whole message from one connection before releasing any payload must copy
/// (`connection.listen` gives copies) or raise that limit, or it waits
/// forever.
///
/// [bytes] is a view of native memory: it is valid only until the payload is
/// released and never after its worker is closed (reading it then reads
/// recycled or unmapped memory, which can crash the process). Copy what
/// must outlive the payload (`Uint8List.fromList(payload.bytes)`). As a
/// safety net, a payload that becomes unreachable unreleased is released
/// once a garbage collection found it so, which may take long: release
/// explicitly.
final class Payload extends ReleasableBytes {
  Payload.internal(
      PayloadOwner owner, this.bufferId, this.offset, Uint8List bytes)
      : super(owner, bytes, _GiveBackPiece(owner, bufferId, offset),
            'payload');

  /// The worker the payload came from (for the transport itself).
  PayloadOwner get owner => _owner;

  /// The native buffer id (for the transport itself).
  final int bufferId;

  /// Where the bytes start inside the buffer, which other receives may share
  /// (for the transport itself).
  final int offset;

  /// Marks the payload as handed over (its buffer now belongs to a send);
  /// returns false if it was already released.
  bool takeForSend() => _handOver();
}

/// What a [Payload] needs from its worker.
abstract interface class PayloadOwner {
  bool get isClosed;

  /// Gives the received piece of buffer [id] at [offset] (or a buffer held
  /// whole, offset 0) back to the pool.
  void releaseBuffer(int id, [int offset = 0]);
}

/// Gives the native memory of [ReleasableBytes] back once, and not at all
/// once the worker is closed (closing frees or reclaims everything). One
/// object apart from the bytes, so that [DroppedBytes] can run it once they
/// are unreachable; a subclass per kind of memory, not a closure, so that
/// each received payload costs one allocation for it, not three.
abstract base class GiveBackOnce implements GiveBack {
  GiveBackOnce(this.owner);

  final PayloadOwner owner;
  bool done = false;

  @override
  void release() {
    if (done) return;
    done = true;
    if (!owner.isClosed) giveBack();
  }

  /// Gives the memory back (the worker is open).
  void giveBack();
}

/// Gives back the piece of receive buffer [bufferId] at [offset] (or a
/// buffer held whole, offset 0).
final class _GiveBackPiece extends GiveBackOnce {
  _GiveBackPiece(super.owner, this.bufferId, this.offset);

  final int bufferId;
  final int offset;

  @override
  void giveBack() => owner.releaseBuffer(bufferId, offset);
}
