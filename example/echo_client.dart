/// A small load client for an echo server: `--connections` connections each
/// send a `--size`-byte message, wait for its echo and send again, for
/// `--seconds`; prints the round trips per second (exit code 0), or the first
/// connection's error on stderr (exit code 1).
///
/// ```text
/// dart run example/echo_client.dart [--host 127.0.0.1] [--port 7777]
///     [--connections 50] [--size 64] [--seconds 5]
/// ```
library;

import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';

import 'support/cli.dart';

const String _usage = 'echo_client.dart [--host H] [--port P] '
    '[--connections N] [--size BYTES] [--seconds S]';

Future<void> main(List<String> arguments) async {
  final String host;
  final int port;
  final int connections;
  final int size;
  final int seconds;
  try {
    final values = parseOptions(
        arguments, const {'host', 'port', 'connections', 'size', 'seconds'});
    host = values['host'] ?? '127.0.0.1';
    port = numberOption(values, 'port', fallback: 7777, min: 1, max: 65535);
    connections = numberOption(values, 'connections',
        fallback: 50, min: 1, max: 100000);
    size = numberOption(values, 'size', fallback: 64, min: 1, max: 64 << 20);
    seconds = numberOption(values, 'seconds', fallback: 5, min: 1, max: 3600);
  } on FormatException catch (error) {
    usageError('echo_client', error.message, _usage);
    return;
  }

  final worker = Worker.current;
  final message = Uint8List(size);
  for (var i = 0; i < size; i++) {
    message[i] = i & 0xff;
  }
  final duration = Duration(seconds: seconds);
  final clock = Stopwatch()..start();
  var requests = 0;

  Future<void> runConnection() async {
    final connection = await TcpConnection.connect(host, port,
        timeout: const Duration(seconds: 5), worker: worker);
    final finished = Completer<void>();
    var pending = size;
    final subscription = connection.payloads.listen((payload) {
      pending -= payload.length;
      payload.release();
      if (pending > 0) return;
      requests++;
      if (clock.elapsed < duration) {
        pending = size;
        unawaited(connection.write(message));
      } else if (!finished.isCompleted) {
        finished.complete();
      }
    }, onError: (Object error, StackTrace stack) {
      if (!finished.isCompleted) finished.completeError(error, stack);
    }, onDone: () {
      if (!finished.isCompleted) {
        finished.completeError(StateError('the server closed a connection'));
      }
    });
    unawaited(connection.write(message));
    try {
      await finished.future;
    } finally {
      await subscription.cancel();
      await connection.close();
    }
  }

  try {
    await Future.wait([for (var i = 0; i < connections; i++) runConnection()]);
    final elapsed = clock.elapsedMicroseconds / 1e6;
    stdout.writeln('$requests requests of $size bytes over $connections '
        'connections in ${elapsed.toStringAsFixed(2)} s: '
        '${(requests / elapsed).toStringAsFixed(0)} req/s');
  } on Object catch (error) {
    // No rate: a failed run's count would be misread as a measurement.
    stderr.writeln('echo_client: $error');
    exitCode = 1;
  }
  await worker.close();
}
