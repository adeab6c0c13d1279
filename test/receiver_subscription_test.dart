/// A connection's input stream is its own subscription (no
/// `StreamController`): what programs written for dart:io sockets do with it
/// over real TCP and Unix connections, and the same through `payloads`.
library;

import 'dart:async';
import 'dart:convert';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

void main() {
  setUpTransport();

  for (final MapEntry(key: kind, value: pair) in streamPairs.entries) {
    group('$kind stream', () {
      test('await for with a pause per chunk gets every byte in order',
          () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        final data = pattern(worker.bufferSize * 8 + 17, 3);
        final sent = server.write(data).then((_) => server.close());
        final got = BytesBuilder(copy: false);
        await () async {
          await for (final chunk in client) {
            got.add(chunk);
            // Each await pauses the subscription and resumes it.
            await Future<void>(() {});
          }
        }()
            .bounded;
        await sent.bounded;
        expect(sameBytes(got.takeBytes(), data), isTrue);
      });

      test('pause inside onData with a resume future, resume and cancel '
          'inside onData; done after cancel never comes', () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        final data = pattern(worker.bufferSize * 4, 4);
        final got = BytesBuilder();
        final enough = Completer<void>();
        late final StreamSubscription<Uint8List> subscription;
        var done = false;
        subscription = client.listen((chunk) {
          expect(subscription.isPaused, isFalse);
          got.add(chunk);
          if (got.length >= data.length) {
            // Cancelled with the peer's end still to come: no done.
            unawaited(subscription.cancel());
            enough.complete();
            return;
          }
          subscription.pause(Future<void>(() {}));
          expect(subscription.isPaused, isTrue);
        }, onDone: () => done = true);
        await server.write(data).bounded;
        await enough.future.bounded;
        await server.close().bounded;
        await untilStats(worker, (stats) => stats.opsInFlight == 0,
            reason: 'the receive was returned');
        await nextDrain(worker);
        expect(done, isFalse);
        expect(sameBytes(got.takeBytes(), data), isTrue);
      });

      test('first, take and StreamIterator stop receiving when done with it',
          () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        await server.write([1, 2, 3]).bounded;
        expect(await client.first.bounded, [1, 2, 3]);
        await untilStats(worker, (stats) => stats.opsInFlight == 0,
            reason: 'first cancelled the receive');
        expect(() => client.listen(null), throwsStateError);

        final (client2, server2) = await pair(worker);
        final iterator = StreamIterator(client2.payloads);
        await server2.write([4, 5]).bounded;
        expect(await iterator.moveNext().bounded, isTrue);
        expect(iterator.current.bytes, [4, 5]);
        iterator.current.release();
        final more = iterator.moveNext();
        await server2.write([6]).bounded;
        expect(await more.bounded, isTrue);
        expect(iterator.current.bytes, [6]);
        iterator.current.release();
        await iterator.cancel().bounded;
        expect(() => client2.payloads.listen(null), throwsStateError);
        expect(() => client2.listen(null), throwsStateError);

        final (client3, server3) = await pair(worker);
        final taken = client3
            .transform(StreamTransformer<Uint8List, int>.fromHandlers(
                handleData: (chunk, sink) => chunk.forEach(sink.add)))
            .take(5)
            .toList();
        for (var i = 0; i < 5; i++) {
          await server3.write([i]).bounded;
        }
        expect(await taken.bounded, [0, 1, 2, 3, 4]);
      });

      test('handlers run in the zone of listen; an error without a handler '
          'goes there', () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        final zones = <Object?>[];
        final uncaught = <Object>[];
        final done = Completer<void>();
        runZonedGuarded(() {
          client.readTimeout = const Duration(milliseconds: 200);
          client.listen((chunk) => zones.add(Zone.current[#name]),
              onDone: () {
            zones.add(Zone.current[#name]);
            done.complete();
          });
        }, (error, _) => uncaught.add(error), zoneValues: {#name: 'listen'});
        await server.write([1]).bounded;
        await done.future.bounded;
        expect(zones, ['listen', 'listen']);
        expect(uncaught, [isA<TransportTimeoutException>()]);
      });

      test('cancelOnError: the error cancels, no done; asFuture fails with it',
          () async {
        final worker = testWorker();
        final (client, _) = await pair(worker);
        client.readTimeout = const Duration(milliseconds: 200);
        final errors = <Object>[];
        var done = false;
        final subscription = client.listen(null,
            onError: errors.add,
            onDone: () => done = true,
            cancelOnError: true);
        await expectLater(subscription.asFuture<void>(),
            throwsA(isA<TransportTimeoutException>()));
        expect(errors, isEmpty, reason: 'asFuture replaced the handler');
        await untilStats(worker, (stats) => stats.opsInFlight == 0,
            reason: 'nothing in flight');
        expect(done, isFalse);
      });

      test('asFuture completes with its value at the end; pipe and '
          'utf8.decoder', () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        final got = <int>[];
        final finished = client.listen(got.addAll).asFuture<String>('end');
        await server.write([1, 2]).bounded;
        await server.close().bounded;
        expect(await finished.bounded, 'end');
        expect(got, [1, 2]);

        final (client2, server2) = await pair(worker);
        final text = client2.cast<List<int>>().transform(utf8.decoder).join();
        await server2.write(utf8.encode('hé')).bounded;
        await server2.close().bounded;
        expect(await text.bounded, 'hé');

        final (client3, server3) = await pair(worker);
        final target = StreamController<Uint8List>();
        final collected = target.stream.expand((c) => c).toList();
        final piped = client3.pipe(target);
        await server3.write([7, 8, 9]).bounded;
        await server3.close().bounded;
        await piped.bounded;
        expect(await collected.bounded, [7, 8, 9]);
      });

      test('the end of a connection destroyed before it was listened to '
          'waits for the listener', () async {
        final worker = testWorker();
        final (client, _) = await pair(worker);
        final input = client.payloads;
        client.destroy();
        await nextDrain(worker);
        final events = <String>[];
        final done = Completer<void>();
        input.listen((p) => events.add('data'),
            onError: (Object e) => events.add('error'), onDone: () {
          events.add('done');
          done.complete();
        });
        await done.future.bounded;
        expect(events, ['done']);
        expect(() => input.listen(null), throwsStateError);
      });

      test('a paused input holds data back until resumed, then goes on',
          () async {
        final worker = testWorker();
        final (client, server) = await pair(worker);
        final input = Inbox<Uint8List>(client);
        await server.write([1]).bounded;
        await input.next().bounded;
        input.subscription.pause();
        expect(input.subscription.isPaused, isTrue);
        await server.write([2]).bounded;
        await nextDrain(worker);
        await nextDrain(worker);
        expect(input.received, 1, reason: 'paused: nothing delivered');
        input.subscription.resume();
        expect(await input.next().bounded, [2]);
        await server.write([3]).bounded;
        expect(await input.next().bounded, [3]);
      });
    });
  }
}
