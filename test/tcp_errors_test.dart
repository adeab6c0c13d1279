import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';

void main() {
  setUpTransport();

  test('connect refused', () async {
    final worker = testWorker();
    final probe = await ServerSocket.bind(InternetAddress.loopbackIPv4, 0);
    final port = probe.port;
    await probe.close();
    await expectLater(
        TcpConnection.connect(InternetAddress.loopbackIPv4, port,
            worker: worker),
        throwsA(isA<TransportException>()
            .having((e) => e.errno, 'errno', 111)
            .having((e) => e.operation, 'operation', 'connect')));
    expect(worker.stats().socketsOpen, 0);
  });

  test('connect times out against a full backlog', () async {
    final worker = testWorker();
    // Never listened to: it never accepts, so its queue fills up and further
    // SYNs are dropped.
    final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
        backlog: 1, worker: worker);
    addTearDown(listener.close);
    final fillers = <TcpConnection>[];
    TransportTimeoutException? timedOut;
    for (var i = 0; i < 16 && timedOut == null; i++) {
      try {
        fillers.add(await TcpConnection.connect(
            InternetAddress.loopbackIPv4, listener.port,
            timeout: const Duration(milliseconds: 300), worker: worker));
      } on TransportTimeoutException catch (error) {
        timedOut = error;
      }
    }
    expect(timedOut, isNotNull,
        reason: 'connect never timed out against a full backlog');
    expect(timedOut!.operation, 'connect');
    expect(timedOut.timeout, const Duration(milliseconds: 300));
    for (final filler in fillers) {
      filler.destroy();
    }
  });

  test('read timeout ends the stream with a timeout error', () async {
    final worker = testWorker();
    final peer = await silentPeer();
    final client = await TcpConnection.connect(
        InternetAddress.loopbackIPv4, peer.port,
        worker: worker)
      ..readTimeout = const Duration(milliseconds: 200);
    await expectLater(
        client,
        emitsInOrder(<Object>[
          emitsError(isA<TransportTimeoutException>()
              .having((e) => e.operation, 'operation', 'recv')),
          emitsDone,
        ]));
    // The connection is still usable for writing.
    await client.write([1, 2, 3]);
    await client.close();
  });

  test('destroy fails pending writes and ends the input', () async {
    final worker = testWorker();
    final peer = await silentPeer();
    final client = await TcpConnection.connect(
        InternetAddress.loopbackIPv4, peer.port,
        worker: worker);
    final errors = <Object>[];
    final ended = Completer<void>();
    client.listen((_) {}, onError: errors.add, onDone: ended.complete);
    // Far more than the socket buffers hold: most of it stays queued.
    final write = client.write(Uint8List(64 << 20));
    await untilStats(worker, (stats) => stats.opsInFlight >= 2,
        reason: 'a send and the receive in flight');
    client.destroy();
    client.destroy(); // idempotent
    await expectLater(write, throwsA(isA<TransportClosedException>()));
    await ended.future;
    expect(errors, isEmpty);
    await expectLater(
        client.write([1]), throwsA(isA<TransportClosedException>()));
    await expectLater(client.flush(), throwsA(isA<TransportClosedException>()));
    await expectNothingLeft(worker);
  });

  test('close waits for queued writes, then closes', () async {
    final worker = testWorker();
    final client = await connectToEchoServer(worker);
    final reader = ByteReader(client);
    final data = pattern(1 << 20, 11);
    final write = client.write(data);
    final closed = client.close();
    expect(identical(client.close(), closed), isTrue);
    await write;
    await closed;
    expect(client.isClosed, isTrue);
    // The input ended with the close (what had arrived before is kept).
    expect(reader.available, lessThanOrEqualTo(data.length));
    await expectLater(
        client.write([1]), throwsA(isA<TransportClosedException>()));
  });

  test('closing the worker fails the futures in flight and ends the streams',
      () async {
    final worker = Worker();
    final peer = await silentPeer();
    final client = await TcpConnection.connect(
        InternetAddress.loopbackIPv4, peer.port,
        worker: worker);
    // Closing the worker closes its sockets, as destroy() does: the streams
    // end without an error event (one nobody listens to would kill the
    // isolate); the futures of what was in flight fail.
    final input = expectLater(client, emitsDone);
    final write = client.write(Uint8List(64 << 20));
    final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
        worker: worker);
    final accepts = expectLater(listener, emitsDone);
    await untilStats(worker, (stats) => stats.opsInFlight >= 3,
        reason: 'the receive, a send and the accept in flight');
    await worker.close();
    await expectLater(write, throwsA(isA<TransportClosedException>()));
    await input;
    await accepts;
    expect(worker.stats, throwsA(isA<TransportClosedException>()));
    await expectLater(
        TcpConnection.connect(InternetAddress.loopbackIPv4, peer.port,
            worker: worker),
        throwsA(isA<TransportClosedException>()));
    await expectLater(
        TcpListener.bind(InternetAddress.loopbackIPv4, 0, worker: worker),
        throwsA(isA<TransportClosedException>()));
    await expectLater(
        client.write([1]), throwsA(isA<TransportClosedException>()));
    client.destroy(); // no-op on a closed worker
    await listener.close();
  });

  test('a closed listener ends its stream and refuses nothing twice',
      () async {
    final worker = testWorker();
    final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
        worker: worker);
    final done = expectLater(listener, emitsDone);
    await untilStats(worker, (stats) => stats.opsInFlight == 1,
        reason: 'the accept armed');
    await listener.close();
    await listener.close();
    expect(listener.isClosed, isTrue);
    await done;
    await expectLater(
        TcpConnection.connect(InternetAddress.loopbackIPv4, listener.port,
            worker: worker),
        throwsA(isA<TransportException>().having((e) => e.errno, 'errno', 111)));
  });

  test('payload misuse is refused', () async {
    final worker = testWorker();
    final server =
        await TcpListener.bind(InternetAddress.loopbackIPv4, 0, worker: worker);
    addTearDown(server.close);
    final got = Completer<(TcpConnection, Payload)>();
    server.listen((connection) {
      connection.payloads.listen((payload) {
        if (!got.isCompleted) got.complete((connection, payload));
      });
    });
    final client = await TcpConnection.connect(
        InternetAddress.loopbackIPv4, server.port,
        worker: worker);
    await client.write([42]);
    final (connection, payload) = await got.future;
    expect(payload.bytes, [42]);
    payload.release();
    expect(() => connection.writePayload(payload), throwsStateError);
    client.destroy();
    connection.destroy();
  });

  test('bad arguments are refused before any native call', () async {
    final worker = testWorker();
    await expectLater(
        TcpConnection.connect('127.0.0.1', 0, worker: worker),
        throwsRangeError);
    await expectLater(
        TcpConnection.connect('127.0.0.1', 1,
            timeout: Duration.zero, worker: worker),
        throwsRangeError);
    await expectLater(
        TcpConnection.connect(42, 1, worker: worker), throwsArgumentError);
  });
}
