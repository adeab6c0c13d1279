/// `SingleSubscriptionStream` (the stream and subscription of every receive
/// loop) against the stream of a `StreamController(sync: true)`: each
/// scenario drives both the same way and records what the listener, the
/// controller's callbacks and the zones see, microtask by microtask; the two
/// records must be the same.
library;

import 'dart:async';

import 'package:iouring_transport/src/single_subscription.dart';
import 'package:test/test.dart';

/// What a scenario drives: a controller or a [SingleSubscriptionStream].
abstract interface class Source {
  Stream<int> get stream;
  void add(int data);
  void addError(Object error, [StackTrace? stackTrace]);
  void close();

  /// `StreamController.isPaused`.
  bool get inputPaused;
}

final class ControllerSource implements Source {
  ControllerSource(this.hook) {
    _controller = StreamController<int>(
        sync: true,
        onListen: () => hook('listen'),
        onPause: () => hook('pause'),
        onResume: () => hook('resume'),
        onCancel: () => hook('cancel'));
  }

  final void Function(String name) hook;
  late final StreamController<int> _controller;

  @override
  Stream<int> get stream => _controller.stream;
  @override
  void add(int data) => _controller.add(data);
  @override
  void addError(Object error, [StackTrace? stackTrace]) =>
      _controller.addError(error, stackTrace);
  @override
  void close() => unawaited(_controller.close());
  @override
  bool get inputPaused => _controller.isPaused;
}

final class OwnSource extends SingleSubscriptionStream<int> implements Source {
  OwnSource(this.hook);

  final void Function(String name) hook;

  @override
  Stream<int> get stream => this;
  @override
  void add(int data) => addEvent(data);
  @override
  void addError(Object error, [StackTrace? stackTrace]) =>
      addErrorEvent(error, stackTrace);
  @override
  void close() => closeEvents();
  @override
  bool get inputPaused => isInputPaused;

  @override
  void onListened() => hook('listen');
  @override
  void onInputPaused() => hook('pause');
  @override
  void onInputResumed() => hook('resume');
  @override
  void onCancelled() => hook('cancel');
}

/// One run of a scenario: its record and what it may react to.
final class Run {
  final List<String> log = [];

  /// Called after a hook was recorded (a scenario may act in it).
  void Function(String name)? onHook;

  late final Source source;

  void record(String what) => log.add(what);

  String get zone => '${Zone.current[#name] ?? 'root'}';

  void Function(int) data(String who) => (v) => record('$who data $v ($zone)');

  void Function(Object, StackTrace) error(String who) =>
      (e, s) => record('$who error $e "$s" ($zone)');

  void Function() done(String who) => () => record('$who done ($zone)');

  /// Records a marker in each of the next [count] microtasks, to place the
  /// other records in time.
  void tick([int count = 12]) {
    var i = 0;
    void next() {
      record('tick ${i++}');
      if (i < count) scheduleMicrotask(next);
    }

    scheduleMicrotask(next);
  }
}

typedef Scenario = Future<void> Function(Run run);

