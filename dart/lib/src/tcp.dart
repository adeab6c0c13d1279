/// TCP: listeners that yield connections, and connections that are a stream
/// of received bytes plus an ordered, back-pressured writer.
library;

import 'dart:async';
import 'dart:collection';
import 'dart:io' show InternetAddress;
import 'dart:math' as math;
import 'dart:typed_data';

import 'address.dart';
import 'buffers.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/handles.dart';
import 'worker.dart';

/// After an accept error (say `EMFILE`), the listener waits this long before
/// accepting again, so a lasting error does not turn into a busy loop.
const Duration _acceptRetryDelay = Duration(milliseconds: 100);

/// [timeout] in whole milliseconds (rounded up) for the native calls; 0 for
/// none.
int _timeoutMillis(Duration? timeout, String name) {
  if (timeout == null) return 0;
  final ms = (timeout.inMicroseconds + 999) ~/ 1000;
  if (ms < 1 || ms > 0xffffffff) {
    throw RangeError.range(ms, 1, 0xffffffff, name, 'timeout in milliseconds');
  }
  return ms;
}

/// A listening TCP socket: a single-subscription stream of accepted
/// [TcpConnection]s.
///
/// Accepting starts when the stream is listened to (one multishot accept
/// stays armed). Pausing the subscription stops accepting, so new
/// connections wait in the kernel's backlog; resuming accepts again.
/// Cancelling the subscription closes the listener. Accept errors (such as
/// running out of file descriptors) are reported as error events and
/// accepting goes on.
final class TcpListener extends Stream<TcpConnection> {
  TcpListener._(WorkerCore core, SocketHandle socket, this.address, this.port)
      : _acceptor = _Acceptor(core, socket);

  /// Binds a listening socket to [address] (a `String` or an
  /// [InternetAddress]; a name is looked up and its first address used) and
  /// [port] (0 picks a free one, see [port]).
  ///
  /// [backlog] is the kernel's accept queue length (0: the system maximum).
  /// [reusePort] sets `SO_REUSEPORT`, so listeners in several isolates (each
  /// with its own worker) can bind the same port and the kernel spreads
  /// connections among them. For an IPv6 address, [v6Only] refuses IPv4
  /// connections (by default an IPv6 listener takes both).
  static Future<TcpListener> bind(Object address, int port,
      {int backlog = 0,
      bool reusePort = false,
      bool v6Only = false,
      Worker? worker}) async {
    RangeError.checkValueInInterval(port, 0, 65535, 'port');
    RangeError.checkValueInInterval(backlog, 0, 0x7fffffff, 'backlog');
    final core = workerCore(worker ?? Worker.current);
    final addresses = await resolveHost(address, 'bind');
    if (core.isClosed) throw closedError('bind', 'worker');
    final ip = addresses.first;
    var flags = 0;
    if (reusePort) flags |= IOT_LISTEN_REUSEPORT;
    if (v6Only) flags |= IOT_LISTEN_V6ONLY;
    final rc = core.bindings.iot_tcp_listen(core.id,
        core.scratchText(ip.address), port, backlog, flags, core.outSocket);
    if (rc < 0) throw core.error(rc, 'bind');
    final socket = SocketHandle(core.handle, core.outSocket.value);
    final local = core.socketAddress(socket.id, IOT_ADDRESS_LOCAL);
    return TcpListener._(core, socket, ip, local?.port ?? port);
  }

  final _Acceptor _acceptor;

  /// The address the listener is bound to.
  final InternetAddress address;

  /// The port the listener is bound to (the chosen one when bound to 0).
  final int port;

  /// Whether [close] was called (or the worker was closed).
  bool get isClosed => _acceptor.socket.isClosed;

  @override
  StreamSubscription<TcpConnection> listen(
          void Function(TcpConnection connection)? onData,
          {Function? onError,
          void Function()? onDone,
          bool? cancelOnError}) =>
      _acceptor.controller.stream.listen(onData,
          onError: onError, onDone: onDone, cancelOnError: cancelOnError);

  /// Stops listening and closes the socket; the stream of connections ends.
  /// Connections already accepted stay open. Idempotent.
  Future<void> close() {
    _acceptor.close();
    return Future<void>.value();
  }

  @override
  String toString() => 'TcpListener(${address.address}:$port)';
}

final class _Acceptor implements CompletionHandler {
  _Acceptor(this.core, this.socket) {
    controller = StreamController<TcpConnection>(
        onListen: _start,
        onPause: _pause,
        onResume: _resume,
        onCancel: close);
  }

