/// The finalizer of socket and file handles: a handle dropped without being
/// closed is closed by it, exactly once; one closed (or forgotten) by its
/// owner is never closed again by it.
library;

import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:iouring_transport/src/ffi/resource_handle.dart';
import 'package:iouring_transport/src/ffi/worker_handle.dart';
import 'package:iouring_transport/src/worker.dart' show workerCore;
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// A handle whose native close only records the call.
final class RecordingHandle extends ResourceHandle {
  RecordingHandle(WorkerHandle worker, int id) : super(worker, id, _record);

  static final List<int> closed = [];

  static int _record(WorkerHandle worker, int id) {
    closed.add(id);
    return 0;
  }
}

/// Makes garbage and turns the event loop (where finalizers run) until
/// [condition] holds; fails after [rounds] rounds.
Future<void> collectUntil(bool Function() condition,
    {required String reason, int rounds = 5000}) async {
  for (var i = 0; i < rounds && !condition(); i++) {
    // ~4 MB per round: enough for the old generation to be collected too.
    for (var j = 0; j < 16; j++) {
      List<Object?>.filled(64 * 1024, null);
    }
    await Future<void>(() {});
  }
  expect(condition(), isTrue, reason: reason);
}

/// Makes handles [ids] that nothing refers to when this returns (in a
/// function of its own, so no local variable keeps them).
void makeHandles(WorkerHandle worker, List<int> ids,
    {bool close = false, bool forget = false}) {
  for (final id in ids) {
    final handle = RecordingHandle(worker, id);
    if (close) {
      expect(handle.close(), 0);
      expect(handle.close(), 0, reason: 'a second close does nothing');
      expect(handle.isClosed, isTrue);
    }
    if (forget) handle.forget();
  }
}

void main() {
  setUpTransport();

  tearDown(RecordingHandle.closed.clear);

  test('a handle dropped without close is closed by the finalizer, once',
      () async {
    final worker = workerCore(testWorker()).handle;
    makeHandles(worker, [1, 2, 3]);
    expect(RecordingHandle.closed, isEmpty);
    await collectUntil(() => RecordingHandle.closed.length >= 3,
        reason: 'the finalizer closed the dropped handles');
    expect(RecordingHandle.closed..sort(), [1, 2, 3]);
  });

  test('a handle closed or forgotten by its owner is never closed again',
      () async {
    final worker = workerCore(testWorker()).handle;
    makeHandles(worker, [10, 11], close: true);
    expect(RecordingHandle.closed, [10, 11]);
    makeHandles(worker, [20, 21], forget: true);
    // Dropped with them: once the finalizer closed these, the others were
    // collected long ago (many more rounds follow).
    makeHandles(worker, [30, 31]);
    await collectUntil(() => RecordingHandle.closed.length >= 4,
        reason: 'the finalizer closed the dropped handles');
    await collectUntil(() => false, rounds: 50, reason: 'more collections')
        .catchError((Object _) {});
    expect(RecordingHandle.closed..sort(), [10, 11, 30, 31]);
  });

  test('the handle of a freed worker is not closed by the finalizer',
      () async {
    final gone = Worker();
    final handle = workerCore(gone).handle;
    await gone.close();
    expect(handle.isFreed, isTrue);
    makeHandles(handle, [40]);
    final live = workerCore(testWorker()).handle;
    makeHandles(live, [41]);
    await collectUntil(() => RecordingHandle.closed.contains(41),
        reason: 'the finalizer ran');
    await collectUntil(() => false, rounds: 50, reason: 'more collections')
        .catchError((Object _) {});
    expect(RecordingHandle.closed, [41]);
  });

  test('a real socket dropped without close is closed; a closed one whose '
      'slot was reused leaves the new socket alone', () async {
    final worker = testWorker();
    final before = worker.stats().socketsOpen;
    Future<void> bindAndDrop({required bool close}) async {
      final socket = await UdpSocket.bind(InternetAddress.loopbackIPv4, 0,
              worker: worker)
          .bounded;
      if (close) socket.close();
    }

    await bindAndDrop(close: false);
    expect(worker.stats().socketsOpen, before + 1);
    await collectUntil(() => worker.stats().socketsOpen == before,
        reason: 'the finalizer closed the dropped socket');

    await bindAndDrop(close: true);
    final kept = await UdpSocket.bind(InternetAddress.loopbackIPv4, 0,
            worker: worker)
        .bounded;
    addTearDown(kept.close);
    // The dropped, closed socket's finalizer had its chance many times over.
    await collectUntil(() => false, rounds: 200, reason: 'collections')
        .catchError((Object _) {});
    expect(worker.stats().socketsOpen, before + 1);
    final received = kept.first;
    await kept.send([1, 2, 3], InternetAddress.loopbackIPv4, kept.port).bounded;
    expect((await received.bounded).data, [1, 2, 3]);
  });
}
