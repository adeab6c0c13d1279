import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';

void main() {
  setUpTransport();

  test('pausing the reader holds the writer back, resuming loses nothing',
      () async {
    final worker = testWorker();
    final server =
        await TcpListener.bind(InternetAddress.loopbackIPv4, 0, worker: worker);
    addTearDown(server.close);
    // More than loopback socket buffers (a few MiB each way) can absorb.
    const total = 32 << 20;
    final data = pattern(total, 12);
    Future<void>? serverWrite;
    server.listen((connection) {
      serverWrite = connection.write(data).then((_) => connection.close());
    });
    final client = await TcpConnection.connect(
        InternetAddress.loopbackIPv4, server.port,
        worker: worker);
    final received = Uint8List(total);
    var got = 0;
    final ended = Completer<void>();
    final subscription = client.listen((chunk) {
      received.setRange(got, got + chunk.length, chunk);
      got += chunk.length;
    }, onDone: ended.complete);
    await waitUntil(() => got > 0, reason: 'first bytes');
    subscription.pause();
    final atPause = got;
    await waitUntil(() => serverWrite != null, reason: 'the server writing');
    final written = serverWrite!;
    var writeDone = false;
    unawaited(written.then((_) => writeDone = true));
    await Future<void>.delayed(const Duration(milliseconds: 500));
    expect(got, atPause, reason: 'no events while paused');
    expect(writeDone, isFalse,
        reason: 'the writer must wait while the reader is paused');
    // The receive was cancelled: nothing is being received into the pool.
    expect(worker.stats().buffersOutstanding, lessThan(300));
    subscription.resume();
    await ended.future;
    await written;
    expect(got, total);
    expect(sameBytes(received, data), isTrue);
  });

  test('a paused listener leaves connections in the backlog', () async {
    final worker = testWorker();
    final server =
        await TcpListener.bind(InternetAddress.loopbackIPv4, 0, worker: worker);
    addTearDown(server.close);
    final accepted = <TcpConnection>[];
    final subscription = server.listen(accepted.add);
    final first = await TcpConnection.connect(
        InternetAddress.loopbackIPv4, server.port,
        worker: worker);
    await waitUntil(() => accepted.length == 1, reason: 'first accept');
    subscription.pause();
    await Future<void>.delayed(const Duration(milliseconds: 50));
    // The kernel completes the handshake; the connection waits in the queue.
    final second = await TcpConnection.connect(
        InternetAddress.loopbackIPv4, server.port,
        worker: worker);
    await Future<void>.delayed(const Duration(milliseconds: 100));
    expect(accepted, hasLength(1));
    subscription.resume();
    await waitUntil(() => accepted.length == 2, reason: 'second accept');
    for (final connection in [first, second, ...accepted]) {
      connection.destroy();
    }
  });
}
