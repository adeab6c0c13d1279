/// WorkerPool: isolates with one worker each, their entry functions, their
/// results, and how a pool ends (close, a failing member, kill).
library;

import 'dart:async';
import 'dart:isolate';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// Returns what the member sees: its index, its worker's id and buffer
/// size, and the pool's ids.
List<Object> _describe(WorkerContext context) => [
      context.index,
      context.worker.id,
      context.worker.bufferSize,
      context.workerIds,
    ];

/// Waits until the pool closes, then returns ten times its index.
Future<int> _untilClosed(WorkerContext context) async {
  await context.closing;
  return context.index * 10;
}

/// Member 1 throws; the others return their index.
int _secondThrows(WorkerContext context) {
  if (context.index == 1) throw StateError('member 1 gives up');
  return context.index;
}

/// Never returns.
Future<int> _forever(WorkerContext context) => Completer<int>().future;

/// Expects every worker of [ids] to be gone (closed or freed).
void _expectGone(List<int> ids) {
  for (final id in ids) {
    expect(() => Worker.leastLoaded([id]), throwsA(isA<WorkerGoneException>()),
        reason: 'worker $id');
  }
}

void main() {
  setUpTransport();

  test('each member runs with its own worker, made with the config, and '
      "knows the pool's ids; the pool closes the workers", () async {
    final pool = await WorkerPool.spawn(
            3, _describe,
            config: const WorkerConfig(bufferSize: 4096))
        .bounded;
    addTearDown(pool.kill);
    expect(pool.workerIds, hasLength(3));
    expect(pool.workerIds.toSet(), hasLength(3));
    final seen = await pool.done.bounded;
    for (var i = 0; i < 3; i++) {
      expect(seen[i], [i, pool.workerIds[i], 4096, pool.workerIds]);
    }
    _expectGone(pool.workerIds);
  });

  test('close completes every closing; results come in spawn order',
      () async {
    final pool = await WorkerPool.spawn(3, _untilClosed).bounded;
    addTearDown(pool.kill);
    expect([for (var i = 0; i < 3; i++) pool.leastLoaded()],
        everyElement(isIn(pool.workerIds)));
    pool.close();
    pool.close(); // idempotent
    expect(await pool.done.bounded, [0, 10, 20]);
    _expectGone(pool.workerIds);
  });

  test('a member that throws fails done with a RemoteError; its worker is '
      'closed', () async {
    final pool = await WorkerPool.spawn(3, _secondThrows).bounded;
    addTearDown(pool.kill);
    await expectLater(
        pool.done,
        throwsA(isA<RemoteError>().having(
            (e) => e.toString(), 'text', contains('member 1 gives up'))))
        .bounded;
    _expectGone([pool.workerIds[1]]);
  });

  test('kill ends the pool at once: done fails', () async {
    final pool = await WorkerPool.spawn(2, _forever).bounded;
    pool.kill();
    await expectLater(
        pool.done,
        throwsA(isA<RemoteError>()
            .having((e) => e.toString(), 'text', contains('killed'))))
        .bounded;
  });

  test('spawn refuses a bad count, and fails when a worker cannot be made',
      () async {
    await expectLater(WorkerPool.spawn(0, _describe), throwsRangeError);
    await expectLater(WorkerPool.spawn(1025, _describe), throwsRangeError);
    await expectLater(
        WorkerPool.spawn(2, _describe,
            config: const WorkerConfig(bufferSize: 0)),
        throwsA(isA<RemoteError>().having((e) => e.toString(), 'text',
            contains('could not create the worker')))).bounded;
  });
}
