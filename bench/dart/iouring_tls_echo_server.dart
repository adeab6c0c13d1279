/// The drop-in server of the Dart TLS benchmark (`tool/bench_dart.sh tls`,
/// "socket"): the dart:io peer's code over `IoUringSecureServerSocket`, TLS
/// in the worker.
///
/// ```text
/// dart run bench/dart/iouring_tls_echo_server.dart --cert CHAIN.pem
///     --key KEY.pem [--port 0]
/// ```
/// Prints `listening on 127.0.0.1:PORT`; stops on SIGINT or SIGTERM.
library;

import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

import 'bench_options.dart';
import 'our_tls_context.dart';
import 'socket_echo.dart';

Future<void> main(List<String> arguments) async {
  final options =
      parseBenchOptions('iouring_tls_echo_server', arguments, tls: true);
  if (options == null) return;
  final context = await ourTlsContext(options);
  final server = await IoUringSecureServerSocket.bind(
      InternetAddress.loopbackIPv4, options.port, context);
  await echoUntilSignalled(server, server.port);
  context.close();
  await Worker.current.close();
}
