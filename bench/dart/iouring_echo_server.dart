/// The drop-in server of the Dart echo benchmark (tool/bench_dart.sh,
/// "socket"): the dart:io peer's code (bench/dart/dartio_echo_server.dart)
/// over `IoUringServerSocket`. The benchmark's third Dart server is
/// example/echo_server.dart, on the package's own payload API.
///
/// ```text
/// dart run bench/dart/iouring_echo_server.dart [--port 0]
/// ```
/// Prints `listening on 127.0.0.1:PORT`; stops on SIGINT or SIGTERM.
library;

import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

import 'bench_options.dart';
import 'socket_echo.dart';

Future<void> main(List<String> arguments) async {
  final options = parseBenchOptions('iouring_echo_server', arguments);
  if (options == null) return;
  final server = await IoUringServerSocket.bind(
      InternetAddress.loopbackIPv4, options.port);
  await echoUntilSignalled(server, server.port);
  await Worker.current.close();
}
