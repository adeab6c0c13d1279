/// [WorkerStats]: a snapshot of a worker's counters.
library;

/// A snapshot of a worker's counters.
final class WorkerStats {
  const WorkerStats({
    required this.opsInFlight,
    required this.socketsOpen,
    required this.buffersOutstanding,
    required this.completionsReady,
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

  @override
  String toString() => 'WorkerStats(opsInFlight: $opsInFlight, '
      'socketsOpen: $socketsOpen, buffersOutstanding: $buffersOutstanding, '
      'completionsReady: $completionsReady)';
}
