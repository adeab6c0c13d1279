// Payloads the program drops without releasing them go back to the pool once
// a garbage collection found them unreachable; one still referenced stays the
// program's, bytes intact.
import 'dart:async';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

void main() {
  setUpTransport();

  test('dropped payloads return to the pool after a collection, kept ones stay',
      () async {
    final worker = testWorker();
    final (client, server) = await tcpPair(worker);
    const messages = 8;
    Payload? kept;
    var seen = 0;
    final allSeen = Completer<void>();
    // Every payload is dropped unreleased, but the first is kept referenced.
    server.payloads.listen((payload) {
      kept ??= payload;
      if (++seen == messages) allSeen.complete();
    });
    for (var i = 0; i < messages; i++) {
      final before = seen;
      await client.write(numbered(i));
      await untilStats(worker, (_) => seen > before,
          reason: 'message $i received on its own');
    }
    await allSeen.future.bounded;
    expect(worker.stats().piecesOutstanding, messages);

    await _collectUntil(() => worker.stats().piecesOutstanding == 1);
    expect(numberOf(kept!.bytes), 0, reason: 'the kept payload is intact');
    kept!.release();
    expect(worker.stats().buffersOutstanding, 0);
    client.destroy();
    server.destroy();
    await expectNothingLeft(worker);
  });
}

/// Makes garbage (young and old) and yields to the event loop, where the
/// collections' findings arrive, until [done] holds: at most 400 rounds.
Future<void> _collectUntil(bool Function() done) async {
  var garbage = <Object>[];
  for (var round = 0; round < 400; round++) {
    if (done()) return;
    garbage = [
      for (var i = 0; i < 64; i++) Uint8List(1 << 16),
      for (var i = 0; i < 20000; i++) Object(),
    ];
    await Future<void>.delayed(Duration.zero);
  }
  expect(garbage, isNotEmpty);
  fail('not given back after 400 rounds of garbage');
}
