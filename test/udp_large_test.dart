/// Datagrams larger than one native buffer, up to the protocol maximum
/// (65,507 bytes over IPv4, 65,527 over IPv6), against dart:io's
/// `RawDatagramSocket`: byte-exact both ways, on the multishot and the
/// one-shot (read timeout) receive paths, with EMSGSIZE past the maximum
/// and nothing left behind after a cancel, a close or a timeout.
library;

import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// With the default 64 KiB buffers a UDP datagram fits one send buffer; with
/// 16 KiB ones every large datagram takes a span of several.
const WorkerConfig _spanned = WorkerConfig(bufferSize: 16 << 10);

/// Around one of [_spanned]'s buffers, two, and the protocol maximum.
const List<int> _sizesV4 = [1, 16383, 16384, 16385, 32 * 1024, 65507];
const List<int> _sizesV6 = [1, 16383, 16384, 16385, 32 * 1024, 65527];

final Matcher _emsgsize = transportErrno(90);

/// A dart:io peer on [loopback] and the datagrams it receives.
Future<(RawDatagramSocket, Inbox<Datagram>)> _rawPeer(
    InternetAddress loopback) async {
  final peer = await RawDatagramSocket.bind(loopback, 0).bounded;
  addTearDown(peer.close);
  final received = peer
      .where((event) => event == RawSocketEvent.read)
      .expand((_) sync* {
    for (var datagram = peer.receive();
        datagram != null;
        datagram = peer.receive()) {
      yield datagram;
    }
  });
  return (peer, Inbox<Datagram>(received));
}

Future<UdpSocket> _bind(Worker worker, InternetAddress loopback,
    {Duration? readTimeout}) async {
  final socket = await UdpSocket.bind(loopback, 0, worker: worker).bounded;
  addTearDown(socket.close);
  socket.readTimeout = readTimeout;
  return socket;
}

/// Every size from the dart:io peer to our socket and back, byte for byte,
/// through [_spanned] buffers: the sizes straddle a buffer's end.
Future<void> _roundTrips(InternetAddress loopback, List<int> sizes,
    {Duration? readTimeout}) async {
  final worker = testWorker(_spanned);
  final socket = await _bind(worker, loopback, readTimeout: readTimeout);
  final inbox = Inbox<UdpDatagram>(socket);
  final (peer, atPeer) = await _rawPeer(loopback);
  for (final (i, size) in sizes.indexed) {
    final data = pattern(size, i + 1);
    expect(peer.send(data, loopback, socket.port), size);
    final there = await inbox.next();
    expect(there.data.length, size);
    expect(sameBytes(there.data, data), isTrue, reason: '$size bytes');
    expect(there.truncated, isFalse, reason: '$size bytes');
    expect(there.port, peer.port);
    expect(there.address.address, loopback.address);
    await socket.send(data, loopback, peer.port).bounded;
    final back = await atPeer.next();
    expect(back.data.length, size);
    expect(sameBytes(back.data, data), isTrue, reason: '$size bytes back');
    expect(back.port, socket.port);
  }
  expect(inbox.errors, isEmpty);
  expect(socket.dropped, 0);
  await socket.close();
  await expectNothingLeft(worker);
}

