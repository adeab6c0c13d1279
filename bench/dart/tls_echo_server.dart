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

const String _usage = 'tls_echo_server.dart --impl iouring|dartio '
    '--cert CHAIN.pem --key KEY.pem [--port P]';

Future<void> main(List<String> arguments) async {
  final bool iouring;
  final int port;
  final String cert, key;
  try {
    final options = parseOptions(arguments, {'impl', 'port', 'cert', 'key'});
    port = numberOption(options, 'port', fallback: 0, min: 0, max: 65535);
    iouring = switch (options['impl']) {
      'iouring' => true,
      'dartio' => false,
      _ => throw const FormatException('--impl must be iouring or dartio'),
    };
    cert = options['cert'] ?? (throw const FormatException('--cert needed'));
    key = options['key'] ?? (throw const FormatException('--key needed'));
  } on FormatException catch (error) {
    usageError('tls_echo_server', error.message, _usage);
    return;
  }
  TlsContext? context;
  final Stream<Socket> server;
  final int boundPort;
  if (iouring) {
    context = await TlsContext.serverFromFiles(
        certificateChain: cert, privateKey: key);
    final secure = await IoUringSecureServerSocket.bind(
        InternetAddress.loopbackIPv4, port, context);
    server = secure;
    boundPort = secure.port;
  } else {
    final security = SecurityContext()
      ..useCertificateChain(cert)
      ..usePrivateKey(key);
    final secure = await SecureServerSocket.bind(
        InternetAddress.loopbackIPv4, port, security);
    server = secure;
    boundPort = secure.port;
  }
  final subscription = server.listen((socket) {
    socket.setOption(SocketOption.tcpNoDelay, true);
    // A peer's reset fails `done` too; the stream's onError already handles it.
    socket.done.ignore();
    socket.listen(socket.add,
        onError: (Object _) => socket.destroy(),
        onDone: () => socket.close().ignore(),
        cancelOnError: true);
  }, onError: (Object _) {}); // a client's failed handshake
  await listeningUntilSignalled('127.0.0.1:$boundPort');
  await subscription.cancel();
  context?.close();
  if (iouring) await Worker.current.close();
}
