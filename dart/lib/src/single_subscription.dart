/// [SingleSubscriptionStream]: a single-subscription stream that is the
/// subscription of its one listener too, for the receive loops.
library;

import 'dart:async';
import 'dart:collection';

/// A single-subscription stream that behaves as the stream of a
/// `StreamController<T>(sync: true)` and its subscription, in one object.
///
/// A controller, its subscription and the callbacks it is given take about
/// 170 bytes of every idle connection on a 32-bit VM; this takes one state
/// word, the listener's zone and handlers, and a queue of waiting events
/// only while events wait.
///
/// A subclass is the controller's owner: it raises events with [addEvent],
/// [addErrorEvent] and [closeEvents], and is told what the controller's
/// `onListen`, `onPause`, `onResume` and `onCancel` would be told through
/// [onListened], [onInputPaused], [onInputResumed] and [onCancelled].
///
/// The rules are those of the SDK's `_BufferingStreamSubscription` and
/// `_StreamController` (Dart 3.7), including their timing, which programs
/// observe: an event raised before the stream is listened to, while the
/// subscription is paused, while one of its handlers runs or behind such an
/// event waits and goes out one per microtask; the input counts as paused
/// from [pause] until the last waiting event went out after [resume];
/// handlers are registered with and run in the zone [listen] was called in;
/// an error without a handler goes to that zone's uncaught-error handler;
/// [cancel] returns the same completed future as a controller's subscription
/// with a synchronous `onCancel` (so `first`, `take` and `StreamIterator`
/// complete at once, not a microtask later).
abstract base class SingleSubscriptionStream<T> extends Stream<T>
    implements StreamSubscription<T> {
  // The bits of [_state] (the count of pauses above them).
  static const int _listenedBit = 1;
  static const int _cancelOnErrorBit = 2;

  /// The source was told to pause (set by [pause], cleared when the pause
  /// count is zero and no event waits).
  static const int _inputPausedBit = 4;

  /// Cancelled, or done delivered: no more events or hook calls.
  static const int _cancelledBit = 8;
  static const int _inCallbackBit = 16;

  /// Events wait in [_pending] (of the subscription: set from [listen] on).
  static const int _hasPendingBit = 32;

  /// The delivery microtask, when one is queued, is to deliver the next
  /// waiting event (cleared to call it off while paused).
  static const int _deliveryWantedBit = 64;

  /// A delivery microtask is queued.
  static const int _deliveryQueuedBit = 128;
  static const int _onePause = 256;

  int _state = 0;

  Zone _zone = Zone.root;
  void Function(T data) _onData = _ignoreData;
  Function _onError = _reportError;
  void Function() _onDone = _ignoreDone;

  /// Events waiting: data as is, errors as [_WaitingError], the end as
  /// [_waitingDone]; null while none wait.
  ListQueue<Object?>? _pending;

  /// `Future._nullFuture`, what a controller's subscription with a
  /// synchronous `onCancel` returns from `cancel`: `Stream.first`, `take` and
  /// others complete at once on this future only, and a microtask later on
  /// any other completed future. The done subscription of `Stream.empty`
  /// returns it too.
  static final Future<void> _cancelled =
      Stream<Never>.empty().listen(null).cancel();

  /// The controller's `onListen`: the stream was listened to.
  void onListened();

  /// The controller's `onPause`: hold events back.
  void onInputPaused();

  /// The controller's `onResume`: events may come again.
  void onInputResumed();

  /// The controller's `onCancel`: no event is wanted any more (cancelled, or
  /// done delivered).
  void onCancelled();

  /// Data the listener will never get: it waited when the subscription was
  /// cancelled, or came after. A subclass whose events hold resources gives
  /// them back here (a controller would drop them for the garbage collector).
  void onDropped(T data) {}

  /// `StreamController.isPaused`: whether events would wait now (before the
  /// stream is listened to too; not after it was cancelled).
  bool get isInputPaused {
    if (_state & _cancelledBit != 0) return false;
    return _state & _listenedBit == 0 || _state & _inputPausedBit != 0;
  }

  /// `StreamController.add`.
  void addEvent(T data) => _raise(data);

  /// `StreamController.addError`: a replacement from the current zone's
  /// `errorCallback` is what the listener gets.
  void addErrorEvent(Object error, [StackTrace? stackTrace]) {
    final replacement = Zone.current.errorCallback(error, stackTrace);
    if (replacement != null) {
      error = replacement.error;
      stackTrace = replacement.stackTrace;
    }
    _raise(_WaitingError(
        error, stackTrace ?? AsyncError.defaultStackTrace(error)));
  }

  /// `StreamController.close` (once).
  void closeEvents() => _raise(_waitingDone);

  // ------------------------------------------------------------ the stream

  @override
  bool get isBroadcast => false;

  @override
  StreamSubscription<T> listen(void Function(T event)? onData,
      {Function? onError, void Function()? onDone, bool? cancelOnError}) {
    if (_state & (_listenedBit | _cancelledBit) != 0) {
      throw StateError('Stream has already been listened to.');
    }
    _zone = Zone.current;
    this.onData(onData);
    this.onError(onError);
    this.onDone(onDone);
    _state |= _listenedBit | (cancelOnError == true ? _cancelOnErrorBit : 0);
    final pending = _pending;
    if (pending != null && pending.isNotEmpty) {
      _state |= _hasPendingBit;
      _schedule();
    }
    _guardCallback(() => _runHook(onListened));
    return this;
  }

  // ------------------------------------------------------ the subscription

  @override
  void onData(void Function(T data)? handleData) {
    _onData = _zone.registerUnaryCallback<void, T>(handleData ?? _ignoreData);
  }

  @override
  void onError(Function? handleError) {
    handleError ??= _reportError;
    if (handleError is void Function(Object, StackTrace)) {
      _onError = _zone
          .registerBinaryCallback<dynamic, Object, StackTrace>(handleError);
    } else if (handleError is void Function(Object)) {
      _onError = _zone.registerUnaryCallback<dynamic, Object>(handleError);
    } else {
      throw ArgumentError('handleError callback must take either an Object '
          '(the error), or both an Object (the error) and a StackTrace.');
    }
  }

  @override
  void onDone(void Function()? handleDone) {
    _onDone = _zone.registerCallback(handleDone ?? _ignoreDone);
  }

  @override
  bool get isPaused => _state >= _onePause;

  @override
  void pause([Future<void>? resumeSignal]) {
    if (_state & _cancelledBit != 0) return;
    final wasPaused = isPaused;
    final wasInputPaused = _state & _inputPausedBit != 0;
    _state = (_state + _onePause) | _inputPausedBit;
    resumeSignal?.whenComplete(resume);
    if (!wasPaused) _state &= ~_deliveryWantedBit;
    if (!wasInputPaused && !_inCallback) {
      _guardCallback(() => _runHook(onInputPaused));
    }
  }

  @override
  void resume() {
    if (_state & _cancelledBit != 0 || !isPaused) return;
    _state -= _onePause;
    if (isPaused) return;
    if (_state & _hasPendingBit != 0 && _pending!.isNotEmpty) {
      // The input stays paused until the waiting events went out.
      _schedule();
    } else {
      _state &= ~_inputPausedBit;
      if (!_inCallback) _guardCallback(() => _runHook(onInputResumed));
    }
  }

  @override
  Future<void> cancel() {
    if (_state & _cancelledBit == 0) _cancel();
    return _cancelled;
  }

  @override
  Future<E> asFuture<E>([E? futureValue]) {
    final E value;
    if (futureValue == null) {
      if (null is! E) throw ArgumentError.notNull('futureValue');
      value = futureValue as E;
    } else {
      value = futureValue;
    }
    // Completed synchronously, as the SDK's future is: an error nobody
    // listens to yet is reported as uncaught at once, and `drain` completes
    // in the turn of the done event.
    final completer = Completer<E>.sync();
    // Not registered with the zone, as the SDK's handlers are not.
    _onDone = () => completer.complete(value);
    _onError = (Object error, StackTrace stackTrace) {
      cancel();
      completer.completeError(error, stackTrace);
    };
    return completer.future;
  }

  // ------------------------------------------------------------ internals

  bool get _inCallback => _state & _inCallbackBit != 0;

  /// Nothing stops an event from going out now.
  bool get _canFire =>
      _state & (_cancelledBit | _inCallbackBit | _hasPendingBit) == 0 &&
      !isPaused;

  void _cancel() {
    _state = (_state | _cancelledBit) & ~_deliveryWantedBit;
    if (!_inCallback) _dropPending();
    _runHook(onCancelled);
  }

  /// Hands every waiting data event to [onDropped].
  void _dropPending() {
    final pending = _pending;
    _pending = null;
    pending?.forEach(_drop);
  }

  /// Hands [event] to [onDropped] if it is data.
  void _drop(Object? event) {
    if (event is _WaitingError || identical(event, _waitingDone)) return;
    try {
      onDropped(event as T);
    } catch (error, stackTrace) {
      Zone.current.handleUncaughtError(error, stackTrace);
    }
  }

  /// Raises [event] (data, a [_WaitingError] or [_waitingDone]): delivers it
  /// now, or has it wait (before [listen], the subscription gets it then).
  void _raise(Object? event) {
    if (_state & _listenedBit == 0) {
      (_pending ??= ListQueue<Object?>()).add(event);
    } else if (_state & _cancelledBit != 0) {
      _drop(event);
    } else if (_canFire) {
      _deliver(event);
    } else {
      _addPending(event);
    }
  }

  void _addPending(Object? event) {
    (_pending ??= ListQueue<Object?>()).add(event);
    if (_state & _hasPendingBit == 0) {
      _state |= _hasPendingBit;
      if (!isPaused) _schedule();
    }
  }

  /// Has the next waiting event delivered in a microtask.
  void _schedule() {
    if (_state & _deliveryWantedBit != 0) return;
    _state |= _deliveryWantedBit;
    // A microtask queued before a pause that was called off delivers.
    if (_state & _deliveryQueuedBit != 0) return;
    _state |= _deliveryQueuedBit;
    scheduleMicrotask(_deliverNext);
  }

  void _deliverNext() {
    final wanted = _state & _deliveryWantedBit != 0;
    _state &= ~(_deliveryQueuedBit | _deliveryWantedBit);
    final pending = _pending;
    if (!wanted || pending == null || pending.isEmpty) return;
    _deliver(pending.removeFirst());
  }

  void _deliver(Object? event) {
    if (event is _WaitingError) {
      _sendError(event.error, event.stackTrace);
    } else if (identical(event, _waitingDone)) {
      _sendDone();
    } else {
      _sendData(event as T);
    }
  }

  void _sendData(T data) {
    final wasInputPaused = _state & _inputPausedBit != 0;
    _state |= _inCallbackBit;
    _zone.runUnaryGuarded(_onData, data);
    _state &= ~_inCallbackBit;
    _checkState(wasInputPaused);
  }

  void _sendError(Object error, StackTrace stackTrace) {
    final wasInputPaused = _state & _inputPausedBit != 0;
    if (_state & _cancelOnErrorBit != 0) _cancel();
    _state |= _inCallbackBit;
    final onError = _onError;
    if (onError is void Function(Object, StackTrace)) {
      _zone.runBinaryGuarded<Object, StackTrace>(onError, error, stackTrace);
    } else {
      _zone.runUnaryGuarded<Object>(onError as void Function(Object), error);
    }
    _state &= ~_inCallbackBit;
    // Cancelled on the error: nothing to check.
    if (_state & _cancelOnErrorBit == 0) _checkState(wasInputPaused);
  }

  void _sendDone() {
    _cancel();
    _state |= _inCallbackBit;
    _zone.runGuarded(_onDone);
    _state &= ~_inCallbackBit;
  }

  /// Runs [callback] as a handler's turn: events it raises wait, and the
  /// source is told of a pause or resume it made once it returned.
  void _guardCallback(void Function() callback) {
    final wasInputPaused = _state & _inputPausedBit != 0;
    _state |= _inCallbackBit;
    callback();
    _state &= ~_inCallbackBit;
    _checkState(wasInputPaused);
  }

  /// After a handler's turn: tells the source of every change of its paused
  /// state, and goes on delivering waiting events.
  void _checkState(bool wasInputPaused) {
    final pending = _pending;
    if (_state & _hasPendingBit != 0 && (pending == null || pending.isEmpty)) {
      _state &= ~_hasPendingBit;
      // An idle subscription keeps no queue.
      _pending = null;
      _state &= ~_deliveryWantedBit;
      if (!isPaused) _state &= ~_inputPausedBit;
    }
    while (true) {
      if (_state & _cancelledBit != 0) {
        _dropPending();
        return;
      }
      final isInputPaused = _state & _inputPausedBit != 0;
      if (wasInputPaused == isInputPaused) break;
      _state |= _inCallbackBit;
      _runHook(isInputPaused ? onInputPaused : onInputResumed);
      _state &= ~_inCallbackBit;
      wasInputPaused = isInputPaused;
    }
    if (_state & _hasPendingBit != 0 && !isPaused) _schedule();
  }

  /// Runs a hook as a controller runs its callbacks: what it throws goes to
  /// the current zone.
  static void _runHook(void Function() hook) {
    try {
      hook();
    } catch (error, stackTrace) {
      Zone.current.handleUncaughtError(error, stackTrace);
    }
  }

  static void _ignoreData(Object? data) {}

  static void _reportError(Object error, StackTrace stackTrace) {
    Zone.current.handleUncaughtError(error, stackTrace);
  }

  static void _ignoreDone() {}
}

/// A waiting error event.
final class _WaitingError {
  _WaitingError(this.error, this.stackTrace);

  final Object error;
  final StackTrace stackTrace;
}

/// The waiting end of the stream.
const Object _waitingDone = _WaitingDone();

final class _WaitingDone {
  const _WaitingDone();
}
