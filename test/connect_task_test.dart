import 'dart:async';
import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// A listener that never accepts, its backlog full: the next connect to it
/// stays in flight (the kernel drops its SYNs).
Future<(TcpListener, List<Socket>)> _fullListener(Worker worker) async {
  final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
      backlog: 1, worker: worker);
  final fillers = <Socket>[];
  // The accept queue holds backlog + 1 connections; bounded attempts.
  for (var i = 0; i < 8; i++) {
    try {
      fillers.add(await Socket.connect(
          InternetAddress.loopbackIPv4, listener.port,
          timeout: const Duration(milliseconds: 300)));
    } on SocketException {
      break; // full: this connect was not answered
    }
  }
  return (listener, fillers);
}

void main() {
  setUpTransport();

  test('startConnect connects like connect', () async {
    final worker = testWorker();
    final server = await startEchoServer(InternetAddress.loopbackIPv4,
        worker: worker);
    final task = TcpConnection.startConnect(
        InternetAddress.loopbackIPv4, server.port,
        worker: worker);
    final client = await task.socket.bounded;
    final reader = ByteReader(client);
    await expectEcho(client, reader, pattern(100, 3));
    task.cancel(); // too late: nothing happens
    await expectEcho(client, reader, pattern(10, 4));
    await client.close();
  });

  test('cancel abandons a connect in flight', () async {
    final worker = testWorker();
    final (listener, fillers) = await _fullListener(worker);
    addTearDown(() async {
      for (final socket in fillers) {
        socket.destroy();
      }
      await listener.close();
    });
    final task = TcpConnection.startConnect(
        InternetAddress.loopbackIPv4, listener.port,
        worker: worker);
    // The attempt is in flight: it neither connects nor fails on its own
    // within this wait (the SYN is dropped and retried for seconds).
    final early = await task.socket
        .then<Object>((c) => c)
        .timeout(const Duration(milliseconds: 200), onTimeout: () => 'pending')
        .catchError((Object e) => e);
    expect(early, 'pending');
    task.cancel();
    await expectLater(task.socket, throwsA(isA<TransportCancelledException>()))
        .bounded;
    expect(worker.stats().socketsOpen, 1, reason: 'only the listener is left');
  });

  test('cancel before the name is resolved tries no address', () async {
    final worker = testWorker();
    final task = TcpConnection.startConnect('localhost', 9, worker: worker);
    task.cancel();
    await expectLater(task.socket, throwsA(isA<TransportCancelledException>()))
        .bounded;
  });
}
