/// Errors nobody listens to never become uncaught errors: ignored write,
/// send, message and hand-off futures that fail, and streams listened to
/// without an error handler when their worker closes. Checked in a zone of
/// its own (whose uncaught errors are recorded), and in a spawned isolate
/// (where an uncaught error would kill it).
library;

import 'dart:async';
import 'dart:io';
import 'dart:isolate';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// Writes to a connection its dart:io peer resets, ignoring every write
/// future; returns when the connection's flush reported the failure. Runs in
/// a spawned isolate too, where `dartIoPeer` (which registers tear-downs)
/// cannot.
Future<void> _ignoreWritesToAResetPeer(Worker worker) async {
  final server =
      await ServerSocket.bind(InternetAddress.loopbackIPv4, 0).bounded;
  final accepted = server.first;
  final client = await TcpConnection.connect(
          InternetAddress.loopbackIPv4, server.port,
          worker: worker)
      .bounded;
  final peer = await accepted.bounded;
  var reset = false;
  peer.listen((_) {
    if (reset) return;
    reset = true;
    resetSocket(peer);
  });
  for (var i = 0; i < 4; i++) {
    unawaited(client.write(Uint8List(16 << 20)));
  }
  unawaited(client.shutdownWrite());
  final flushed = await client
      .flush()
      .then<Object?>((_) => null, onError: (Object error) => error)
      .bounded;
  if (flushed is! TransportException || flushed is TransportClosedException) {
    throw StateError('expected the reset to fail the writes, got $flushed');
  }
  unawaited(client.write([1]));
  unawaited(client.close());
  peer.destroy();
}

/// Listens to [stream] without an error handler; completes when it ends.
Future<void> _endOf<T>(Stream<T> stream, [void Function(T event)? onData]) {
  final ended = Completer<void>();
  stream.listen(onData ?? (_) {}, onDone: ended.complete);
  return ended.future;
}

/// Listens without an error handler to a TCP connection and one accepted
/// (as payloads), a listener, a UDP socket, a Unix datagram socket, a read
/// stream of the FIFO [fifo] and the worker's message streams, all of
/// [worker], with a write in flight; then closes the worker and returns
/// when every stream ended.
Future<void> _closeUnderStreamsWithoutErrorHandlers(
    Worker worker, String fifo) async {
  final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
          worker: worker)
      .bounded;
  final accepted = Completer<TcpConnection>();
  final ends = [_endOf<TcpConnection>(listener, accepted.complete)];
  final client = await TcpConnection.connect(
          InternetAddress.loopbackIPv4, listener.port,
          worker: worker)
      .bounded;
  final server = await accepted.future.bounded;
  final udp = await UdpSocket.bind(InternetAddress.loopbackIPv4, 0,
          worker: worker)
      .bounded;
  final unix = await UnixDatagramSocket.bind(null, worker: worker).bounded;
  // Both ends open: a read stream of it waits for data.
  final file =
      await IoFile.open(fifo, mode: IoFileMode.readWrite, worker: worker)
          .bounded;
  ends.addAll([
    _endOf(client),
    _endOf<Payload>(server.payloads, (payload) => payload.release()),
    _endOf(udp),
    _endOf(unix),
    _endOf(file.readStream()),
    _endOf(worker.messages),
    _endOf<BytesMessage>(worker.byteMessages, (message) => message.release()),
    _endOf(worker.handedOffConnections),
    _endOf(worker.stopRequests),
  ]);
  unawaited(client.write(Uint8List(64 << 20)));
  await untilStats(worker, (stats) => stats.opsInFlight >= 7,
      reason: 'every receive, the accept and a send armed');
  unawaited(worker.close());
  await Future.wait(ends).bounded;
}

/// Runs both scenarios on a worker of its own isolate, then reports
/// 'survived' to [report] (an uncaught error would have killed it first).
Future<void> _ignoringIsolate(List<Object?> message) async {
  final report = message[0] as SendPort;
  final fifo = message[1] as String;
  final worker = Worker();
  await _ignoreWritesToAResetPeer(worker);
  await _closeUnderStreamsWithoutErrorHandlers(worker, fifo);
  // Late reports of ignored errors come in later turns: let them.
  await Future<void>(() {});
  report.send('survived');
}

/// A FIFO in a fresh temporary directory.
Future<String> _fifo() =>
    makeFifo('${tempDirectory('iot_uncaught_').path}/fifo');

