import 'dart:async';
import 'dart:io';
import 'dart:isolate';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// Opens a worker, a listener and a connection, writes, and returns without
/// closing anything.
Future<void> _leaveIdleResourcesOpen(SendPort done) async {
  final server = await TcpListener.bind(InternetAddress.loopbackIPv4, 0);
  final client = await TcpConnection.connect(server.address, server.port);
  await client.write([1, 2, 3]);
  done.send('wrote');
}

/// Serves one echo connection (the listener closes after the first accept)
/// and reports its port; ends when the peer closes.
Future<void> _echoOnce(SendPort report) async {
  final server = await TcpListener.bind(InternetAddress.loopbackIPv4, 0);
  late final StreamSubscription<TcpConnection> accepting;
  accepting = server.listen((connection) {
    unawaited(accepting.cancel());
    connection.listen(connection.write, onDone: connection.close);
  });
  report.send(server.port);
}

/// Listens for messages and exits after the first one.
Future<void> _waitForOneMessage(SendPort report) async {
  final worker = Worker.current;
  final first = worker.messages.first;
  report.send(worker.id);
  report.send((await first).value);
}

void main() {
  setUpTransport();

  test('a program whose work is done exits with its worker and sockets open',
      () async {
    final events = ReceivePort();
    final queue = StreamIterator<Object?>(events);
    addTearDown(queue.cancel);
    await Isolate.spawn(_leaveIdleResourcesOpen, events.sendPort,
        onExit: events.sendPort);
    expect(await queue.moveNext().bounded, isTrue);
    expect(queue.current, 'wrote');
    // The exit message (null) follows once nothing keeps the isolate alive.
    expect(await queue.moveNext().bounded, isTrue);
    expect(queue.current, isNull);
  });

  test('a connection being read keeps its isolate alive until it ends',
      () async {
    final events = ReceivePort();
    final queue = StreamIterator<Object?>(events);
    addTearDown(queue.cancel);
    await Isolate.spawn(_echoOnce, events.sendPort, onExit: events.sendPort);
    expect(await queue.moveNext().bounded, isTrue);
    final port = queue.current as int;
    final socket = await Socket.connect(InternetAddress.loopbackIPv4, port);
    final replies = StreamIterator<List<int>>(socket);
    for (final message in [
      [1, 2],
      [3, 4]
    ]) {
      // Each round trip is answered: the isolate is still there, although
      // its only work is a connection waiting for data.
      socket.add(message);
      expect(await replies.moveNext().bounded, isTrue);
      expect(replies.current, message);
    }
    await socket.close();
    expect(await replies.moveNext().bounded, isFalse,
        reason: 'the server closes after the end of stream');
    // Then nothing keeps it alive: the exit message arrives.
    expect(await queue.moveNext().bounded, isTrue);
    expect(queue.current, isNull);
  });

  test('a listened message stream keeps its isolate alive until it ends',
      () async {
    if (!Transport.messagingSupported) {
      markTestSkipped('this kernel cannot message between io_uring workers');
      return;
    }
    final worker = testWorker();
    final events = ReceivePort();
    final queue = StreamIterator<Object?>(events);
    addTearDown(queue.cancel);
    await Isolate.spawn(_waitForOneMessage, events.sendPort,
        onExit: events.sendPort);
    expect(await queue.moveNext().bounded, isTrue);
    final target = queue.current as int;
    await worker.sendMessage(target, 1, 77).bounded;
    expect(await queue.moveNext().bounded, isTrue);
    expect(queue.current, 77);
    expect(await queue.moveNext().bounded, isTrue);
    expect(queue.current, isNull, reason: 'it exits after the message');
  });
}
