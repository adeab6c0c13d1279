/// A shelf application (shelf_router) served by dart:io's HttpServer over an
/// io_uring socket (`IoUringServerSocket`, `shelf_io.serveRequests`):
/// `GET /hello/<name>` answers `hello <name>`, `POST /echo` answers with the
/// body; anything else is 404.
///
/// ```text
/// dart run example/shelf_server.dart [--host 127.0.0.1] [--port 8080]
/// ```
/// Prints `listening on HOST:PORT` once it accepts (`--port 0`: the port the
/// system chose); stops cleanly on SIGINT or SIGTERM (exit code 0). Try it
/// with `curl http://127.0.0.1:8080/hello/world`.
library;

import 'package:shelf/shelf_io.dart' as shelf_io;

import 'support/http_serving.dart';
import 'support/shelf_app.dart';

Future<void> main(List<String> arguments) =>
    serveHttpUntilSignalled('shelf_server', arguments, (server) {
      shelf_io.serveRequests(server, shelfApp().call);
    });
