/// Cancelling a subscription mid-stream: receiving stops (the native
/// receive is returned), what was already handed out stays valid, and the
/// socket or file goes on serving everything else.
library;

import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

void main() {
  setUpTransport();

  for (final MapEntry(key: kind, value: pair) in streamPairs.entries) {
    group('$kind stream', () {
      test('cancelling mid-stream stops receiving; the connection still '
          'writes', () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        final firstChunk = Completer<Uint8List>();
        late final StreamSubscription<Uint8List> subscription;
        subscription = client.listen((chunk) {
          if (firstChunk.isCompleted) return;
          firstChunk.complete(chunk);
          unawaited(subscription.cancel());
        });
        final data = pattern(100000, 1);
        await server.write(data).bounded;
        final chunk = await firstChunk.future.bounded;
        expect(sameBytes(chunk, data.sublist(0, chunk.length)), isTrue);
        await untilStats(
            worker,
            (stats) => stats.opsInFlight == 0 && stats.buffersOutstanding == 0,
            reason: 'the receive returned, no buffer held');
        expect(client.isClosed, isFalse);
        final atServer = ByteReader(server);
        await client.write([1, 2, 3]).bounded;
        expect(await atServer.read(3).bounded, [1, 2, 3]);
        expect(atServer.isDone, isFalse, reason: 'the client did not close');
      });

      test('a payload held when the subscription is cancelled stays valid '
          'until released', () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        final firstPayload = Completer<Payload>();
        late final StreamSubscription<Payload> subscription;
        subscription = client.payloads.listen((payload) {
          if (firstPayload.isCompleted) {
            payload.release();
            return;
          }
          firstPayload.complete(payload);
          unawaited(subscription.cancel());
        });
        await server.write(pattern(1000, 2)).bounded;
        final payload = await firstPayload.future.bounded;
        await untilStats(worker, (stats) => stats.opsInFlight == 0,
            reason: 'the receive returned');
        expect(worker.stats().buffersOutstanding, 1,
            reason: 'the held payload keeps its buffer');
        expect(sameBytes(payload.bytes, pattern(1000, 2).sublist(0,
            payload.length)), isTrue);
        payload.release();
        expect(worker.stats().buffersOutstanding, 0);
      });
    });
  }

  for (final MapEntry(key: kind, value: bind) in datagramKinds.entries) {
    test('$kind datagrams: cancelling stops receiving; the socket still '
        'sends', () async {
      final worker = testWorker();
      final a = await bind(worker);
      final b = await bind(worker);
      final atA = Inbox<Uint8List>(a.received);
      await b.sendTo(a, [1]).bounded;
      expect(await atA.next(), [1]);
      await atA.cancel().bounded;
      await untilStats(
          worker,
          (stats) => stats.opsInFlight == 0 && stats.buffersOutstanding == 0,
          reason: 'the receive returned');
      // Nothing receives for a any more: what is sent to it stays queued
      // in the kernel.
      await b.sendTo(a, [2]).bounded;
      await nextDrain(worker);
      expect(atA.received, 1);
      final atB = Inbox<Uint8List>(b.received);
      await a.sendTo(b, [3]).bounded;
      expect(await atB.next(), [3]);
    });
  }

  group('files', () {
    late Worker worker;
    late String path;
    final data = pattern((1 << 20) + 17, 3);

    setUp(() {
      worker = testWorker();
      path = '${tempDirectory('iot_cancel_').path}/data';
      File(path).writeAsBytesSync(data);
    });

    test('cancelling a read stream releases its chunks; the file still reads',
        () async {
      final file = await IoFile.open(path, worker: worker).bounded;
      addTearDown(file.close);
      final chunks = Inbox<Uint8List>(file.readStream(window: 4));
      final first = await chunks.next();
      expect(sameBytes(first, data.sublist(0, first.length)), isTrue);
      await chunks.cancel().bounded;
      await untilStats(
          worker,
          (stats) => stats.opsInFlight == 0 && stats.buffersOutstanding == 0,
          reason: 'the read stream stopped, its chunks released');
      expect(await file.read(10, offset: 1000).bounded,
          data.sublist(1000, 1010));
    });

    test('cancelling a payload stream keeps the held payload valid', () async {
      final file = await IoFile.open(path, worker: worker).bounded;
      addTearDown(file.close);
      final payloads = StreamIterator<Payload>(file.readPayloads(window: 4));
      expect(await payloads.moveNext().bounded, isTrue);
      final held = payloads.current;
      await payloads.cancel().bounded;
      await untilStats(worker, (stats) => stats.opsInFlight == 0,
          reason: 'the read stream stopped');
      expect(worker.stats().buffersOutstanding, 1,
          reason: 'only the held payload keeps a buffer');
      expect(sameBytes(held.bytes, data.sublist(0, held.length)), isTrue);
      held.release();
      expect(worker.stats().buffersOutstanding, 0);
    });

    test('cancelling openRead mid-stream closes the file', () async {
      final chunks = Inbox<Uint8List>(IoFile.openRead(path, worker: worker));
      await chunks.next();
      expect(worker.stats().socketsOpen, 1, reason: 'the file is open');
      await chunks.cancel().bounded;
      expect(worker.stats().socketsOpen, 0, reason: 'the file was closed');
      await expectNothingLeft(worker);
    });
  });
}
