/// The echo of the Socket-API benchmark servers (plain and TLS, over dart:io
/// or io_uring). dart:io only.
library;

import 'dart:io';

import '../../example/support/cli.dart';

/// Echoes every connection of [server] (listening on [port]) until SIGINT
/// or SIGTERM, then stops listening.
Future<void> echoUntilSignalled(Stream<Socket> server, int port) async {
  final subscription = server.listen(echoSocket,
      onError: (Object _) {}); // a TLS client's failed handshake
  await listeningUntilSignalled('127.0.0.1:$port');
  await subscription.cancel();
}

/// Sends back everything [socket] receives, with `TCP_NODELAY`, and closes
/// its side when the peer ends (destroys it on an error).
void echoSocket(Socket socket) {
  socket.setOption(SocketOption.tcpNoDelay, true);
  // A peer's reset fails `done` too; the stream's onError already handles it.
  socket.done.ignore();
  socket.listen(socket.add,
      onError: (Object _) => socket.destroy(),
      onDone: () => socket.close().ignore(),
      cancelOnError: true);
}
