import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';

/// The bound of every wait in this file.
const Duration _wait = Duration(seconds: 30);

/// Skips the current test when the kernel cannot message between rings
/// (`IORING_OP_MSG_RING` with passed flags needs Linux 6.3).
bool _skipWithoutMessaging() {
  if (Transport.messagingSupported) return false;
  markTestSkipped('this kernel cannot message between io_uring workers');
  return true;
}

/// A server isolate of a [WorkerPool]: echoes every connection handed to its
/// worker until the pool closes; returns how many it served.
Future<int> _serveHandedOff(WorkerContext context) async {
  var served = 0;
  final subscription = context.worker.handedOffConnections.listen((connection) {
    served++;
    echo(connection);
  });
  await context.closing;
  await subscription.cancel();
  return served;
}

/// A dart:io client: sends [data] on a new connection to [port], checks that
/// the same bytes come back, and closes.
Future<void> _dartIoEchoClient(int port, Uint8List data) async {
  final socket = await Socket.connect(InternetAddress.loopbackIPv4, port);
  final reader = ByteReader(socket);
  try {
    socket.add(data);
    await socket.flush();
    final back = await reader.read(data.length);
    expect(sameBytes(back, data), isTrue, reason: 'echoed bytes differ');
    await socket.close(); // the server closes after the end of stream
    expect(await reader.readToEnd(), isEmpty);
  } finally {
    socket.destroy();
  }
}

void main() {
  setUpTransport();

  test('connections handed to another worker of the isolate are served there',
      () async {
    if (_skipWithoutMessaging()) return;
    final acceptor = testWorker();
    final server = testWorker();
    var served = 0;
    server.handedOffConnections.listen((connection) {
      served++;
      echo(connection);
    });
    final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
        worker: acceptor);
    addTearDown(listener.close);
    final handOffs = <Future<void>>[];
    listener.listen((connection) {
      final handOff = connection.handOff(server.id);
      // From the call on, the connection is no longer this worker's.
      expect(connection.isClosed, isTrue);
      handOffs.add(handOff);
    });
    await Future.wait([
      for (var i = 0; i < 8; i++)
        _dartIoEchoClient(listener.port, pattern(3000 + i, i))
    ]).timeout(_wait);
    await Future.wait(handOffs).timeout(_wait);
    expect(served, 8);
    // Only the listener is left on the acceptor.
    expect(acceptor.stats().socketsOpen, 1);
  });

  test('an acceptor isolate hands connections to server isolates', () async {
    if (_skipWithoutMessaging()) return;
    const connections = 30;
    final pool = await WorkerPool.spawn(3, _serveHandedOff).timeout(_wait);
    addTearDown(pool.kill);
    final acceptor = testWorker();
    final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
        worker: acceptor);
    addTearDown(listener.close);
    final handOffs = <Future<void>>[];
    listener.listen((connection) {
      handOffs.add(connection.handOff(pool.leastLoaded()));
    });

    await Future.wait([
      for (var i = 0; i < connections; i++)
        _dartIoEchoClient(listener.port, pattern(1000 + 37 * i, i))
    ]).timeout(_wait);
    expect(handOffs, hasLength(connections));
    await Future.wait(handOffs).timeout(_wait);

    pool.close();
    final served = await pool.done.timeout(_wait);
    expect(served.fold<int>(0, (sum, n) => sum + n), connections);
    // Least loaded with rotating ties: the work was spread.
    expect(served.where((n) => n > 0).length, greaterThanOrEqualTo(2),
        reason: 'served per isolate: $served');
    expect(acceptor.stats().socketsOpen, 1);
  });

  test('a connection that was read cannot be handed off', () async {
    if (_skipWithoutMessaging()) return;
    final acceptor = testWorker();
    final other = testWorker();
    final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
        worker: acceptor);
    addTearDown(listener.close);
    final accepted = listener.first;
    final client = await Socket.connect(InternetAddress.loopbackIPv4,
        listener.port);
    addTearDown(client.destroy);
    final connection = await accepted.timeout(_wait);
    final reading = connection.listen((_) {});
    expect(() => connection.handOff(other.id), throwsStateError);
    await reading.cancel();
    connection.destroy();
    await expectLater(connection.handOff(other.id),
        throwsA(isA<TransportClosedException>()));
  });

  test('a hand-off to a closed worker gives the connection back', () async {
    if (_skipWithoutMessaging()) return;
    final acceptor = testWorker();
    final gone = Worker();
    final goneId = gone.id;
    await gone.close();
    final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
        worker: acceptor);
    addTearDown(listener.close);
    final accepted = listener.first;
    final client = TcpConnection.connect(InternetAddress.loopbackIPv4,
        listener.port,
        worker: acceptor);
    final connection = await accepted.timeout(_wait);
    final caller = await client.timeout(_wait);
    addTearDown(caller.destroy);

    HandOffException? failure;
    try {
      await connection.handOff(goneId).timeout(_wait);
    } on HandOffException catch (error) {
      failure = error;
    }
    expect(failure, isNotNull, reason: 'the hand-off should have failed');
    final error = failure!;
    expect(error.isWorkerGone, isTrue);
    expect(error.code, -5020);
    final back = error.connection;
    expect(back, isNotNull);
    // The connection is still this worker's: serve it here.
    echo(back!);
    await expectEcho(caller, ByteReader(caller), pattern(5000, 3))
        .timeout(_wait);
  });
}
