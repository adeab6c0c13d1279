/// [StreamConnection]: what TCP and Unix stream connections share, a stream
/// of received bytes plus an ordered, back-pressured writer
/// (`stream_sender.dart`).
library;

import 'dart:async';
import 'dart:typed_data';

import 'buffers.dart';
import 'exception.dart';
import 'ffi/socket_handles.dart';
import 'futures.dart';
import 'receiver.dart';
import 'stream_sender.dart';
import 'timeouts.dart';
import 'worker_core.dart';

/// A connected stream socket (TCP or Unix): a single-subscription stream of
/// received bytes, and an ordered writer with back-pressure.
///
/// **Reading.** Listening to the connection starts receiving; each event is
/// a fresh copy of one received chunk (the native buffer goes back to the
/// pool at once). [payloads] is the zero-copy alternative; a connection is
/// read through one of the two only. Pausing the subscription stops
/// receiving (the receive is cancelled, so the kernel's window fills and the
/// peer slows down); resuming receives again. The stream ends when the peer
/// closes its side, or when this connection is closed; errors (a reset, a
/// [readTimeout]) are delivered as an error event, after which the stream
/// ends. Cancelling the subscription stops reading; the connection stays
/// open for writing.
///
/// **Writing.** [write] copies bytes into native send buffers and queues
/// them; writes go out in order, and each future completes when all of its
/// bytes were handed to the kernel. Large writes are cut into buffer-sized
/// chunks; when every send buffer is in flight, writing waits until a send
/// completes (nothing is dropped). After a write fails, every later write
/// fails with the same error. An ignored write future never causes an
/// uncaught error; [flush] and [close] report it.
///
/// **Closing.** [close] waits for queued writes, then closes the socket (both
/// directions; the input stream ends). [shutdownWrite] only sends the FIN
/// (after queued writes) and keeps reading. [destroy] closes at once:
/// pending writes fail with a [TransportClosedException].
///
/// Unlike dart:io's `Socket.close`, which closes only the sending side,
/// [close] here closes the whole connection.
abstract base class StreamConnection extends Stream<Uint8List> {
  /// For the transport's own connection types.
  StreamConnection.internal(this._core, this._socket)
      : _sender = StreamSender(_core, _socket);

  final WorkerCore _core;
  final SocketHandle _socket;
  final StreamSender _sender;

  /// The receive loop, once the connection was read (a `Receiver<Uint8List>`
  /// or a `Receiver<Payload>`).
  Receiver<Object>? _receiver;
  Duration? _readTimeout;
  Duration? _writeTimeout;
  bool _writeShut = false;
  bool _closedNow = false;
  Future<void>? _closeFuture;

  /// Bounds each wait for received data (null: no limit). Set it before
  /// listening; while it is set, each receive is a one-shot receive with
  /// this timeout (instead of one multishot receive). When it expires, the
  /// stream gets a [TransportTimeoutException] and ends; the connection
  /// stays open for writing.
  Duration? get readTimeout => _readTimeout;

  set readTimeout(Duration? value) {
    timeoutMillis(value, 'readTimeout');
    _readTimeout = value;
    _receiver?.readTimeout = value;
  }

  /// Default timeout of each wait for socket space while sending (null: no
  /// limit), for writes that do not give their own.
  Duration? get writeTimeout => _writeTimeout;

  set writeTimeout(Duration? value) {
    timeoutMillis(value, 'writeTimeout');
    _writeTimeout = value;
  }

  /// Whether [close] or [destroy] was called (or the worker was closed).
  bool get isClosed => _sender.closeRequested || _socket.isClosed;

  // ------------------------------------------------------------ reading

  @override
  StreamSubscription<Uint8List> listen(void Function(Uint8List event)? onData,
      {Function? onError, void Function()? onDone, bool? cancelOnError}) {
    final receiver =
        _receiver ??= _BytesReceiver(_core, _socket, _readTimeout);
    if (receiver is! Receiver<Uint8List>) {
      throw StateError('this connection is read through payloads');
    }
    return receiver.listen(onData,
        onError: onError, onDone: onDone, cancelOnError: cancelOnError);
  }

  /// The received bytes without a copy: each [Payload] is a view of the
  /// native buffer the kernel filled. **Release every payload** (or pass it
  /// to [writePayload]); see [Payload]. Payloads the listener never got
  /// (waiting in a paused subscription when it is cancelled) are released
  /// then. Same stream semantics as listening to the connection itself; a
  /// connection is read through one of the two only.
  Stream<Payload> get payloads {
    final receiver =
        _receiver ??= _PayloadReceiver(_core, _socket, _readTimeout);
    if (receiver is! Receiver<Payload>) {
      throw StateError('this connection is read as a stream of bytes');
    }
    return receiver;
  }

  // ------------------------------------------------------------ writing

  /// Queues [bytes] for sending; completes when all of them were sent.
  ///
  /// [bytes] is read while it is being sent: do not modify it until the
  /// future completes. [timeout] (default [writeTimeout]) bounds each wait
  /// for socket space. A write that fails or times out fails every write after
  /// it: none of their bytes go out, so the peer never sees a gap.
  Future<void> write(List<int> bytes, {Duration? timeout}) {
    final refused = _refuseWrite('write');
    if (refused != null) return refused;
    if (bytes.isEmpty) return flush();
    final t = timeout ?? _writeTimeout;
    timeoutMillis(t, 'timeout');
    return _sender.enqueue(Outbound.bytes(bytes, t));
  }

  /// Writes every chunk of [chunks] in order; completes when all were sent.
  Future<void> writeAll(Iterable<List<int>> chunks, {Duration? timeout}) {
    Future<void>? last;
    for (final chunk in chunks) {
      if (chunk.isNotEmpty) last = write(chunk, timeout: timeout);
    }
    return last ?? flush();
  }

  /// Sends the bytes of [payload] (received on this connection's worker)
  /// without copying them: its native buffer itself is sent, and returns to
  /// the receive pool when the send is done. The payload counts as released
  /// from this call on. Throws a [StateError] if it was already released.
  Future<void> writePayload(Payload payload, {Duration? timeout}) {
    if (!identical(payload.owner, _core)) {
      throw ArgumentError.value(
          payload, 'payload', 'was received on another worker');
    }
    final bufferId = payload.bufferId;
    final offset = payload.offset;
    final length = payload.length;
    final t = timeout ?? _writeTimeout;
    timeoutMillis(t, 'timeout');
    if (payload.isReleased) {
      throw StateError('payload was already released');
    }
    // Before takeForSend, which also refuses a payload of a closed worker: that
    // is a closed connection (a failed future), not a released payload.
    final refused = _refuseWrite('write');
    if (refused != null) {
      payload.release(); // a no-op once the worker is closed
      return refused;
    }
    if (!payload.takeForSend()) {
      throw StateError('payload was already released');
    }
    return _sender.enqueue(Outbound.buffer(bufferId, offset, length, t));
  }

  /// Completes when every write queued so far was sent, or fails with the
  /// first write error; after [close] or [destroy] it fails with a
  /// [TransportClosedException] (as writes do).
  Future<void> flush() => _sender.flush();

  /// Sends a FIN after every queued write (the peer reads end of stream);
  /// receiving goes on. Later writes fail.
  Future<void> shutdownWrite() {
    final refused = _refuseWrite('shutdown');
    if (refused != null) return refused;
    _writeShut = true;
    return _sender.enqueue(Outbound.shutdown());
  }

  Future<void>? _refuseWrite(String operation) {
    final refusal = _writeRefusal(operation);
    return refusal == null ? null : failedFuture(refusal);
  }

  /// Why [operation] cannot be queued now, or null.
  Object? _writeRefusal(String operation) {
    if (isClosed) return closedError(operation, 'connection');
    if (_writeShut) {
      return TransportClosedException('the sending side was shut down',
          operation: operation);
    }
    if (_core.sendBufferCount == 0 && operation == 'write') {
      return StateError(
          'the worker has no send buffers (WorkerConfig.sendBufferCount)');
    }
    return null;
  }

  // ------------------------------------------------------------ closing

  /// Waits until the queued writes were sent (or failed), then closes the
  /// connection in both directions: the input stream ends. Idempotent.
  Future<void> close() => _closeFuture ??= _closeAfterFlush();

  Future<void> _closeAfterFlush() async {
    _sender.closeRequested = true;
    try {
      await _sender.flush();
    } on Object {
      // The writes themselves report their errors.
    }
    _closeNow();
  }

  /// Closes the connection at once: queued and in-flight writes fail with a
  /// [TransportClosedException], the input stream ends. Idempotent.
  void destroy() {
    _sender.closeRequested = true;
    _closeFuture ??= Future<void>.value();
    _closeNow();
  }

  void _closeNow() {
    if (_closedNow) return;
    _closedNow = true;
    _socket.close();
    _sender.onClosed(closedError('write', 'connection'));
    _receiver?.onClosed();
  }
}

