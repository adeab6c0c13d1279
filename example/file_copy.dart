/// Copies a file through the worker's native buffers: each chunk the read
/// stream puts in a buffer is written to the destination from that same
/// buffer (no copy into Dart memory), while the read stream runs ahead by a
/// window of chunks.
///
/// ```text
/// dart run example/file_copy.dart SRC DST
/// ```
/// Creates or truncates DST; prints the bytes copied and the time taken.
library;

import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

import 'support/cli.dart';
import 'support/worker_lifetime.dart';

const String _usage = 'file_copy.dart SRC DST';

Future<void> main(List<String> arguments) async {
  if (arguments.length != 2 || arguments.any((a) => a.startsWith('--'))) {
    usageError('file_copy', 'expected a source and a destination', _usage);
    return;
  }
  await withWorker('file_copy', (worker) async {
    final watch = Stopwatch()..start();
    final copied = await _copy(arguments[0], arguments[1], worker);
    final seconds = watch.elapsedMicroseconds / 1e6;
    stdout.writeln('copied $copied bytes in ${seconds.toStringAsFixed(3)} s');
  });
}

/// Copies [from] to [to]; returns the number of bytes copied.
Future<int> _copy(String from, String to, Worker worker) async {
  final source = await IoFile.open(from, worker: worker);
  try {
    final destination =
        await IoFile.open(to, mode: IoFileMode.writeOnly, worker: worker);
    var copied = 0;
    try {
      // Each write is awaited, so the read stream (paused meanwhile) holds
      // at most its window of chunks; the writes land in order at the
      // destination's file position.
      await for (final chunk in source.readPayloads(window: 16)) {
        copied += chunk.length;
        await destination.writePayload(chunk);
      }
      await destination.sync();
    } finally {
      await destination.close();
    }
    return copied;
  } finally {
    await source.close();
  }
}
