import 'dart:async';
import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// Echoes everything [connection] receives (its buffers themselves), then
/// closes it after the peer's end of stream.
void _echo(StreamConnection connection) {
  connection.payloads.listen(
      (payload) => unawaited(connection.writePayload(payload)),
      onError: (Object _) => connection.destroy(),
      onDone: () => unawaited(connection.close()));
}

FileSystemEntityType _typeOf(String path) =>
    FileSystemEntity.typeSync(path, followLinks: false);

/// Echoes a few sizes through [client], whose peer echoes.
Future<void> _expectEchoes(UnixConnection client) async {
  final reader = ByteReader(client);
  for (final size in [1, 1000, 200000]) {
    final data = pattern(size, size);
    await client.write(data).bounded;
    expect(sameBytes(await reader.read(size).bounded, data), isTrue,
        reason: 'echoed bytes differ ($size)');
  }
}

void main() {
  setUpTransport();

  test('stream echo over a socket path; closing removes the file', () async {
    final worker = testWorker();
    final path = '${tempDirectory('iot_unix_').path}/echo.sock';
    final listener = await UnixListener.bind(path, worker: worker).bounded;
    expect(listener.path, path);
    expect(_typeOf(path), FileSystemEntityType.unixDomainSock);
    listener.listen(_echo);
    final client = await UnixConnection.connect(path, worker: worker).bounded;
    expect(client.remotePath, path);
    expect(client.path, isEmpty, reason: 'a connecting socket is unnamed');
    await _expectEchoes(client);
    await client.close().bounded;
    await listener.close().bounded;
    await listener.close().bounded; // idempotent
    expect(listener.isClosed, isTrue);
    expect(_typeOf(path), FileSystemEntityType.notFound,
        reason: 'closing removed the socket file');
    await expectLater(UnixConnection.connect(path, worker: worker),
        throwsA(transportErrno(2))).bounded;
  });

  test('stream echo in the abstract namespace', () async {
    final worker = testWorker();
    final name = abstractName('stream');
    final listener = await UnixListener.bind(name, worker: worker).bounded;
    addTearDown(listener.close);
    final accepted = <UnixConnection>[];
    listener.listen((connection) {
      accepted.add(connection);
      _echo(connection);
    });
    final client = await UnixConnection.connect(name, worker: worker).bounded;
    expect(client.remotePath, name);
    await _expectEchoes(client);
    expect(accepted.single.path, name);
    await client.close().bounded;
  });

  test('a stale socket file needs replaceStale; live ones and other files '
      'are never replaced', () async {
    final worker = testWorker();
    final root = tempDirectory('iot_unix_');
    // Bind in a directory, then move the directory: the socket file outlives
    // its socket, as after a crash.
    final first = Directory('${root.path}/a')..createSync();
    final listener =
        await UnixListener.bind('${first.path}/s.sock', worker: worker)
            .bounded;
    first.renameSync('${root.path}/b');
    await listener.close().bounded;
    final stale = '${root.path}/b/s.sock';
    expect(_typeOf(stale), FileSystemEntityType.unixDomainSock);
    await expectLater(UnixConnection.connect(stale, worker: worker),
        throwsA(transportErrno(111))).bounded;
    await expectLater(
        UnixListener.bind(stale, worker: worker), throwsA(transportErrno(98))).bounded;
    final replaced = await UnixListener.bind(stale,
            replaceStale: true, worker: worker)
        .bounded;
    await expectLater(
        UnixListener.bind(stale, replaceStale: true, worker: worker),
        throwsA(transportErrno(98)),
        reason: 'a live socket').bounded;
    final plain = File('${root.path}/plain')..writeAsStringSync('x');
    await expectLater(
        UnixListener.bind(plain.path, replaceStale: true, worker: worker),
        throwsA(transportErrno(98)),
        reason: 'a regular file').bounded;
    expect(plain.readAsStringSync(), 'x');
    replaced.listen(_echo);
    final client = await UnixConnection.connect(stale, worker: worker).bounded;
    await _expectEchoes(client);
    await client.close().bounded;
    await replaced.close().bounded;
    expect(_typeOf(stale), FileSystemEntityType.notFound,
        reason: 'the replacing socket removed its file');
  });

  test('bad paths are refused', () async {
    final worker = testWorker();
    await expectLater(UnixListener.bind('', worker: worker),
        throwsA(isA<TransportException>())).bounded;
    await expectLater(
        UnixListener.bind('/tmp/${'x' * 200}.sock', worker: worker),
        throwsA(transportErrno(36))).bounded;
    await expectLater(UnixListener.bind('a\u0000b', worker: worker),
        throwsA(isA<ArgumentError>())).bounded;
  });

  test('datagrams carry their sender path', () async {
    final worker = testWorker();
    final dir = tempDirectory('iot_unix_');
    final path = '${dir.path}/dgram.sock';
    final a = await UnixDatagramSocket.bind(path, worker: worker).bounded;
    final b = await UnixDatagramSocket.bind(null, worker: worker).bounded;
    addTearDown(b.close);
    expect(a.path, path);
    expect(b.path, startsWith('@'), reason: 'a name the kernel picked');
    final atA = Inbox<UnixDatagram>(a);
    final atB = Inbox<UnixDatagram>(b);
    await b.send([1, 2, 3], path).bounded;
    final got = await atA.next();
    expect(got.data, [1, 2, 3]);
    expect(got.path, b.path);
    expect(got.truncated, isFalse);
    // Answer the sender at the name the kernel picked.
    await a.send([4], got.path).bounded;
    final back = await atB.next();
    expect(back.data, [4]);
    expect(back.path, path);
    // An abstract name, and an empty datagram.
    final name = abstractName('dgram');
    final c = await UnixDatagramSocket.bind(name, worker: worker).bounded;
    addTearDown(c.close);
    expect(c.path, name);
    await c.send(const <int>[], path).bounded;
    final fromC = await atA.next();
    expect(fromC.path, name);
    expect(fromC.data, isEmpty);
    // Nobody at the other end.
    await expectLater(b.send([5], '${dir.path}/missing.sock'),
        throwsA(transportErrno(anyOf(2, 111)))).bounded;
    await a.close().bounded;
    await atA.done();
    expect(_typeOf(path), FileSystemEntityType.notFound,
        reason: 'the datagram socket removed its file');
    await expectLater(
        a.send([6], name), throwsA(isA<TransportClosedException>())).bounded;
  });

  test('a datagram socket refuses to bind over an existing file', () async {
    final worker = testWorker();
    final plain = File('${tempDirectory('iot_unix_').path}/plain')
      ..writeAsStringSync('x');
    await expectLater(
        UnixDatagramSocket.bind(plain.path, replaceStale: true, worker: worker),
        throwsA(transportErrno(98))).bounded;
  });

  test('closing the worker ends connections and listeners quietly', () async {
    final worker = Worker();
    final name = abstractName('close');
    final listener = await UnixListener.bind(name, worker: worker).bounded;
    // Closing the worker closes its sockets, as destroy() does: the streams
    // end without an error event.
    final accepts = expectLater(
        listener,
        emitsInOrder(<Object>[
          mayEmitMultiple(isA<UnixConnection>()),
          emitsDone,
        ]));
    final client = await UnixConnection.connect(name, worker: worker).bounded;
    final input = expectLater(client, emitsDone);
    await untilStats(worker, (stats) => stats.opsInFlight >= 2,
        reason: 'the accept and the receive armed');
    await worker.close().bounded;
    await accepts.bounded;
    await input.bounded;
    await expectLater(
        client.write([1]), throwsA(isA<TransportClosedException>())).bounded;
    await expectLater(UnixConnection.connect(name, worker: worker),
        throwsA(isA<TransportClosedException>())).bounded;
  });
}
