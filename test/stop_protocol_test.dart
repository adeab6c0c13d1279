/// The stop protocol: `Transport.requestStop` asks every worker of the
/// process, each answers with `stop()`, and a stopped worker has seen every
/// message reported as sent to it before its message streams end.
library;

import 'dart:async';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// Skips the current test when the kernel cannot message between rings
/// (`IORING_OP_MSG_RING` with passed flags needs Linux 6.3).
bool _skipWithoutMessaging() {
  if (Transport.messagingSupported) return false;
  markTestSkipped('this kernel cannot message between io_uring workers');
  return true;
}

/// A pool member: takes every message until a stop request comes, then
/// stops its worker, takes what was still on its way (the stream ends when
/// the stop completed) and returns every value it got, in order.
Future<List<int>> _drainUntilStopped(WorkerContext context) async {
  final worker = context.worker;
  final values = <int>[];
  final ended = Completer<void>();
  worker.messages.listen((message) => values.add(message.value),
      onDone: ended.complete);
  await worker.stopRequests.first;
  await worker.stop();
  await ended.future;
  return values;
}

void main() {
  setUpTransport();

  test('a worker that stops has seen every message reported as sent to it',
      () async {
    if (_skipWithoutMessaging()) return;
    final sender = testWorker();
    final receiver = testWorker();
    final received = <int>[];
    final ended = Completer<void>();
    receiver.messages.listen((message) => received.add(message.value),
        onDone: ended.complete);
    // Sends before, around and after the stop: some are posted, the later
    // ones refused.
    final outcomes = <Future<bool>>[];
    void send(int value) => outcomes.add(sender
        .sendMessage(receiver.id, 1, value)
        .then((_) => true, onError: (Object error) {
      expect(error, isA<WorkerGoneException>());
      return false;
    }));
    for (var i = 0; i < 100; i++) {
      send(i);
    }
    await outcomes.last.timeout(testWait);
    for (var i = 100; i < 200; i++) {
      send(i);
    }
    final stopped = receiver.stop();
    for (var i = 200; i < 300; i++) {
      send(i);
    }
    await stopped.timeout(testWait);
    await ended.future.timeout(testWait);
    final delivered = [
      for (var i = 0; i < outcomes.length; i++)
        if (await outcomes[i].timeout(testWait)) i
    ];
    expect(received, delivered,
        reason: 'exactly the messages reported as sent, in order');
    expect(delivered, containsAll([for (var i = 0; i < 100; i++) i]));
    expect(delivered.where((value) => value >= 200), isEmpty,
        reason: 'sent after the stop');
  });

  test('a stopped worker still serves its sockets and sends messages',
      () async {
    if (_skipWithoutMessaging()) return;
    final worker = testWorker();
    final other = testWorker();
    await worker.stop().timeout(testWait);
    expect(identical(worker.stop(), worker.stop()), isTrue);
    final client = await connectToEchoServer(worker);
    await expectEcho(client, ByteReader(client), pattern(5000, 1))
        .timeout(testWait);
    await client.close().timeout(testWait);
    final arrived = other.messages.first;
    await worker.sendMessage(other.id, 3, 4).timeout(testWait);
    expect(await arrived.timeout(testWait), const WorkerMessage(3, 4));
    await expectLater(other.sendMessage(worker.id, 3, 5),
        throwsA(isA<WorkerGoneException>())).timeout(testWait);
  });

  test('a stop request reaches every open worker once; stopped workers are '
      'skipped', () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final b = testWorker();
    final requestsToA = Inbox<int>(a.stopRequests);
    final requestsToB = Inbox<int>(b.stopRequests);
    // Other workers of the process count too: compare, do not assume.
    final askedFirst = Transport.requestStop(11);
    expect(askedFirst, greaterThanOrEqualTo(2));
    expect(await requestsToA.next(), 11);
    expect(await requestsToB.next(), 11);
    await b.stop().timeout(testWait);
    await requestsToB.done();
    expect(Transport.requestStop(12), askedFirst - 1);
    expect(await requestsToA.next(), 12);
    expect(requestsToB.received, 1, reason: 'b stopped before the second');
    expect(() => Transport.requestStop(-1), throwsRangeError);
    expect(() => Transport.requestStop(0x100000000), throwsRangeError);
  });

  test('stop on a closed worker fails; close after stop succeeds', () async {
    if (_skipWithoutMessaging()) return;
    final closed = Worker();
    await closed.close();
    await expectLater(closed.stop(), throwsA(isA<TransportClosedException>()))
        .timeout(testWait);
    final stopped = Worker();
    final ended = stopped.messages.toList();
    await stopped.stop().timeout(testWait);
    expect(await ended.timeout(testWait), isEmpty);
    await expectLater(stopped.close(), completes).timeout(testWait);
  });

  test('pool members draining until stopped lose no message', () async {
    if (_skipWithoutMessaging()) return;
    const perMember = 200;
    final pool = await WorkerPool.spawn(3, _drainUntilStopped)
        .timeout(testWait);
    addTearDown(pool.kill);
    final sender = testWorker();
    // Every send is reported as posted before the stop request goes out.
    await Future.wait([
      for (final id in pool.workerIds)
        for (var i = 0; i < perMember; i++) sender.sendMessage(id, 1, i)
    ]).timeout(testWait);
    expect(Transport.requestStop(), greaterThanOrEqualTo(3));
    final got = await pool.done.timeout(testWait);
    expect(got, [
      for (var member = 0; member < 3; member++)
        [for (var i = 0; i < perMember; i++) i]
    ]);
    for (final id in pool.workerIds) {
      await expectLater(sender.sendMessage(id, 1, 0),
          throwsA(isA<WorkerGoneException>())).timeout(testWait);
    }
  });

  test('a stop request that comes before anyone listens waits for the '
      'listener', () async {
    if (_skipWithoutMessaging()) return;
    final worker = testWorker();
    expect(Transport.requestStop(21), greaterThanOrEqualTo(1));
    // Only now listened to: the request waited in the stream.
    expect(await worker.stopRequests.first.timeout(testWait), 21);
  });
}
