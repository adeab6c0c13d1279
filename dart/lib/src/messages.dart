/// Workers talking to each other: messages (a tag and a value), bytes in
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

import 'package:ffi/ffi.dart';

import 'buffers.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/handles.dart';
import 'ffi/library.dart';
import 'tcp.dart';
import 'worker.dart';

/// Tags and values are unsigned 32-bit numbers.
const int _u32Max = 0xffffffff;

/// Send keys (the high half of the native tag) stay positive as a Dart int.
const int _maxKey = 0x7fffffff;

/// A message from another worker ([Worker.sendMessage]): two unsigned 32-bit
/// numbers whose meaning the program chooses. It does not say which worker
/// sent it; a program that needs to know puts the sender's id (a worker id
/// fits in 31 bits) in the tag or the value.
final class WorkerMessage {
  const WorkerMessage(this.tag, this.value);

  /// 0..0xffffffff.
  final int tag;

  /// 0..0xffffffff.
  final int value;

  @override
  bool operator ==(Object other) =>
      other is WorkerMessage && other.tag == tag && other.value == value;

  @override
  int get hashCode => Object.hash(tag, value);

  @override
  String toString() => 'WorkerMessage(tag: $tag, value: $value)';
}

/// Bytes another worker sent ([Worker.sendBytes]), still in the payload they
/// travelled in: no copy was made.
///
/// **Release every bytes message** ([release]): until then its payload is
/// out of the process-wide pool (1024 payloads by default), and senders fail
/// with `ENOBUFS` once the pool is empty. [bytes] is a view of the payload:
/// valid until [release], and never after the worker closed (its payloads
/// then return to the pool, and may already carry someone else's bytes).
/// Copy what must outlive it. As a safety net, a bytes message that becomes
/// unreachable unreleased is released by a finalizer, but only eventually.
final class BytesMessage extends ReleasableBytes {
  BytesMessage._(WorkerCore owner, int payload, this.tag, Uint8List bytes)
      : super(
            owner,
            bytes,
            () => owner.bindings.iot_payload_release(owner.id, payload),
            'bytes message');

  /// The tag the sender gave, 0..0xffffffff.
  final int tag;

  @override
  String toString() => 'BytesMessage(tag: $tag, $length bytes'
      '${isReleased ? ', released' : ''})';
}

/// A hand-off ([TcpConnectionHandOff.handOff]) failed.
///
/// [connection] is the connection, usable on this worker again (the same
/// object when the hand-off was refused at once, a new one when the socket
/// came back from a target that went away), or null when the socket was lost
/// on the way (the target was freed with the hand-off unprocessed: the
/// socket was closed). [isWorkerGone] tells whether the target was unknown,
/// closed or stopped; the caller may hand [connection] to another worker.
final class HandOffException extends TransportException {
  HandOffException(super.message,
      {super.operation, super.code, super.nativeMessage, this.connection});

  /// The connection, back on this worker, or null when it was lost.
  final TcpConnection? connection;

  /// Whether the target worker was unknown, closed or stopped
  /// (`IOT_E_WORKER_GONE`).
  bool get isWorkerGone => code == IOT_E_WORKER_GONE;

  @override
  String toString() {
    final c = code;
    return 'HandOffException: ${operation ?? 'hand off'}: $message'
        '${c == null ? '' : ' (code $c)'}'
        '${connection == null ? '; the connection was lost' : ''}';
  }
}

/// Hands a connection over to another worker.
extension TcpConnectionHandOff on TcpConnection {
  /// Hands this connection to worker [toWorker] (a worker id, usually of
  /// another isolate), which gets it on its [Worker.handedOffConnections]
  /// stream and serves it from then on. From this call on, this object is
  /// closed here (as after [TcpConnection.destroy]); nothing is sent to the
  /// peer.
  ///
  /// The connection must be idle: hand it over straight from the accept,
  /// before listening to it (or taking [TcpConnection.payloads]) and with no
  /// write queued or in flight. A busy connection throws a [StateError]; a
  /// closed one gives a failed future with a [TransportClosedException].
  ///
  /// Completes when the kernel posted the hand-off into the target's queue.
  /// Fails with a [HandOffException] when the hand-off was refused or came
  /// back (the target is gone, say); its `connection` is then usable here
  /// again.
  Future<void> handOff(int toWorker) {
    final found = tcpConnectionForHandOff(this);
    if (found == null) {
      return failedFuture(closedError('hand off', 'connection'));
    }
    return found.core.messenger.handOff(this, found.socket, toWorker);
  }
}

