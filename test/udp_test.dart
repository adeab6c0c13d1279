import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// A UDP port nobody listens on (bound once, then closed).
Future<int> deadPort() async {
  final probe =
      await RawDatagramSocket.bind(InternetAddress.loopbackIPv4, 0).bounded;
  final port = probe.port;
  probe.close();
  return port;
}

/// Two UDP sockets on the IPv4 loopback of [worker], closed when the test
/// ends.
Future<(UdpSocket, UdpSocket)> _pair(Worker worker) async {
  final first =
      await UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker)
          .bounded;
  addTearDown(first.close);
  final second =
      await UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker)
          .bounded;
  addTearDown(second.close);
  return (first, second);
}

/// Sends [data] to [to] and returns the datagram that arrives in [inbox].
Future<UdpDatagram> roundTrip(UdpSocket from, UdpSocket to,
    Inbox<UdpDatagram> inbox, List<int> data, InternetAddress address) async {
  await from.send(data, address, to.port).bounded;
  return inbox.next();
}

void main() {
  setUpTransport();

  Future<void> echoBothWays(InternetAddress loopback) async {
    final worker = testWorker();
    final a = await UdpSocket.bind(loopback, 0, worker: worker).bounded;
    final b = await UdpSocket.bind(loopback, 0, worker: worker).bounded;
    addTearDown(a.close);
    addTearDown(b.close);
    expect(a.port, greaterThan(0));
    expect(a.address.address, loopback.address);
    final atA = Inbox<UdpDatagram>(a);
    final atB = Inbox<UdpDatagram>(b);
    final data = pattern(1000, 1);
    final there = await roundTrip(a, b, atB, data, loopback);
    expect(there.data, data);
    expect(there.address.address, loopback.address);
    expect(there.port, a.port);
    expect(there.truncated, isFalse);
    // Answer the sender.
    await b.send([1, 2, 3], there.address, there.port).bounded;
    final back = await atA.next();
    expect(back.data, [1, 2, 3]);
    expect(back.port, b.port);
    // An empty datagram is a datagram, not an end.
    final empty = await roundTrip(a, b, atB, const <int>[], loopback);
    expect(empty.data, isEmpty);
    expect(atB.isDone, isFalse);
  }

  test('round trip over IPv4', () => echoBothWays(InternetAddress.loopbackIPv4));

  test('round trip over IPv6', () async {
    if (!await ipv6Available().bounded) {
      markTestSkipped('no IPv6 loopback on this machine');
      return;
    }
    await echoBothWays(InternetAddress.loopbackIPv6);
  });

  test('a name is looked up for bind', () async {
    final worker = testWorker();
    final socket = await UdpSocket.bind('localhost', 0, worker: worker).bounded;
    addTearDown(socket.close);
    expect(socket.address.isLoopback, isTrue);
  });

  test('1000 datagrams arrive, none lost on loopback', () async {
    final worker = testWorker();
    final (receiver, sender) = await _pair(worker);
    final inbox = Inbox<UdpDatagram>(receiver);
    const count = 1000;
    const batch = 50;
    for (var first = 0; first < count; first += batch) {
      final sends = <Future<void>>[
        for (var i = first; i < first + batch; i++)
          sender.send(numbered(i, 200), InternetAddress.loopbackIPv4,
              receiver.port),
      ];
      await Future.wait(sends).bounded;
      // Paced: never more than one batch waits in the receive queue.
      await inbox.until(() => inbox.received >= first + batch);
    }
    final seen = <int>{};
    for (var i = 0; i < count; i++) {
      final datagram = await inbox.next();
      expect(datagram.data.length, 200);
      seen.add(numberOf(datagram.data));
    }
    expect(seen.length, count);
    expect(inbox.errors, isEmpty);
    expect(receiver.dropped, 0);
  });

  test('a datagram longer than the buffer is truncated and flagged',
      () async {
    // 1024-byte buffers: 880 bytes of payload room after the 144-byte header.
    final worker = testWorker(const WorkerConfig(bufferSize: 1024));
    final receiver =
        await UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker)
            .bounded;
    addTearDown(receiver.close);
    final inbox = Inbox<UdpDatagram>(receiver);
    final peer = await RawDatagramSocket.bind(InternetAddress.loopbackIPv4, 0)
        .bounded;
    addTearDown(peer.close);
    for (final (length, truncated) in [(880, false), (881, true), (3000, true)]) {
      final data = pattern(length, length);
      expect(peer.send(data, InternetAddress.loopbackIPv4, receiver.port),
          length);
      final datagram = await inbox.next();
      expect(datagram.truncated, truncated, reason: 'length $length');
      expect(datagram.data.length, 880, reason: 'length $length');
      expect(datagram.data, data.sublist(0, 880), reason: 'length $length');
      expect(datagram.port, peer.port);
    }
    // Sending is bounded by the buffer size too.
    await expectLater(
        receiver.send(Uint8List(2000), InternetAddress.loopbackIPv4, peer.port),
        throwsA(isA<TransportException>().having((e) => e.errno, 'errno', 90))).bounded;
  });

  test('connected UDP: write, only the peer is heard, refusals reported',
      () async {
    final worker = testWorker();
    final (a, b) = await _pair(worker);
    expect(() => a.write([1]), throwsStateError);
    await a.connect('127.0.0.1', b.port).bounded;
    expect(a.remoteAddress?.address, '127.0.0.1');
    expect(a.remotePort, b.port);
    final atA = Inbox<UdpDatagram>(a);
    final atB = Inbox<UdpDatagram>(b);
    await a.write([7, 7, 7]).bounded;
    final got = await atB.next();
    expect(got.data, [7, 7, 7]);
    expect(got.port, a.port);
    await b.send([8], InternetAddress.loopbackIPv4, a.port).bounded;
    expect((await atA.next()).data, [8]);
    // A peer that is gone: the ICMP error is an error event, and receiving
    // goes on.
    await a.connect(InternetAddress.loopbackIPv4, await deadPort()).bounded;
    // The kernel rations ICMP errors for the whole host (other tests running
    // at the same time send them too): write again until the refusal comes.
    for (var attempt = 0; attempt < 40 && atA.errors.isEmpty; attempt++) {
      await a.write([9]).bounded;
      await atA
          .until(() => atA.errors.isNotEmpty)
          .timeout(const Duration(milliseconds: 500), onTimeout: () {});
    }
    expect(
        atA.errors.first,
        isA<TransportException>()
            .having((e) => e.errno, 'errno', 111)
            .having((e) => e.operation, 'operation', 'recv'));
    await a.connect(InternetAddress.loopbackIPv4, b.port).bounded;
    await b.send([10], InternetAddress.loopbackIPv4, a.port).bounded;
    expect((await atA.next()).data, [10]);
    expect(atA.isDone, isFalse);
  });

  test('socket options', () async {
    final worker = testWorker();
    final socket =
        await UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker)
            .bounded;
    addTearDown(socket.close);
    expect(socket.broadcastEnabled, isFalse);
    socket.broadcastEnabled = true;
    expect(socket.broadcastEnabled, isTrue);
    expect(socket.multicastLoopback, isTrue);
    socket.multicastLoopback = false;
    expect(socket.multicastLoopback, isFalse);
    socket.multicastHops = 4;
    expect(socket.multicastHops, 4);
    expect(() => socket.multicastHops = 256, throwsRangeError);
    socket.receiveBufferSize = 1 << 16;
    expect(socket.receiveBufferSize, greaterThanOrEqualTo(1 << 16));
    expect(socket.sendBufferSize, greaterThan(0));
    expect(socket.dropped, 0);
    try {
      socket.joinMulticast(InternetAddress('239.255.42.99'));
    } on TransportException catch (error) {
      markTestSkipped('no multicast route here: $error');
      return;
    }
    socket.leaveMulticast(InternetAddress('239.255.42.99'));
  });

  test('pausing cancels the receive; the kernel keeps the datagrams',
      () async {
    final worker = testWorker();
    final (receiver, sender) = await _pair(worker);
    final inbox = Inbox<UdpDatagram>(receiver);
    await sender.send([0], InternetAddress.loopbackIPv4, receiver.port).bounded;
    await inbox.next();
    inbox.subscription.pause();
    await untilStats(worker, (stats) => stats.opsInFlight == 0,
        reason: 'the receive cancelled');
    for (var i = 1; i <= 10; i++) {
      await sender.send([i], InternetAddress.loopbackIPv4, receiver.port)
          .bounded;
    }
    // A receive still armed would have completed before this round trip
    // (loopback queues each datagram when its send completes).
    await nextDrain(worker);
    expect(inbox.received, 1, reason: 'nothing while paused');
    inbox.subscription.resume();
    for (var i = 1; i <= 10; i++) {
      expect((await inbox.next()).data, [i]);
    }
    expect(receiver.dropped, 0);
  });

  test('a read timeout ends the stream with a timeout error', () async {
    final worker = testWorker();
    final socket =
        await UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker)
            .bounded;
    addTearDown(socket.close);
    socket.readTimeout = const Duration(milliseconds: 200);
    await expectLater(
        socket,
        emitsInOrder(<Object>[
          emitsError(isA<TransportTimeoutException>()
              .having((e) => e.operation, 'operation', 'recv')),
          emitsDone,
        ])).bounded;
  });

  test('one-shot receives (with a timeout) deliver datagrams too', () async {
    final worker = testWorker();
    final (receiver, sender) = await _pair(worker);
    receiver.readTimeout = const Duration(seconds: 10);
    final inbox = Inbox<UdpDatagram>(receiver);
    for (var i = 0; i < 5; i++) {
      await sender.send([i], InternetAddress.loopbackIPv4, receiver.port)
          .bounded;
      final datagram = await inbox.next();
      expect(datagram.data, [i]);
      expect(datagram.port, sender.port);
    }
  });

  test('close ends the stream and refuses sends; idempotent', () async {
    final worker = testWorker();
    final socket =
        await UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker)
            .bounded;
    final inbox = Inbox<UdpDatagram>(socket);
    await untilStats(worker, (stats) => stats.opsInFlight == 1,
        reason: 'the receive armed');
    await socket.close().bounded;
    await socket.close().bounded;
    expect(socket.isClosed, isTrue);
    await inbox.done();
    expect(inbox.errors, isEmpty);
    await expectLater(
        socket.send([1], InternetAddress.loopbackIPv4, 9),
        throwsA(isA<TransportClosedException>())).bounded;
    expect(() => socket.dropped, throwsA(isA<TransportClosedException>()));
    await expectNothingLeft(worker);
  });

  test('closing the worker ends the stream and fails later sends', () async {
    final worker = Worker();
    final socket =
        await UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker)
            .bounded;
    final done = expectLater(socket, emitsDone);
    await untilStats(worker, (stats) => stats.opsInFlight == 1,
        reason: 'the receive armed');
    await worker.close().bounded;
    await done.bounded;
    await expectLater(
        socket.send([1], InternetAddress.loopbackIPv4, 9),
        throwsA(isA<TransportClosedException>())).bounded;
    await expectLater(
        UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker),
        throwsA(isA<TransportClosedException>())).bounded;
  });
}
