/// Closing while IO is in flight: `destroy`/`close` of a connection, closing
/// a datagram socket or a file, and closing the whole worker. Every future
/// completes (what was cut off fails with a [TransportClosedException]),
/// every stream ends (quietly: no error event), nothing is left behind.
library;

import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

final Matcher _closed = isA<TransportClosedException>();

/// What [future] ended with: 'done', or its error.
Future<Object> _outcome(Future<void> future) =>
    future.then<Object>((_) => 'done', onError: (Object error) => error);

/// A listener and a connect to it.
typedef _Listening = ({
  ConnectionListener<StreamConnection> listener,
  Future<StreamConnection> Function(Duration? timeout) connect,
});

/// Per stream kind: binds a listener on a worker with a backlog (0: the
/// system's) and makes connects to it.
final Map<String, Future<_Listening> Function(Worker worker, int backlog)>
    _listen = {
  'TCP': (worker, backlog) async {
    final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
            backlog: backlog, worker: worker)
        .bounded;
    addTearDown(listener.close);
    return (
      listener: listener,
      connect: (Duration? timeout) => TcpConnection.connect(
          InternetAddress.loopbackIPv4, listener.port,
          timeout: timeout, worker: worker),
    );
  },
  'Unix': (worker, backlog) async {
    final name = abstractName('listener');
    final listener =
        await UnixListener.bind(name, backlog: backlog, worker: worker)
            .bounded;
    addTearDown(listener.close);
    return (
      listener: listener,
      connect: (Duration? timeout) =>
          UnixConnection.connect(name, timeout: timeout, worker: worker),
    );
  },
};

/// The outcome (see [_outcome]) of a connect made with [connect] that stays
/// in flight: connects (kept open until the test ends) until one times out,
/// which shows the backlog is full, then one more without a timeout.
Future<({Future<Object> pending})> _pendingConnect(
    Future<StreamConnection> Function(Duration? timeout) connect) async {
  final fillers = <StreamConnection>[];
  addTearDown(() {
    for (final filler in fillers) {
      filler.destroy();
    }
  });
  for (var i = 0; i < 32; i++) {
    try {
      fillers.add(
          await connect(const Duration(milliseconds: 300)).bounded);
    } on TransportTimeoutException {
      return (pending: _outcome(connect(null)));
    }
  }
  fail('the backlog never filled');
}

