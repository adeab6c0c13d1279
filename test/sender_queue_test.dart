/// A connection's queue of writes (one list through the entries): writes and
/// payload sends go out in the order they were made, flush waits for the
/// last, and destroying a connection with payloads queued behind a stalled
/// write fails them all and gives every payload's buffer back.
library;

import 'dart:async';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// Receives [count] payloads on [connection] while [peer] sends them one
/// write each, and keeps them (not released).
Future<List<Payload>> receivePayloads(
    StreamConnection peer, StreamConnection connection, int count) async {
  final input = Inbox<Payload>(connection.payloads);
  final payloads = <Payload>[];
  for (var i = 0; i < count; i++) {
    await peer.write(numbered(1000 + i, 64)).bounded;
    payloads.add(await input.next().bounded);
  }
  input.subscription.pause();
  return payloads;
}

void main() {
  setUpTransport();

  for (final MapEntry(key: kind, value: pair) in streamPairs.entries) {
    group('$kind stream', () {
      test('writes and payload sends arrive in the order they were made',
          () async {
        final worker = testWorker();
        final (source, from) = await pair(worker);
        final (writer, reader) = await pair(worker);
        final payloads = await receivePayloads(source, from, 6);
        final expected = BytesBuilder();
        final futures = <Future<void>>[];
        for (var i = 0; i < 6; i++) {
          // Larger than a send buffer: cut into several sends.
          final big = pattern(worker.bufferSize * 2 + i, i);
          expected
            ..add(big)
            ..add(payloads[i].bytes);
          futures
            ..add(writer.write(big))
            ..add(writer.writePayload(payloads[i]));
        }
        final flushed = writer.flush();
        final all = expected.takeBytes();
        final atReader = ByteReader(reader);
        final got = await atReader.read(all.length).bounded;
        await Future.wait(futures).bounded;
        await flushed.bounded;
        expect(sameBytes(got, all), isTrue);
        await writer.close().bounded;
        expect(await atReader.readToEnd().bounded, isEmpty,
            reason: 'the close came after everything');
      });

      test('destroy with payloads queued behind a stalled write fails them '
          'and gives every buffer back', () async {
        final worker = testWorker();
        final (source, from) = await pair(worker);
        final (writer, reader) = await pair(worker);
        final payloads = await receivePayloads(source, from, 5);
        // Nobody reads at [reader]: this never completes, and what follows
        // stays queued in Dart.
        final stalled = writer.write(Uint8List(64 << 20)).then(
            (_) => 'sent',
            onError: (Object e) => '$e');
        final queued = [
          for (final payload in payloads)
            writer.writePayload(payload).then((_) => 'sent',
                onError: (Object e) => e is TransportClosedException
                    ? 'closed'
                    : '$e'),
        ];
        await untilStats(worker, (stats) => stats.opsInFlight >= 2,
            reason: 'sends in flight');
        writer.destroy();
        expect(await Future.wait(queued).bounded,
            List.filled(payloads.length, 'closed'));
        expect(await stalled.bounded, isNot('sent'));
        source.destroy();
        from.destroy();
        reader.destroy();
        await expectNothingLeft(worker);
        expect(worker.stats().piecesOutstanding, 0);
      });
    });
  }
}
