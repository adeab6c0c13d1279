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
import 'bench_options.dart';

final Uint8List _plain = Uint8List.fromList('Hello, World!'.codeUnits);
final Uint8List _fourKiB = Uint8List(4096)..fillRange(0, 4096, 0x61);

Future<void> main(List<String> arguments) async {
  final options = parseBenchOptions('http_server', arguments);
  if (options == null) return;
  final HttpServer server = options.iouring
      ? HttpServer.listenOn(await IoUringServerSocket.bind(
          InternetAddress.loopbackIPv4, options.port))
      : await HttpServer.bind(InternetAddress.loopbackIPv4, options.port);
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
  if (options.iouring) await Worker.current.close();
}
