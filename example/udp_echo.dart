/// UDP echo server: every datagram goes back to its sender.
///
/// ```text
/// dart run example/udp_echo.dart [--host 127.0.0.1] [--port 7778]
/// ```
/// Prints `listening on HOST:PORT` once it receives; stops cleanly on SIGINT
/// or SIGTERM. Try it with `socat - UDP:127.0.0.1:7778`.
library;

import 'dart:async';
import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

import 'support/cli.dart';
import 'support/worker_lifetime.dart';

const String _usage = 'udp_echo.dart [--host H] [--port P]';

Future<void> main(List<String> arguments) async {
  final String host;
  final int port;
  try {
    final options = parseOptions(arguments, {'host', 'port'});
    host = options['host'] ?? '127.0.0.1';
    port = numberOption(options, 'port', fallback: 7778, min: 0, max: 65535);
  } on FormatException catch (error) {
    usageError('udp_echo', error.message, _usage);
    return;
  }
  await withWorker('udp_echo', (worker) async {
    final socket = await UdpSocket.bind(host, port, worker: worker);
    socket.listen((datagram) => unawaited(_reply(socket, datagram)),
        onError: (Object error) => stderr.writeln('udp_echo: $error'));
    await listeningUntilSignalled(
        '${printableHost(socket.address.address)}:${socket.port}');
    await socket.close();
  });
}

/// Sends [datagram] back to its sender.
Future<void> _reply(UdpSocket socket, UdpDatagram datagram) async {
  try {
    await socket.send(datagram.data, datagram.address, datagram.port);
  } on TransportClosedException {
    // Stopping: a reply still in flight is cut short, not an error.
  } on TransportException catch (error) {
    stderr.writeln('udp_echo: $error');
  }
}
