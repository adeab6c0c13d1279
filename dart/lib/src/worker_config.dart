/// [WorkerConfig]: the settings of a new worker.
library;

/// Settings for a new [Worker]. A null field keeps the native library's
/// default (`iot_config_default`: 256 ring entries, 1024 receive and 256
/// send buffers of 64 KiB).
final class WorkerConfig {
  const WorkerConfig({
    this.ringEntries,
    this.receiveBufferCount,
    this.sendBufferCount,
    this.bufferSize,
    this.socketBufferLimit,
    this.completionBatch = 256,
    this.wholeReceiveBuffers = false,
  });

  /// Submission queue entries (the completion queue is sized from these and
  /// the buffer counts, so that it does not overflow).
  final int? ringEntries;

  /// Receive buffers at most, 1..32768 (default 1024). The kernel fills them
  /// through a ring that starts with 256 (256 KiB of them when receives are
  /// packed, see [wholeReceiveBuffers]) and grows when receives find it
  /// empty, by what they need, at most doubling (packed, past 16 KiB per open
  /// socket and at least 1 MiB, only when one still finds it empty a drain
  /// later: what a program sends on or releases comes back meanwhile, and the
  /// bytes wait in the socket); their memory is reserved up front, and becomes
  /// resident only as the ring grows into it.
  final int? receiveBufferCount;

  /// Buffers for sends, 0..32768. Each write is cut into chunks of
  /// [bufferSize]; when every send buffer is in flight, writes wait.
  final int? sendBufferCount;

  /// Size of every buffer in bytes, 1..16 MiB.
  final int? bufferSize;

  /// Received payloads one connection may hold at a time (received, and not
  /// yet released or sent on; each keeps at most one buffer out of the
  /// pool); at the limit it stops receiving until one comes back, so a peer
  /// that never reads cannot starve the worker's other connections.
  /// Default: 32.
  /// Writes are held to the same number of send buffers in flight per
  /// connection (default: an eighth of [sendBufferCount], at least 16).
  final int? socketBufferLimit;

  /// How many completions one drain reads (the size of the preallocated
  /// completion array), 1..65536.
  final int completionBatch;

  /// Whether every receive takes a whole buffer, as on kernels before Linux
  /// 6.12. By default small receives are packed into shared buffers where
  /// the kernel can ([WorkerStats.packsReceives]): a thousand connections
  /// sending 64 bytes then keep a few buffers out of the pool, not a
  /// thousand. For comparisons and tests.
  final bool wholeReceiveBuffers;
}