void main() {
  setUpTransport();

  for (final MapEntry(key: kind, value: pair) in streamPairs.entries) {
    group('$kind stream', () {
      test('destroy with writes queued and a receive armed: every write '
          'completes, the input ends quietly', () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        final input = Inbox<Uint8List>(client);
        // The server never reads: far more than the kernel holds stays
        // queued here.
        final writes = [
          for (var i = 0; i < 8; i++) _outcome(client.write(Uint8List(8 << 20)))
        ];
        final flushed = _outcome(client.flush());
        final closed = _outcome(client.close());
        await untilStats(worker, (stats) => stats.opsInFlight >= 2,
            reason: 'a send and the receive in flight');
        client.destroy();
        final outcomes = await Future.wait(writes).bounded;
        for (final outcome in outcomes) {
          expect(outcome, anyOf('done', _closed));
        }
        expect(outcomes.last, _closed, reason: '64 MiB never fit');
        expect(await flushed.bounded, _closed);
        expect(await closed.bounded, 'done');
        await input.done();
        expect(input.errors, isEmpty);
        server.destroy();
        await expectNothingLeft(worker);
      });

      test('close waits for a stalled write; destroy then completes both',
          () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        final write = _outcome(client.write(Uint8List(64 << 20)));
        var closeDone = false;
        final close = client.close().then((_) => closeDone = true);
        expect(client.isClosed, isTrue, reason: 'close was called');
        await untilStats(worker, (stats) => stats.opsInFlight >= 1,
            reason: 'a send in flight');
        // The write cannot complete while nobody reads: close waits for it.
        await nextDrain(worker);
        expect(closeDone, isFalse);
        client.destroy();
        expect(await write.bounded, _closed);
        await close.bounded;
        expect(closeDone, isTrue);
        // The server sees the end of the stream after what arrived.
        await expectLater(server.drain<void>(), completes).bounded;
        server.destroy();
        await expectNothingLeft(worker);
      });

      test('closing the worker mid-IO fails every future and ends every '
          'stream quietly', () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        final clientInput = Inbox<Uint8List>(client);
        // The server holds every payload it gets: its receive soon waits
        // for buffers, the client's write for room.
        final serverInput = Inbox<Payload>(server.payloads);
        final write = _outcome(client.write(Uint8List(64 << 20)));
        final reply = _outcome(server.write(pattern(1000, 1)));
        await serverInput.until(() => serverInput.received > 0);
        await worker.close().bounded;
        expect(await write.bounded, _closed);
        expect(await reply.bounded, anyOf('done', _closed));
        await clientInput.done();
        await serverInput.done();
        expect(clientInput.errors, isEmpty);
        expect(serverInput.errors, isEmpty);
        expect(client.isClosed, isTrue);
        expect(server.isClosed, isTrue);
        // A payload held across the close is no longer readable.
        final held = await serverInput.next();
        expect(() => held.bytes, throwsA(_closed));
        held.release(); // a no-op now
        await expectLater(client.write([1]), throwsA(_closed)).bounded;
        await expectLater(client.close(), completes).bounded;
      });

      test('closing the worker fails a connect in flight', () async {
        final worker = testWorker();
        // Never listened to: nothing is accepted, the backlog fills up.
        final (listener: _, :connect) = await _listen[kind]!(worker, 1);
        final (:pending) = await _pendingConnect(connect);
        await worker.close().bounded;
        expect(await pending.bounded, _closed);
      });

      test('closing a listener with an accept armed ends its stream '
          'quietly; what it accepted stays open', () async {
        final worker = testWorker();
        final (:listener, :connect) = await _listen[kind]!(worker, 0);
        final accepts = Inbox<StreamConnection>(listener);
        final client = await connect(null).bounded;
        addTearDown(client.destroy);
        final server = await accepts.next();
        addTearDown(server.destroy);
        // The multishot accept stays armed for the next connection.
        await listener.close().bounded;
        await accepts.done();
        expect(accepts.errors, isEmpty);
        final atClient = ByteReader(client);
        await server.write([5]).bounded;
        expect(await atClient.read(1).bounded, [5]);
      });
    });
  }

  for (final MapEntry(key: kind, value: bind) in datagramKinds.entries) {
    group('$kind datagrams', () {
      test('closing the socket fails the sends waiting for a buffer; the '
          'stream ends quietly', () async {
        // One send buffer: the first send takes it, the others wait.
        final worker = testWorker(const WorkerConfig(sendBufferCount: 1));
        final a = await bind(worker);
        final b = await bind(worker);
        final input = Inbox<Uint8List>(a.received);
        final sends = [
          for (var i = 0; i < 20; i++) _outcome(a.sendTo(b, numbered(i)))
        ];
        await a.close().bounded;
        final outcomes = await Future.wait(sends).bounded;
        for (final outcome in outcomes) {
          expect(outcome, anyOf('done', _closed));
        }
        expect(outcomes.last, _closed);
        await input.done();
        expect(input.errors, isEmpty);
      });

      test('closing the worker fails queued sends and ends the stream',
          () async {
        final worker = testWorker(const WorkerConfig(sendBufferCount: 1));
        final a = await bind(worker);
        final b = await bind(worker);
        final input = Inbox<Uint8List>(a.received);
        final sends = [
          for (var i = 0; i < 20; i++) _outcome(a.sendTo(b, numbered(i)))
        ];
        await worker.close().bounded;
        final outcomes = await Future.wait(sends).bounded;
        expect(outcomes.last, _closed);
        for (final outcome in outcomes) {
          expect(outcome, anyOf('done', _closed));
        }
        await input.done();
        expect(input.errors, isEmpty);
        await expectLater(a.sendTo(b, [1]), throwsA(_closed)).bounded;
      });
    });
  }

  test('closing a Unix datagram socket fails its send blocked on a full '
      'receiver', () async {
    final worker = testWorker();
    final full = abstractName('full');
    final receiver =
        await UnixDatagramSocket.bind(full, worker: worker).bounded;
    addTearDown(receiver.close);
    final sender = await UnixDatagramSocket.bind(null, worker: worker).bounded;
    var filled = false;
    for (var i = 0; i < 100000 && !filled; i++) {
      try {
        await sender
            .send([1], full, timeout: const Duration(milliseconds: 300))
            .bounded;
      } on TransportTimeoutException {
        filled = true;
      }
    }
    expect(filled, isTrue, reason: "the receiver's queue filled");
    final blocked = _outcome(sender.send([2], full));
    await untilStats(worker, (stats) => stats.opsInFlight == 1,
        reason: 'the send waiting in the kernel');
    await sender.close().bounded;
    expect(await blocked.bounded, _closed);
    await untilStats(worker, (stats) => stats.opsInFlight == 0,
        reason: 'the send returned');
  });

  test('closing the worker completes an IoUringSocket\'s done, and its close',
      () async {
    final worker = Worker();
    addTearDown(worker.close);
    final peer = await ServerSocket.bind(InternetAddress.loopbackIPv4, 0);
    addTearDown(peer.close);
    final accepted = peer.first;
    final socket = await IoUringSocket.connect(
            InternetAddress.loopbackIPv4, peer.port,
            worker: worker)
        .bounded;
    final ended = Inbox<Uint8List>(socket);
    socket.add(Uint8List(10));
    await socket.flush().bounded;
    final remote = await accepted.bounded;
    addTearDown(remote.destroy);
    await worker.close().bounded;
    await expectLater(socket.done, completes).bounded;
    await expectLater(socket.close(), completes).bounded;
    await ended.done();
    expect(ended.errors, isEmpty);
  });

  group('files', () {
    test('close waits for the reads and writes in flight, then refuses',
        () async {
      final worker = testWorker();
      final path = '${tempDirectory('iot_close_').path}/data';
      final file =
          await IoFile.open(path, mode: IoFileMode.write, worker: worker)
              .bounded;
      final data = pattern(4 << 20, 4);
      var written = false;
      final write = file.write(data, offset: 0).then((_) => written = true);
      final read = file.read(100, offset: 0);
      final close = file.close();
      expect(file.isClosed, isTrue);
      await expectLater(file.write([1]), throwsA(_closed)).bounded;
      await close.bounded;
      expect(written, isTrue, reason: 'close waited for the write');
      await write.bounded;
      // Reads and writes run side by side: the read saw the file as it was
      // then, somewhere between empty and written.
      expect((await read.bounded).length, lessThanOrEqualTo(100));
      expect(sameBytes(File(path).readAsBytesSync(), data), isTrue);
      await expectLater(file.read(1), throwsA(_closed)).bounded;
      await expectNothingLeft(worker);
    });

    test('closing the worker fails the file operations in flight and ends '
        'read streams', () async {
      final worker = testWorker();
      final dir = tempDirectory('iot_close_');
      final lonely = await makeFifo('${dir.path}/lonely');
      final fifo = await makeFifo('${dir.path}/fifo');
      // Opening a FIFO to read waits for a writer, and this one never gets
      // one.
      final opening = _outcome(IoFile.open(lonely, worker: worker));
      final openingStream =
          Inbox<Uint8List>(IoFile.openRead(lonely, worker: worker));
      // Opened for both ends it opens at once; reading it waits for data.
      final both = await IoFile.open(fifo,
              mode: IoFileMode.readWrite, worker: worker)
          .bounded;
      final reading = _outcome(both.read(10));
      // Exclusive: it waits until the read ended.
      final stat = _outcome(both.stat());
      final stream = Inbox<Uint8List>(IoFile.openRead(fifo, worker: worker));
      await untilStats(worker, (stats) => stats.opsInFlight >= 4,
          reason: 'two opens, the read and the stream in flight');
      await worker.close().bounded;
      expect(await opening.bounded, _closed);
      expect(await reading.bounded, _closed);
      expect(await stat.bounded, _closed);
      await stream.done();
      expect(stream.errors, isEmpty);
      // A stream whose file was still opening ends as quietly.
      await openingStream.done();
      expect(openingStream.errors, isEmpty);
      await expectLater(both.close(), completes).bounded;
      await expectLater(both.write([1]), throwsA(_closed)).bounded;
    });
  });
}
