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

void main() {
  setUpTransport();

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
