/// The dart:io peer of the HTTP benchmark (tool/bench_http.py, "dartio"):
/// `HttpServer.bind`, or `HttpServer.bindSecure` with `--cert` and `--key`,
/// importing nothing of the package.
///
/// ```text
/// dart run bench/dart/dartio_http_server.dart [--port 0]
///     [--cert CHAIN.pem --key KEY.pem]
/// ```
/// Prints `listening on 127.0.0.1:PORT`; stops on SIGINT or SIGTERM.
library;

import 'dart:io';

import 'bench_options.dart';
import 'http_responder.dart';

Future<void> main(List<String> arguments) async {
  final options = parseBenchOptions('dartio_http_server', arguments);
  if (options == null) return;
  final loopback = InternetAddress.loopbackIPv4;
  final server = options.cert == null
      ? await HttpServer.bind(loopback, options.port)
      : await HttpServer.bindSecure(
          loopback, options.port, dartIoSecurityContext(options));
  await respondUntilSignalled(server);
}
