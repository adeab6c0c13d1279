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

/// Creates a worker (idle: armed, nothing in flight), replies a command
/// port, and on any command closes the worker: nothing keeps the isolate
/// alive after that.
Future<void> _closeWhenToldIsolate(SendPort reply) async {
  final worker = Worker();
  final commands = ReceivePort();
  reply.send(commands.sendPort);
  await commands.first;
  await worker.close();
}

/// Creates a worker and exits at once without closing it; the worker id is
/// the isolate's final message.
void _abandonIsolate(SendPort reply) {
  final worker = Worker();
  Isolate.exit(reply, worker.id);
}

void main() {
  setUpTransport();

  group('notifier port', () {
    const wait = Duration(seconds: 20);

    test('an isolate whose idle worker was closed exits', () async {
      final replies = ReceivePort();
      final commands = replies.first;
      final exited = ReceivePort();
      final exit = exited.first;
      await Isolate.spawn(_closeWhenToldIsolate, replies.sendPort,
          onExit: exited.sendPort, debugName: 'idle');
      final port = (await commands.timeout(wait)) as SendPort;
      port.send('close');
      await exit.timeout(wait);
    });

    test('an isolate that exits without closing its worker is not called into',
        () async {
      if (!Transport.messagingSupported) {
        markTestSkipped('this kernel cannot message between io_uring workers');
        return;
      }
      final replies = ReceivePort();
      final reply = replies.first;
      await Isolate.spawn(_abandonIsolate, replies.sendPort,
          debugName: 'abandon');
      final abandoned = (await reply.timeout(wait)) as int;
      final worker = testWorker();
      // Each message wakes the abandoned worker's notifier, which posts to
      // the port of an isolate that is gone: refused, harmlessly. (Its
      // NativeFinalizer may have freed it already: then the target is gone.)
      for (var i = 0; i < 3; i++) {
        try {
          await worker.sendMessage(abandoned, 1, i).timeout(wait);
        } on WorkerGoneException {
          // Freed by iot_worker_finalize.
        }
      }
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
