/// The worker's messaging: workers talking to each other with messages (a tag and a value), bytes in
/// payloads of the process-wide payload pool, connections handed over, and
/// the stop protocol. Everything travels through the rings
/// (`IORING_OP_MSG_RING`): a message is posted straight into the target
/// worker's completion queue and wakes its isolate like any completion. No
/// Dart port is involved; isolates only exchange worker ids (ints), once, at
/// setup.
///
/// Wire format of the 64-bit native tag, as this library uses it: the low 32
/// bits are the message's tag as the receiver sees it
/// ([WorkerMessage.tag], [BytesMessage.tag]); the high 32 bits are the
/// sender's key for routing its own `IOT_KIND_MESSAGE_SENT` completion back
/// to the future of that send. A message from a host that puts something
/// else there shows its low 32 bits only.
library;

import 'dart:async';
import 'dart:ffi';
import 'dart:typed_data';

import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/message_calls.dart';
import 'ffi/socket_handles.dart';
import 'futures.dart';
import 'messages.dart';
import 'payload_pool.dart';
import 'undelivered.dart';
import 'worker_core.dart';

/// Tags and values are unsigned 32-bit numbers.
const int _u32Max = 0xffffffff;

/// Send keys (the high half of the native tag) stay positive as a Dart int.
const int _maxKey = 0x7fffffff;

/// What a pending send carried.
enum _Carried { nothing, payload, socket }

/// One of this worker's sends whose `IOT_KIND_MESSAGE_SENT` has not arrived.
final class _PendingSend {
  _PendingSend(this.carried, [this.socketFailure]);

  final _Carried carried;

  /// For a hand-off: the error when the socket did not arrive ([back] is the
  /// socket returned to this worker, or null when it was lost).
  final Object Function(int code, SocketHandle? back)? socketFailure;
  final Completer<void> completer = Completer<void>();

  void fail(Object error) {
    if (!completer.isCompleted) completer.completeError(error);
  }
}

/// One incoming stream of a worker: created on first use (or first event),
/// buffering until listened to; events that can no longer be delivered
/// (waiting when the subscription was cancelled, or arriving after it or
/// after the stream ended) are disposed of.
final class _Inbox<T> {
  _Inbox(this._onInterestChanged, [this._dispose]);

  /// Called when [isListened] may have changed.
  final void Function() _onInterestChanged;
  final void Function(T event)? _dispose;
  StreamController<T>? _controller;

  /// With [_dispose]: the events added to [_controller] that its listener
  /// has not got yet.
  final Undelivered<T> _undelivered = Undelivered<T>();
  bool _cancelled = false;
  bool _ended = false;

  /// Someone listens and more may arrive: the isolate should stay alive.
  bool get isListened =>
      !_cancelled && !_ended && (_controller?.hasListener ?? false);

  StreamController<T> _ensure() => _controller ??= StreamController<T>(
      onListen: _onInterestChanged, onCancel: _onCancel);

  Stream<T> get stream {
    final controller = _ensure();
    if (_ended && !controller.isClosed) unawaited(controller.close());
    if (_dispose == null) return controller.stream;
    return _undelivered.delivering(controller.stream);
  }

  void _onCancel() {
    _cancelled = true;
    final dispose = _dispose;
    if (dispose != null) _undelivered.disposeAll(dispose);
    _onInterestChanged();
  }

  void add(T event) {
    if (_cancelled || _ended) {
      _dispose?.call(event);
      return;
    }
    if (_dispose != null) _undelivered.add(event);
    _ensure().add(event);
  }

  void addError(Object error) {
    if (_cancelled || _ended) return;
    _ensure().addError(error);
  }

  /// Nothing more will arrive.
  void end() {
    if (_ended) return;
    _ended = true;
    final controller = _controller;
    if (controller != null && !controller.isClosed) {
      unawaited(controller.close());
    }
  }
}

/// A worker's messaging: its sends in flight and the streams of what other
/// workers send it. One per worker ([WorkerCore.messaging]); not part of the
/// public API.
final class Messenger implements MessagingHandler {
  Messenger(this._core) {
    if (_core.isClosed) _end();
  }

  /// The messenger of [core] (made by the worker's messaging factory).
  static Messenger of(WorkerCore core) => switch (core.messaging) {
        final Messenger messenger => messenger,
        _ => throw StateError('worker ${core.id} has no messenger'),
      };

