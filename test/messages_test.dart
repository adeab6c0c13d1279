import 'dart:async';
import 'dart:isolate';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';

/// The bound of every wait in this file.
const Duration _wait = Duration(seconds: 20);

/// Tags of the ping-pong isolate's protocol.
const int _ping = 1;
const int _pong = 2;
const int _quit = 3;

/// Skips the current test when the kernel cannot message between rings
/// (`IORING_OP_MSG_RING` with passed flags needs Linux 6.3).
bool _skipWithoutMessaging() {
  if (Transport.messagingSupported) return false;
  markTestSkipped('this kernel cannot message between io_uring workers');
  return true;
}

/// The other side of the ping-pong tests: its own worker; answers each
/// message `(_ping, v)` from worker `message[1]` with `(_pong, v + 1)`, and
/// each bytes message with the same bytes (same tag), releasing it. Replies
/// its worker id on `message[0]`, then, after `(_quit, _)`, stops and closes
/// its worker and replies `'done'`.
Future<void> _pongIsolate(List<Object?> message) async {
  final reply = message[0] as SendPort;
  final peer = message[1] as int;
  final worker = Worker();
  final quit = Completer<void>();
  final bytes = worker.byteMessages.listen((received) {
    final copy = Uint8List.fromList(received.bytes);
    received.release();
    unawaited(worker.sendBytes(peer, received.tag, copy));
  });
  worker.messages.listen((received) {
    if (received.tag == _ping) {
      unawaited(worker.sendMessage(peer, _pong, received.value + 1));
    } else if (received.tag == _quit && !quit.isCompleted) {
      quit.complete();
    }
  });
  reply.send(worker.id);
  await quit.future;
  await bytes.cancel();
  await worker.stop();
  await worker.close();
  reply.send('done');
}

/// Creates a worker, replies its id, and replies the value of the first
/// message it gets (after waiting idle for it), then closes the worker.
Future<void> _sleeperIsolate(SendPort reply) async {
  final worker = Worker();
  final first = worker.messages.first;
  reply.send(worker.id);
  final message = await first;
  await worker.close();
  reply.send(message.value);
}

/// Waits for a stop request, stops its worker and returns the request's
/// value.
Future<int> _stopOnRequest(WorkerContext context) async {
  final value = await context.worker.stopRequests.first;
  await context.worker.stop();
  return value;
}

