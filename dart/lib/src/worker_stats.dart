/// [WorkerStats]: a snapshot of a worker's counters.
library;

import 'worker_config.dart';

/// A snapshot of a worker's counters.
final class WorkerStats {
  const WorkerStats({
    required this.opsInFlight,
    required this.socketsOpen,
    required this.buffersOutstanding,
    required this.completionsReady,
    this.completionOverflows = 0,
    this.receiveRingBuffers = 0,
    this.piecesOutstanding = 0,
    this.packsReceives = false,
  });

  /// Operations the kernel still owns (including receives waiting for
  /// buffers).
  final int opsInFlight;

  /// Open sockets (listeners and connections).
  final int socketsOpen;

  /// Buffers held by the program (unreleased payloads) or by in-flight sends;
  /// a buffer counts once however many payloads share it.
  final int buffersOutstanding;

  /// Completions ready to drain.
  final int completionsReady;

  /// Drains and flushes that found completions parked in the kernel's
  /// overflow list, the completion queue being full (0 while the queue is big
  /// enough for the load and the worker keeps half of it free).
  final int completionOverflows;

  /// Receive buffers the receive ring has grown to (it starts with up to 256,
  /// or 256 KiB of them when receives are packed, and grows by what receives
  /// that find it empty need, at most doubling, up to
  /// [WorkerConfig.receiveBufferCount]; packed, past 16 KiB per open socket,
  /// at least 1 MiB, only when they still find it empty one drain later).
  final int receiveRingBuffers;

  /// Received pieces held by the program or by in-flight sends: each
  /// unreleased payload of a stream is one (see [packsReceives]).
  final int piecesOutstanding;

  /// Whether stream receives are packed into shared buffers: each takes the
  /// next bytes of the buffer the kernel is filling (Linux 6.12+), so small
  /// payloads of many connections share buffers; otherwise each takes a
  /// whole buffer ([WorkerConfig.wholeReceiveBuffers], or an older kernel).
  final bool packsReceives;

  @override
  String toString() => 'WorkerStats(opsInFlight: $opsInFlight, '
      'socketsOpen: $socketsOpen, buffersOutstanding: $buffersOutstanding, '
      'completionsReady: $completionsReady, '
      'completionOverflows: $completionOverflows, '
      'receiveRingBuffers: $receiveRingBuffers, '
      'piecesOutstanding: $piecesOutstanding, packsReceives: $packsReceives)';
}