  final WorkerCore _core;
  final Map<int, _PendingSend> _sends = <int, _PendingSend>{};
  int _lastKey = 0;

  late final _Inbox<WorkerMessage> _messages =
      _Inbox<WorkerMessage>(_core.updateKeepAlive);
  late final _Inbox<BytesMessage> _bytes = _Inbox<BytesMessage>(
      _core.updateKeepAlive, (message) => message.release());
  late final _Inbox<SocketHandle> _sockets = _Inbox<SocketHandle>(
      _core.updateKeepAlive, (socket) => socket.close());
  late final _Inbox<int> _stopRequests = _Inbox<int>(_core.updateKeepAlive);

  /// Whether this worker's messaging needs the isolate alive: sends waiting
  /// for their outcome, a stop waiting for its end, a message stream
  /// listened to.
  @override
  bool get keepsAlive =>
      _sends.isNotEmpty ||
      (_stopped?.isCompleted == false) ||
      _messages.isListened ||
      _bytes.isListened ||
      _sockets.isListened ||
      _stopRequests.isListened;

  Completer<void>? _stopped;
  Future<void>? _stopFuture;

  Stream<WorkerMessage> get messages => _messages.stream;
  Stream<BytesMessage> get byteMessages => _bytes.stream;
  /// The sockets other workers handed over to this one (the connections of
  /// `Worker.handedOffConnections`, `handoff.dart`).
  Stream<SocketHandle> get handedOffSockets => _sockets.stream;
  Stream<int> get stopRequests => _stopRequests.stream;

  // ------------------------------------------------------------ sending

  Future<void> sendMessage(int target, int tag, int value) {
    RangeError.checkValueInInterval(tag, 0, _u32Max, 'tag');
    RangeError.checkValueInInterval(value, 0, _u32Max, 'value');
    if (_core.isClosed) {
      return failedFuture(closedError('send message', 'worker'));
    }
    final key = _newKey();
    final rc = _core.handle.sendMessage(target, (key << 32) | tag, value);
    if (rc < 0) return failedFuture(_core.error(rc, 'send message'));
    return _pending(key, _Carried.nothing);
  }

  Future<void> sendBytes(int target, int tag, List<int> bytes) {
    RangeError.checkValueInInterval(tag, 0, _u32Max, 'tag');
    if (_core.isClosed) {
      return failedFuture(closedError('send bytes', 'worker'));
    }
    final worker = _core.handle;
    final PayloadPool pool;
    try {
      pool = PayloadPool.of(_core.bindings);
    } on TransportException catch (error) {
      return failedFuture(error);
    }
    final length = bytes.length;
    if (length > pool.size) {
      throw ArgumentError.value(length, 'bytes',
          'longer than a payload (${pool.size} bytes, Transport.payloadSize)');
    }
    final out = _core.scratchFor('socket').u64;
    final acquired = worker.acquirePayload();
    if (acquired < 0) return failedFuture(_core.error(acquired, 'send bytes'));
    final payload = out.value;
    try {
      if (length > 0) pool.view(payload, length).setRange(0, length, bytes);
    } catch (_) {
      worker.releasePayload(payload);
      rethrow;
    }
    final key = _newKey();
    final rc =
        worker.sendPayload(target, (key << 32) | tag, payload, length);
    if (rc < 0) {
      // Refused at once: the payload is still this worker's (a no-op error
      // if it already left).
      worker.releasePayload(payload);
      return failedFuture(_core.error(rc, 'send bytes'));
    }
    return _pending(key, _Carried.payload);
  }

  /// Hands the idle [socket] of this worker over to worker [target]
  /// (`TcpConnection.handOff`). [handedOver] runs once the socket left (its
  /// handle is stale here then); the future fails with what [failure] makes
  /// of the error code and the socket: [socket] itself when the hand-off was
  /// refused at once, the socket back under a new handle when the target
  /// went away, null when it was lost.
  Future<void> handOff(SocketHandle socket, int target,
      {required void Function() handedOver,
      required Object Function(int code, SocketHandle? back) failure}) {
    if (_core.isClosed) {
      return failedFuture(closedError('hand off', 'worker'));
    }
    final key = _newKey();
    final rc = socket.handOff(target, key << 32);
    if (rc < 0) {
      // Refused at once: the socket is still here, under the same handle.
      return failedFuture(failure(rc, socket));
    }
    handedOver();
    return _pending(key, _Carried.socket, failure);
  }

