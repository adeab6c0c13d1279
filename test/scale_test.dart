import 'dart:async';
import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';

void main() {
  setUpTransport();

  test('a fresh worker reports its receive ring and no overflow', () {
    final worker = testWorker();
    final stats = worker.stats();
    // A packed ring starts smaller, 256 KiB of buffers: each buffer serves
    // many receives.
    final packed = stats.packsReceives;
    expect(stats.receiveRingBuffers,
        packed ? (256 << 10) ~/ worker.bufferSize : 256);
    expect(stats.completionOverflows, 0);
    final small = testWorker(const WorkerConfig(receiveBufferCount: 64));
    expect(small.stats().receiveRingBuffers, packed ? 4 : 64);
    final smallBuffers = testWorker(const WorkerConfig(bufferSize: 16 << 10));
    expect(smallBuffers.stats().receiveRingBuffers, packed ? 16 : 256);
    final whole =
        testWorker(const WorkerConfig(wholeReceiveBuffers: true)).stats();
    expect(whole.packsReceives, isFalse);
    expect(whole.receiveRingBuffers, 256);
  });

  test('400 connections echo at once: every byte back, no completion overflow',
      () async {
    // 400 dart:io clients and 400 accepted connections stay under a 1,024
    // open-file limit.
    const connections = 400;
    final worker = testWorker();
    final server =
        await startEchoServer(InternetAddress.loopbackIPv4, worker: worker);
    final clients = await Future.wait([
      for (var i = 0; i < connections; i++)
        Socket.connect(InternetAddress.loopbackIPv4, server.port),
    ]);
    for (final client in clients) {
      client.setOption(SocketOption.tcpNoDelay, true);
    }
    final echoed = [
      for (var i = 0; i < connections; i++)
        ByteReader(clients[i]).read(64).then((back) {
          expect(sameBytes(back, pattern(64, i)), isTrue,
              reason: 'connection $i got other bytes back');
        }),
    ];
    for (var i = 0; i < connections; i++) {
      clients[i].add(pattern(64, i));
    }
    await Future.wait(echoed);
    final stats = worker.stats();
    expect(stats.completionOverflows, 0);
    expect(stats.receiveRingBuffers,
        greaterThanOrEqualTo(stats.packsReceives ? 4 : 256));
    for (final client in clients) {
      client.destroy();
    }
  });
}
