/// What the HTTP benchmark servers (tool/bench_http.py) answer, the same
/// over dart:io's sockets and over io_uring: `GET /plain` answers
/// `Hello, World!`, `GET /4k` 4 KiB. dart:io only.
library;

import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import '../../example/support/cli.dart';

final Uint8List _plain = Uint8List.fromList('Hello, World!'.codeUnits);
final Uint8List _fourKiB = Uint8List(4096)..fillRange(0, 4096, 0x61);

/// Answers [server]'s requests until SIGINT or SIGTERM, then closes it.
Future<void> respondUntilSignalled(HttpServer server) async {
  server.defaultResponseHeaders.clear();
  server.listen((request) {
    final body = request.uri.path == '/4k' ? _fourKiB : _plain;
    request.response
      ..headers.contentType = ContentType.text
      ..contentLength = body.length
      ..add(body);
    unawaited(request.response.close());
    // dart:io's HTTPS server reports a client's failed handshake or reset here.
  }, onError: (Object _) {});
  await listeningUntilSignalled('127.0.0.1:${server.port}');
  await server.close(force: true);
}
