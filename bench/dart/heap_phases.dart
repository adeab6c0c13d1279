/// Where the Dart heap of an echo server grows: the server (`transport`: the
/// package's payload echo, as example/echo_server.dart; `dartio`: dart:io's
/// sockets) and a dart:io client in the same isolate, which echoes 8
/// connections through phases of growing length and message size. Each phase
/// ends with a `PHASE <name>` line on stderr; run under `--verbose_gc`, the GC
/// lines before it tell the heap then (tool/dart_heap_phases.sh does that).
///
/// ```text
/// dart --verbose_gc bench/dart/heap_phases.dart transport|dartio
/// ```
library;

import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';

import 'socket_echo.dart';

const int _connections = 8;

/// (message bytes, round trips per connection) of each phase, in order.
const List<(int, int)> _phases = [
  (64, 10),
  (64, 200),
  (64, 4000),
  (64, 4000),
  (4096, 1000),
  (65536, 200),
];

Future<void> main(List<String> arguments) async {
  if (arguments.length != 1 ||
      !const {'transport', 'dartio'}.contains(arguments.single)) {
    stderr.writeln('usage: heap_phases.dart transport|dartio');
    exitCode = 64;
    return;
  }
  final (port, close) = arguments.single == 'transport'
      ? await _transportEcho()
      : await _dartioEcho();
  stderr.writeln('PHASE listening');
  for (final (size, rounds) in _phases) {
    await Future.wait([
      for (var c = 0; c < _connections; c++) _client(port, size, rounds),
    ]);
    stderr.writeln('PHASE $size B x $rounds');
  }
  await close();
}

Future<(int, Future<void> Function())> _transportEcho() async {
  final worker = Worker();
  final listener = await TcpListener.bind('127.0.0.1', 0, worker: worker);
  listener.listen((connection) => connection.payloads.listen(
      (payload) => unawaited(connection.writePayload(payload)),
      onError: (Object _) => connection.destroy(),
      onDone: () => unawaited(connection.close())));
  return (
    listener.port,
    () async {
      await listener.close();
      await worker.close();
    }
  );
}

Future<(int, Future<void> Function())> _dartioEcho() async {
  final server = await ServerSocket.bind(InternetAddress.loopbackIPv4, 0);
  server.listen(echoSocket);
  return (server.port, server.close);
}

/// [rounds] round trips of [size] bytes on a new connection to [port].
Future<void> _client(int port, int size, int rounds) async {
  final socket = await Socket.connect(InternetAddress.loopbackIPv4, port);
  socket.setOption(SocketOption.tcpNoDelay, true);
  final message = Uint8List(size);
  final replies = StreamIterator(socket);
  for (var round = 0; round < rounds; round++) {
    socket.add(message);
    for (var got = 0; got < size; got += replies.current.length) {
      if (!await replies.moveNext()) {
        throw StateError('the server closed the connection');
      }
    }
  }
  await socket.close();
  await replies.cancel();
}
