/// The dart:io peer of the Dart TLS benchmark (`tool/bench_dart.sh tls`,
/// "dartio"): a `SecureServerSocket` whose sockets echo, importing nothing
/// of the package.
///
/// ```text
/// dart run bench/dart/dartio_tls_echo_server.dart --cert CHAIN.pem
///     --key KEY.pem [--port 0]
/// ```
/// Prints `listening on 127.0.0.1:PORT`; stops on SIGINT or SIGTERM.
library;

import 'dart:io';

import 'bench_options.dart';
import 'socket_echo.dart';

Future<void> main(List<String> arguments) async {
  final options =
      parseBenchOptions('dartio_tls_echo_server', arguments, tls: true);
  if (options == null) return;
  final server = await SecureServerSocket.bind(InternetAddress.loopbackIPv4,
      options.port, dartIoSecurityContext(options));
  await echoUntilSignalled(server, server.port);
}