/// The receive loop of a connection read as copies: each event a fresh copy
/// of one received chunk (the native buffer goes back to the pool at once).
final class _BytesReceiver extends Receiver<Uint8List> {
  _BytesReceiver(WorkerCore core, SocketHandle socket, Duration? readTimeout)
      : super(core, socket, readTimeout, datagram: false);

  @override
  Uint8List convert(int bufferId, int offset, int length, int flags) {
    final core = this.core;
    final bytes = core.buffers.copy(bufferId, offset, length);
    core.releaseBuffer(bufferId, offset);
    return bytes;
  }
}

/// The receive loop of a connection read through [StreamConnection.payloads].
final class _PayloadReceiver extends Receiver<Payload> {
  _PayloadReceiver(WorkerCore core, SocketHandle socket, Duration? readTimeout)
      : super(core, socket, readTimeout, datagram: false);

  @override
  Payload convert(int bufferId, int offset, int length, int flags) {
    final core = this.core;
    return Payload.internal(
        core, bufferId, offset, core.buffers.view(bufferId, offset, length));
  }

  /// A payload the program will never see goes back at once, not when a
  /// garbage collection finds it.
  @override
  void onDropped(Payload data) => data.release();
}

// ------------------------------------------------------------ internals
// For the connection types (tcp.dart, unix.dart) and handoff.dart; not
// exported.

