import 'dart:async';
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

/// The [HandOffException] [handOff] fails with.
Future<HandOffException> _handOffFailure(Future<void> handOff) async {
  try {
    await handOff.timeout(_wait);
  } on HandOffException catch (error) {
    return error;
  }
  fail('the hand-off should have failed');
}

/// A dart:io client connected to port [port] and the connection that
/// [accepts] (the listener's) accepted for it.
Future<(Socket client, TcpConnection accepted)> _acceptDartIoClient(
    int port, StreamIterator<TcpConnection> accepts) async {
  final client =
      await Socket.connect(InternetAddress.loopbackIPv4, port).timeout(_wait);
  addTearDown(client.destroy);
  expect(await accepts.moveNext().timeout(_wait), isTrue);
  final connection = accepts.current;
  addTearDown(connection.destroy);
  return (client, connection);
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

  test('a connection with a write pending cannot be handed off; it stays '
      'usable', () async {
    if (_skipWithoutMessaging()) return;
    final acceptor = testWorker();
    final other = testWorker();
    final (_, server) = await tcpPair(acceptor);
    // The client never reads: the write stays pending.
    final pending = server.write(Uint8List(64 << 20));
    expect(() => server.handOff(other.id), throwsStateError);
    expect(server.isClosed, isFalse);
    server.destroy();
    await expectLater(pending, throwsA(isA<TransportClosedException>()))
        .timeout(_wait);
  });

  test('a hand-off to an unknown worker is refused at once; the connection '
      'stays here', () async {
    if (_skipWithoutMessaging()) return;
    final acceptor = testWorker();
    final (client, server) = await tcpPair(acceptor);
    final failure = await _handOffFailure(server.handOff(0x7fffffff));
    expect(failure.isWorkerGone, isTrue);
    expect(failure.connection, same(server),
        reason: 'refused at once: the same object');
    expect(server.isClosed, isFalse);
    echo(server);
    await expectEcho(client, ByteReader(client), pattern(2000, 4))
        .timeout(_wait);
  });

  test('a hand-off to a stopped worker gives the connection back', () async {
    if (_skipWithoutMessaging()) return;
    final acceptor = testWorker();
    final stopped = testWorker();
    await stopped.stop().timeout(_wait);
    final (client, server) = await tcpPair(acceptor);
    final failure = await _handOffFailure(server.handOff(stopped.id));
    expect(failure.isWorkerGone, isTrue);
    final back = failure.connection;
    expect(back, isNotNull);
    addTearDown(back!.destroy);
    echo(back);
    await expectEcho(client, ByteReader(client), pattern(2000, 5))
        .timeout(_wait);
  });

  test('handed-off connections wait for the listener; after it cancelled, '
      'they are closed', () async {
    if (_skipWithoutMessaging()) return;
    final acceptor = testWorker();
    final receiver = testWorker();
    final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
        worker: acceptor);
    final accepts = StreamIterator<TcpConnection>(listener);
    addTearDown(accepts.cancel);
    final (first, firstAccepted) =
        await _acceptDartIoClient(listener.port, accepts);
    await firstAccepted.handOff(receiver.id).timeout(_wait);
    expect(acceptor.stats().socketsOpen, 1, reason: 'only the listener');
    // Handed over before anyone listened: it waited.
    final arrivals = StreamIterator<TcpConnection>(
        receiver.handedOffConnections);
    expect(await arrivals.moveNext().timeout(_wait), isTrue);
    final served = arrivals.current;
    addTearDown(served.destroy);
    expect(served.remoteAddress.address, '127.0.0.1');
    expect(served.remotePort, first.port);
    echo(served);
    final firstReader = ByteReader(first);
    first.add(pattern(3000, 6));
    expect(sameBytes(await firstReader.read(3000).timeout(_wait),
        pattern(3000, 6)), isTrue);
    await arrivals.cancel();
    // Nobody takes connections any more: the next one is closed there, and
    // its client reads the end of the stream.
    final (second, secondAccepted) =
        await _acceptDartIoClient(listener.port, accepts);
    await secondAccepted.handOff(receiver.id).timeout(_wait);
    expect(await ByteReader(second).readToEnd().timeout(_wait), isEmpty);
  });
}
