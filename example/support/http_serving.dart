/// What the HTTP examples share: `--host`/`--port` options, dart:io's
/// HttpServer over an [IoUringServerSocket] on a worker of its own, the
/// `listening on HOST:PORT` line, and a clean stop on SIGINT or SIGTERM.
library;

import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

import 'cli.dart';
import 'worker_lifetime.dart';

/// Runs [program]: parses [arguments] (`--host H`, default 127.0.0.1;
/// `--port P`, default 8080, 0 for any free port), binds, lets [serve]
/// answer the server's requests, and on the first SIGINT or SIGTERM closes
/// the server (its open connections too), the socket and the worker.
///
/// A usage error exits with code 64; a bind that fails with code 1; both
/// say why on stderr.
Future<void> serveHttpUntilSignalled(String program, List<String> arguments,
    void Function(HttpServer server) serve) async {
  final String host;
  final int port;
  try {
    final options = parseOptions(arguments, const {'host', 'port'});
    host = options['host'] ?? '127.0.0.1';
    port = numberOption(options, 'port', fallback: 8080, min: 0, max: 65535);
  } on FormatException catch (error) {
    usageError(program, error.message, '$program.dart [--host H] [--port P]');
    return;
  }
  await withWorker(program, (worker) async {
    final IoUringServerSocket socket;
    try {
      socket = await IoUringServerSocket.bind(host, port, worker: worker);
    } on SocketException catch (error) {
      stderr.writeln('$program: $error');
      exitCode = 1;
      return;
    }
    final server = HttpServer.listenOn(socket);
    serve(server);
    await listeningUntilSignalled('${printableHost(host)}:${socket.port}');
    // A server made with listenOn leaves its socket to its owner.
    await server.close(force: true);
    await socket.close();
  });
}
