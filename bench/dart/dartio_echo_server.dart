/// The dart:io peer of the Dart echo benchmark (tool/bench_dart.sh,
/// "dartio"): a `ServerSocket` whose sockets echo (`Socket.listen` +
/// `Socket.add`), importing nothing of the package.
///
/// ```text
/// dart run bench/dart/dartio_echo_server.dart [--port 0]
/// ```
/// Prints `listening on 127.0.0.1:PORT`; stops on SIGINT or SIGTERM.
library;

import 'dart:io';

import 'bench_options.dart';
import 'socket_echo.dart';

Future<void> main(List<String> arguments) async {
  final options = parseBenchOptions('dartio_echo_server', arguments);
  if (options == null) return;
  final server =
      await ServerSocket.bind(InternetAddress.loopbackIPv4, options.port);
  await echoUntilSignalled(server, server.port);
}
