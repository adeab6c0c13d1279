/// The echo of the Socket-API benchmark servers (plain and TLS).
library;

import 'dart:io';

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
