/// A small load client for an echo server: `--connections` connections each
/// send a `--size`-byte message, wait for its echo and send again, for
/// `--seconds`; prints the round trips per second.
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

Future<void> main(List<String> arguments) async {
  final Map<String, String> values;
  try {
    values = parseOptions(arguments, const {'host', 'port', 'connections', 'size', 'seconds'});
  } on FormatException catch (error) {
    stderr.writeln('echo_client: ${error.message}');
    exitCode = 64;
    return;
  }
  final host = values.remove('host') ?? '127.0.0.1';
  final int port;
  final int connections;
  final int size;
  final int seconds;
  try {
    port = _intFlag(values, 'port', 7777, 1, 65535);
    connections = _intFlag(values, 'connections', 50, 1, 100000);
    size = _intFlag(values, 'size', 64, 1, 64 << 20);
    seconds = _intFlag(values, 'seconds', 5, 1, 3600);
    if (values.isNotEmpty) {
      throw FormatException('unknown option --${values.keys.first}');
    }
  } on FormatException catch (error) {
    stderr.writeln('echo_client: ${error.message}');
    exitCode = 64;
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
  } on Object catch (error) {
    stderr.writeln('echo_client: $error');
    exitCode = 1;
  }
  final elapsed = clock.elapsedMicroseconds / 1e6;
  stdout.writeln('$requests requests of $size bytes over $connections '
      'connections in ${elapsed.toStringAsFixed(2)} s: '
      '${(requests / elapsed).toStringAsFixed(0)} req/s');
  await worker.close();
}

int _intFlag(
    Map<String, String> values, String name, int fallback, int min, int max) {
  final text = values.remove(name);
  if (text == null) return fallback;
  final parsed = int.tryParse(text);
  if (parsed == null || parsed < min || parsed > max) {
    throw FormatException('--$name must be a number in $min..$max');
  }
  return parsed;
}
