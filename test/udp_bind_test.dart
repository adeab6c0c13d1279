import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

void main() {
  setUpTransport();

  test('a second bind to the same port succeeds by default, as dart:io',
      () async {
    final worker = testWorker();
    final first =
        await UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker)
            .bounded;
    addTearDown(first.close);
    final second = await UdpSocket.bind(
            InternetAddress.loopbackIPv4, first.port,
            worker: worker)
        .bounded;
    addTearDown(second.close);
    expect(second.port, first.port);
    // dart:io agrees: its default reuseAddress is true as well.
    final theirs =
        await RawDatagramSocket.bind(InternetAddress.loopbackIPv4, first.port);
    theirs.close();
  });

  test('reuseAddress: false refuses a port already bound', () async {
    final worker = testWorker();
    final first =
        await UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker)
            .bounded;
    addTearDown(first.close);
    await expectLater(
        UdpSocket.bind(InternetAddress.loopbackIPv4, first.port,
            reuseAddress: false, worker: worker),
        throwsA(isA<TransportException>()
            .having((e) => e.errno, 'errno', 98))).bounded;
  });
}
