/// [WorkerPool]: several isolates, each with its own worker, that know each
/// other's worker ids. The isolates talk through their workers (messages,
/// bytes, hand-offs); Dart ports only carry the setup (the ids), the request
/// to close, and each isolate's result.
library;

import 'dart:async';
import 'dart:isolate';

import 'futures.dart';
import 'worker.dart';
import 'worker_config.dart';


/// What the entry function of each [WorkerPool] isolate gets.
final class WorkerContext {
  WorkerContext._(this.index, this.worker, this.workerIds, this.closing);

  /// This isolate's place in the pool, 0..count-1.
  final int index;

  /// This isolate's worker (open while the entry function runs; closed by the
  /// pool after it returned).
  final Worker worker;

  /// The worker ids of the whole pool, in spawn order (this one's at
  /// [index]).
  final List<int> workerIds;

  /// Completes when [WorkerPool.close] is called: the entry function should
  /// wind down and return.
  final Future<void> closing;
}

/// Isolates with one worker each, running an entry function.
///
/// ```dart
/// final pool = await WorkerPool.spawn(4, serve);
/// // hand connections to pool.workerIds[...], message them, ...
/// pool.close();                // or Transport.requestStop(), see below
/// await pool.done;
/// ```
///
/// Each isolate creates its worker, the pool collects the ids, gives every
/// isolate all of them, then runs `entry(context)` in each. When the entry
/// function returns (or throws), the pool closes that isolate's worker and
/// the isolate ends. The entry function decides when to return: after
/// [WorkerContext.closing] completed, after a stop request
/// (`await context.worker.stopRequests.first`, then `context.worker.stop()`),
/// or when its work is done. Its result (anything an isolate may send, see
/// `SendPort.send`) is collected in [done].
///
/// [entry] must be sendable to another isolate: a top-level or static
/// function (or a closure that captures only sendable values).
final class WorkerPool<R> {
  WorkerPool._(this._members, this.workerIds)
      : done = handledFuture(
            Future.wait<R>([for (final member in _members) member.done]));

  /// Spawns [count] isolates (1..1024), each running [entry] with its own
  /// worker made with [config]. Completes when every worker exists (and
  /// every isolate knows the pool's ids); fails, after stopping the isolates
  /// already spawned, if an isolate could not start or create its worker.
  static Future<WorkerPool<R>> spawn<R>(
      int count, FutureOr<R> Function(WorkerContext context) entry,
      {WorkerConfig config = const WorkerConfig(),
      String debugName = 'iouring-worker'}) async {
    RangeError.checkValueInInterval(count, 1, 1024, 'count');
    final members = <_Member<R>>[
      for (var i = 0; i < count; i++) _Member<R>(i)
    ];
    try {
      await Future.wait([
        for (final member in members)
          member.spawn(entry, config, '$debugName-${member.index}')
      ]);
      final ids = await Future.wait<int>([
        for (final member in members) member.ready
      ]);
      final shared = List<int>.unmodifiable(ids);
      for (final member in members) {
        member.start(shared);
      }
      return WorkerPool<R>._(members, shared);
    } catch (_) {
      for (final member in members) {
        member.kill();
      }
      rethrow;
    }
  }

  final List<_Member<R>> _members;

  /// The worker ids of the pool, in spawn order.
  final List<int> workerIds;

  /// The entry functions' results, in spawn order, once every isolate ended;
  /// fails with the first error (a [RemoteError] for an entry function that
  /// threw or an isolate that died). Await it: a failure nobody awaits is not
  /// reported anywhere.
  final Future<List<R>> done;

  /// Completes every isolate's [WorkerContext.closing]. Idempotent.
  void close() {
    for (final member in _members) {
      member.close();
    }
  }

  /// The least loaded worker of the pool (see [Worker.leastLoaded]).
  int leastLoaded() => Worker.leastLoaded(workerIds);

  /// Ends every isolate at once (their workers are freed by the native
  /// library's finalizer, not closed). For emergencies; prefer [close].
  void kill() {
    for (final member in _members) {
      member.kill();
    }
  }
}

/// The pool's end of one isolate: a port for everything the isolate sends
/// (its messages, its uncaught errors, its exit).
final class _Member<R> {
  _Member(this.index) {
    _events.handler = _onEvent;
    // A member fails when its isolate does, whether or not anyone still
    // waits for it (a spawn that failed never hands out done).
    handledFuture(_ready.future);
    handledFuture(_done.future);
  }

  final int index;
  final RawReceivePort _events = RawReceivePort(null, 'worker pool member');
  final Completer<int> _ready = Completer<int>();
  final Completer<R> _done = Completer<R>();
  Isolate? _isolate;
  SendPort? _control;
  String? _uncaught;
  bool _closeSent = false;
  bool _killed = false;
  bool _portClosed = false;

