/// The io_uring server of the HTTP benchmark (tool/bench_http.py,
/// "iouring"): dart:io's `HttpServer` on `IoUringServerSocket`
/// (`HttpServer.listenOn`), or on `IoUringSecureServerSocket` with `--cert`
/// and `--key`; it answers as the dart:io peer does.
///
/// ```text
/// dart run bench/dart/iouring_http_server.dart [--port 0]
///     [--cert CHAIN.pem --key KEY.pem]
/// ```
/// Prints `listening on 127.0.0.1:PORT`; stops on SIGINT or SIGTERM.
library;

import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

import 'bench_options.dart';
import 'http_responder.dart';
import 'our_tls_context.dart';

Future<void> main(List<String> arguments) async {
  final options = parseBenchOptions('iouring_http_server', arguments);
  if (options == null) return;
  final loopback = InternetAddress.loopbackIPv4;
  final context =
      options.cert == null ? null : await ourTlsContext(options);
  final server = HttpServer.listenOn(context == null
      ? await IoUringServerSocket.bind(loopback, options.port)
      : await IoUringSecureServerSocket.bind(loopback, options.port, context));
  await respondUntilSignalled(server);
  context?.close();
  await Worker.current.close();
}