void main() {
  setUpTransport();

  group('round trips with a dart:io peer', () {
    test('IPv4, up to 65,507 bytes', () async {
      await _roundTrips(InternetAddress.loopbackIPv4, _sizesV4);
    });

    test('IPv4, up to 65,507 bytes, one-shot receives (read timeout)',
        () async {
      await _roundTrips(InternetAddress.loopbackIPv4, _sizesV4,
          readTimeout: const Duration(seconds: 20));
    });

    test('IPv6, up to 65,527 bytes', () async {
      if (!await ipv6Available().bounded) {
        markTestSkipped('no IPv6 loopback on this machine');
        return;
      }
      await _roundTrips(InternetAddress.loopbackIPv6, _sizesV6);
    });

    test('a connected socket writes and receives 65,507 bytes', () async {
      final worker = testWorker();
      final loopback = InternetAddress.loopbackIPv4;
      final socket = await _bind(worker, loopback);
      final inbox = Inbox<UdpDatagram>(socket);
      final (peer, atPeer) = await _rawPeer(loopback);
      await socket.connect(loopback, peer.port).bounded;
      final data = pattern(65507, 7);
      await socket.write(data).bounded;
      expect(sameBytes((await atPeer.next()).data, data), isTrue);
      expect(peer.send(data, loopback, socket.port), 65507);
      expect(sameBytes((await inbox.next()).data, data), isTrue);
      await socket.close();
      await expectNothingLeft(worker);
    });
  });

  test('Unix datagrams of 65,535 bytes round trip whole', () async {
    final worker = testWorker();
    final a = await UnixDatagramSocket.bind(abstractName('large-a'),
            worker: worker)
        .bounded;
    addTearDown(a.close);
    final b = await UnixDatagramSocket.bind(abstractName('large-b'),
            worker: worker)
        .bounded;
    addTearDown(b.close);
    final atB = Inbox<UnixDatagram>(b);
    for (final size in [16385, 65535]) {
      final data = pattern(size, size);
      await a.send(data, b.path).bounded;
      final got = await atB.next();
      expect(got.truncated, isFalse);
      expect(sameBytes(got.data, data), isTrue, reason: '$size bytes');
      expect(got.path, a.path);
    }
    await a.close();
    await b.close();
    await expectNothingLeft(worker);
  });

  group('errors', () {
    test('a datagram over the protocol maximum fails with EMSGSIZE, as in '
        'dart:io, and takes nothing', () async {
      final worker = testWorker();
      final socket = await _bind(worker, InternetAddress.loopbackIPv4);
      await expectLater(
          socket.send(
              Uint8List(65508), InternetAddress.loopbackIPv4, socket.port),
          throwsA(_emsgsize)).bounded;
      await expectLater(
          socket.send(Uint8List(65528), InternetAddress.loopbackIPv6, 9),
          throwsA(_emsgsize)).bounded;
      // (dart:io's RawDatagramSocket.send returns 0 and reports errno 90 on
      // its stream.)
      await socket.connect(InternetAddress.loopbackIPv4, socket.port).bounded;
      await expectLater(socket.write(Uint8List(65508)), throwsA(_emsgsize))
          .bounded;
      // The largest one still goes.
      await socket.write(Uint8List(65507)).bounded;
      final unix = await UnixDatagramSocket.bind(null, worker: worker).bounded;
      addTearDown(unix.close);
      await expectLater(unix.send(Uint8List(200000), unix.path),
          throwsA(_emsgsize)).bounded;
      expect(worker.stats().buffersOutstanding, 0);
      await socket.close();
      await unix.close();
      await expectNothingLeft(worker);
    });

    test('tiny buffers make no spans: a large datagram is refused when sent '
        'and cut (and flagged) when received', () async {
      final worker = testWorker(const WorkerConfig(bufferSize: 1024));
      final socket = await _bind(worker, InternetAddress.loopbackIPv4);
      final inbox = Inbox<UdpDatagram>(socket);
      final (peer, _) = await _rawPeer(InternetAddress.loopbackIPv4);
      await expectLater(
          socket.send(Uint8List(1025), InternetAddress.loopbackIPv4, peer.port),
          throwsA(_emsgsize)).bounded;
      final data = pattern(65507, 3);
      peer.send(data, InternetAddress.loopbackIPv4, socket.port);
      final cut = await inbox.next();
      expect(cut.truncated, isTrue);
      expect(cut.data, data.sublist(0, 1024 - 144));
      await socket.close();
      await expectNothingLeft(worker);
    });

    test('a closed socket or worker refuses large sends', () async {
      final worker = testWorker();
      final socket = await _bind(worker, InternetAddress.loopbackIPv4);
      await socket.close();
      await expectLater(
          socket.send(Uint8List(40000), InternetAddress.loopbackIPv4, 9),
          throwsA(isA<TransportClosedException>())).bounded;
      final other = await _bind(worker, InternetAddress.loopbackIPv4);
      await worker.close();
      await expectLater(
          other.send(Uint8List(40000), InternetAddress.loopbackIPv4, 9),
          throwsA(isA<TransportClosedException>())).bounded;
    });
  });

  // With [_spanned] buffers every large datagram takes a span, and these tests
  // run out of spans.
  group('nothing lost', () {
    test('more large sends than free spans wait for one and all complete',
        () async {
      final worker = testWorker(_spanned);
      final loopback = InternetAddress.loopbackIPv4;
      final sender = await _bind(worker, loopback);
      final receiver = await _bind(worker, loopback);
      final inbox = Inbox<UdpDatagram>(receiver);
      final sends = [
        for (var i = 0; i < 64; i++)
          sender.send(numbered(i, 40000), loopback, receiver.port)
      ];
      await Future.wait(sends).bounded;
      // The kernel may drop what overflows the receiver's queue; whatever
      // arrives is whole.
      final first = await inbox.next();
      expect(first.data.length, 40000);
      expect(first.truncated, isFalse);
      await sender.close();
      await receiver.close();
      await expectNothingLeft(worker);
    });

    test('closing with large sends queued fails them and keeps no span',
        () async {
      final worker = testWorker(_spanned);
      final loopback = InternetAddress.loopbackIPv4;
      final socket = await _bind(worker, loopback);
      final (peer, _) = await _rawPeer(loopback);
      final outcomes = [
        for (var i = 0; i < 40; i++)
          socket
              .send(Uint8List(60000), loopback, peer.port)
              .then<Object?>((_) => null, onError: (Object error) => error)
      ];
      await socket.close();
      final results = await Future.wait(outcomes).bounded;
      expect(results.whereType<Object>(),
          everyElement(isA<TransportClosedException>()));
      expect(results.whereType<TransportClosedException>(), isNotEmpty,
          reason: 'more sends than spans: some were still queued');
      await expectNothingLeft(worker);
    });

    test('a one-shot receive that times out gives its span back', () async {
      final worker = testWorker(_spanned);
      final socket = await _bind(worker, InternetAddress.loopbackIPv4,
          readTimeout: const Duration(milliseconds: 30));
      final inbox = Inbox<UdpDatagram>(socket);
      await inbox.done();
      expect(inbox.errors.single, isA<TransportTimeoutException>());
      await socket.close();
      await expectNothingLeft(worker);
    });

    test('cancelling a subscription mid-stream of large datagrams keeps '
        'no span', () async {
      final worker = testWorker(_spanned);
      final loopback = InternetAddress.loopbackIPv4;
      final socket = await _bind(worker, loopback);
      final (peer, _) = await _rawPeer(loopback);
      final inbox = Inbox<UdpDatagram>(socket);
      for (var i = 0; i < 3; i++) {
        peer.send(pattern(50000, i), loopback, socket.port);
      }
      await inbox.until(() => inbox.received > 0);
      await inbox.cancel();
      await socket.close();
      await expectNothingLeft(worker);
    });
  });
}
