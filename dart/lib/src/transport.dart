/// Process-wide transport operations: [Transport] (messaging support, stop
/// requests, the payload pool) and [Worker.leastLoaded].
library;

import 'dart:ffi';

import 'exception.dart';
import 'ffi/library.dart';
import 'ffi/message_calls.dart';
import 'ffi/native_block.dart';
import 'payload_pool.dart';

/// Values are unsigned 32-bit numbers.
const int _u32Max = 0xffffffff;

/// Process-wide transport operations (every worker of every isolate of the
/// process).
abstract final class Transport {
  /// Whether this kernel can message between workers (`IORING_OP_MSG_RING`
  /// with passed flags, Linux 6.3 or later). Without it, every send fails
  /// with an [IoUringUnavailableException]; everything else works.
  static bool get messagingSupported =>
      loadBindings().messagingSupported;

  /// Asks every worker of the process (those of other isolates too) to
  /// stop: each gets [value] (0..0xffffffff) on its [Worker.stopRequests]
  /// stream; workers already stopped are skipped. Returns how many workers
  /// were asked. Blocks briefly while the kernel posts the requests.
  static int requestStop([int value = 0]) {
    RangeError.checkValueInInterval(value, 0, _u32Max, 'value');
    final b = loadBindings();
    final rc = b.requestStop(value);
    if (rc < 0) throw transportError(b, rc, 'request stop');
    return rc;
  }

  /// The most bytes one [Worker.sendBytes] carries (the size of a payload).
  static int get payloadSize => PayloadPool.of(loadBindings()).size;

  /// How many payloads the pool has.
  static int get payloadCount => PayloadPool.of(loadBindings()).count;

  /// Payloads held by programs or travelling in messages, process-wide (for
  /// leak checks).
  static int get payloadsInUse {
    final b = loadBindings();
    final rc = b.payloadsInUse();
    if (rc < 0) throw transportError(b, rc, 'payloads in use');
    return rc;
  }

  /// Sets the payload pool's geometry: [count] payloads (1..1048576) of
  /// [size] bytes (1..16 MiB). Only before the pool is first used, in this
  /// or any other isolate of the process (the first [Worker.sendBytes],
  /// [payloadSize], ...); afterwards it fails with a [TransportException]
  /// whose errno is 16 (`EBUSY`). Without it the pool has 1024 payloads of
  /// 64 KiB.
  static void configurePayloads({required int size, required int count}) {
    RangeError.checkValueInInterval(size, 1, 16 << 20, 'size');
    RangeError.checkValueInInterval(count, 1, 1 << 20, 'count');
    final b = loadBindings();
    final rc = b.configurePayloads(size, count);
    if (rc < 0) throw transportError(b, rc, 'configure payloads');
  }
}

/// The worker ids of a [Worker.leastLoaded] call, plus its output (grown as
/// needed, reused across calls).
NativeBlock? _candidates;

/// [Worker.leastLoaded].
int leastLoadedWorker(List<int> workerIds) {
  final n = workerIds.length;
  if (n == 0) throw ArgumentError.value(workerIds, 'workerIds', 'is empty');
  if (n > 0xffff) {
    throw ArgumentError.value(n, 'workerIds', 'more than 65535 workers');
  }
  final b = loadBindings();
  var block = _candidates;
  if (block == null || block.size < (n + 1) * 8) {
    block?.free();
    block = _candidates = NativeBlock((n + 1) * 8);
  }
  final ids = block.pointer.cast<Uint64>();
  for (var i = 0; i < n; i++) {
    ids[i] = workerIds[i];
  }
  final out = ids + n;
  final rc = b.leastLoaded(ids, n, out);
  if (rc < 0) throw transportError(b, rc, 'least loaded');
  return out.value;
}
