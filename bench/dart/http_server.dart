/// The HTTP server of the HTTP benchmark (tool/bench_http.py): dart:io's
/// `HttpServer` on dart:io sockets (`--impl dartio`) or on io_uring
/// (`--impl iouring`: `HttpServer.listenOn(IoUringServerSocket)`), otherwise
/// the same program. `GET /plain` answers `Hello, World!`, `GET /4k` 4 KiB.
///
/// ```text
/// dart run bench/dart/http_server.dart --impl iouring|dartio [--port 0]
/// ```
/// Prints `listening on 127.0.0.1:PORT`; stops on SIGINT or SIGTERM.
library;

import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';

import '../../example/support/cli.dart';

final Uint8List _plain = Uint8List.fromList('Hello, World!'.codeUnits);
final Uint8List _fourKiB = Uint8List(4096)..fillRange(0, 4096, 0x61);

Future<void> main(List<String> arguments) async {
  const usage = 'http_server.dart --impl iouring|dartio [--port P]';
  final Map<String, String> options;
  final int port;
  try {
    options = parseOptions(arguments, {'impl', 'port'});
    port = numberOption(options, 'port', fallback: 0, min: 0, max: 65535);
  } on FormatException catch (error) {
    usageError('http_server', error.message, usage);
    return;
  }
  final impl = options['impl'];
  final HttpServer server;
  if (impl == 'iouring') {
    server = HttpServer.listenOn(
        await IoUringServerSocket.bind(InternetAddress.loopbackIPv4, port));
  } else if (impl == 'dartio') {
    server = await HttpServer.bind(InternetAddress.loopbackIPv4, port);
  } else {
    usageError('http_server', '--impl must be iouring or dartio', usage);
    return;
  }
  server.defaultResponseHeaders.clear();
  server.listen((request) {
    final body = request.uri.path == '/4k' ? _fourKiB : _plain;
    request.response
      ..headers.contentType = ContentType.text
      ..contentLength = body.length
      ..add(body);
    unawaited(request.response.close());
  });
  await listeningUntilSignalled('127.0.0.1:${server.port}');
  await server.close(force: true);
  if (impl == 'iouring') await Worker.current.close();
}
