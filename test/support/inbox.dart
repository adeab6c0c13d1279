/// Bounded waits for the UDP, Unix and file tests: every wait of those tests
/// goes through [Bounded.bounded] or [Inbox], so a hang fails the test
/// instead of stalling the run.
library;

import 'dart:async';
import 'dart:collection';
import 'dart:io';

import 'package:test/test.dart' show addTearDown;

/// How long any single wait may take.
const Duration testWait = Duration(seconds: 20);

extension Bounded<T> on Future<T> {
  /// This future, failing with a [TimeoutException] after [testWait].
  Future<T> get bounded => timeout(testWait);
}

/// Collects the events and errors of a stream as they come.
final class Inbox<T> {
  Inbox(Stream<T> stream) {
    _subscription =
        stream.listen(_onData, onError: _onError, onDone: _onDone);
  }

  late final StreamSubscription<T> _subscription;
  final Queue<T> _events = Queue<T>();
  Completer<void>? _waiter;

  /// Every error event so far.
  final List<Object> errors = <Object>[];

  /// Events received so far (taken or not).
  int received = 0;

  /// Whether the stream ended.
  bool isDone = false;

  /// The subscription (to pause and resume it).
  StreamSubscription<T> get subscription => _subscription;

  void _onData(T event) {
    _events.add(event);
    received++;
    _wake();
  }

  void _onError(Object error) {
    errors.add(error);
    _wake();
  }

  void _onDone() {
    isDone = true;
    _wake();
  }

  void _wake() {
    final waiter = _waiter;
    _waiter = null;
    if (waiter != null && !waiter.isCompleted) waiter.complete();
  }

  Future<void> _next() {
    final waiter = _waiter ??= Completer<void>();
    return waiter.future.bounded;
  }

  /// The next event, waiting for it at most [testWait].
  Future<T> next() async {
    while (_events.isEmpty) {
      if (isDone) throw StateError('the stream ended');
      await _next();
    }
    return _events.removeFirst();
  }

  /// Waits until [condition] holds (checked after every event, error and
  /// the end), at most [testWait] per step.
  Future<void> until(bool Function() condition) async {
    while (!condition()) {
      if (isDone) throw StateError('the stream ended');
      await _next();
    }
  }

  /// Waits until the stream ended.
  Future<void> done() async {
    while (!isDone) {
      await _next();
    }
  }

  Future<void> cancel() => _subscription.cancel();
}

/// A fresh temporary directory, deleted when the test ends.
Directory tempDirectory(String prefix) {
  final directory = Directory.systemTemp.createTempSync(prefix);
  addTearDown(() {
    if (directory.existsSync()) directory.deleteSync(recursive: true);
  });
  return directory;
}
