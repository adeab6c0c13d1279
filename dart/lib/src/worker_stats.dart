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
  });

  /// Operations the kernel still owns (including receives waiting for
  /// buffers).
  final int opsInFlight;

  /// Open sockets (listeners and connections).
  final int socketsOpen;

  /// Buffers held by the program (unreleased payloads) or by in-flight sends.
  final int buffersOutstanding;

  /// Completions ready to drain.
  final int completionsReady;

  /// Drains that found the completion queue full, with completions parked in
  /// the kernel's overflow list (0 while the queue is big enough for the load).
  final int completionOverflows;

  /// Receive buffers the receive ring has grown to (it starts with up to 256
  /// and doubles while receives find it empty, up to
  /// [WorkerConfig.receiveBufferCount]).
  final int receiveRingBuffers;

  @override
  String toString() => 'WorkerStats(opsInFlight: $opsInFlight, '
      'socketsOpen: $socketsOpen, buffersOutstanding: $buffersOutstanding, '
      'completionsReady: $completionsReady, '
      'completionOverflows: $completionOverflows, '
      'receiveRingBuffers: $receiveRingBuffers)';
}