  final WorkerCore core;
  final SocketHandle socket;
  late final StreamController<TcpConnection> controller;
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
    final rc = core.bindings
        .iot_tcp_accept(core.id, socket.id, tag, IOT_OP_MULTISHOT, 0);
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
      final connection =
          TcpConnection._(core, SocketHandle(core.handle, handle));
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
    controller.addError(error);
    _finish();
  }
}

/// A TCP connection: a single-subscription stream of received bytes, and an
/// ordered writer with back-pressure.
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
final class TcpConnection extends Stream<Uint8List> {
  TcpConnection._(this._core, this._socket,
      {InternetAddress? remoteAddress, int? remotePort})
      : _remoteAddress = remoteAddress,
        _remotePort = remotePort {
    _sender = _Sender(this);
  }

  /// Connects to [host] (a `String` or an [InternetAddress]; a name is looked
  /// up and its addresses tried in turn) on [port].
  ///
  /// With a [timeout], a connection that is not established in time fails
  /// with a [TransportTimeoutException] (the timeout covers all addresses
  /// tried). A refused connection fails with a [TransportException] whose
  /// [TransportException.errno] is 111 (`ECONNREFUSED`).
  static Future<TcpConnection> connect(Object host, int port,
      {Duration? timeout, Worker? worker}) async {
    RangeError.checkValueInInterval(port, 1, 65535, 'port');
    _timeoutMillis(timeout, 'timeout');
    final core = workerCore(worker ?? Worker.current);
    final watch = Stopwatch()..start();
    final addresses = await resolveHost(host, 'connect');
    TransportException? lastError;
    for (final address in addresses) {
      if (core.isClosed) throw closedError('connect', 'worker');
      var remaining = 0;
      if (timeout != null) {
        final left = timeout - watch.elapsed;
        if (left <= Duration.zero) {
          throw TransportTimeoutException(
              'timed out after ${timeout.inMilliseconds} ms',
              operation: 'connect',
              timeout: timeout);
        }
        remaining = _timeoutMillis(left, 'timeout');
      }
      try {
        return await _connectTo(core, address, port, remaining, timeout);
      } on TransportTimeoutException {
        rethrow;
      } on TransportClosedException {
        rethrow;
      } on TransportException catch (error) {
        lastError = error;
      }
    }
    throw lastError ??
        TransportException('no address to connect to', operation: 'connect');
  }

  static Future<TcpConnection> _connectTo(WorkerCore core,
      InternetAddress address, int port, int timeoutMs, Duration? timeout) {
    final ip = core.scratchText(address.address);
    final op = _Connect(core, address, port, timeout);
    final tag = core.register(op);
    final rc = core.bindings.iot_tcp_connect(core.id, ip, port, tag, timeoutMs);
    if (rc < 0) {
      core.unregister(tag);
      return Future<TcpConnection>.error(core.error(rc, 'connect'));
    }
    core.submitted();
    return op.completer.future;
  }

  final WorkerCore _core;
  final SocketHandle _socket;
  late final _Sender _sender;
  _ReceiverBase? _receiver;
  InternetAddress? _remoteAddress;
  int? _remotePort;
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
    _timeoutMillis(value, 'readTimeout');
    _readTimeout = value;
  }

  /// Default timeout of each wait for socket space while sending (null: no
  /// limit), for writes that do not give their own.
  Duration? get writeTimeout => _writeTimeout;

  set writeTimeout(Duration? value) {
    _timeoutMillis(value, 'writeTimeout');
    _writeTimeout = value;
  }

  /// Whether [close] or [destroy] was called (or the worker was closed).
  bool get isClosed => _closeRequested || _socket.isClosed;

  /// The peer's address.
  InternetAddress get remoteAddress {
    final cached = _remoteAddress;
    if (cached != null) return cached;
    final peer = _address(IOT_ADDRESS_PEER, 'remoteAddress');
    _remotePort = peer.port;
    return _remoteAddress = InternetAddress(peer.address);
  }

  /// The peer's port.
  int get remotePort {
    final cached = _remotePort;
    if (cached != null) return cached;
    final peer = _address(IOT_ADDRESS_PEER, 'remotePort');
    _remoteAddress ??= InternetAddress(peer.address);
    return _remotePort = peer.port;
  }

  /// The local address of the connection.
  InternetAddress get localAddress =>
      InternetAddress(_address(IOT_ADDRESS_LOCAL, 'localAddress').address);

  /// The local port of the connection.
  int get localPort => _address(IOT_ADDRESS_LOCAL, 'localPort').port;

  ({String address, int port}) _address(int which, String operation) {
    if (_socket.isClosed) throw closedError(operation, 'connection');
    final found = _core.socketAddress(_socket.id, which);
    if (found == null) {
      throw TransportException('address unavailable', operation: operation);
    }
    return found;
  }

  // ------------------------------------------------------------ reading

  @override
  StreamSubscription<Uint8List> listen(void Function(Uint8List event)? onData,
      {Function? onError, void Function()? onDone, bool? cancelOnError}) {
    final receiver = _receiver ??= _Receiver<Uint8List>(this, _copyOut);
    if (receiver is! _Receiver<Uint8List>) {
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
    final receiver = _receiver ??= _Receiver<Payload>(this, _payload);
    if (receiver is! _Receiver<Payload>) {
      throw StateError('this connection is read as a stream of bytes');
    }
    return receiver.controller.stream;
  }

  Uint8List _copyOut(int bufferId, int offset, int length) {
    final bytes = _core.buffers.copy(bufferId, offset, length);
    _core.releaseBuffer(bufferId);
    return bytes;
  }

  Payload _payload(int bufferId, int offset, int length) => Payload.internal(
      _core, bufferId, offset, _core.buffers.view(bufferId, offset, length));

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
    _timeoutMillis(t, 'timeout');
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
    _timeoutMillis(t, 'timeout');
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
    return _sender
        .enqueue(_Outbound.buffer(bufferId, offset, length, t));
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

  @override
  String toString() => 'TcpConnection(${_socket.id})';
}