/// Process-wide transport operations (every worker of every isolate of the
/// process).
abstract final class Transport {
  /// Whether this kernel can message between workers (`IORING_OP_MSG_RING`
  /// with passed flags, Linux 6.3 or later). Without it, every send fails
  /// with an [IoUringUnavailableException]; everything else works.
  static bool get messagingSupported =>
      loadBindings().iot_messaging_supported() == 1;

  /// Asks every worker of the process (those of other isolates too) to
  /// stop: each gets [value] (0..0xffffffff) on its [Worker.stopRequests]
  /// stream; workers already stopped are skipped. Returns how many workers
  /// were asked. Blocks briefly while the kernel posts the requests.
  static int requestStop([int value = 0]) {
    RangeError.checkValueInInterval(value, 0, _u32Max, 'value');
    final b = loadBindings();
    final rc = b.iot_transport_request_stop(value);
    if (rc < 0) throw transportError(b, rc, 'request stop');
    return rc;
  }

  /// The most bytes one [Worker.sendBytes] carries (the size of a payload).
  static int get payloadSize => _PayloadPool.of(loadBindings()).size;

  /// How many payloads the pool has.
  static int get payloadCount => _PayloadPool.of(loadBindings()).count;

  /// Payloads held by programs or travelling in messages, process-wide (for
  /// leak checks).
  static int get payloadsInUse {
    final b = loadBindings();
    final rc = b.iot_payloads_in_use();
    if (rc < 0) throw transportError(b, rc, 'payloads in use');
    return rc;
  }

  /// Sets the payload pool's geometry: [count] payloads (1..1048576) of
  /// [size] bytes (1..16 MiB). Only before the pool is first used, in this
  /// or any other isolate of the process (the first [Worker.sendBytes],
  /// [payloadSize], ...); afterwards it fails with a [TransportException]
  /// whose errno is 16 (`EBUSY`). Without it the pool has 1024 payloads of
  /// 64 KiB.
  static void configurePayloads({required int size, required int count}) {
    RangeError.checkValueInInterval(size, 1, 16 << 20, 'size');
    RangeError.checkValueInInterval(count, 1, 1 << 20, 'count');
    final b = loadBindings();
    final rc = b.iot_payload_pool_configure(size, count);
    if (rc < 0) throw transportError(b, rc, 'configure payloads');
  }
}

/// The process-wide payload pool as this isolate sees it: payload `p` is
/// [size] bytes at `base + (p & 0xffffffff) * size`, mapped until the
/// process exits.
final class _PayloadPool {
  _PayloadPool(this.base, this.size, this.count);

  static _PayloadPool? _instance;

  /// The pool (created natively on first use).
  static _PayloadPool of(Bindings b) {
    final existing = _instance;
    if (existing != null) return existing;
    final out = calloc<Uint8>(16);
    try {
      final outBase = out.cast<Pointer<Uint8>>();
      final outSize = (out + 8).cast<Uint32>();
      final outCount = (out + 12).cast<Uint32>();
      final rc = b.iot_payload_pool(outBase, outSize, outCount);
      if (rc < 0) throw transportError(b, rc, 'payload pool');
      return _instance =
          _PayloadPool(outBase.value.address, outSize.value, outCount.value);
    } finally {
      calloc.free(out);
    }
  }

  final int base;
  final int size;
  final int count;

  /// The first [length] bytes of [payload], as a view (no copy).
  Uint8List view(int payload, int length) =>
      Pointer<Uint8>.fromAddress(base + (payload & _u32Max) * size)
          .asTypedList(length);
}

/// The worker ids of a [Worker.leastLoaded] call, plus its output (grown as
/// needed, reused across calls).
NativeBlock? _candidates;

