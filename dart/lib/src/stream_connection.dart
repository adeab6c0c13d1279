/// What TCP and Unix stream sockets share: listeners that yield connections,
/// and connections that are a stream of received bytes plus an ordered,
/// back-pressured writer.
library;

import 'dart:async';
import 'dart:collection';
import 'dart:math' as math;
import 'dart:typed_data';

import 'buffers.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/handles.dart';
import 'futures.dart';
import 'operation.dart';
import 'receiver.dart';
import 'worker_core.dart';

/// After an accept error (say `EMFILE`), the listener waits this long before
/// accepting again, so a lasting error does not turn into a busy loop.
const Duration _acceptRetryDelay = Duration(milliseconds: 100);

/// A listening stream socket ([T] is `TcpConnection` or `UnixConnection`): a
/// single-subscription stream of accepted connections.
///
/// Accepting starts when the stream is listened to (one multishot accept
/// stays armed). Pausing the subscription stops accepting, so new
/// connections wait in the kernel's backlog; resuming accepts again.
/// Cancelling the subscription closes the listener. Accept errors (such as
/// running out of file descriptors) are reported as error events and
/// accepting goes on.
abstract base class ConnectionListener<T extends StreamConnection>
    extends Stream<T> {
  /// For the transport's own listeners: [adopt] wraps an accepted socket.
  ConnectionListener.internal(WorkerCore core, SocketHandle socket,
      T Function(SocketHandle socket) adopt)
      : _acceptor = _Acceptor<T>(core, socket, adopt);

  final _Acceptor<T> _acceptor;

  /// Whether [close] was called (or the worker was closed).
  bool get isClosed => _acceptor.socket.isClosed;

  @override
  StreamSubscription<T> listen(void Function(T connection)? onData,
          {Function? onError, void Function()? onDone, bool? cancelOnError}) =>
      _acceptor.controller.stream.listen(onData,
          onError: onError, onDone: onDone, cancelOnError: cancelOnError);

  /// Stops listening and closes the socket; the stream of connections ends.
  /// Connections already accepted stay open. Idempotent.
  Future<void> close() {
    _acceptor.close();
    return Future<void>.value();
  }
}

final class _Acceptor<T extends StreamConnection> implements CompletionHandler {
  _Acceptor(this.core, this.socket, this.adopt) {
    controller = StreamController<T>(
        onListen: _start,
        onPause: _pause,
        onResume: _resume,
        onCancel: close);
  }

  final WorkerCore core;
  final SocketHandle socket;
  final T Function(SocketHandle socket) adopt;
  late final StreamController<T> controller;
  int _tag = 0;
  bool _cancelling = false;
  bool _done = false;
  Timer? _retry;

  void _start() {
    if (_done || _tag != 0) return;
    if (socket.isClosed) {
      if (core.isClosed) controller.addError(closedError('accept', 'worker'));
      _finish();
      return;
    }
    final tag = core.register(this);
    final rc =
        core.bindings.iot_accept(core.id, socket.id, tag, IOT_OP_MULTISHOT, 0);
    if (rc < 0) {
      core.unregister(tag);
      controller.addError(core.error(rc, 'accept'));
      _finish();
      return;
    }
    _tag = tag;
    core.submitted();
  }

  void _pause() {
    _retry?.cancel();
    _retry = null;
    if (_tag != 0 && !_cancelling && core.cancel(_tag) == 0) {
      _cancelling = true;
    }
  }

  void _resume() {
    if (_tag == 0) _start();
  }

  /// Closes the listener (also the subscription's onCancel).
  void close() {
    _retry?.cancel();
    _retry = null;
    socket.close();
    // An accept in flight completes with -ECANCELED and ends the stream then.
    if (_tag == 0) _finish();
  }

  void _finish() {
    if (_done) return;
    _done = true;
    _retry?.cancel();
    _retry = null;
    socket.close();
    unawaited(controller.close());
  }

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    if (result >= 0 && handle != 0) {
      final connection = adopt(SocketHandle(core.handle, handle));
      if (_done) {
        connection.destroy();
      } else {
        controller.add(connection);
      }
    }
    final more = flags & IOT_COMPLETION_MORE != 0;
    if (more) {
      if (result < 0 && !_done) controller.addError(core.error(result, 'accept'));
      return;
    }
    core.unregister(tag);
    _tag = 0;
    final wasCancelling = _cancelling;
    _cancelling = false;
    if (_done) return;
    if (socket.isClosed) {
      _finish();
      return;
    }
    if (result < 0 && !(wasCancelling && result == -Errno.ecanceled)) {
      controller.addError(core.error(result, 'accept'));
      _retry = Timer(_acceptRetryDelay, () {
        _retry = null;
        if (!controller.isPaused) _start();
      });
      return;
    }
    if (!controller.isPaused) _start();
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    _tag = 0;
    if (_done) return;
    if (core.failure != null && !socket.closeCalled) controller.addError(error);
    _finish();
  }
}