/// A connect in flight.
final class _Connect implements CompletionHandler {
  _Connect(this.core, this.address, this.port, this.timeout);

  final WorkerCore core;
  final InternetAddress address;
  final int port;
  final Duration? timeout;
  final Completer<TcpConnection> completer = Completer<TcpConnection>();

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    core.unregister(tag);
    if (result >= 0 && handle != 0) {
      completer.complete(TcpConnection._(core, SocketHandle(core.handle, handle),
          remoteAddress: address, remotePort: port));
    } else {
      completer.completeError(core.error(
          result < 0 ? result : -Errno.ecanceled, 'connect',
          timeout: timeout));
    }
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    if (!completer.isCompleted) completer.completeError(error);
  }
}

/// The receiving side of a connection, whatever the event type.
abstract base class _ReceiverBase {
  /// The connection was closed locally.
  void onClosed();
}

/// Receives into a stream of [T] (copies or payloads).
final class _Receiver<T> extends _ReceiverBase implements CompletionHandler {
  _Receiver(this._connection, this._convert) {
    controller = StreamController<T>(
        onListen: _start,
        onPause: _pause,
        onResume: _resume,
        onCancel: _cancel);
  }

  final TcpConnection _connection;
  final T Function(int bufferId, int offset, int length) _convert;
  late final StreamController<T> controller;

  /// The tag of the receive in flight (0: none).
  int _tag = 0;

  /// The timeout of the receive in flight.
  Duration? _timeout;

  /// The receive in flight was cancelled to pause.
  bool _cancelling = false;

  /// No more events: ended, failed or the subscription was cancelled.
  bool _done = false;

  WorkerCore get _core => _connection._core;
  SocketHandle get _socket => _connection._socket;

  void _start() {
    if (_done || _tag != 0) return;
    if (_socket.isClosed) {
      if (_core.isClosed) {
        _fail(closedError('recv', 'worker'));
      } else {
        _finish();
      }
      return;
    }
    final timeout = _connection._readTimeout;
    final timeoutMs = _timeoutMillis(timeout, 'readTimeout');
    final tag = _core.register(this);
    final rc = _core.bindings.iot_recv(_core.id, _socket.id, tag,
        timeoutMs > 0 ? 0 : IOT_OP_MULTISHOT, timeoutMs);
    if (rc < 0) {
      _core.unregister(tag);
      _fail(_core.error(rc, 'recv'));
      return;
    }
    _tag = tag;
    _timeout = timeout;
    _core.submitted();
  }

  void _stop() {
    if (_tag != 0 && !_cancelling && _core.cancel(_tag) == 0) {
      _cancelling = true;
    }
  }

  void _pause() => _stop();

  void _resume() {
    if (_tag == 0) _start();
  }

  void _cancel() {
    _done = true;
    _stop();
  }

  void _fail(TransportException error) {
    if (_done) return;
    controller.addError(error);
    _finish();
  }

  void _finish() {
    if (_done) return;
    _done = true;
    unawaited(controller.close());
  }