/// [Worker.leastLoaded].
int leastLoadedWorker(List<int> workerIds) {
  final n = workerIds.length;
  if (n == 0) throw ArgumentError.value(workerIds, 'workerIds', 'is empty');
  if (n > 0xffff) {
    throw ArgumentError.value(n, 'workerIds', 'more than 65535 workers');
  }
  final b = loadBindings();
  var block = _candidates;
  if (block == null || block.size < (n + 1) * 8) {
    block?.free();
    block = _candidates = NativeBlock((n + 1) * 8);
  }
  final ids = block.pointer.cast<Uint64>();
  for (var i = 0; i < n; i++) {
    ids[i] = workerIds[i];
  }
  final out = ids + n;
  final rc = b.iot_worker_least_loaded(ids, n, out);
  if (rc < 0) throw transportError(b, rc, 'least loaded');
  return out.value;
}

/// What a pending send carried.
enum _Carried { nothing, payload, socket }

/// One of this worker's sends whose `IOT_KIND_MESSAGE_SENT` has not arrived.
final class _PendingSend {
  _PendingSend(this.carried);

  final _Carried carried;
  final Completer<void> completer = Completer<void>();

  void fail(Object error) {
    if (!completer.isCompleted) completer.completeError(error);
  }
}

/// One incoming stream of a worker: created on first use (or first event),
/// buffering until listened to; events that can no longer be delivered
/// (the subscription was cancelled, or the stream ended) are disposed of.
final class _Inbox<T> {
  _Inbox(this._onInterestChanged, [this._dispose]);

