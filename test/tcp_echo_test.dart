import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';

void main() {
  setUpTransport();

  test('echo over IPv4 against the in-package server', () async {
    final worker = testWorker();
    final server =
        await startEchoServer(InternetAddress.loopbackIPv4, worker: worker);
    expect(server.port, greaterThan(0));
    final client = await TcpConnection.connect('127.0.0.1', server.port,
        worker: worker);
    expect(client.remoteAddress.address, '127.0.0.1');
    expect(client.remotePort, server.port);
    expect(client.localPort, greaterThan(0));
    expect(client.localAddress.address, '127.0.0.1');
    final reader = ByteReader(client);
    for (var round = 0; round < 5; round++) {
      await expectEcho(client, reader, pattern(100 + round * 1000, round));
    }
    await client.close();
    expect(client.isClosed, isTrue);
  });

  test('echo over IPv6', () async {
    if (!await ipv6Available()) {
      markTestSkipped('no IPv6 loopback on this machine');
      return;
    }
    final worker = testWorker();
    final server = await startEchoServer('::1', worker: worker);
    final client = await TcpConnection.connect(
        InternetAddress.loopbackIPv6, server.port,
        worker: worker);
    expect(client.remoteAddress.type, InternetAddressType.IPv6);
    await expectEcho(client, ByteReader(client), pattern(5000, 2));
    await client.close();
  });

  test('copying echo server (no payloads)', () async {
    final worker = testWorker();
    final client = await connectToEchoServer(worker, zeroCopy: false);
    await expectEcho(client, ByteReader(client), pattern(70000, 3));
    await client.close();
  });

  test('client against a dart:io ServerSocket', () async {
    final worker = testWorker();
    final server = await startDartIoEchoServer(InternetAddress.loopbackIPv4);
    final client = await TcpConnection.connect(
        InternetAddress.loopbackIPv4, server.port,
        worker: worker);
    await expectEcho(client, ByteReader(client), pattern(100000, 4));
    await client.close();
  });

  test('server against a dart:io Socket client', () async {
    final worker = testWorker();
    final server =
        await startEchoServer(InternetAddress.loopbackIPv4, worker: worker);
    final socket =
        await Socket.connect(InternetAddress.loopbackIPv4, server.port);
    final reader = ByteReader(socket);
    final data = pattern(200000, 5);
    socket.add(data);
    await socket.flush();
    expect(sameBytes(await reader.read(data.length), data), isTrue);
    await socket.close(); // our server closes after the end of stream
    expect(await reader.readToEnd(), isEmpty);
  });

  test('8 MiB byte-exact through few send buffers', () async {
    final serverWorker = testWorker();
    // Four send buffers: writes wait for sends all the time.
    final clientWorker = testWorker(const WorkerConfig(sendBufferCount: 4));
    final server = await startEchoServer(InternetAddress.loopbackIPv4,
        worker: serverWorker);
    final client = await TcpConnection.connect(
        InternetAddress.loopbackIPv4, server.port,
        worker: clientWorker);
    final data = pattern(8 << 20, 6);
    final reader = ByteReader(client);
    final written = client.write(data);
    final back = await reader.read(data.length);
    await written;
    expect(sameBytes(back, data), isTrue);
    await client.close();
    await untilStats(
        clientWorker, (stats) => stats.buffersOutstanding == 0,
        reason: 'client buffers back');
  });

  test('writeAll, shutdownWrite and end of stream', () async {
    final worker = testWorker();
    final client = await connectToEchoServer(worker);
    final reader = ByteReader(client);
    final parts = [pattern(10, 7), pattern(50000, 8), pattern(1, 9)];
    await client.writeAll(parts);
    await client.shutdownWrite();
    await expectLater(client.write([1]),
        throwsA(isA<TransportClosedException>()));
    final back = await reader.readToEnd();
    expect(sameBytes(back, [for (final p in parts) ...p]), isTrue);
    await client.close();
  });

  test('200 concurrent connections', () async {
    final worker = testWorker();
    final server =
        await startEchoServer(InternetAddress.loopbackIPv4, worker: worker);
    Future<void> one(int i) async {
      final client = await TcpConnection.connect(
          InternetAddress.loopbackIPv4, server.port,
          worker: worker);
      await expectEcho(client, ByteReader(client), pattern(1024 + i, i));
      await client.close();
    }

    await Future.wait([for (var i = 0; i < 200; i++) one(i)]);
    await server.close();
    await untilStats(
        worker,
        (stats) => stats.socketsOpen == 0 && stats.buffersOutstanding == 0,
        reason: 'every socket closed and every buffer back');
  });

  test('payloads: zero copy, release and stats', () async {
    final worker = testWorker();
    final server =
        await TcpListener.bind(InternetAddress.loopbackIPv4, 0, worker: worker);
    addTearDown(server.close);
    final payloads = <Payload>[];
    var received = 0;
    final gotAll = Completer<void>();
    server.listen((connection) {
      connection.payloads.listen((payload) {
        payloads.add(payload);
        received += payload.length;
        if (received == 300 && !gotAll.isCompleted) gotAll.complete();
      });
    });
    final socket =
        await Socket.connect(InternetAddress.loopbackIPv4, server.port);
    addTearDown(socket.destroy);
    final data = pattern(300, 10);
    socket.add(data);
    await socket.flush();
    await gotAll.future;
    expect(worker.stats().piecesOutstanding, payloads.length);
    final joined = <int>[for (final p in payloads) ...p.bytes];
    expect(sameBytes(joined, data), isTrue);
    for (final payload in payloads) {
      payload.release();
      payload.release(); // idempotent
      expect(payload.isReleased, isTrue);
    }
    expect(worker.stats().buffersOutstanding, 0);
    expect(() => payloads.first.bytes, throwsStateError);
  });

  test('a connection is read as bytes or as payloads, not both', () async {
    final worker = testWorker();
    final client = await connectToEchoServer(worker);
    final subscription = client.payloads.listen((p) => p.release());
    expect(() => client.listen((_) {}), throwsStateError);
    await subscription.cancel();
    client.destroy();
  });

  test('bytes stream delivers Uint8List copies', () async {
    final worker = testWorker();
    final client = await connectToEchoServer(worker);
    final first = client.first;
    await client.write([1, 2, 3]);
    final Uint8List bytes = await first;
    expect(bytes, [1, 2, 3]);
    client.destroy();
    await untilStats(worker, (stats) => stats.buffersOutstanding == 0,
        reason: 'buffers back');
  });
}
