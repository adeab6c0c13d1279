/// dart:io's HttpServer served over an io_uring socket
/// (`IoUringServerSocket`): `GET /` answers `hello`, a `POST` to any path
/// answers with its body; anything else is 404.
///
/// ```text
/// dart run example/http_server.dart [--host 127.0.0.1] [--port 8080]
/// ```
/// Prints `listening on HOST:PORT` once it accepts (`--port 0`: the port the
/// system chose); stops cleanly on SIGINT or SIGTERM (exit code 0). Try it
/// with `curl http://127.0.0.1:8080/` or `curl --data-binary @FILE ...`.
library;

import 'dart:io';

import 'support/http_serving.dart';

Future<void> main(List<String> arguments) =>
    serveHttpUntilSignalled('http_server', arguments, (server) {
      server.listen(_answer);
    });

Future<void> _answer(HttpRequest request) async {
  final response = request.response;
  try {
    if (request.method == 'POST') {
      // Streamed back as it arrives (chunked).
      await response.addStream(request);
    } else if (request.method == 'GET' && request.uri.path == '/') {
      response.write('hello');
    } else {
      response.statusCode = HttpStatus.notFound;
    }
    await response.close();
  } on IOException {
    // The client went away mid-request: nothing left to answer.
  }
}