/// Runs [scenario] on a fresh source of each kind, in a zone named 'outer'
/// that records uncaught errors, and returns both records.
Future<List<List<String>>> both(Scenario scenario) async {
  final records = <List<String>>[];
  for (final own in [false, true]) {
    final run = Run();
    void hook(String name) {
      run.record('hook $name (${run.zone})');
      run.onHook?.call(name);
    }

    run.source = own ? OwnSource(hook) : ControllerSource(hook);
    final finished = Completer<void>();
    runZonedGuarded(() async {
      await scenario(run);
      // Everything the scenario set going settles in microtasks.
      await Future<void>(() {});
      finished.complete();
    }, (error, stack) {
      run.record('uncaught $error "$stack" (${run.zone})');
    }, zoneValues: {#name: 'outer'});
    await finished.future;
    records.add(run.log);
  }
  return records;
}

/// Expects the same record of both, and returns it (for checks that the
/// scenario tested what it meant to).
Future<List<String>> same(Scenario scenario) async {
  final [reference, own] = await both(scenario);
  expect(own, reference);
  return reference;
}

T inner<T>(T Function() body) =>
    runZoned(body, zoneValues: {#name: 'inner'});

final given = StackTrace.fromString('given');

void main() {
  test('the same completed future from cancel as a controller', () async {
    final own = OwnSource((_) {});
    final controller = StreamController<int>(sync: true, onCancel: () {});
    expect(
        identical(own.listen(null).cancel(),
            controller.stream.listen(null).cancel()),
        isTrue);
  });

  test('events before listen wait and go out one per microtask', () async {
    final log = await same((run) async {
      final s = run.source;
      run.record('paused before listen ${s.inputPaused}');
      s.add(1);
      s.addError('e', given);
      s.add(2);
      s.close();
      run.tick();
      inner(() => s.stream.listen(run.data('a'),
          onError: run.error('a'), onDone: run.done('a')));
      run.record('listened; input paused ${s.inputPaused}');
    });
    expect(log, contains('a done (inner)'));
  });

  test('synchronous delivery; pause in onData waits; resume delivers the '
      'waiting events one per microtask, then resumes the input', () async {
    final log = await same((run) async {
      final s = run.source;
      late StreamSubscription<int> sub;
      sub = s.stream.listen((v) {
        run.record('data $v paused ${sub.isPaused} input ${s.inputPaused}');
        if (v == 1) sub.pause();
        run.record('after pause ${sub.isPaused} input ${s.inputPaused}');
      }, onDone: run.done('a'));
      s.add(1);
      s.add(2);
      s.add(3);
      run.record('input ${s.inputPaused}');
      run.tick();
      sub.resume();
      run.record('resumed; input ${s.inputPaused}');
      await Future<void>(() {});
      s.add(4);
      s.close();
    });
    expect(log, contains('data 4 paused false input false'));
  });

  test('pause counting; resume with nothing waiting resumes the input at once',
      () async {
    await same((run) async {
      final s = run.source;
      final sub = s.stream.listen(run.data('a'));
      sub.pause();
      sub.pause();
      run.record('paused ${sub.isPaused} input ${s.inputPaused}');
      sub.resume();
      run.record('once ${sub.isPaused} input ${s.inputPaused}');
      s.add(1);
      sub.resume();
      run.record('twice ${sub.isPaused} input ${s.inputPaused}');
      run.tick(3);
      sub.resume(); // not paused: nothing
      await Future<void>(() {});
      sub.pause();
      sub.resume();
      run.record('again ${sub.isPaused} input ${s.inputPaused}');
      s.add(2);
    });
  });

  test('pause with a resume future', () async {
    await same((run) async {
      final s = run.source;
      final sub = s.stream.listen(run.data('a'));
      final signal = Completer<void>();
      sub.pause(signal.future);
      s.add(1);
      run.tick(4);
      await Future<void>(() {});
      signal.complete();
      run.tick(4);
    });
  });

  test('pause and resume inside a handler tell the input only what holds '
      'when it returns', () async {
    final log = await same((run) async {
      final s = run.source;
      late StreamSubscription<int> sub;
      sub = s.stream.listen((v) {
        run.record('data $v');
        if (v == 1) {
          sub.pause();
          sub.resume();
        } else if (v == 2) {
          sub.pause();
          sub.resume();
          sub.pause();
        }
      });
      s.add(1);
      s.add(2);
      run.record('input ${s.inputPaused}');
      sub.resume();
    });
    expect(log.where((e) => e.startsWith('hook pause')), hasLength(1));
  });

  test('cancel inside onData: nothing more, done after cancel never '
      'delivered', () async {
    final log = await same((run) async {
      final s = run.source;
      late StreamSubscription<int> sub;
      sub = s.stream.listen((v) {
        run.record('data $v');
        final cancelled = sub.cancel();
        run.record('cancel gave a Future ${cancelled is Future<void>}');
        s.add(99);
      }, onDone: run.done('a'), onError: run.error('a'));
      s.add(1);
      s.add(2);
      s.addError('late');
      s.close();
      run.record('input ${s.inputPaused} paused ${sub.isPaused}');
      sub.pause();
      sub.resume();
      expect(() => s.stream.listen(null), throwsStateError);
    });
    expect(log, isNot(contains('a done (outer)')));
  });

  test('cancel while events wait drops them', () async {
    await same((run) async {
      final s = run.source;
      final sub = s.stream.listen(run.data('a'), onDone: run.done('a'));
      sub.pause();
      s.add(1);
      s.close();
      sub.resume();
      await sub.cancel();
      run.record('cancelled');
    });
  });

  test('listening twice is refused', () async {
    await same((run) async {
      final s = run.source;
      s.stream.listen(null);
      try {
        s.stream.listen(null);
      } on StateError catch (e) {
        run.record('refused: ${e.message}');
      }
    });
  });

  test('cancelOnError: the error cancels first, then is delivered; nothing '
      'after it', () async {
    final log = await same((run) async {
      final s = run.source;
      inner(() => s.stream.listen(run.data('a'),
          onError: run.error('a'), onDone: run.done('a'), cancelOnError: true));
      s.add(1);
      s.addError('boom', given);
      s.add(2);
      s.close();
    });
    expect(log, contains('a error boom "given" (inner)'));
  });

  test('cancelOnError with the error waiting behind a pause', () async {
    await same((run) async {
      final s = run.source;
      final sub = s.stream.listen(run.data('a'),
          onError: run.error('a'), onDone: run.done('a'), cancelOnError: true);
      sub.pause();
      s.add(1);
      s.addError('boom', given);
      s.add(2);
      run.tick(6);
      sub.resume();
    });
  });

  test('an error without a handler goes to the zone of listen', () async {
    final log = await same((run) async {
      final s = run.source;
      runZonedGuarded(
          () => s.stream.listen(run.data('a'), onDone: run.done('a')),
          (e, st) => run.record('listen zone caught $e "$st" (${run.zone})'),
          zoneValues: {#name: 'guarded'});
      s.addError('lost', given);
      s.add(1);
      s.close();
    });
    // The handler of runZonedGuarded runs in the zone around it.
    expect(log, contains('listen zone caught lost "given" (outer)'));
  });

  test('handlers that throw: the zone of listen gets it, events go on',
      () async {
    final log = await same((run) async {
      final s = run.source;
      runZonedGuarded(
          () => s.stream.listen((v) {
                run.record('data $v');
                throw 'data $v failed';
              }, onError: (Object e) {
                run.record('error $e');
                throw 'error handler failed';
              }, onDone: () {
                run.record('done');
                throw 'done handler failed';
              }),
          (e, st) => run.record('caught $e (${run.zone})'),
          zoneValues: {#name: 'guarded'});
      s.add(1);
      s.addError('x');
      s.add(2);
      s.close();
    });
    expect(log, contains('caught done handler failed (outer)'));
  });

  test('handlers replaced after listen run in the zone of listen', () async {
    final log = await same((run) async {
      final s = run.source;
      final sub = inner(() => s.stream.listen(run.data('a'),
          onError: run.error('a'), onDone: run.done('a')));
      s.add(1);
      sub.onData(run.data('b'));
      sub.onError((Object e) => run.record('b error $e (${run.zone})'));
      s.add(2);
      s.addError('x');
      sub.onData(null);
      s.add(3);
      sub.onError(null);
      s.addError('unhandled', given);
      sub.onDone(run.done('b'));
      s.close();
      expect(() => sub.onError((int wrong) {}), throwsArgumentError);
    });
    expect(log, contains('b done (inner)'));
    // The inner zone hands it to the outer one, whose handler runs around it.
    expect(log, contains('uncaught unhandled "given" (root)'));
  });

  test('zone callbacks are registered as a controller registers them',
      () async {
    await same((run) async {
      final s = run.source;
      final spec = ZoneSpecification(registerCallback: <R>(self, parent, zone,
          R Function() f) {
        run.record('register');
        return parent.registerCallback(zone, () {
          run.record('registered callback runs');
          return f();
        });
      }, registerUnaryCallback: <R, A>(self, parent, zone, R Function(A) f) {
        run.record('register unary');
        return parent.registerUnaryCallback(zone, (A a) {
          run.record('registered unary runs');
          return f(a);
        });
      }, registerBinaryCallback: <R, A, B>(self, parent, zone,
          R Function(A, B) f) {
        run.record('register binary');
        return parent.registerBinaryCallback(zone, (A a, B b) {
          run.record('registered binary runs');
          return f(a, b);
        });
      });
      final sub = Zone.current.fork(specification: spec).run(() => s.stream
          .listen(run.data('a'), onError: run.error('a'), onDone: () {}));
      s.add(1);
      s.addError('e', given);
      // Null handlers are registered too.
      sub
        ..onData(null)
        ..onDone(null);
      s.add(2);
      s.close();
    });
  });

  test('Zone.errorCallback of the zone an error is added in replaces it',
      () async {
    final log = await same((run) async {
      final s = run.source;
      s.stream.listen(null, onError: run.error('a'));
      final spec = ZoneSpecification(
          errorCallback: (self, parent, zone, error, stack) =>
              AsyncError('replaced $error', StackTrace.fromString('new')));
      Zone.current.fork(specification: spec).run(() {
        s.addError('original', given);
        s.addError('again');
      });
      s.addError('outside', given);
      // Without a stack trace the default one (empty for a non-Error).
      s.addError('bare');
    });
    expect(log, contains('a error replaced original "new" (outer)'));
  });

  test('asFuture: completes with the value on done; with an error, '
      'cancelling', () async {
    final log = await same((run) async {
      final s = run.source;
      final sub = s.stream.listen(run.data('a'));
      final future = sub.asFuture<String>('value');
      s.add(1);
      s.close();
      run.record('asFuture ${await future}');
    });
    expect(log, contains('asFuture value'));
    final failed = await same((run) async {
      final s = run.source;
      final sub = s.stream.listen(run.data('a'));
      final future = sub.asFuture<void>();
      s.add(1);
      s.addError('bad', given);
      s.add(2);
      try {
        await future;
      } catch (e, st) {
        run.record('asFuture failed $e "$st"');
      }
      s.close();
    });
    expect(failed, contains('asFuture failed bad "given"'));
    // Completed at once: nobody listened yet, so it was uncaught too.
    expect(failed, contains('uncaught bad "given" (root)'));
    await same((run) async {
      final sub = run.source.stream.listen(null);
      try {
        sub.asFuture<int>();
      } on ArgumentError catch (e) {
        run.record('refused: ${e.message}');
      }
    });
  });

  test('first, take, StreamIterator, await for with break, transform, pipe, '
      'toList, drain', () async {
    Scenario feedWhile(Future<Object?> Function(Stream<int> stream) use) =>
        (run) async {
          final s = run.source;
          s.add(0);
          run.tick(8);
          final used = use(s.stream);
          var i = 1;
          // Feeds while listened and not paused, as a receive loop does.
          run.onHook = (name) {
            if (name == 'resume') scheduleMicrotask(() => s.add(i++));
          };
          scheduleMicrotask(() {
            s.add(i++);
            s.add(i++);
            s.add(i++);
            s.close();
          });
          run.record('result ${await used}');
          run.record('input ${s.inputPaused}');
        };

    await same(feedWhile((s) => s.first));
    await same(feedWhile((s) => s.take(2).toList()));
    await same(feedWhile((s) => s.toList()));
    await same(feedWhile((s) => s.drain<void>()));
    await same(feedWhile((s) => s.where((v) => v.isOdd).skip(1).first));
    await same(feedWhile((s) async {
      final got = <int>[];
      await for (final v in s) {
        got.add(v);
        await null;
        if (v == 2) break;
      }
      return got;
    }));
    await same(feedWhile((s) async {
      final iterator = StreamIterator(s);
      final got = <int>[];
      while (await iterator.moveNext()) {
        got.add(iterator.current);
        if (got.length == 2) await iterator.cancel();
      }
      return got;
    }));
    await same(feedWhile((s) => s
        .transform(StreamTransformer<int, String>.fromHandlers(
            handleData: (v, sink) => sink
              ..add('$v')
              ..add('$v again')))
        .toList()));
    await same(feedWhile((s) async {
      final got = <int>[];
      final target = StreamController<int>();
      final collected = target.stream.listen(got.add).asFuture<void>();
      await s.pipe(target);
      await collected;
      return got;
    }));
  });

  test('events raised inside a handler and inside the controller callbacks '
      'wait for a microtask', () async {
    await same((run) async {
      final s = run.source;
      run.onHook = (name) {
        if (name == 'listen') s.add(100);
        if (name == 'resume') s.add(200);
      };
      late StreamSubscription<int> sub;
      sub = s.stream.listen((v) {
        run.record('data $v input ${s.inputPaused}');
        if (v == 100) s.add(101);
        if (v == 101) sub.pause(Future<void>(() {}));
      }, onDone: run.done('a'));
      run.tick(10);
      s.add(1);
      await Future<void>(() {});
      s.close();
    });
  });

  test('data waiting at the cancel, or raised after it, goes to onDropped',
      () async {
    final source = _DropRecorder();
    final got = <int>[];
    final subscription = source.listen(got.add, onError: (Object _) {});
    subscription.pause();
    source
      ..addEvent(1)
      ..addEvent(2)
      ..addErrorEvent('not data')
      ..addEvent(3);
    await subscription.cancel();
    source.addEvent(4);
    expect(got, isEmpty);
    expect(source.dropped, [1, 2, 3, 4]);
  });
}

/// Records what [SingleSubscriptionStream.onDropped] is given.
final class _DropRecorder extends SingleSubscriptionStream<int> {
  final List<int> dropped = [];

  @override
  void onListened() {}
  @override
  void onInputPaused() {}
  @override
  void onInputResumed() {}
  @override
  void onCancelled() {}
  @override
  void onDropped(int data) => dropped.add(data);
}
