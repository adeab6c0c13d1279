/// A program for socket_parity_test.dart: connects to the IPv4 loopback on
/// the port given (a peer that never reads) with dart:io's `Socket` (first
/// argument `dart:io`) or an `IoUringSocket` (`io_uring`), adds 32 MiB,
/// destroys the socket, waits for `done`, prints `destroyed` and returns.
/// The process should then exit at once, as a dart:io program does.
library;

import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';

Future<void> main(List<String> arguments) async {
  final port = int.parse(arguments[1]);
  final Socket socket = arguments[0] == 'io_uring'
      ? await IoUringSocket.connect(InternetAddress.loopbackIPv4, port)
      : await Socket.connect(InternetAddress.loopbackIPv4, port);
  socket
    ..add(Uint8List(32 << 20))
    ..destroy();
  await socket.done;
  stdout.writeln('destroyed');
}
