/// Unix stream echo server: received buffers are sent back as they are (zero
/// copy).
///
/// ```text
/// dart run example/unix_echo.dart [--path /tmp/iouring_transport_echo.sock]
/// ```
/// `--path @name` listens in the abstract namespace (no socket file). A
/// socket file left behind by a crashed run is replaced; the file is removed
/// on exit. Prints `listening on PATH` once it accepts; stops cleanly on
/// SIGINT or SIGTERM. Try it with `socat - UNIX-CONNECT:PATH`.
library;

import 'dart:async';
import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

import 'support/cli.dart';
import 'support/worker_lifetime.dart';

const String _usage = 'unix_echo.dart [--path PATH]';

Future<void> main(List<String> arguments) async {
  final String path;
  try {
    final options = parseOptions(arguments, {'path'});
    path = options['path'] ?? '/tmp/iouring_transport_echo.sock';
  } on FormatException catch (error) {
    usageError('unix_echo', error.message, _usage);
    return;
  }
  await withWorker('unix_echo', (worker) async {
    final listener =
        await UnixListener.bind(path, replaceStale: true, worker: worker);
    listener.listen(_echo,
        onError: (Object error) => stderr.writeln('unix_echo: $error'));
    await listeningUntilSignalled(path);
    await listener.close();
  });
}

void _echo(UnixConnection connection) {
  connection.payloads.listen(
      (payload) => unawaited(connection.writePayload(payload)),
      onError: (Object _) => connection.destroy(),
      onDone: () => unawaited(connection.close()));
}
