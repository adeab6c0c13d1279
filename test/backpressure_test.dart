import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

void main() {
  setUpTransport();

  _stallTests();

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

/// A write or send's timeout while the reader is paused: short, as the tests
/// wait for it to fire (an event), not for a time of their own.
const Duration _stallTimeout = Duration(milliseconds: 500);

void _stallTests() {
  for (final MapEntry(key: kind, value: pair) in streamPairs.entries) {
    test("$kind: a paused reader stalls the peer's write until its timeout "
        'fires; resuming delivers what was sent', () async {
      final worker = testWorker();
      final (reader, writer) = await pair(worker);
      final received = BytesBuilder(copy: false);
      final ended = Completer<void>();
      final subscription = reader.listen(received.add, onDone: ended.complete);
      subscription.pause();
      // More than the kernel's buffers of both ends hold: with the reader
      // receiving, the write would complete; paused, the writer waits for
      // room that never comes, and its timeout fires.
      final data = pattern(32 << 20, 13);
      await expectLater(writer.write(data, timeout: _stallTimeout),
          throwsA(isA<TransportTimeoutException>())).bounded;
      expect(received.length, 0, reason: 'no event while paused');
      writer.destroy();
      subscription.resume();
      await ended.future.bounded;
      final bytes = received.takeBytes();
      expect(bytes.length, greaterThan(0));
      expect(sameBytes(bytes, data.sublist(0, bytes.length)), isTrue,
          reason: 'what the writer sent arrives whole and in order');
    });
  }

  test('Unix datagrams: a paused receiver stalls the sender until its '
      'timeout fires; resuming delivers every datagram, in order', () async {
    final worker = testWorker();
    final name = abstractName('paused');
    final receiver =
        await UnixDatagramSocket.bind(name, worker: worker).bounded;
    addTearDown(receiver.close);
    final sender = await UnixDatagramSocket.bind(null, worker: worker).bounded;
    addTearDown(sender.close);
    final inbox = Inbox<UnixDatagram>(receiver);
    inbox.subscription.pause();
    await untilStats(worker, (stats) => stats.opsInFlight == 0,
        reason: 'the receive cancelled');
    var sent = 0;
    Object? failure;
    while (failure == null && sent < 100000) {
      try {
        await sender
            .send(numbered(sent, 100), name, timeout: _stallTimeout)
            .bounded;
        sent++;
      } on TransportTimeoutException catch (error) {
        failure = error;
      }
    }
    expect(failure, isNotNull, reason: 'the sender stalled');
    expect(sent, greaterThan(0));
    expect(inbox.received, 0, reason: 'no event while paused');
    inbox.subscription.resume();
    for (var i = 0; i < sent; i++) {
      expect(numberOf((await inbox.next()).data), i);
    }
    expect(receiver.dropped, 0, reason: 'a Unix receiver drops nothing');
  });

  test('UDP: what overflows a paused receiver is dropped by the kernel and '
      'counted; the rest arrives in order', () async {
    final worker = testWorker();
    final receiver =
        await UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker)
            .bounded;
    addTearDown(receiver.close);
    final sender =
        await UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker)
            .bounded;
    addTearDown(sender.close);
    // The kernel's minimum: a few datagrams fill it.
    receiver.receiveBufferSize = 1;
    final inbox = Inbox<UdpDatagram>(receiver);
    inbox.subscription.pause();
    await untilStats(worker, (stats) => stats.opsInFlight == 0,
        reason: 'the receive cancelled');
    const count = 200;
    for (var i = 0; i < count; i++) {
      // UDP never waits for the receiver: every send completes.
      await sender
          .send(numbered(i, 1000), InternetAddress.loopbackIPv4, receiver.port)
          .bounded;
    }
    final dropped = receiver.dropped;
    expect(dropped, greaterThan(0));
    expect(dropped, lessThan(count));
    inbox.subscription.resume();
    await inbox.until(() => inbox.received == count - dropped);
    final numbers = [
      for (var i = 0; i < count - dropped; i++)
        numberOf((await inbox.next()).data)
    ];
    expect(numbers, orderedEquals([...numbers]..sort()));
    expect(numbers.toSet(), hasLength(numbers.length));
    expect(receiver.dropped, dropped, reason: 'nothing dropped after resume');
  });

  test('cancelling a paused listener destroys the connections it held back',
      () async {
    final worker = testWorker();
    final server =
        await TcpListener.bind(InternetAddress.loopbackIPv4, 0, worker: worker);
    addTearDown(server.close);
    final got = <TcpConnection>[];
    late final StreamSubscription<TcpConnection> subscription;
    subscription = server.listen((connection) {
      got.add(connection);
      subscription.pause();
    });
    // Connecting all at once: the accept takes several before the pause
    // stops it, and those wait in the paused subscription.
    final clients = await Future.wait([
      for (var i = 0; i < 20; i++)
        Socket.connect(InternetAddress.loopbackIPv4, server.port)
    ]).bounded;
    for (final client in clients) {
      addTearDown(client.destroy);
    }
    await untilStats(worker, (stats) => stats.opsInFlight == 0,
        reason: 'the accept stopped by the pause');
    final held = worker.stats().socketsOpen - got.length - 1;
    expect(held, greaterThan(0), reason: 'connections waiting in the paused '
        'subscription (else this test shows nothing)');
    await subscription.cancel();
    for (final connection in got) {
      connection.destroy();
    }
    // The listener and every connection are closed now, not when a garbage
    // collection finds them.
    expect(worker.stats().socketsOpen, 0);
  });
}