  int _newKey() {
    var key = _lastKey;
    do {
      key = key >= _maxKey ? 1 : key + 1;
    } while (_sends.containsKey(key));
    return _lastKey = key;
  }

  Future<void> _pending(int key, _Carried carried,
      [Object Function(int code, SocketHandle? back)? socketFailure]) {
    final send = _PendingSend(carried, socketFailure);
    _sends[key] = send;
    _core.submitted();
    return handledFuture(send.completer.future);
  }

  // ------------------------------------------------------------ stopping

  Future<void> stop() {
    final existing = _stopFuture;
    if (existing != null) return existing;
    if (_core.isClosed) return failedFuture(closedError('stop', 'worker'));
    final rc = _core.handle.stop();
    if (rc < 0) return failedFuture(_core.error(rc, 'stop'));
    // IOT_KIND_STOPPED follows (the native side wakes an idle worker).
    final stopped = _stopped ??= Completer<void>();
    _core.updateKeepAlive();
    return _stopFuture = handledFuture(stopped.future);
  }

  void _end() {
    _messages.end();
    _bytes.end();
    _sockets.end();
    _stopRequests.end();
  }

  // ------------------------------------------------------------ completions

  @override
  void onCompletion(int kind, int tag, int result, int handle) {
    if (kind == IOT_KIND_MESSAGE_SENT) {
      _onSent(tag, result, handle);
    } else if (kind == IOT_KIND_MESSAGE) {
      _messages.add(WorkerMessage(tag & _u32Max, result & _u32Max));
    } else if (kind == IOT_KIND_PAYLOAD) {
      _onPayload(tag & _u32Max, result, handle);
    } else if (kind == IOT_KIND_SOCKET) {
      _onSocket(result, handle);
    } else if (kind == IOT_KIND_STOP_REQUESTED) {
      _stopRequests.add(result & _u32Max);
    } else if (kind == IOT_KIND_STOPPED) {
      final stopped = _stopped ??= Completer<void>();
      if (!stopped.isCompleted) stopped.complete();
      _end();
    }
  }

  void _onSent(int tag, int result, int handle) {
    // Our own tags are below 2^63, so the shift sees no sign bit.
    final send = _sends.remove(tag >> 32);
    // Every send is in the map until its completion or the worker's close, so
    // a miss cannot carry anything of ours.
    if (send == null) return;
    if (result >= 0 && handle == 0) {
      send.completer.complete();
      return;
    }
    // Not delivered; whatever the message carried came back under [handle].
    final code = result < 0 ? result : IOT_E_WORKER_GONE;
    switch (send.carried) {
      case _Carried.nothing:
        send.fail(_core.error(code, 'send message'));
      case _Carried.payload:
        if (handle != 0) _core.handle.releasePayload(handle);
        send.fail(_core.error(code, 'send bytes'));
      case _Carried.socket:
        final back = handle == 0 ? null : SocketHandle(_core.handle, handle);
        send.fail(send.socketFailure!(code, back));
    }
  }

  void _onPayload(int tag, int result, int handle) {
    if (handle == 0 || result < 0) {
      _bytes.addError(_core.error(
          result < 0 ? result : IOT_E_BAD_BUFFER, 'receive bytes'));
      return;
    }
    final Uint8List view;
    try {
      view = PayloadPool.of(_core.bindings).view(handle, result);
    } on TransportException catch (error) {
      _core.handle.releasePayload(handle);
      _bytes.addError(error);
      return;
    }
    _bytes.add(newBytesMessage(_core, handle, tag, view));
  }

  void _onSocket(int result, int handle) {
    if (handle == 0 || result < 0) {
      _sockets.addError(_core.error(
          result < 0 ? result : IOT_E_BAD_HANDLE, 'receive connection'));
      return;
    }
    _sockets.add(SocketHandle(_core.handle, handle));
  }

  /// The worker closed: sends in flight fail, a pending [stop] fails, the
  /// streams end.
  @override
  void onWorkerClosed(TransportClosedException error) {
    final sends = _sends.values.toList();
    _sends.clear();
    for (final send in sends) {
      send.fail(error);
    }
    final stopped = _stopped;
    if (stopped != null && !stopped.isCompleted) stopped.completeError(error);
    _end();
  }
}
