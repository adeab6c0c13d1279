/// Timeouts in the native unit.
library;

/// [timeout] in whole milliseconds (rounded up) for the native calls; 0 for
/// none. Throws a [RangeError] for a timeout below 1 ms or above 2^32 - 1 ms.
int timeoutMillis(Duration? timeout, String name) {
  if (timeout == null) return 0;
  final ms = (timeout.inMicroseconds + 999) ~/ 1000;
  if (ms < 1 || ms > 0xffffffff) {
    throw RangeError.range(ms, 1, 0xffffffff, name, 'timeout in milliseconds');
  }
  return ms;
}
