import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

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
    final firstBytes = Completer<void>();
    final ended = Completer<void>();
    final subscription = client.listen((chunk) {
      received.setRange(got, got + chunk.length, chunk);
      got += chunk.length;
      if (!firstBytes.isCompleted) firstBytes.complete();
    }, onDone: ended.complete);
    await firstBytes.future.bounded;
    subscription.pause();
    final atPause = got;
    // The server's write started before its first bytes arrived here.
    final written = serverWrite!;
    var writeDone = false;
    unawaited(written.then((_) => writeDone = true));
    // Time-based on purpose: this shows that nothing happens while paused
    // (no event arrives, the writer stays blocked), which takes a while to
    // watch. 'the peer's write stalls' below shows the stall by an event.
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
    final firstAccepted = Completer<void>();
    final secondAccepted = Completer<void>();
    final subscription = server.listen((connection) {
      accepted.add(connection);
      if (accepted.length == 1) firstAccepted.complete();
      if (accepted.length == 2) secondAccepted.complete();
    });
    final first = await TcpConnection.connect(
        InternetAddress.loopbackIPv4, server.port,
        worker: worker);
    await firstAccepted.future.bounded;
    subscription.pause();
    // Neither client reads: the only operation in flight is the accept, and
    // pausing cancels it.
    await untilStats(worker, (stats) => stats.opsInFlight == 0,
        reason: 'the accept cancelled');
    // The kernel completes the handshake; the connection waits in the queue.
    final second = await TcpConnection.connect(
        InternetAddress.loopbackIPv4, server.port,
        worker: worker);
    // An accept still armed would have completed before this round trip.
    await nextDrain(worker);
    expect(accepted, hasLength(1));
    expect(worker.stats().opsInFlight, 0, reason: 'no accept armed');
    subscription.resume();
    await secondAccepted.future.bounded;
    for (final connection in [first, second, ...accepted]) {
      connection.destroy();
    }
  });
}
