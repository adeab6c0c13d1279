/// [withWorker]: a worker that lives as long as an example's work.
library;

import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

/// Runs [body] with a fresh worker and closes the worker after it; a
/// [TransportException] (io_uring unavailable, a bind refused, ...) is
/// reported on stderr as an error of [program] (exit code 1).
Future<void> withWorker(
    String program, Future<void> Function(Worker worker) body) async {
  Worker? worker;
  try {
    final created = worker = Worker();
    await body(created);
  } on TransportException catch (error) {
    stderr.writeln('$program: $error');
    exitCode = 1;
  } finally {
    await worker?.close();
  }
}