void main() {
  setUpTransport();

  test('messages reach another worker in the order they were sent', () async {
    if (_skipWithoutMessaging()) return;
    const count = 500;
    final a = testWorker();
    final b = testWorker();
    final received = <WorkerMessage>[];
    final all = Completer<void>();
    b.messages.listen((message) {
      received.add(message);
      if (received.length == count) all.complete();
    });
    await Future.wait([
      for (var i = 0; i < count; i++) a.sendMessage(b.id, 7, i * 3)
    ]).timeout(_wait);
    await all.future.timeout(_wait);
    expect(received, [for (var i = 0; i < count; i++) WorkerMessage(7, i * 3)]);
  });

  test('tags and values are unsigned 32-bit numbers', () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final b = testWorker();
    final first = b.messages.first;
    await a.sendMessage(b.id, 0xffffffff, 0xfffffffe).timeout(_wait);
    expect(await first.timeout(_wait),
        const WorkerMessage(0xffffffff, 0xfffffffe));
    expect(() => a.sendMessage(b.id, -1, 0), throwsRangeError);
    expect(() => a.sendMessage(b.id, 0, 0x100000000), throwsRangeError);
  });

  test('two isolates play ping-pong, in order', () async {
    if (_skipWithoutMessaging()) return;
    const rounds = 1000;
    final a = testWorker();
    final replies = ReceivePort();
    final events = StreamIterator<Object?>(replies);
    addTearDown(events.cancel);
    await Isolate.spawn(_pongIsolate, <Object?>[replies.sendPort, a.id],
        debugName: 'pong');
    expect(await events.moveNext().timeout(_wait), isTrue);
    final b = events.current as int;

    final pongs = StreamIterator<WorkerMessage>(a.messages);
    addTearDown(pongs.cancel);
    for (var i = 0; i < rounds; i++) {
      await a.sendMessage(b, _ping, i).timeout(_wait);
      expect(await pongs.moveNext().timeout(_wait), isTrue);
      expect(pongs.current, WorkerMessage(_pong, i + 1));
    }

    await a.sendMessage(b, _quit, 0).timeout(_wait);
    expect(await events.moveNext().timeout(_wait), isTrue);
    expect(events.current, 'done');
    // Stopped and closed: it takes nothing any more.
    await expectLater(
        a.sendMessage(b, _ping, 0), throwsA(isA<WorkerGoneException>()));
  });

  test('bytes travel to another isolate and back exactly', () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final inUse = Transport.payloadsInUse;
    final replies = ReceivePort();
    final events = StreamIterator<Object?>(replies);
    addTearDown(events.cancel);
    await Isolate.spawn(_pongIsolate, <Object?>[replies.sendPort, a.id],
        debugName: 'bytes');
    expect(await events.moveNext().timeout(_wait), isTrue);
    final b = events.current as int;

    final sizes = [0, 1, 1000, 4096, 40000, Transport.payloadSize];
    final back = StreamIterator<BytesMessage>(a.byteMessages);
    addTearDown(back.cancel);
    for (var i = 0; i < sizes.length; i++) {
      await a.sendBytes(b, i, pattern(sizes[i], i)).timeout(_wait);
    }
    for (var i = 0; i < sizes.length; i++) {
      expect(await back.moveNext().timeout(_wait), isTrue);
      final message = back.current;
      expect(message.tag, i);
      expect(message.length, sizes[i]);
      expect(sameBytes(message.bytes, pattern(sizes[i], i)), isTrue,
          reason: 'bytes of message $i differ');
      message.release();
      expect(message.isReleased, isTrue);
      message.release(); // idempotent
      expect(() => message.bytes, throwsStateError);
    }

    await a.sendMessage(b, _quit, 0).timeout(_wait);
    expect(await events.moveNext().timeout(_wait), isTrue);
    expect(events.current, 'done');
    // Every payload went back to the pool exactly once.
    expect(Transport.payloadsInUse, inUse);
  });

  test('more bytes than a payload holds are refused at once', () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final b = testWorker();
    expect(() => a.sendBytes(b.id, 0, Uint8List(Transport.payloadSize + 1)),
        throwsArgumentError);
  });

  test('an idle isolate wakes up for a message', () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final replies = ReceivePort();
    final events = StreamIterator<Object?>(replies);
    addTearDown(events.cancel);
    final exited = ReceivePort();
    final exit = exited.first;
    await Isolate.spawn(_sleeperIsolate, replies.sendPort,
        onExit: exited.sendPort, debugName: 'sleeper');
    expect(await events.moveNext().timeout(_wait), isTrue);
    final sleeper = events.current as int;
    // Its only way to learn of this message is its worker's notifier.
    await a.sendMessage(sleeper, 9, 12345).timeout(_wait);
    expect(await events.moveNext().timeout(_wait), isTrue);
    expect(events.current, 12345);
    // Its worker is closed: nothing keeps the isolate alive any more.
    await exit.timeout(_wait);
  });

  test('a message to a closed worker fails with WorkerGoneException',
      () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final b = Worker();
    final gone = b.id;
    await b.close();
    final inUse = Transport.payloadsInUse;
    await expectLater(
        a.sendMessage(gone, 1, 2),
        throwsA(isA<WorkerGoneException>()
            .having((e) => e.code, 'code', -5020)));
    await expectLater(a.sendBytes(gone, 1, [1, 2, 3]),
        throwsA(isA<WorkerGoneException>()));
    // The payload of the refused send went back to the pool.
    expect(Transport.payloadsInUse, inUse);
    expect(() => Worker.leastLoaded([gone]),
        throwsA(isA<WorkerGoneException>()));
  });

  test('a stopped worker refuses messages; its streams end', () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final b = testWorker();
    final before = b.messages.toList();
    await a.sendMessage(b.id, 5, 6).timeout(_wait);
    await b.stop().timeout(_wait);
    expect(identical(b.stop(), b.stop()), isTrue);
    // What was sent before the stop still arrived; then the stream ended.
    expect(await before.timeout(_wait), [const WorkerMessage(5, 6)]);
    await expectLater(
        a.sendMessage(b.id, 5, 7), throwsA(isA<WorkerGoneException>()));
    // Other work goes on: the stopped worker can still send.
    final back = a.messages.first;
    await b.sendMessage(a.id, 8, 9).timeout(_wait);
    expect(await back.timeout(_wait), const WorkerMessage(8, 9));
  });

  test('closing a worker fails its sends in flight and ends its streams',
      () async {
    if (_skipWithoutMessaging()) return;
    final a = Worker();
    final b = testWorker();
    final done = a.messages.toList();
    final stop = a.stop();
    final arrived = b.messages.first;
    final send = a.sendMessage(b.id, 1, 1);
    await a.close();
    // Closing first drains what the kernel already reported, so the send
    // reports what happened: posted (and it arrives), or failed as closed.
    final sent = await send.then((_) => true,
        onError: (Object e) => e is TransportClosedException ? false : throw e);
    if (sent) {
      expect(await arrived.timeout(_wait), const WorkerMessage(1, 1));
    }
    // Likewise the stop: reported done by the drain, or failed as closed.
    await stop.then((_) {},
        onError: (Object e) => expect(e, isA<TransportClosedException>()));
    expect(await done.timeout(_wait), isEmpty);
    await expectLater(a.sendMessage(b.id, 1, 1),
        throwsA(isA<TransportClosedException>()));
  });

  test('Worker.leastLoaded picks among open workers', () async {
    final a = testWorker();
    final b = testWorker();
    final c = Worker();
    await c.close();
    final ids = [a.id, b.id, c.id];
    for (var i = 0; i < 10; i++) {
      expect([a.id, b.id], contains(Worker.leastLoaded(ids)));
    }
    expect(() => Worker.leastLoaded(<int>[]), throwsArgumentError);
  });

  test('a stop request reaches every worker of a pool, which stop and close',
      () async {
    if (_skipWithoutMessaging()) return;
    final pool = await WorkerPool.spawn(3, _stopOnRequest).timeout(_wait);
    addTearDown(pool.kill);
    expect(pool.workerIds, hasLength(3));
    expect(pool.workerIds.toSet(), hasLength(3));
    // Every worker of the process is asked, the pool's three among them.
    expect(Transport.requestStop(42), greaterThanOrEqualTo(3));
    expect(await pool.done.timeout(_wait), [42, 42, 42]);
    final a = testWorker();
    for (final id in pool.workerIds) {
      await expectLater(
          a.sendMessage(id, 1, 1), throwsA(isA<WorkerGoneException>()));
    }
  });

  test('messages sent before anyone listens wait for the listener, in order',
      () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final b = testWorker();
    await Future.wait([for (var i = 0; i < 10; i++) a.sendMessage(b.id, 2, i)])
        .timeout(_wait);
    expect(await b.messages.take(10).toList().timeout(_wait),
        [for (var i = 0; i < 10; i++) WorkerMessage(2, i)]);
  });

  test('a worker can message itself', () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final arrived = a.messages.first;
    final bytes = a.byteMessages.first;
    await a.sendMessage(a.id, 5, 6).timeout(_wait);
    await a.sendBytes(a.id, 7, [8, 9]).timeout(_wait);
    expect(await arrived.timeout(_wait), const WorkerMessage(5, 6));
    final message = await bytes.timeout(_wait);
    expect(message.tag, 7);
    expect(message.bytes, [8, 9]);
    message.release();
  });

  test('after a subscription is cancelled, later messages are dropped and '
      'later bytes go back to the pool', () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final b = testWorker();
    final inUse = Transport.payloadsInUse;
    final messages = StreamIterator<WorkerMessage>(b.messages);
    final bytes = StreamIterator<BytesMessage>(b.byteMessages);
    await a.sendMessage(b.id, 1, 1).timeout(_wait);
    await a.sendBytes(b.id, 1, [1]).timeout(_wait);
    expect(await messages.moveNext().timeout(_wait), isTrue);
    expect(await bytes.moveNext().timeout(_wait), isTrue);
    bytes.current.release();
    await messages.cancel();
    await bytes.cancel();
    // Still delivered to the worker (the sends succeed), then dropped.
    await a.sendMessage(b.id, 1, 2).timeout(_wait);
    await a.sendBytes(b.id, 1, [2]).timeout(_wait);
    await nextDrain(b);
    expect(Transport.payloadsInUse, inUse,
        reason: 'the dropped bytes message was released');
  });

  test('bytes waiting in a paused subscription go back to the pool when it '
      'is cancelled', () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final b = testWorker();
    final inUse = Transport.payloadsInUse;
    final first = Completer<void>();
    late final StreamSubscription<BytesMessage> subscription;
    subscription = b.byteMessages.listen((message) {
      message.release();
      subscription.pause();
      first.complete();
    });
    for (var i = 0; i < 4; i++) {
      await a.sendBytes(b.id, 1, [i]).timeout(_wait);
    }
    await first.future.timeout(_wait);
    // The other three arrive and wait in the paused subscription.
    for (var i = 0; i < 3; i++) {
      await nextDrain(b);
    }
    expect(Transport.payloadsInUse, inUse + 3);
    await subscription.cancel();
    expect(Transport.payloadsInUse, inUse,
        reason: 'released at the cancel, not when a garbage collection '
            'finds them');
  });

  test('bytes held when their worker closes are unreadable; their payloads '
      'go back to the pool', () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final b = Worker();
    final inUse = Transport.payloadsInUse;
    final arrived = b.byteMessages.first;
    await a.sendBytes(b.id, 3, pattern(1000, 3)).timeout(_wait);
    final held = await arrived.timeout(_wait);
    expect(Transport.payloadsInUse, inUse + 1);
    await b.close();
    expect(() => held.bytes, throwsA(isA<TransportClosedException>()));
    held.release(); // a no-op now
    expect(Transport.payloadsInUse, inUse);
  });

  test('tags of bytes are unsigned 32-bit numbers', () async {
    if (_skipWithoutMessaging()) return;
    final a = testWorker();
    final b = testWorker();
    expect(() => a.sendBytes(b.id, -1, [1]), throwsRangeError);
    expect(() => a.sendBytes(b.id, 0x100000000, [1]), throwsRangeError);
    final arrived = b.byteMessages.first;
    await a.sendBytes(b.id, 0xffffffff, const <int>[]).timeout(_wait);
    final message = await arrived.timeout(_wait);
    expect(message.tag, 0xffffffff);
    expect(message.bytes, isEmpty);
    message.release();
  });
}
