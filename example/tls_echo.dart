/// TLS echo server: every connection's TLS handshake runs in the isolate's
/// io_uring worker, then the plaintext it receives is sent back as it is
/// (zero copy; the worker decrypts and encrypts).
///
/// ```text
/// dart run example/tls_echo.dart --cert server.pem --key server.key
///     [--host 127.0.0.1] [--port 8443]
/// ```
/// `--cert` is the PEM of the server's certificate chain (leaf first),
/// `--key` the PEM of its private key. Prints `listening on HOST:PORT` once
/// it accepts (`--port 0`: the port the system chose); a failed handshake
/// is logged on stdout (`handshake failed: ...`) and the server goes on.
/// Stops cleanly on SIGINT or SIGTERM (exit code 0). Try it with
/// `openssl s_client -connect 127.0.0.1:PORT -CAfile ca.pem`.
library;

import 'dart:async';
import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

import 'support/cli.dart';
import 'support/worker_lifetime.dart';

const String _usage =
    'tls_echo.dart --cert CERT.pem --key KEY.pem [--host H] [--port P]';

Future<void> main(List<String> arguments) async {
  final String host, cert, key;
  final int port;
  try {
    final options =
        parseOptions(arguments, const {'host', 'port', 'cert', 'key'});
    host = options['host'] ?? '127.0.0.1';
    port = numberOption(options, 'port', fallback: 8443, min: 0, max: 65535);
    cert = options['cert'] ?? (throw const FormatException('--cert needed'));
    key = options['key'] ?? (throw const FormatException('--key needed'));
  } on FormatException catch (error) {
    usageError('tls_echo', error.message, _usage);
    return;
  }
  final TlsContext context;
  try {
    context = await TlsContext.serverFromFiles(
        certificateChain: cert, privateKey: key);
  } on TlsConfigException catch (error) {
    stderr.writeln('tls_echo: $error');
    exitCode = 1;
    return;
  }
  await withWorker('tls_echo', (worker) async {
    final listener =
        await TcpListener.bindSecure(host, port, context, worker: worker);
    // A client's failure, not the server's: a log line on stdout.
    listener.handshakeErrors
        .listen((error) => stdout.writeln('handshake failed: $error'));
    listener.listen(_echo,
        onError: (Object error) => stderr.writeln('tls_echo: $error'));
    await listeningUntilSignalled('${printableHost(host)}:${listener.port}');
    await listener.close();
  });
  context.close();
}

void _echo(TcpConnection connection) {
  connection.payloads.listen(
      (payload) => unawaited(connection.writePayload(payload)),
      onError: (Object _) => connection.destroy(),
      onDone: () => unawaited(connection.close()));
}