  @override
  void onClosed() {
    // A receive in flight completes with -ECANCELED and ends the stream then.
    if (_tag == 0) _finish();
  }

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    final hasBuffer = flags & IOT_COMPLETION_BUFFER != 0;
    if (hasBuffer) {
      if (result > 0 && !_done) {
        controller.add(_convert(bufferId, offset, result));
      } else {
        _core.releaseBuffer(bufferId);
      }
    }
    if (flags & IOT_COMPLETION_MORE != 0) return;
    _core.unregister(tag);
    _tag = 0;
    final wasCancelling = _cancelling;
    _cancelling = false;
    final timeout = _timeout;
    _timeout = null;
    if (_done) return;
    if (result == 0) {
      // End of stream (the header: `IOT_KIND_RECV` with result 0), whether or
      // not the kernel named a buffer (released above). Receiving again would
      // only get 0 again, at once, forever.
      _finish();
      return;
    }
    if (result < 0) {
      if (_socket.isClosed) {
        if (_core.isClosed) {
          _fail(closedError('recv', 'worker'));
        } else {
          _finish(); // closed locally
        }
      } else if (wasCancelling &&
          (result == -Errno.ecanceled || result == -Errno.enobufs)) {
        // Cancelled to pause. A multishot receive the kernel ended with
        // -ENOBUFS (pool empty) after it was cancelled is not resubmitted by
        // the native side (worker.rs `finish`: no retry once cancelled) and
        // reaches us as -ENOBUFS instead of -ECANCELED.
        if (!controller.isPaused) _start();
      } else {
        _fail(_core.error(result, 'recv', timeout: timeout));
      }
      return;
    }
    // Data on a final completion: this receive ended (a one-shot receive, or
    // one cancelled to pause). Receive again unless paused.
    if (!controller.isPaused) _start();
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    _tag = 0;
    _fail(error);
  }
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

  final TcpConnection _connection;

  /// Entries not yet (completely) queued natively.
  final Queue<_Outbound> _queue = Queue<_Outbound>();

  /// One element per native operation in flight, in order.
  final Queue<_Outbound> _inFlight = Queue<_Outbound>();

  int _tag = 0;
  bool _waiting = false;
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
      final timeoutMs = _timeoutMillis(entry.timeout, 'timeout');
      final data = entry.data;
      if (data != null) {
        while (entry.position < data.length) {
          final id = core.buffers.acquire();
          if (id < 0) {
            if (id == -Errno.enobufs) {
              _waiting = true;
              core.waitForSendBuffer(this);
            } else {
              _abort(core.error(id, 'write'));
            }
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
          entry
            ..position += n
            ..inFlight += 1;
          _inFlight.add(entry);
          core.submitted();
        }
      } else if (entry.isShutdown) {
        final rc = b.iot_socket_shutdown(
            core.id, _socket.id, IOT_SHUTDOWN_WRITE, _tag);
        if (rc < 0) {
          _abort(core.error(rc, 'shutdown',
              closedLocally: _connection._closeRequested));
          return;
        }
        entry.inFlight += 1;
        _inFlight.add(entry);
        core.submitted();
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
        entry.inFlight += 1;
        _inFlight.add(entry);
        core.submitted();
      }
      entry.submitted = true;
      _queue.removeFirst();
    }
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
    } else if (entry.inFlight == 0 && entry.submitted) {
      if (!entry.completer.isCompleted) entry.completer.complete();
    }
    if (_inFlight.isEmpty && _queue.isEmpty && _socket.isClosed) {
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

// ------------------------------------------------------------ hand-off
// For messages.dart (`TcpConnection.handOff`, `Worker.handedOffConnections`);
// not exported.

/// Wraps [socket], a connected stream that another worker handed over to
/// [core]'s worker, as a connection.
TcpConnection adoptTcpConnection(WorkerCore core, SocketHandle socket) =>
    TcpConnection._(core, socket);

/// The worker and socket of [connection], checked idle enough to hand over:
/// never read (neither listened to nor [TcpConnection.payloads] taken) and no
/// write queued or in flight. Returns null when it is closed; throws a
/// [StateError] when it is busy.
({WorkerCore core, SocketHandle socket})? tcpConnectionForHandOff(
    TcpConnection connection) {
  if (connection.isClosed || connection._core.isClosed) return null;
  if (connection._receiver != null) {
    throw StateError('a connection that was read cannot be handed off');
  }
  final sender = connection._sender;
  if (sender._queue.isNotEmpty || sender._inFlight.isNotEmpty) {
    throw StateError('a connection with writes pending cannot be handed off');
  }
  return (core: connection._core, socket: connection._socket);
}

/// [connection]'s socket was handed over: its handle is stale here, so it is
/// forgotten (not closed) and the connection counts as destroyed.
void tcpConnectionHandedOff(TcpConnection connection) {
  connection._socket.forget();
  connection.destroy();
}