  /// The worker id, once the isolate created its worker.
  Future<int> get ready => _ready.future;

  /// The entry function's result.
  Future<R> get done => _done.future;

  Future<void> spawn(FutureOr<R> Function(WorkerContext) entry,
      WorkerConfig config, String debugName) async {
    final start = _Start(index, entry, config, _events.sendPort);
    try {
      final isolate = await Isolate.spawn<_Start>(_runMember, start,
          onExit: _events.sendPort,
          onError: _events.sendPort,
          debugName: debugName);
      _isolate = isolate;
      if (_killed) isolate.kill(priority: Isolate.immediate);
    } catch (error, stack) {
      _fail(RemoteError('could not spawn isolate $index: $error', '$stack'));
      rethrow;
    }
  }

  /// Gives the isolate the pool's ids: its entry function starts.
  void start(List<int> ids) {
    _control?.send(_Peers(ids));
  }

  void close() {
    if (_closeSent) return;
    _closeSent = true;
    _control?.send(const _Close());
  }

  void kill() {
    _killed = true;
    _isolate?.kill(priority: Isolate.immediate);
    _fail(RemoteError('isolate $index was killed', ''));
  }

  void _onEvent(Object? message) {
    if (message is _Ready) {
      _control = message.control;
      if (!_ready.isCompleted) _ready.complete(message.workerId);
    } else if (message is _Done) {
      if (!_done.isCompleted) _done.complete(message.result as R);
      _closePort();
    } else if (message is _Failed) {
      _fail(RemoteError(message.error, message.stack));
    } else if (message is List<Object?> && message.length == 2) {
      // An uncaught error (errors are fatal: the isolate exits next).
      _uncaught = '${message[0]}\n${message[1] ?? ''}';
    } else if (message == null) {
      // The isolate exited (onExit) before reporting its result.
      final uncaught = _uncaught;
      _fail(RemoteError(
          uncaught == null
              ? 'isolate $index exited before its entry function returned'
              : 'isolate $index died: $uncaught',
          ''));
    }
  }

  void _fail(RemoteError error) {
    if (!_ready.isCompleted) _ready.completeError(error, error.stackTrace);
    if (!_done.isCompleted) _done.completeError(error, error.stackTrace);
    _closePort();
  }

  void _closePort() {
    if (_portClosed) return;
    _portClosed = true;
    _events.close();
  }
}

/// The isolate's entry: create the worker, report it, wait for the pool's
/// ids, run the entry function, close the worker, report the result.
Future<void> _runMember(_Start start) async {
  final Worker worker;
  try {
    worker = Worker(config: start.config);
  } catch (error, stack) {
    start.events.send(_Failed('could not create the worker of isolate '
        '${start.index}: $error', '$stack'));
    return;
  }
  final control = ReceivePort('worker pool member ${start.index}');
  final peers = Completer<List<int>>();
  final closing = Completer<void>();
  control.listen((Object? message) {
    if (message is _Peers && !peers.isCompleted) {
      peers.complete(List<int>.unmodifiable(message.ids));
    } else if (message is _Close && !closing.isCompleted) {
      closing.complete();
    }
  });
  start.events.send(_Ready(worker.id, control.sendPort));
  Object? result;
  Object? failure;
  StackTrace? failureStack;
  try {
    final ids = await peers.future;
    final context =
        WorkerContext._(start.index, worker, ids, closing.future);
    result = await start.entry(context);
  } catch (error, stack) {
    failure = error;
    failureStack = stack;
  }
  try {
    await worker.close();
  } catch (error, stack) {
    if (failure == null) {
      failure = error;
      failureStack = stack;
    }
  }
  control.close();
  if (failure != null) {
    start.events.send(_Failed('$failure', '$failureStack'));
  } else {
    start.events.send(_Done(result));
  }
}

/// The spawn message.
final class _Start {
  _Start(this.index, this.entry, this.config, this.events);

  final int index;
  final FutureOr<Object?> Function(WorkerContext) entry;
  final WorkerConfig config;
  final SendPort events;
}

/// Isolate to pool: the worker exists.
final class _Ready {
  _Ready(this.workerId, this.control);

  final int workerId;
  final SendPort control;
}

/// Pool to isolate: every worker id of the pool; start.
final class _Peers {
  _Peers(this.ids);

  final List<int> ids;
}

/// Pool to isolate: [WorkerPool.close] was called.
final class _Close {
  const _Close();
}

/// Isolate to pool: the entry function returned.
final class _Done {
  _Done(this.result);

  final Object? result;
}

/// Isolate to pool: the worker could not be created, or the entry function
/// (or closing the worker) failed.
final class _Failed {
  _Failed(this.error, this.stack);

  final String error;
  final String stack;
}
