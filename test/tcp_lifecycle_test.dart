/// A TCP connection's life: binding and connecting (and how they fail),
/// half-closing, a peer's reset, and what a closed connection or listener
/// still answers.
library;

import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// A host name that never resolves (RFC 6761 reserves `.invalid`).
const String _unknownHost = 'no-such-host.invalid';

/// The error of writing to a connection the peer reset: `EPIPE` or
/// `ECONNRESET`, never a local close.
final Matcher _peerResetError = allOf(
    transportErrno(anyOf(32, 104)),
    isNot(isA<TransportClosedException>()),
    isA<TransportException>().having((e) => e.operation, 'operation', 'write'));

void main() {
  setUpTransport();

  group('bind and connect', () {
    test('a taken port fails the bind with EADDRINUSE; reusePort shares it',
        () async {
      final worker = testWorker();
      final first = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
              worker: worker)
          .bounded;
      addTearDown(first.close);
      await expectLater(
          TcpListener.bind(InternetAddress.loopbackIPv4, first.port,
              worker: worker),
          throwsA(transportErrno(98)
              .having((e) => e.operation, 'operation', 'bind'))).bounded;
      expect(worker.stats().socketsOpen, 1,
          reason: 'the failed bind left no socket');
      final a = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
              reusePort: true, worker: worker)
          .bounded;
      addTearDown(a.close);
      final b = await TcpListener.bind(InternetAddress.loopbackIPv4, a.port,
              reusePort: true, worker: worker)
          .bounded;
      addTearDown(b.close);
      expect(b.port, a.port);
    });

    test('an unknown host fails connect and bind, leaving no socket',
        () async {
      final worker = testWorker();
      await expectLater(
          TcpConnection.connect(_unknownHost, 80, worker: worker),
          throwsA(isA<TransportException>()
              .having((e) => e.operation, 'operation', 'connect')
              .having((e) => e.message, 'message',
                  contains(_unknownHost)))).bounded;
      await expectLater(
          TcpListener.bind(_unknownHost, 0, worker: worker),
          throwsA(isA<TransportException>()
              .having((e) => e.operation, 'operation', 'bind'))).bounded;
      expect(worker.stats().socketsOpen, 0);
    });

    test('bad ports, backlogs and address types are refused', () async {
      final worker = testWorker();
      for (final port in [-1, 65536]) {
        await expectLater(
            TcpListener.bind(InternetAddress.loopbackIPv4, port,
                worker: worker),
            throwsRangeError,
            reason: 'port $port');
      }
      await expectLater(
          TcpListener.bind(InternetAddress.loopbackIPv4, 0,
              backlog: -1, worker: worker),
          throwsRangeError);
      await expectLater(
          TcpConnection.connect('127.0.0.1', 65536, worker: worker),
          throwsRangeError);
      final unixAddress =
          InternetAddress('/tmp/not-an-ip', type: InternetAddressType.unix);
      await expectLater(
          TcpConnection.connect(unixAddress, 80, worker: worker),
          throwsArgumentError);
      await expectLater(TcpListener.bind(unixAddress, 0, worker: worker),
          throwsArgumentError);
      expect(worker.stats().socketsOpen, 0);
    });

    test('a name is looked up and its addresses are tried in turn', () async {
      final worker = testWorker();
      // Bound to IPv4 only: where localhost is ::1 first, that address is
      // refused and the next one connects.
      final server =
          await startEchoServer(InternetAddress.loopbackIPv4, worker: worker);
      final client =
          await TcpConnection.connect('localhost', server.port, worker: worker)
              .bounded;
      addTearDown(client.destroy);
      expect(client.remoteAddress.isLoopback, isTrue);
      await expectEcho(client, ByteReader(client), pattern(100, 1)).bounded;
    });

    test('an accepted connection names the client as its peer', () async {
      final worker = testWorker();
      final (client, server) = await tcpPair(worker);
      expect(server.remoteAddress.address, '127.0.0.1');
      expect(server.remotePort, client.localPort);
      expect(server.localPort, client.remotePort);
      expect(server.localAddress.address, '127.0.0.1');
    });
  });

  group('half-close', () {
    test('shutdownWrite: the peer reads the end, and can still answer',
        () async {
      final worker = testWorker();
      final (client, server) = await tcpPair(worker);
      final atClient = ByteReader(client);
      final atServer = ByteReader(server);
      await client.write([1, 2, 3]).bounded;
      await client.shutdownWrite().bounded;
      expect(await atServer.readToEnd().bounded, [1, 2, 3]);
      expect(client.isClosed, isFalse, reason: 'only one direction is shut');
      await server.write([4, 5]).bounded;
      await server.close().bounded;
      expect(await atClient.readToEnd().bounded, [4, 5]);
    });

    test('after shutdownWrite every write is refused; flush still completes',
        () async {
      final worker = testWorker();
      final (client, server) = await tcpPair(worker);
      final received = StreamIterator<Payload>(client.payloads);
      addTearDown(received.cancel);
      await server.write([9]).bounded;
      expect(await received.moveNext().bounded, isTrue);
      final payload = received.current;
      final written = client.write([1]);
      await client.shutdownWrite().bounded;
      await written.bounded;
      final refused = isA<TransportClosedException>()
          .having((e) => e.message, 'message', contains('shut down'));
      await expectLater(client.write([2]), throwsA(refused)).bounded;
      await expectLater(client.writeAll([
        [3]
      ]), throwsA(refused)).bounded;
      await expectLater(client.shutdownWrite(), throwsA(refused)).bounded;
      // A refused payload counts as released: its buffer is back.
      await expectLater(client.writePayload(payload), throwsA(refused))
          .bounded;
      expect(payload.isReleased, isTrue);
      expect(worker.stats().buffersOutstanding, 0);
      await client.flush().bounded;
    });
  });

  group('peer reset', () {
    test('fails the write in flight, every later write and flush', () async {
      final worker = testWorker();
      final (client, peer) = await dartIoPeer(worker);
      // The peer resets as soon as the first bytes arrive, while most of
      // the write is still queued here.
      var reset = false;
      peer.listen((_) {
        if (reset) return;
        reset = true;
        resetSocket(peer);
      });
      final write = client.write(Uint8List(64 << 20));
      Object? failure;
      try {
        await write.bounded;
      } on TransportException catch (error) {
        failure = error;
      }
      expect(failure, _peerResetError);
      await expectLater(client.write([1]), throwsA(same(failure))).bounded;
      await expectLater(client.flush(), throwsA(same(failure))).bounded;
      await client.close().bounded;
      await expectNothingLeft(worker);
    });

    test('ends the input with ECONNRESET; later writes fail', () async {
      final worker = testWorker();
      final (client, peer) = await dartIoPeer(worker);
      final input = Inbox<Uint8List>(client);
      peer.add([1, 2, 3]);
      await peer.flush().bounded;
      expect(await input.next(), [1, 2, 3]);
      resetSocket(peer);
      await input.done();
      expect(input.errors, [
        transportErrno(104).having((e) => e.operation, 'operation', 'recv')
      ]);
      await expectLater(client.write([4]), throwsA(_peerResetError)).bounded;
      client.destroy();
      await expectNothingLeft(worker);
    });
  });

  group('closed', () {
    test('a closed connection refuses writes and its addresses', () async {
      final worker = testWorker();
      final (client, server) = await tcpPair(worker);
      await server.close().bounded;
      expect(server.isClosed, isTrue);
      final closed = isA<TransportClosedException>();
      await expectLater(server.write([1]), throwsA(closed)).bounded;
      await expectLater(server.writeAll([
        [1]
      ]), throwsA(closed)).bounded;
      await expectLater(server.shutdownWrite(), throwsA(closed)).bounded;
      await expectLater(server.flush(), throwsA(closed)).bounded;
      expect(() => server.remoteAddress, throwsA(closed));
      expect(() => server.localPort, throwsA(closed));
      expect(() => server.listen((_) {}), returnsNormally,
          reason: 'a closed connection is an empty stream');
      // The client sees the end of stream.
      await expectLater(client, emitsDone).bounded;
    });

    test('flush after close or destroy fails, also when every write was sent',
        () async {
      final worker = testWorker();
      final closed = isA<TransportClosedException>();
      for (final destroy in [false, true]) {
        final (client, server) = await tcpPair(worker);
        await server.write([1, 2, 3]).bounded;
        await server.flush().bounded;
        if (destroy) {
          server.destroy();
        } else {
          await server.close().bounded;
        }
        await expectLater(server.flush(), throwsA(closed),
            reason: destroy ? 'destroyed' : 'closed');
        client.destroy();
      }
      await expectNothingLeft(worker);
    });

    test('an input listened to after the close is empty', () async {
      final worker = testWorker();
      final (client, server) = await tcpPair(worker);
      client.destroy();
      server.destroy();
      await expectLater(client, emitsDone).bounded;
      await expectLater(server, emitsDone).bounded;
      await expectNothingLeft(worker);
    });

    test('cancelling the subscription closes the listener, not what it '
        'accepted', () async {
      final worker = testWorker();
      final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
              worker: worker)
          .bounded;
      final (client, server) = await acceptedPair(
          listener,
          () => TcpConnection.connect(
              InternetAddress.loopbackIPv4, listener.port,
              worker: worker));
      expect(listener.isClosed, isTrue);
      await expectLater(
          TcpConnection.connect(InternetAddress.loopbackIPv4, listener.port,
              worker: worker),
          throwsA(transportErrno(111))).bounded;
      echo(server);
      await expectEcho(client, ByteReader(client), pattern(3000, 2)).bounded;
    });

    test('empty writes complete as a flush, after the writes before them',
        () async {
      final worker = testWorker();
      final client = await connectToEchoServer(worker);
      final reader = ByteReader(client);
      var bigDone = false;
      final big = client.write(pattern(1 << 20, 3)).then((_) => bigDone = true);
      await client.write(const <int>[]).bounded;
      expect(bigDone, isTrue, reason: 'an empty write waits for the others');
      await client.writeAll([<int>[], <int>[]]).bounded;
      await big.bounded;
      expect((await reader.read(1 << 20).bounded).length, 1 << 20);
      await client.close().bounded;
    });
  });
}