  /// Called when [isListened] may have changed.
  final void Function() _onInterestChanged;
  final void Function(T event)? _dispose;
  StreamController<T>? _controller;
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
    return controller.stream;
  }

  void _onCancel() {
    _cancelled = true;
    _onInterestChanged();
  }

  void add(T event) {
    if (_cancelled || _ended) {
      _dispose?.call(event);
      return;
    }
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
/// workers send it. One per worker ([WorkerCore.messenger]); not part of the
/// public API.
final class Messenger {
  Messenger(this._core) {
    if (_core.isClosed) _end();
  }

  final WorkerCore _core;
  final Map<int, _PendingSend> _sends = <int, _PendingSend>{};
  int _lastKey = 0;

  late final _Inbox<WorkerMessage> _messages =
      _Inbox<WorkerMessage>(_core.updateKeepAlive);
  late final _Inbox<BytesMessage> _bytes = _Inbox<BytesMessage>(
      _core.updateKeepAlive, (message) => message.release());
  late final _Inbox<TcpConnection> _connections = _Inbox<TcpConnection>(
      _core.updateKeepAlive, (connection) => connection.destroy());
  late final _Inbox<int> _stopRequests = _Inbox<int>(_core.updateKeepAlive);

  /// Whether this worker's messaging needs the isolate alive: sends waiting
  /// for their outcome, a stop waiting for its end, a message stream
  /// listened to.
  bool get keepsAlive =>
      _sends.isNotEmpty ||
      (_stopped?.isCompleted == false) ||
      _messages.isListened ||
      _bytes.isListened ||
      _connections.isListened ||
      _stopRequests.isListened;

  Completer<void>? _stopped;
  Future<void>? _stopFuture;

  Stream<WorkerMessage> get messages => _messages.stream;
  Stream<BytesMessage> get byteMessages => _bytes.stream;
  Stream<TcpConnection> get handedOffConnections => _connections.stream;
  Stream<int> get stopRequests => _stopRequests.stream;

  // ------------------------------------------------------------ sending

  Future<void> sendMessage(int target, int tag, int value) {
    RangeError.checkValueInInterval(tag, 0, _u32Max, 'tag');
    RangeError.checkValueInInterval(value, 0, _u32Max, 'value');
    if (_core.isClosed) {
      return failedFuture(closedError('send message', 'worker'));
    }
    final key = _newKey();
    final rc = _core.bindings
        .iot_message_send(_core.id, target, (key << 32) | tag, value);
    if (rc < 0) return failedFuture(_core.error(rc, 'send message'));
    return _pending(key, _Carried.nothing);
  }

  Future<void> sendBytes(int target, int tag, List<int> bytes) {
    RangeError.checkValueInInterval(tag, 0, _u32Max, 'tag');
    if (_core.isClosed) {
      return failedFuture(closedError('send bytes', 'worker'));
    }
    final b = _core.bindings;
    final _PayloadPool pool;
    try {
      pool = _PayloadPool.of(b);
    } on TransportException catch (error) {
      return failedFuture(error);
    }
    final length = bytes.length;
    if (length > pool.size) {
      throw ArgumentError.value(length, 'bytes',
          'longer than a payload (${pool.size} bytes, Transport.payloadSize)');
    }
    final out = _core.outSocket;
    final acquired = b.iot_payload_acquire(_core.id, out);
    if (acquired < 0) return failedFuture(_core.error(acquired, 'send bytes'));
    final payload = out.value;
    try {
      if (length > 0) pool.view(payload, length).setRange(0, length, bytes);
    } catch (_) {
      b.iot_payload_release(_core.id, payload);
      rethrow;
    }
    final key = _newKey();
    final rc = b.iot_message_send_payload(
        _core.id, target, (key << 32) | tag, payload, length);
    if (rc < 0) {
      // Refused at once: the payload is still this worker's (a no-op error
      // if it already left).
      b.iot_payload_release(_core.id, payload);
      return failedFuture(_core.error(rc, 'send bytes'));
    }
    return _pending(key, _Carried.payload);
  }

  /// [TcpConnectionHandOff.handOff], for an idle [connection] of this worker.
  Future<void> handOff(
      TcpConnection connection, SocketHandle socket, int target) {
    if (_core.isClosed) {
      return failedFuture(closedError('hand off', 'worker'));
    }
    final key = _newKey();
    final rc = _core.bindings
        .iot_socket_handoff(_core.id, socket.id, target, key << 32);
    if (rc < 0) {
      // Refused at once: the socket is still here, under the same handle.
      return failedFuture(_handOffError(rc, connection));
    }
    tcpConnectionHandedOff(connection);
    return _pending(key, _Carried.socket);
  }

  HandOffException _handOffError(int code, TcpConnection? connection) {
    final text = nativeErrorMessage(_core.bindings, code);
    return HandOffException(text,
        operation: 'hand off',
        code: code,
        nativeMessage: text,
        connection: connection);
  }

  int _newKey() {
    var key = _lastKey;
    do {
      key = key >= _maxKey ? 1 : key + 1;
    } while (_sends.containsKey(key));
    return _lastKey = key;
  }

  Future<void> _pending(int key, _Carried carried) {
    final send = _PendingSend(carried);
    _sends[key] = send;
    _core.submitted();
    return handledFuture(send.completer.future);
  }

  // ------------------------------------------------------------ stopping

  Future<void> stop() {
    final existing = _stopFuture;
    if (existing != null) return existing;
    if (_core.isClosed) return failedFuture(closedError('stop', 'worker'));
    final rc = _core.bindings.iot_worker_stop(_core.id);
    if (rc < 0) return failedFuture(_core.error(rc, 'stop'));
    // IOT_KIND_STOPPED follows (the native side wakes an idle worker).
    final stopped = _stopped ??= Completer<void>();
    _core.updateKeepAlive();
    return _stopFuture = handledFuture(stopped.future);
  }

  void _end() {
    _messages.end();
    _bytes.end();
    _connections.end();
    _stopRequests.end();
  }

  // ------------------------------------------------------------ completions

  /// A messaging completion ([kind] is one of `IOT_KIND_MESSAGE` ..
  /// `IOT_KIND_STOPPED`), read from the completion array.
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
        if (handle != 0) _core.bindings.iot_payload_release(_core.id, handle);
        send.fail(_core.error(code, 'send bytes'));
      case _Carried.socket:
        final back = handle == 0
            ? null
            : adoptTcpConnection(_core, SocketHandle(_core.handle, handle));
        send.fail(_handOffError(code, back));
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
      view = _PayloadPool.of(_core.bindings).view(handle, result);
    } on TransportException catch (error) {
      _core.bindings.iot_payload_release(_core.id, handle);
      _bytes.addError(error);
      return;
    }
    _bytes.add(BytesMessage._(_core, handle, tag, view));
  }

  void _onSocket(int result, int handle) {
    if (handle == 0 || result < 0) {
      _connections.addError(_core.error(
          result < 0 ? result : IOT_E_BAD_HANDLE, 'receive connection'));
      return;
    }
    _connections
        .add(adoptTcpConnection(_core, SocketHandle(_core.handle, handle)));
  }

  /// The worker closed: sends in flight fail, a pending [stop] fails, the
  /// streams end.
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
