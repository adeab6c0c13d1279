/// The program of the consumer project that pack_test creates (copied there
/// as `bin/server.dart`): a TCP echo server on 127.0.0.1, written as a user
/// of the package would.
///
/// Prints `library PATH` (where the native library was loaded from), then
/// `listening on 127.0.0.1:PORT`, echoes until SIGTERM or SIGINT and exits 0.
/// With `--self-check` it echoes one message through itself and exits
/// instead: the training run of `pack --train`.
library;

import 'dart:async';
import 'dart:convert';
import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

Future<void> main(List<String> arguments) async {
  stdout.writeln('library ${loadTransportLibrary()}');
  final listener = await TcpListener.bind('127.0.0.1', 0);
  listener.listen((connection) => connection.payloads.listen(
      (payload) => unawaited(connection.writePayload(payload)),
      onError: (Object _) => connection.destroy(),
      onDone: () => unawaited(connection.close())));

  if (arguments.contains('--self-check')) {
    await _echoOnce(listener.port);
  } else {
    // Watched before the line is printed: a signal sent as soon as the line
    // is read stops the server cleanly.
    final stop = Completer<void>();
    final watches = [
      for (final signal in [ProcessSignal.sigterm, ProcessSignal.sigint])
        signal.watch().listen((_) {
          if (!stop.isCompleted) stop.complete();
        }),
    ];
    stdout.writeln('listening on 127.0.0.1:${listener.port}');
    await stop.future;
    await Future.wait(watches.map((watch) => watch.cancel()));
  }
  await listener.close();
  await Worker.current.close();
}

/// Sends a line to the server on [port] with dart:io and checks the echo.
Future<void> _echoOnce(int port) async {
  final message = utf8.encode('training run\n');
  final socket = await Socket.connect('127.0.0.1', port)
      .timeout(const Duration(seconds: 10));
  socket.add(message);
  await socket.flush();
  final echoed = <int>[];
  await for (final chunk in socket.timeout(const Duration(seconds: 10))) {
    echoed.addAll(chunk);
    if (echoed.length >= message.length) break;
  }
  socket.destroy();
  if (utf8.decode(echoed, allowMalformed: true) != utf8.decode(message)) {
    throw StateError('the echo was ${utf8.decode(echoed)}');
  }
  stdout.writeln('self-check: echoed ${echoed.length} bytes');
}
