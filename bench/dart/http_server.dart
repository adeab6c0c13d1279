/// The HTTP server of the HTTP benchmark (tool/bench_http.py): dart:io's
/// `HttpServer` on dart:io sockets (`--impl dartio`) or on io_uring
/// (`--impl iouring`: `HttpServer.listenOn(IoUringServerSocket)`), otherwise
/// the same program. `GET /plain` answers `Hello, World!`, `GET /4k` 4 KiB.
/// With `--cert` and `--key` it serves HTTPS: `HttpServer.bindSecure`, or
/// `HttpServer.listenOn(IoUringSecureServerSocket)`.
///
/// ```text
/// dart run bench/dart/http_server.dart --impl iouring|dartio [--port 0]
///     [--cert CHAIN.pem --key KEY.pem]
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
  final loopback = InternetAddress.loopbackIPv4;
  final context = options.iouring && options.cert != null
      ? await ourTlsContext(options)
      : null;
  final HttpServer server = switch ((options.iouring, context)) {
    (true, null) => HttpServer.listenOn(
        await IoUringServerSocket.bind(loopback, options.port)),
    (true, final TlsContext context) => HttpServer.listenOn(
        await IoUringSecureServerSocket.bind(loopback, options.port, context)),
    (false, _) when options.cert != null => await HttpServer.bindSecure(
        loopback, options.port, dartIoSecurityContext(options)),
    (false, _) => await HttpServer.bind(loopback, options.port),
  };
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
  context?.close();
  if (options.iouring) await Worker.current.close();
}
