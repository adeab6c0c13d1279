/// What workers send each other: [WorkerMessage]s (a tag and a value) and
/// [BytesMessage]s (bytes in a payload of the process-wide payload pool).
/// Sending and receiving them is the worker's messaging (`messenger.dart`).
library;

import 'dart:typed_data';

import 'buffers.dart';
import 'ffi/message_calls.dart';
import 'worker_core.dart';

/// A message from another worker ([Worker.sendMessage]): two unsigned 32-bit
/// numbers whose meaning the program chooses. It does not say which worker
/// sent it; a program that needs to know puts the sender's id (a worker id
/// fits in 31 bits) in the tag or the value.
final class WorkerMessage {
  const WorkerMessage(this.tag, this.value);

  /// 0..0xffffffff.
  final int tag;

  /// 0..0xffffffff.
  final int value;

  @override
  bool operator ==(Object other) =>
      other is WorkerMessage && other.tag == tag && other.value == value;

  @override
  int get hashCode => Object.hash(tag, value);

  @override
  String toString() => 'WorkerMessage(tag: $tag, value: $value)';
}

/// Bytes another worker sent ([Worker.sendBytes]), still in the payload they
/// travelled in: no copy was made.
///
/// **Release every bytes message** ([release]): until then its payload is
/// out of the process-wide pool (1024 payloads by default), and senders fail
/// with `ENOBUFS` once the pool is empty. [bytes] is a view of the payload:
/// valid until [release], and never after the worker closed (its payloads
/// then return to the pool, and may already carry someone else's bytes).
/// Copy what must outlive it. As a safety net, a bytes message that becomes
/// unreachable unreleased is released once a garbage collection found it so,
/// which may take long.
final class BytesMessage extends ReleasableBytes {
  BytesMessage._(WorkerCore owner, int payload, this.tag, Uint8List bytes)
      : super(owner, bytes, _GiveBackMessagePayload(owner, payload),
            'bytes message');

  /// The tag the sender gave, 0..0xffffffff.
  final int tag;

  @override
  String toString() => 'BytesMessage(tag: $tag, $length bytes'
      '${isReleased ? ', released' : ''})';
}

/// Gives the process-wide payload a [BytesMessage] holds back to the pool.
final class _GiveBackMessagePayload extends GiveBackOnce {
  _GiveBackMessagePayload(this.core, this.payload) : super(core);

  final WorkerCore core;
  final int payload;

  @override
  void giveBack() => core.handle.releasePayload(payload);
}

/// A [BytesMessage] of [owner] holding the first bytes of [payload] as
/// [bytes] (for the messenger; not exported).
BytesMessage newBytesMessage(
        WorkerCore owner, int payload, int tag, Uint8List bytes) =>
    BytesMessage._(owner, payload, tag, bytes);
