/// How UDP and Unix datagram sockets fail: taken ports and names, bad
/// arguments and unknown hosts, datagrams too large, peers that are gone,
/// and what a closed socket still answers.
library;

import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

final Matcher _closed = isA<TransportClosedException>();

void main() {
  setUpTransport();

  group('UDP', () {
    test('a taken port fails the bind with EADDRINUSE unless both sockets '
        'share it (reuseAddress, the default, or reusePort)', () async {
      final worker = testWorker();
      Future<UdpSocket> bind(int port,
          {required bool reuseAddress, bool reusePort = false}) async {
        final socket = await UdpSocket.bind(InternetAddress.loopbackIPv4, port,
                reuseAddress: reuseAddress, reusePort: reusePort,
                worker: worker)
            .bounded;
        addTearDown(socket.close);
        return socket;
      }

      final alone = await bind(0, reuseAddress: false);
      for (final reuseAddress in [false, true]) {
        await expectLater(
            bind(alone.port, reuseAddress: reuseAddress),
            throwsA(transportErrno(98)
                .having((e) => e.operation, 'operation', 'bind'))).bounded;
      }
      expect(worker.stats().socketsOpen, 1);
      final shared = await UdpSocket.bind(InternetAddress.loopbackIPv4, 0,
              worker: worker)
          .bounded;
      addTearDown(shared.close);
      expect((await bind(shared.port, reuseAddress: true)).port, shared.port);
      final byPort = await bind(0, reuseAddress: false, reusePort: true);
      expect(
          (await bind(byPort.port, reuseAddress: false, reusePort: true))
              .port,
          byPort.port);
    });

    test('bad ports, addresses and unknown hosts are refused', () async {
      final worker = testWorker();
      final socket = await UdpSocket.bind(InternetAddress.loopbackIPv4, 0,
              worker: worker)
          .bounded;
      addTearDown(socket.close);
      final unixAddress =
          InternetAddress('/tmp/not-an-ip', type: InternetAddressType.unix);
      for (final port in [0, 65536]) {
        expect(() => socket.send([1], InternetAddress.loopbackIPv4, port),
            throwsRangeError);
        await expectLater(socket.connect('127.0.0.1', port), throwsRangeError);
      }
      await expectLater(
          UdpSocket.bind(InternetAddress.loopbackIPv4, 65536, worker: worker),
          throwsRangeError);
      expect(() => socket.send([1], unixAddress, 9), throwsArgumentError);
      expect(() => socket.joinMulticast(unixAddress), throwsArgumentError);
      await expectLater(
          UdpSocket.bind('no-such-host.invalid', 0, worker: worker),
          throwsA(isA<TransportException>()
              .having((e) => e.operation, 'operation', 'bind'))).bounded;
      await expectLater(
          socket.connect('no-such-host.invalid', 9),
          throwsA(isA<TransportException>()
              .having((e) => e.operation, 'operation', 'connect'))).bounded;
      expect(socket.remoteAddress, isNull, reason: 'no connect succeeded');
      expect(worker.stats().socketsOpen, 1);
    });

    test('an unconnected send to a port nobody listens on completes and '
        'reports nothing', () async {
      final worker = testWorker();
      final socket = await UdpSocket.bind(InternetAddress.loopbackIPv4, 0,
              worker: worker)
          .bounded;
      addTearDown(socket.close);
      final probe =
          await RawDatagramSocket.bind(InternetAddress.loopbackIPv4, 0)
              .bounded;
      final dead = probe.port;
      probe.close();
      final input = Inbox<UdpDatagram>(socket);
      await socket.send([1], InternetAddress.loopbackIPv4, dead).bounded;
      // The socket hears its own datagram after any ICMP error would have
      // arrived: unconnected, the error is not reported.
      await socket.send([2], InternetAddress.loopbackIPv4, socket.port)
          .bounded;
      expect((await input.next()).data, [2]);
      expect(input.errors, isEmpty);
    });

    test('a closed socket refuses its options and operations', () async {
      final worker = testWorker();
      final socket = await UdpSocket.bind(InternetAddress.loopbackIPv4, 0,
              worker: worker)
          .bounded;
      await socket.close().bounded;
      expect(() => socket.broadcastEnabled, throwsA(_closed));
      expect(() => socket.broadcastEnabled = true, throwsA(_closed));
      expect(() => socket.receiveBufferSize, throwsA(_closed));
      expect(() => socket.multicastHops = 1, throwsA(_closed));
      expect(() => socket.joinMulticast(InternetAddress('239.255.42.99')),
          throwsA(_closed));
      expect(() => socket.dropped, throwsA(_closed));
      await expectLater(socket.connect('127.0.0.1', 9), throwsA(_closed))
          .bounded;
      await expectLater(socket, emitsDone).bounded;
      expect(worker.stats().socketsOpen, 0);
    });
  });

  group('Unix datagrams', () {
    test('a name in use fails the bind with EADDRINUSE', () async {
      final worker = testWorker();
      final name = abstractName('taken');
      final first = await UnixDatagramSocket.bind(name, worker: worker).bounded;
      addTearDown(first.close);
      await expectLater(UnixDatagramSocket.bind(name, worker: worker),
          throwsA(transportErrno(98))).bounded;
      final path = '${tempDirectory('iot_dgram_').path}/taken.sock';
      final byPath =
          await UnixDatagramSocket.bind(path, worker: worker).bounded;
      addTearDown(byPath.close);
      await expectLater(UnixDatagramSocket.bind(path, worker: worker),
          throwsA(transportErrno(98))).bounded;
      expect(worker.stats().socketsOpen, 2);
    });

    test('names too long and paths with NUL are refused', () async {
      final worker = testWorker();
      await expectLater(
          UnixDatagramSocket.bind('@${'x' * 200}', worker: worker),
          throwsA(isA<TransportException>())).bounded;
      await expectLater(
          UnixDatagramSocket.bind('/tmp/${'x' * 200}.sock', worker: worker),
          throwsA(transportErrno(36))).bounded;
      await expectLater(UnixDatagramSocket.bind('a\u0000b', worker: worker),
          throwsArgumentError).bounded;
      final socket =
          await UnixDatagramSocket.bind(null, worker: worker).bounded;
      addTearDown(socket.close);
      expect(() => socket.send([1], 'a\u0000b'), throwsArgumentError);
      expect(worker.stats().socketsOpen, 1);
    });

    test('a datagram larger than a buffer is refused; a received one that '
        'does not fit is cut and flagged', () async {
      // 1024-byte buffers: 880 bytes of room after the 144-byte header.
      final small = testWorker(const WorkerConfig(bufferSize: 1024));
      final large = testWorker();
      final receiver = await UnixDatagramSocket.bind(null, worker: small)
          .bounded;
      addTearDown(receiver.close);
      final sender = await UnixDatagramSocket.bind(null, worker: large)
          .bounded;
      addTearDown(sender.close);
      await expectLater(receiver.send(Uint8List(1025), sender.path),
          throwsA(transportErrno(90))).bounded;
      final input = Inbox<UnixDatagram>(receiver);
      final data = pattern(3000, 1);
      await sender.send(data, receiver.path).bounded;
      final cut = await input.next();
      expect(cut.truncated, isTrue);
      expect(cut.data, data.sublist(0, 880));
      expect(cut.path, sender.path);
      await sender.send(data.sublist(0, 880), receiver.path).bounded;
      expect((await input.next()).truncated, isFalse);
    });

    test('sends to a receiver that is gone fail: ENOENT for a path, '
        'ECONNREFUSED for an abstract name', () async {
      final worker = testWorker();
      final sender = await UnixDatagramSocket.bind(null, worker: worker)
          .bounded;
      addTearDown(sender.close);
      final path = '${tempDirectory('iot_dgram_').path}/gone.sock';
      final byPath =
          await UnixDatagramSocket.bind(path, worker: worker).bounded;
      final name = abstractName('gone');
      final byName =
          await UnixDatagramSocket.bind(name, worker: worker).bounded;
      await sender.send([1], path).bounded;
      await sender.send([1], name).bounded;
      await byPath.close();
      await byName.close();
      await expectLater(sender.send([2], path),
          throwsA(transportErrno(2).having((e) => e.operation, 'operation',
              'send'))).bounded;
      await expectLater(sender.send([2], name), throwsA(transportErrno(111)))
          .bounded;
      // The sender goes on.
      final other = await UnixDatagramSocket.bind(null, worker: worker)
          .bounded;
      addTearDown(other.close);
      final arrived = other.first;
      await sender.send([3], other.path).bounded;
      expect((await arrived.bounded).data, [3]);
    });

    test('a closed socket refuses sends and its counters', () async {
      final worker = testWorker();
      final socket = await UnixDatagramSocket.bind(abstractName('closed'),
              worker: worker)
          .bounded;
      await socket.close().bounded;
      await socket.close().bounded; // idempotent
      expect(socket.isClosed, isTrue);
      expect(() => socket.dropped, throwsA(_closed));
      expect(() => socket.path, throwsA(_closed));
      await expectLater(socket.send([1], abstractName('x')), throwsA(_closed))
          .bounded;
      await expectLater(socket, emitsDone).bounded;
    });
  });
}