void main() {
  setUpTransport();

  group('in a zone of its own', () {
    test('ignored write futures of a connection the peer reset', () async {
      final worker = testWorker();
      expect(await uncaughtErrorsOf(() => _ignoreWritesToAResetPeer(worker)),
          isEmpty);
    });

    test('streams without an error handler when their worker closes',
        () async {
      final worker = testWorker();
      final fifo = await _fifo();
      expect(
          await uncaughtErrorsOf(
              () => _closeUnderStreamsWithoutErrorHandlers(worker, fifo)),
          isEmpty);
    });

    test('ignored datagram sends that fail', () async {
      final worker = testWorker();
      final errors = await uncaughtErrorsOf(() async {
        final unix = await UnixDatagramSocket.bind(null, worker: worker)
            .bounded;
        final missing = '${tempDirectory('iot_uncaught_').path}/missing';
        // Refused by the kernel: the completion fails the send.
        unawaited(unix.send([1], missing));
        // Refused before it is sent: too big for any span of buffers.
        unawaited(unix.send(Uint8List(200000), missing));
        final udp = await UdpSocket.bind(InternetAddress.loopbackIPv4, 0,
                worker: worker)
            .bounded;
        await udp.close();
        unawaited(udp.send([1], InternetAddress.loopbackIPv4, 9));
        // The failed send completed before this round trip did.
        await nextDrain(worker);
        await unix.close();
      });
      expect(errors, isEmpty);
    });

    test('ignored file writes that fail, and the close that reports them',
        () async {
      final worker = testWorker();
      final path = '${tempDirectory('iot_uncaught_').path}/read-only';
      File(path).writeAsStringSync('x');
      final errors = await uncaughtErrorsOf(() async {
        final file = await IoFile.open(path, worker: worker).bounded;
        unawaited(file.write([1, 2, 3]));
        unawaited(file.write([4], offset: 10));
        // The close fails with the first write error: ignored too.
        unawaited(file.close());
        await nextDrain(worker);
      });
      expect(errors, isEmpty);
      expect(File(path).readAsStringSync(), 'x');
    });

    test('ignored messages, bytes and hand-offs to a gone worker', () async {
      if (!Transport.messagingSupported) {
        markTestSkipped('this kernel cannot message between io_uring workers');
        return;
      }
      final worker = testWorker();
      final gone = Worker();
      final goneId = gone.id;
      await gone.close();
      final inUse = Transport.payloadsInUse;
      final errors = await uncaughtErrorsOf(() async {
        unawaited(worker.sendMessage(goneId, 1, 2));
        unawaited(worker.sendBytes(goneId, 1, [1, 2, 3]));
        final (_, server) = await tcpPair(worker);
        unawaited(server.handOff(goneId));
        await nextDrain(worker);
      });
      expect(errors, isEmpty);
      expect(Transport.payloadsInUse, inUse, reason: 'the payload came back');
    });

    test('ignored connects and opens that fail', () async {
      final worker = testWorker();
      final missing = '${Directory.systemTemp.path}/iot-missing-${pid}x/f';
      final errors = await uncaughtErrorsOf(() async {
        unawaited(TcpConnection.connect(InternetAddress.loopbackIPv4, 1,
            worker: worker));
        unawaited(UnixConnection.connect(missing, worker: worker));
        unawaited(IoFile.open(missing, worker: worker));
        unawaited(IoFile.statPath(missing, worker: worker));
        // The same, awaited: each has failed by the time these did.
        for (final attempt in <Future<Object?>>[
          TcpConnection.connect(InternetAddress.loopbackIPv4, 1,
              worker: worker),
          UnixConnection.connect(missing, worker: worker),
          IoFile.open(missing, worker: worker),
          IoFile.statPath(missing, worker: worker),
        ]) {
          await attempt.then<void>((_) => fail('$attempt succeeded'),
              onError: (Object _) {});
        }
      });
      expect(errors, isEmpty);
    });
  });

  test('a spawned isolate that ignores every failure keeps running', () async {
    final fifo = await _fifo();
    final events = ReceivePort();
    final received = StreamIterator<Object?>(events);
    addTearDown(received.cancel);
    // Its report, an uncaught error ([error, stack]) and its exit (null)
    // all come through one port, in the order they happened.
    await Isolate.spawn(_ignoringIsolate, <Object?>[events.sendPort, fifo],
        onError: events.sendPort,
        onExit: events.sendPort,
        debugName: 'ignoring');
    final seen = <Object?>[];
    while (seen.isEmpty || seen.last != null) {
      expect(await received.moveNext().bounded, isTrue);
      seen.add(received.current);
    }
    expect(seen, ['survived', null]);
  });
}
