/// The Socket-API echo server of the Dart echo benchmark (tool/bench_dart.sh):
/// the same dart:io code (`ServerSocket`, `Socket.listen` + `Socket.add`)
/// over dart:io sockets (`--impl dartio`) or over io_uring (`--impl iouring`:
/// `IoUringServerSocket`, the drop-in). The benchmark's third Dart server is
/// example/echo_server.dart, on the package's own payload API.
///
/// ```text
/// dart run bench/dart/echo_server.dart --impl iouring|dartio [--port 0]
/// ```
/// Prints `listening on 127.0.0.1:PORT`; stops on SIGINT or SIGTERM.
library;

import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

import '../../example/support/cli.dart';
import 'bench_options.dart';
import 'socket_echo.dart';

Future<void> main(List<String> arguments) async {
  final options = parseBenchOptions('echo_server', arguments);
  if (options == null) return;
  final ServerSocket server = options.iouring
      ? await IoUringServerSocket.bind(
          InternetAddress.loopbackIPv4, options.port)
      : await ServerSocket.bind(InternetAddress.loopbackIPv4, options.port);
  server.listen(echoSocket);
  await listeningUntilSignalled('127.0.0.1:${server.port}');
  await server.close();
  if (options.iouring) await Worker.current.close();
}