/// Connects with [submit] (the native connect call, given the operation's
/// tag; it returns the call's result) and wraps the connected socket with
/// [adopt]. A connect that fails leaves no socket behind; its error names
/// [path] (a Unix socket's).
Future<T> connectStream<T extends StreamConnection>(
    WorkerCore core,
    Duration? timeout,
    int Function(int tag) submit,
    T Function(SocketHandle socket) adopt,
    {String? path, Cancellation? cancellation}) {
  final op = SingleOp<T>(core, 'connect', (_, handle) {
    if (handle == 0) throw core.error(-Errno.ecanceled, 'connect', path: path);
    return adopt(SocketHandle(core.handle, handle));
  }, timeout: timeout, path: path);
  return op.start(submit, cancellation: cancellation);
}

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
  StreamConnection.internal(this._core, this._socket) {
    _sender = _Sender(this);
  }

  final WorkerCore _core;
  final SocketHandle _socket;
  late final _Sender _sender;

  /// The receive loop, once the connection was read (a `Receiver<Uint8List>`
  /// or a `Receiver<Payload>`).
  Receiver<Object>? _receiver;
  Duration? _readTimeout;
  Duration? _writeTimeout;
  bool _closeRequested = false;
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
  }

  /// Default timeout of each wait for socket space while sending (null: no
  /// limit), for writes that do not give their own.
  Duration? get writeTimeout => _writeTimeout;

  set writeTimeout(Duration? value) {
    timeoutMillis(value, 'writeTimeout');
    _writeTimeout = value;
  }

  /// Whether [close] or [destroy] was called (or the worker was closed).
  bool get isClosed => _closeRequested || _socket.isClosed;

  // ------------------------------------------------------------ reading

  Receiver<E> _newReceiver<E>(
          E Function(int bufferId, int offset, int length, int flags) convert) =>
      Receiver<E>(_core, _socket, convert,
          datagram: false, readTimeout: () => _readTimeout);

  @override
  StreamSubscription<Uint8List> listen(void Function(Uint8List event)? onData,
      {Function? onError, void Function()? onDone, bool? cancelOnError}) {
    final receiver = _receiver ??= _newReceiver<Uint8List>(_copyOut);
    if (receiver is! Receiver<Uint8List>) {
      throw StateError('this connection is read through payloads');
    }
    return receiver.controller.stream.listen(onData,
        onError: onError, onDone: onDone, cancelOnError: cancelOnError);
  }

  /// The received bytes without a copy: each [Payload] is a view of the
  /// native buffer the kernel filled. **Release every payload** (or pass it
  /// to [writePayload]); see [Payload]. Same stream semantics as listening to
  /// the connection itself; a connection is read through one of the two
  /// only.
  Stream<Payload> get payloads {
    final receiver = _receiver ??= _newReceiver<Payload>(_payload);
    if (receiver is! Receiver<Payload>) {
      throw StateError('this connection is read as a stream of bytes');
    }
    return receiver.controller.stream;
  }

  Uint8List _copyOut(int bufferId, int offset, int length, int flags) {
    final bytes = _core.buffers.copy(bufferId, offset, length);
    _core.releaseBuffer(bufferId);
    return bytes;
  }

  Payload _payload(int bufferId, int offset, int length, int flags) =>
      Payload.internal(_core, bufferId, offset,
          _core.buffers.view(bufferId, offset, length));

  // ------------------------------------------------------------ writing

  /// Queues [bytes] for sending; completes when all of them were sent.
  ///
  /// [bytes] is read while it is being sent: do not modify it until the
  /// future completes. [timeout] (default [writeTimeout]) bounds each wait
  /// for socket space.
  Future<void> write(List<int> bytes, {Duration? timeout}) {
    final refused = _refuseWrite('write');
    if (refused != null) return refused;
    if (bytes.isEmpty) return flush();
    final t = timeout ?? _writeTimeout;
    timeoutMillis(t, 'timeout');
    return _sender.enqueue(_Outbound.bytes(bytes, t));
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
    return _sender.enqueue(_Outbound.buffer(bufferId, offset, length, t));
  }

  /// Completes when every write queued so far was sent, or fails with the
  /// first write error.
  Future<void> flush() => _sender.flush();

  /// Sends a FIN after every queued write (the peer reads end of stream);
  /// receiving goes on. Later writes fail.
  Future<void> shutdownWrite() {
    final refused = _refuseWrite('shutdown');
    if (refused != null) return refused;
    _writeShut = true;
    return _sender.enqueue(_Outbound.shutdown());
  }

  Future<void>? _refuseWrite(String operation) {
    if (isClosed) {
      return failedFuture(closedError(operation, 'connection'));
    }
    if (_writeShut) {
      return failedFuture(TransportClosedException(
          'the sending side was shut down',
          operation: operation));
    }
    if (_core.sendBufferCount == 0 && operation == 'write') {
      return failedFuture(StateError(
          'the worker has no send buffers (WorkerConfig.sendBufferCount)'));
    }
    return null;
  }

  // ------------------------------------------------------------ closing

  /// Waits until the queued writes were sent (or failed), then closes the
  /// connection in both directions: the input stream ends. Idempotent.
  Future<void> close() => _closeFuture ??= _closeAfterFlush();

  Future<void> _closeAfterFlush() async {
    _closeRequested = true;
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
    _closeRequested = true;
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

// ------------------------------------------------------------ internals
// For the connection types (tcp.dart, unix.dart) and messages.dart; not
// exported.

/// The worker [connection] belongs to.
WorkerCore connectionCore(StreamConnection connection) => connection._core;

/// The socket of [connection].
SocketHandle connectionSocket(StreamConnection connection) =>
    connection._socket;

/// Whether [connection] was ever read (listened to, or its payloads taken).
bool connectionWasRead(StreamConnection connection) =>
    connection._receiver != null;

/// Whether [connection] has writes queued or in flight.
bool connectionHasPendingWrites(StreamConnection connection) =>
    connection._sender._queue.isNotEmpty ||
    connection._sender._inFlight.isNotEmpty;

/// The local ([which] [IOT_ADDRESS_LOCAL]) or peer ([IOT_ADDRESS_PEER])
/// address of [connection] as text and its port (0 for Unix sockets).
({String address, int port}) connectionAddress(
    StreamConnection connection, int which, String operation) {
  if (connection._socket.isClosed) throw closedError(operation, 'connection');
  final core = connection._core;
  return NativeScratch.of(core, operation)
      .socketAddress(core, connection._socket.id, which, operation);
}

/// One queued write, payload send or shutdown.
final class _Outbound {
  _Outbound.bytes(List<int> this.data, this.timeout)
      : bufferId = -1,
        offset = 0,
        length = data.length,
        isShutdown = false;

  _Outbound.buffer(this.bufferId, this.offset, this.length, this.timeout)
      : data = null,
        isShutdown = false;

  _Outbound.shutdown()
      : data = null,
        bufferId = -1,
        offset = 0,
        length = 0,
        timeout = null,
        isShutdown = true;

  /// Bytes to copy into send buffers (a write), or null.
  final List<int>? data;

  /// A host-owned buffer to send as is (a payload), or -1.
  final int bufferId;
  final int offset;
  final int length;
  final Duration? timeout;
  final bool isShutdown;
  final Completer<void> completer = Completer<void>();

  /// Bytes of [data] already copied and queued.
  int position = 0;

  /// Native operations of this entry not completed yet.
  int inFlight = 0;

  /// Everything of this entry was queued natively.
  bool submitted = false;

  void fail(TransportException error) {
    if (!completer.isCompleted) completer.completeError(error);
  }
}

/// The sending side of a connection: one tag for all its sends and its
/// shutdown (the native library runs them in order, one at a time, so their
/// completions arrive in the order they were queued).
final class _Sender implements CompletionHandler, SendBufferWaiter {
  _Sender(this._connection);

  final StreamConnection _connection;

  /// Entries not yet (completely) queued natively.
  final Queue<_Outbound> _queue = Queue<_Outbound>();

  /// One element per native operation in flight, in order.
  final Queue<_Outbound> _inFlight = Queue<_Outbound>();

  int _tag = 0;
  bool _waiting = false;

  /// Stopped at the per-connection limit of send buffers in flight.
  bool _throttled = false;
  TransportException? _error;
  _Outbound? _last;

  WorkerCore get _core => _connection._core;
  SocketHandle get _socket => _connection._socket;

  Future<void> enqueue(_Outbound entry) {
    final error = _error;
    if (error != null) {
      if (entry.data == null && !entry.isShutdown) {
        _core.releaseBuffer(entry.bufferId);
      }
      return failedFuture(error);
    }
    _queue.add(entry);
    _last = entry;
    if (!_waiting) _pump();
    return handledFuture(entry.completer.future);
  }

  Future<void> flush() {
    final last = _last;
    final error = _error;
    if (last == null) {
      return error == null ? Future<void>.value() : failedFuture(error);
    }
    return handledFuture(last.completer.future);
  }

  void _pump() {
    final core = _core;
    final b = core.bindings;
    while (_queue.isNotEmpty) {
      if (core.isClosed) {
        _abort(closedError('write', 'worker'));
        return;
      }
      final entry = _queue.first;
      if (_tag == 0) _tag = core.register(this);
      final timeoutMs = timeoutMillis(entry.timeout, 'timeout');
      final data = entry.data;
      if (data != null) {
        while (entry.position < data.length) {
          if (_inFlight.length >= core.sendBufferLimit) {
            // This connection's share of the send buffers is in flight: go
            // on when one of its sends completes (onCompletion).
            _throttled = true;
            return;
          }
          final id = acquireSendBuffer(core, this);
          if (id < 0) {
            _waiting = id == -Errno.enobufs;
            if (!_waiting) _abort(core.error(id, 'write'));
            return;
          }
          final n =
              math.min(core.buffers.bufferSize, data.length - entry.position);
          core.buffers.fill(id, data, entry.position, n);
          final rc =
              b.iot_send(core.id, _socket.id, id, 0, n, _tag, timeoutMs);
          if (rc < 0) {
            core.buffers.release(id);
            _abort(core.error(rc, 'write',
                closedLocally: _connection._closeRequested));
            return;
          }
          entry.position += n;
          _queued(entry);
        }
      } else if (entry.isShutdown) {
        final rc = b.iot_socket_shutdown(
            core.id, _socket.id, IOT_SHUTDOWN_WRITE, _tag);
        if (rc < 0) {
          _abort(core.error(rc, 'shutdown',
              closedLocally: _connection._closeRequested));
          return;
        }
        _queued(entry);
      } else {
        final rc = b.iot_send(core.id, _socket.id, entry.bufferId,
            entry.offset, entry.length, _tag, timeoutMs);
        if (rc < 0) {
          // The buffer is still ours when the send was refused.
          core.releaseBuffer(entry.bufferId);
          _abort(core.error(rc, 'write',
              closedLocally: _connection._closeRequested));
          return;
        }
        _queued(entry);
      }
      entry.submitted = true;
      _queue.removeFirst();
    }
  }

  /// One more native operation of [entry] was queued.
  void _queued(_Outbound entry) {
    entry.inFlight += 1;
    _inFlight.add(entry);
    _core.submitted();
  }

  @override
  void onSendBufferAvailable() {
    _waiting = false;
    if (_error == null) _pump();
  }

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    if (_inFlight.isEmpty) return;
    final entry = _inFlight.removeFirst();
    entry.inFlight -= 1;
    if (result < 0) {
      _abort(_core.error(
          result, kind == IOT_KIND_SHUTDOWN ? 'shutdown' : 'write',
          timeout: entry.timeout, closedLocally: _socket.isClosed));
      // Its last operation is no longer in _inFlight, where _abort fails
      // entries: fail it with the error that won.
      entry.fail(_error!);
    } else if (entry.inFlight == 0 && entry.submitted) {
      if (!entry.completer.isCompleted) entry.completer.complete();
    }
    if (_throttled && _error == null) {
      _throttled = false;
      if (!_waiting) _pump();
    }
    if (_inFlight.isEmpty && _queue.isEmpty) {
      // Idle: no tag registered, so the worker does not keep the isolate
      // alive for this connection; the next write registers a new one.
      _core.unregister(tag);
      _tag = 0;
    }
  }

  /// Fails every entry (first error wins) and stops sending.
  void _abort(TransportException error) {
    final first = _error == null;
    final failure = _error ??= error;
    if (first && _tag != 0 && !_socket.isClosed) {
      // Drop the sends still queued natively behind the failed one.
      _core.cancel(_tag);
    }
    for (final entry in _inFlight) {
      entry.fail(failure);
    }
    for (final entry in _queue) {
      entry.fail(failure);
      if (entry.data == null && !entry.isShutdown && !_core.isClosed) {
        _core.releaseBuffer(entry.bufferId);
      }
    }
    _queue.clear();
  }

  /// The connection was closed locally.
  void onClosed(TransportClosedException error) {
    _abort(error);
    if (_inFlight.isEmpty && _tag != 0) {
      _core.unregister(_tag);
      _tag = 0;
    }
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    _abort(error);
    _inFlight.clear();
    _tag = 0;
  }
}
