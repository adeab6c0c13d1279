// One client that never reads cannot stall the other connections of a
// worker (issue 14): the echoes it does not read hold at most its share of
// the receive buffers (`socket_buffer_limit`, by default an eighth of them,
// at least 16), and the worker's other connections are served promptly.
import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// One connection's share of the 256 receive buffers (set explicitly; the
/// default would be the same, an eighth).
const int _share = 32;

/// What the non-reader tries to send; it is back-pressured long before.
const int _nonReaderBytes = 64 << 20;

const int _roundTrips = 300;

/// An echo whose failed writes (the non-reader is destroyed at the end,
/// with echoes still queued) end the connection instead of going uncaught.
void _echo(TcpConnection connection) {
  connection.payloads.listen(
      (payload) => connection
          .writePayload(payload)
          .then((_) {}, onError: (Object _) => connection.destroy()),
      onError: (Object _) => connection.destroy(),
      onDone: () => unawaited(connection.close()));
}

void main() {
  setUpTransport();

  test('a client that never reads does not stall another connection',
      () async {
    final worker = testWorker(const WorkerConfig(
        receiveBufferCount: 256, socketBufferLimit: _share));
    final server = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
        worker: worker);
    addTearDown(server.close);
    server.listen(_echo);

    // dart:io writes what the kernel takes and is never listened to, so it
    // never reads the echoes.
    final hog =
        await Socket.connect(InternetAddress.loopbackIPv4, server.port).bounded;
    addTearDown(hog.destroy);
    hog.done.ignore();
    final chunk = pattern(1 << 20, 7);
    for (var sent = 0; sent < _nonReaderBytes; sent += chunk.length) {
      hog.add(chunk);
    }
    await untilStats(worker, (stats) => stats.piecesOutstanding >= _share,
        reason: 'the non-reader fills its share of the receive buffers');

    final probe =
        await Socket.connect(InternetAddress.loopbackIPv4, server.port).bounded;
    addTearDown(probe.destroy);
    probe.setOption(SocketOption.tcpNoDelay, true);
    final reader = ByteReader(probe);
    final times = <Duration>[];
    var mostHeld = 0;
    for (var i = 0; i < _roundTrips; i++) {
      final message = pattern(64, i);
      final watch = Stopwatch()..start();
      probe.add(message);
      final back = await reader.read(64).bounded;
      times.add(watch.elapsed);
      expect(sameBytes(back, message), isTrue, reason: 'round trip $i');
      final held = worker.stats().piecesOutstanding;
      if (held > mostHeld) mostHeld = held;
    }
    // The share (in payloads, each of at most one buffer), and one of the
    // probe's echo in flight.
    expect(mostHeld, lessThanOrEqualTo(_share + 1));
    // The issue's bound for the 99th percentile; on a noisy 2-core machine
    // one round trip may lose a slice (or meet a GC), so the maximum gets a
    // generous 500 ms, still far from the 20 s stall this guards against.
    times.sort();
    expect(times[_roundTrips * 99 ~/ 100],
        lessThan(const Duration(milliseconds: 50)));
    expect(times.last, lessThan(const Duration(milliseconds: 500)));
    hog.destroy();
    probe.destroy();
    await expectNothingLeftButTheListener(worker);
  });

  test('a connection writing to a peer that never reads holds only its share '
      'of the send buffers', () async {
    const sendShare = 8;
    final worker = testWorker(const WorkerConfig(
        sendBufferCount: 64, socketBufferLimit: sendShare));
    final silent = await silentPeer();
    final writer = await TcpConnection.connect(
            InternetAddress.loopbackIPv4, silent.port,
            worker: worker)
        .bounded;
    // 16 MiB cannot all go out: the peer never reads. Without the limit the
    // writer would take every send buffer.
    writer.write(Uint8List(16 << 20)).ignore();
    await untilStats(worker, (stats) => stats.buffersOutstanding >= sendShare,
        reason: 'the writer fills its share of the send buffers');
    // The others are free: another connection's writes are not starved.
    final server = await startEchoServer(InternetAddress.loopbackIPv4,
        worker: worker);
    final client = await TcpConnection.connect(
            InternetAddress.loopbackIPv4, server.port,
            worker: worker)
        .bounded;
    final reader = ByteReader(client);
    for (var i = 0; i < 20; i++) {
      await expectEcho(client, reader, pattern(4096, i));
    }
    expect(worker.stats().buffersOutstanding, lessThanOrEqualTo(sendShare + 2),
        reason: 'the writer never holds more than its share');
    writer.destroy();
    await client.close();
  });
}

/// Waits until only the listener is open and no buffer is out.
Future<void> expectNothingLeftButTheListener(Worker worker) => untilStats(
    worker,
    (stats) => stats.socketsOpen == 1 && stats.buffersOutstanding == 0,
    reason: 'the connections close and give their buffers back');
