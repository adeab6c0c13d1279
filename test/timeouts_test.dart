/// Timeouts: read timeouts of streams and datagram sockets, write timeouts
/// (the connection's default and a write's own), connect timeouts, the
/// per-operation timeouts of files, and the timeouts every call refuses.
library;

import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// Short enough to keep the tests quick; each test waits for it to expire
/// (an event), never for a fixed time of its own.
const Duration _short = Duration(milliseconds: 300);

/// Far longer than any test, shorter than the native maximum.
const Duration _long = Duration(hours: 1);

/// A timeout error of [operation] that reports [timeout].
Matcher _timedOut(String operation, Duration timeout) =>
    isA<TransportTimeoutException>()
        .having((e) => e.operation, 'operation', operation)
        .having((e) => e.timeout, 'timeout', timeout)
        .having((e) => e.errno, 'errno', 110);

/// What a pipe holds before its writer waits (Linux's default).
const int _pipeCapacity = 65536;

void main() {
  setUpTransport();

  for (final MapEntry(key: kind, value: pair) in streamPairs.entries) {
    group('$kind stream', () {
      test('a read timeout ends the input; writing goes on', () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        client.readTimeout = _short;
        expect(client.readTimeout, _short);
        final input = Inbox<Uint8List>(client);
        await input.done();
        expect(input.errors, [_timedOut('recv', _short)]);
        expect(client.isClosed, isFalse);
        final atServer = ByteReader(server);
        await client.write([1, 2, 3]).bounded;
        expect(await atServer.read(3).bounded, [1, 2, 3]);
      });

      test('with a read timeout, data keeps flowing in one-shot receives',
          () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        client.readTimeout = _long;
        final reader = ByteReader(client);
        // Larger than a buffer: several receives, each re-armed.
        final data = pattern(worker.bufferSize * 3 + 5, 1);
        for (var round = 0; round < 3; round++) {
          await server.write(data).bounded;
          expect(sameBytes(await reader.read(data.length).bounded, data),
              isTrue);
        }
        expect(reader.isDone, isFalse);
      });

      test('writeTimeout fails a write the peer never reads, and every later '
          'one', () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        client.writeTimeout = _short;
        final failure = await client
            .write(Uint8List(64 << 20))
            .then<Object?>((_) => null, onError: (Object error) => error)
            .bounded;
        expect(failure, _timedOut('write', _short));
        await expectLater(client.write([1]), throwsA(same(failure))).bounded;
        await expectLater(client.flush(), throwsA(same(failure))).bounded;
        client.destroy();
        server.destroy();
        await expectNothingLeft(worker);
      });

      test("a write's own timeout overrides writeTimeout", () async {
        final worker = testWorker();
        final (client, _) = await pair(worker);
        client.writeTimeout = _long;
        await expectLater(client.write(Uint8List(64 << 20), timeout: _short),
            throwsA(_timedOut('write', _short))).bounded;
      });
    });
  }

  test('a Unix connect times out against a full backlog', () async {
    final worker = testWorker();
    final name = abstractName('backlog');
    // Never listened to: nothing is accepted, the backlog fills up.
    final listener =
        await UnixListener.bind(name, backlog: 1, worker: worker).bounded;
    addTearDown(listener.close);
    final fillers = <UnixConnection>[];
    addTearDown(() {
      for (final filler in fillers) {
        filler.destroy();
      }
    });
    Object? failure;
    for (var i = 0; i < 16 && failure == null; i++) {
      try {
        fillers.add(await UnixConnection.connect(name,
                timeout: _short, worker: worker)
            .bounded);
      } on TransportTimeoutException catch (error) {
        failure = error;
      }
    }
    expect(failure, _timedOut('connect', _short));
    expect(worker.stats().socketsOpen, 1 + fillers.length,
        reason: 'the connect that timed out left no socket');
  });

  group('datagrams', () {
    test('a Unix datagram read timeout ends the stream', () async {
      final worker = testWorker();
      final socket =
          await UnixDatagramSocket.bind(null, worker: worker).bounded;
      addTearDown(socket.close);
      socket.readTimeout = _short;
      final input = Inbox<UnixDatagram>(socket);
      await input.done();
      expect(input.errors, [_timedOut('recv', _short)]);
    });

    test('a Unix datagram send to a full receiver times out; the socket '
        'goes on', () async {
      final worker = testWorker();
      final full = abstractName('full');
      // Never listened to: its queue fills up and senders wait.
      final receiver =
          await UnixDatagramSocket.bind(full, worker: worker).bounded;
      addTearDown(receiver.close);
      final sender =
          await UnixDatagramSocket.bind(null, worker: worker).bounded;
      addTearDown(sender.close);
      Object? failure;
      var sent = 0;
      for (; sent < 100000 && failure == null; sent++) {
        await sender
            .send(Uint8List(1000), full, timeout: _short)
            .then<void>((_) {}, onError: (Object error) => failure = error)
            .bounded;
      }
      expect(failure, _timedOut('send', _short));
      expect(sent, greaterThan(1), reason: 'the queue took some first');
      // A failed send does not break the socket: another receiver hears it.
      final other = await UnixDatagramSocket.bind(null, worker: worker).bounded;
      addTearDown(other.close);
      final arrived = other.first;
      await sender.send([7], other.path, timeout: _short).bounded;
      expect((await arrived.bounded).data, [7]);
    });

    test('a UDP send with a timeout goes out', () async {
      final worker = testWorker();
      final a = await UdpSocket.bind(InternetAddress.loopbackIPv4, 0,
              worker: worker)
          .bounded;
      addTearDown(a.close);
      final b = await UdpSocket.bind(InternetAddress.loopbackIPv4, 0,
              worker: worker)
          .bounded;
      addTearDown(b.close);
      b.readTimeout = _long;
      final arrived = b.first;
      await a.send([1, 2], InternetAddress.loopbackIPv4, b.port,
              timeout: _short)
          .bounded;
      expect((await arrived.bounded).data, [1, 2]);
    });
  });

  group('files', () {
    test('a write to a full FIFO times out and stops its other pieces',
        () async {
      // 16 KiB pieces: the pipe's 64 KiB hold four whole ones, taken before
      // the window below is read, so the first buffer back is a timed-out one.
      final worker = testWorker(const WorkerConfig(bufferSize: 16 << 10));
      final fifo =
          await makeFifo('${tempDirectory('iot_timeout_').path}/fifo');
      // Both ends open: the write end takes what the pipe holds (64 KiB),
      // then each piece waits for room, with its own timeout.
      final file = await IoFile.open(fifo,
              mode: IoFileMode.readWrite, worker: worker)
          .bounded;
      addTearDown(file.close);
      final reader = await IoFile.open(fifo, worker: worker).bounded;
      addTearDown(reader.close);
      final data = pattern(1 << 20, 2);
      final write = file.write(data, timeout: _short);
      // Every send buffer of the write's window holds a piece; the first
      // one that gives its buffer back is the piece that timed out.
      final window = worker.stats().buffersOutstanding;
      expect(window, greaterThan(_pipeCapacity ~/ worker.bufferSize));
      await untilStats(worker, (stats) => stats.buffersOutstanding < window,
          reason: 'a piece of the write timed out');
      // Room in the pipe: a piece still waiting would now go through,
      // writing the bytes that follow the failed piece's.
      final held = await reader.read(_pipeCapacity, timeout: _short).bounded;
      expect(sameBytes(held, data.sublist(0, _pipeCapacity)), isTrue,
          reason: 'the pipe holds the start of the data');
      await expectLater(write, throwsA(_timedOut('write', _short))).bounded;
      await expectLater(file.flush(), throwsA(_timedOut('write', _short)))
          .bounded;
      expect(worker.stats().buffersOutstanding, 0);
      // Nothing of the failed write came after the gap (one piece's read
      // would return it at once).
      await expectLater(reader.read(worker.bufferSize, timeout: _short),
          throwsA(_timedOut('read', _short))).bounded;
      // The file goes on: a new write arrives whole.
      await file.write([1, 2, 3], timeout: _short).bounded;
      expect(await reader.read(10, timeout: _short).bounded, [1, 2, 3]);
    });

    test('opens, writes, syncs, allocates, stats and reads take a timeout',
        () async {
      final worker = testWorker();
      final path = '${tempDirectory('iot_timeout_').path}/plain';
      final file =
          await IoFile.open(path, mode: IoFileMode.write, timeout: _long,
                  worker: worker)
              .bounded;
      addTearDown(file.close);
      await file.write([1, 2, 3], timeout: _long).bounded;
      await file.sync(timeout: _long).bounded;
      await file.allocate(0, 10, timeout: _long).then<void>((_) {},
          onError: (Object error) {
        // EOPNOTSUPP: a file system without fallocate.
        expect(error, transportErrno(95));
      }).bounded;
      expect((await file.stat(timeout: _long).bounded).size,
          greaterThanOrEqualTo(3));
      expect((await IoFile.statPath(path, timeout: _long, worker: worker)
                  .bounded)
              .size,
          greaterThanOrEqualTo(3));
      expect(await file.read(3, offset: 0, timeout: _long).bounded,
          [1, 2, 3]);
    });
  });

  group('out of range', () {
    // Below 1 ms, above 2^32 - 1 ms, negative.
    final bad = <Duration>[
      Duration.zero,
      const Duration(milliseconds: 0x100000000),
      const Duration(milliseconds: -1),
    ];

    test('stream timeouts are refused before anything is queued', () async {
      final worker = testWorker();
      final (client, _) = await tcpPair(worker);
      await untilStats(worker, (stats) => stats.opsInFlight == 0,
          reason: "the pair's listener closed");
      for (final timeout in bad) {
        expect(() => client.readTimeout = timeout, throwsRangeError);
        expect(() => client.writeTimeout = timeout, throwsRangeError);
        expect(() => client.write([1], timeout: timeout), throwsRangeError);
        await expectLater(
            TcpConnection.connect(InternetAddress.loopbackIPv4, 1,
                timeout: timeout, worker: worker),
            throwsRangeError);
        await expectLater(
            UnixConnection.connect(abstractName('x'),
                timeout: timeout, worker: worker),
            throwsRangeError);
      }
      expect(client.readTimeout, isNull);
      expect(client.writeTimeout, isNull);
      // A fraction of a millisecond rounds up to one.
      client.readTimeout = const Duration(microseconds: 1);
      expect(worker.stats().opsInFlight, 0, reason: 'nothing was queued');
    });

    test('datagram and file timeouts are refused', () async {
      final worker = testWorker();
      final udp = await UdpSocket.bind(InternetAddress.loopbackIPv4, 0,
              worker: worker)
          .bounded;
      addTearDown(udp.close);
      final unix = await UnixDatagramSocket.bind(null, worker: worker).bounded;
      addTearDown(unix.close);
      final path = '${tempDirectory('iot_timeout_').path}/f';
      final file =
          await IoFile.open(path, mode: IoFileMode.write, worker: worker)
              .bounded;
      addTearDown(file.close);
      for (final timeout in bad) {
        expect(() => udp.readTimeout = timeout, throwsRangeError);
        expect(() => unix.readTimeout = timeout, throwsRangeError);
        expect(
            () => udp.send([1], InternetAddress.loopbackIPv4, 9,
                timeout: timeout),
            throwsRangeError);
        expect(() => unix.send([1], unix.path, timeout: timeout),
            throwsRangeError);
        expect(() => file.read(1, timeout: timeout), throwsRangeError);
        expect(() => file.write([1], timeout: timeout), throwsRangeError);
        expect(() => file.stat(timeout: timeout), throwsRangeError);
        expect(() => file.sync(timeout: timeout), throwsRangeError);
        expect(() => IoFile.open(path, timeout: timeout, worker: worker),
            throwsRangeError);
      }
      final stats = worker.stats();
      expect(stats.opsInFlight, 0, reason: 'nothing was queued');
      expect(stats.buffersOutstanding, 0);
    });
  });
}
