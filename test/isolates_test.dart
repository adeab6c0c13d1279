import 'dart:async';
import 'dart:io';
import 'dart:isolate';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';

/// One echo server isolate: its own worker and a `reusePort` listener on the
/// port it is given (0 for the first). Replies [commands port, bound port],
/// then, after any command, stops and replies the number of connections it
/// accepted.
Future<void> _echoIsolate(List<Object?> message) async {
  final reply = message[0] as SendPort;
  final port = message[1] as int;
  final worker = Worker();
  final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, port,
      reusePort: true, worker: worker);
  var accepted = 0;
  listener.listen((connection) {
    accepted++;
    echo(connection);
  });
  final commands = ReceivePort();
  reply.send(<Object?>[commands.sendPort, listener.port]);
  await commands.first;
  await listener.close();
  await worker.close();
  reply.send(accepted);
}

/// Creates a worker (idle: armed, nothing in flight) and replies its id and
/// a command port. On any command it closes that port and replies
/// 'port closed': from then on only its worker can keep it alive. It waits
/// for a message on its worker, closes the worker and replies
/// 'closed after <value>': nothing keeps the isolate alive after that.
Future<void> _closeWhenToldIsolate(SendPort reply) async {
  final worker = Worker();
  final commands = ReceivePort();
  final message = worker.messages.first;
  reply.send(<Object?>[commands.sendPort, worker.id]);
  await commands.first;
  reply.send('port closed');
  final value = (await message).value;
  await worker.close();
  reply.send('closed after $value');
}

/// Creates a worker and exits at once without closing it; the worker id is
/// the isolate's final message.
void _abandonIsolate(SendPort reply) {
  final worker = Worker();
  Isolate.exit(reply, worker.id);
}

/// Spawns [entry] with [argument] and returns everything the isolate sends
/// back, its uncaught errors (as `[error, stack]`) and its exit (null)
/// through one port: in the order they happened.
Future<StreamIterator<Object?>> _spawn<T>(
    void Function(T argument) entry, T Function(SendPort port) argument,
    String name) async {
  final port = ReceivePort();
  final events = StreamIterator<Object?>(port);
  addTearDown(events.cancel);
  await Isolate.spawn<T>(entry, argument(port.sendPort),
      onError: port.sendPort, onExit: port.sendPort, debugName: name);
  return events;
}

/// The next event of [events] (see [_spawn]).
Future<Object?> _next(StreamIterator<Object?> events) async {
  expect(await events.moveNext().timeout(const Duration(seconds: 20)),
      isTrue);
  return events.current;
}

void main() {
  setUpTransport();

  group('notifier port', () {
    const wait = Duration(seconds: 20);

    test('an isolate kept alive by its worker alone exits once the worker '
        'is closed', () async {
      if (!Transport.messagingSupported) {
        markTestSkipped('this kernel cannot message between io_uring workers');
        return;
      }
      final events =
          await _spawn<SendPort>(_closeWhenToldIsolate, (port) => port, 'idle');
      final ready = await _next(events) as List<Object?>;
      final commands = ready[0] as SendPort;
      final id = ready[1] as int;
      commands.send('close your port');
      expect(await _next(events), 'port closed');
      // Its last port is closed: only its worker keeps it alive, idle. A
      // message reaches it through the worker's notifier alone.
      final worker = testWorker();
      await worker.sendMessage(id, 1, 42).timeout(wait);
      // It closed the worker without an error, then exited: no uncaught
      // error came before the exit.
      expect(await _next(events), 'closed after 42');
      expect(await _next(events), isNull, reason: 'the exit, nothing else');
      // The worker is really closed: no message reaches it any more.
      expect(() => Worker.leastLoaded([id]),
          throwsA(isA<WorkerGoneException>()));
      await expectLater(worker.sendMessage(id, 1, 43),
          throwsA(isA<WorkerGoneException>())).timeout(wait);
    });

    test('the worker of an isolate that exits without closing it is freed; '
        'its id is unusable', () async {
      if (!Transport.messagingSupported) {
        markTestSkipped('this kernel cannot message between io_uring workers');
        return;
      }
      final events =
          await _spawn<SendPort>(_abandonIsolate, (port) => port, 'abandon');
      final abandoned = await _next(events) as int;
      expect(await _next(events), isNull,
          reason: 'it exited without an uncaught error');
      // Shutting the isolate down ran its workers' NativeFinalizer
      // (iot_worker_finalize): the id went stale at once. Nothing can post
      // into the dead isolate's port, so its notifier has nothing to wake.
      expect(() => Worker.leastLoaded([abandoned]),
          throwsA(isA<WorkerGoneException>()));
      final worker = testWorker();
      for (var i = 0; i < 3; i++) {
        await expectLater(worker.sendMessage(abandoned, 1, i),
            throwsA(isA<WorkerGoneException>())).timeout(wait);
      }
      await expectLater(worker.sendBytes(abandoned, 1, [1, 2, 3]),
          throwsA(isA<WorkerGoneException>())).timeout(wait);
      // This isolate goes on: its own workers still talk.
      final other = testWorker();
      final arrived = other.messages.first;
      await worker.sendMessage(other.id, 2, 7).timeout(wait);
      expect(await arrived.timeout(wait), const WorkerMessage(2, 7));
    });
  });

  test('echo across isolates, one worker each, sharing a port', () async {
    const isolates = 4;
    const connections = 64;
    final replies = ReceivePort();
    final events = StreamIterator<Object?>(replies);
    addTearDown(events.cancel);
    final stops = <SendPort>[];
    var port = 0;
    for (var i = 0; i < isolates; i++) {
      await Isolate.spawn(_echoIsolate, <Object?>[replies.sendPort, port],
          debugName: 'echo-$i');
      expect(await events.moveNext(), isTrue);
      final ready = events.current as List<Object?>;
      stops.add(ready[0] as SendPort);
      port = ready[1] as int;
    }

    final worker = testWorker();
    Future<void> one(int i) async {
      final client = await TcpConnection.connect(
          InternetAddress.loopbackIPv4, port,
          worker: worker);
      final reader = ByteReader(client);
      for (var round = 0; round < 3; round++) {
        await expectEcho(client, reader, pattern(2000 + i, i * 7 + round));
      }
      await client.close();
    }

    await Future.wait([for (var i = 0; i < connections; i++) one(i)]);

    for (final stop in stops) {
      stop.send('stop');
    }
    var total = 0;
    for (var i = 0; i < isolates; i++) {
      expect(await events.moveNext(), isTrue);
      total += events.current as int;
    }
    expect(total, connections);
  });
}
