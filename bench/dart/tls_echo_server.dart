/// The TLS echo server of the Dart TLS benchmark (`tool/bench_dart.sh tls`):
/// the same dart:io code (`ServerSocket`, `Socket.listen` + `Socket.add`)
/// over dart:io's `SecureServerSocket` (`--impl dartio`) or over io_uring
/// with TLS in the worker (`--impl iouring`: `IoUringSecureServerSocket`).
///
/// ```text
/// dart run bench/dart/tls_echo_server.dart --impl iouring|dartio
///     --cert CHAIN.pem --key KEY.pem [--port 0]
/// ```
/// Prints `listening on 127.0.0.1:PORT`; stops on SIGINT or SIGTERM.
library;

import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';

import '../../example/support/cli.dart';
import 'bench_options.dart';
import 'socket_echo.dart';

Future<void> main(List<String> arguments) async {
  final options = parseBenchOptions('tls_echo_server', arguments, tls: true);
  if (options == null) return;
  TlsContext? context;
  final Stream<Socket> server;
  final int port;
  if (options.iouring) {
    context = await ourTlsContext(options);
    final secure = await IoUringSecureServerSocket.bind(
        InternetAddress.loopbackIPv4, options.port, context);
    server = secure;
    port = secure.port;
  } else {
    final secure = await SecureServerSocket.bind(InternetAddress.loopbackIPv4,
        options.port, dartIoSecurityContext(options));
    server = secure;
    port = secure.port;
  }
  final subscription = server.listen(echoSocket,
      onError: (Object _) {}); // a client's failed handshake
  await listeningUntilSignalled('127.0.0.1:$port');
  await subscription.cancel();
  context?.close();
  if (options.iouring) await Worker.current.close();
}