/// The worker [connection] belongs to.
WorkerCore connectionCore(StreamConnection connection) => connection._core;

/// The socket of [connection].
SocketHandle connectionSocket(StreamConnection connection) =>
    connection._socket;

/// Whether [connection] was ever read (listened to, or its payloads taken).
bool connectionWasRead(StreamConnection connection) =>
    connection._receiver != null;

/// Queues [bytes] on [connection] as [StreamConnection.write] does, without
/// a future: [onDone] is told the outcome (null: sent; at once when the
/// write is refused). For the dart:io layer, which writes per chunk.
void connectionWriteQuietly(StreamConnection connection, List<int> bytes,
    void Function(Object? error) onDone) {
  final refusal = connection._writeRefusal('write');
  if (refusal != null) {
    onDone(refusal);
    return;
  }
  final timeout = connection._writeTimeout;
  final entry = Outbound.bytes(bytes, timeout)..onDone = onDone;
  connection._sender.enqueueQuietly(entry);
}

/// Sends the first [length] bytes of send buffer [bufferId] (taken from
/// the worker's pool and filled by the caller) on [connection], which gives
/// it back once sent; [onDone] is told the outcome as for
/// [connectionWriteQuietly].
void connectionSendBuffer(StreamConnection connection, int bufferId,
    int length, void Function(Object? error) onDone) {
  final refusal = connection._writeRefusal('write');
  if (refusal != null) {
    connection._core.releaseBuffer(bufferId);
    onDone(refusal);
    return;
  }
  final timeout = connection._writeTimeout;
  final entry = Outbound.buffer(bufferId, 0, length, timeout)..onDone = onDone;
  connection._sender.enqueueQuietly(entry);
}

/// Whether [connection] has writes queued or in flight.
bool connectionHasPendingWrites(StreamConnection connection) =>
    connection._sender.hasPending;

/// The local ([which] [IOT_ADDRESS_LOCAL]) or peer ([IOT_ADDRESS_PEER])
/// address of [connection] as text and its port (0 for Unix sockets).
({String address, int port}) connectionAddress(
    StreamConnection connection, int which, String operation) {
  if (connection._socket.isClosed) throw closedError(operation, 'connection');
  final core = connection._core;
  return core.socketAddress(connection._socket, which, operation);
}
