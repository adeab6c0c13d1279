/// [IoUringSocket]: a dart:io [Socket] whose reads and writes go through the
/// isolate's io_uring worker, for code written against dart:io.
library;

import 'dart:async';
import 'dart:convert';
import 'dart:io';
import 'dart:typed_data';

import '../exception.dart';
import '../ffi/socket_handles.dart';
import '../stream_connection.dart';
import '../tcp.dart';
import '../unix.dart';
import '../worker.dart';
import '../worker_core.dart';
import 'socket_exception.dart';

/// A connected TCP or Unix stream socket with dart:io's [Socket] semantics,
/// on an io_uring worker.
///
/// It goes wherever a [Socket] goes: reading is the stream (each event a
/// fresh [Uint8List]), writing is the [IOSink] (`add`, `addStream`,
/// `write*`, `flush`); [close] closes the sending side only (the peer reads
/// end of stream, and this side can still read), [destroy] closes both at
/// once, [done] completes when the sending side is closed or fails. The
/// socket is released when both sides are closed, or on the first error
/// (which both the input stream and [done] report, as dart:io does). Errors
/// are [SocketException]s naming the peer's address and port.
///
/// As in dart:io, [address] is the address this socket was connected to, or
/// for an accepted socket its listener's address ([port] is the real local
/// port); `done` of a socket destroyed before anything was added never
/// completes.
///
/// Writes are copied into the worker's native send buffers and sent in order;
/// while more than a few buffers' worth is waiting, the sink stops taking
/// data from an `addStream` (back-pressure, as dart:io's). Small chunks added
/// in one turn of the event loop leave as one send.
final class IoUringSocket extends Stream<Uint8List> implements Socket {
  IoUringSocket._(this._connection,
      {InternetAddress? address, int? port, InternetAddress? unixPeer})
      : _address = address,
        _port = port,
        _unixPeer = unixPeer {
    _input = StreamController<Uint8List>(
        sync: true,
        onListen: _startReading,
        onPause: () => _reading?.pause(),
        onResume: () => _reading?.resume(),
        onCancel: _stopReading);
    _consumer = _SocketSink(this);
    _sink = IOSink(_consumer);
  }

  /// Wraps an accepted or connected TCP connection ([address] is then its
  /// local address).
  IoUringSocket.fromTcp(TcpConnection connection) : this._(connection);

  /// Connects to [host] on [port], like [Socket.connect].
  ///
  /// [host] is a `String` (a name is looked up), an [InternetAddress], or a
  /// Unix socket address (`InternetAddress(path, type:
  /// InternetAddressType.unix)`, [port] ignored). With a [timeout], a
  /// connection not established in time fails. Every failure is a
  /// [SocketException]. A TCP socket is bound to [sourceAddress] (an
  /// [InternetAddress] or a numeric `String`) and [sourcePort] (0: any)
  /// before connecting, when given; a Unix socket takes neither.
  static Future<IoUringSocket> connect(Object host, int port,
      {Object? sourceAddress,
      int sourcePort = 0,
      Duration? timeout,
      Worker? worker}) async {
    final remote = host is InternetAddress
        ? host
        : host is String
            ? InternetAddress.tryParse(host)
            : null;
    try {
      if (remote != null && remote.type == InternetAddressType.unix) {
        if (sourceAddress != null || sourcePort != 0) {
          throw ArgumentError.value(sourceAddress, 'sourceAddress',
              'a Unix socket connects from no source address or port');
        }
        final connection = await UnixConnection.connect(remote.address,
            timeout: timeout, worker: worker);
        return IoUringSocket._(connection,
            address: remote, port: 0, unixPeer: remote);
      }
      if (port == 0 && (remote != null || host is String)) {
        await _refusePortZero(host, remote);
      }
      final connection = await TcpConnection.connect(host, port,
          sourceAddress: sourceAddress,
          sourcePort: sourcePort,
          timeout: timeout,
          worker: worker);
      // dart:io's `address` of a connected socket is the address it
      // connected to (the looked-up one for a name).
      return IoUringSocket._(connection,
          address: connection.remoteAddress, port: connection.localPort);
    } on TransportException catch (error) {
      throw socketError(error, address: remote, port: port);
    }
  }

  /// Fails as a connect to port 0 fails in dart:io, where Linux refuses it
  /// (`ECONNREFUSED`) without a packet sent: after looking [host] up (a
  /// name that does not resolve fails as that).
  static Future<Never> _refusePortZero(
      Object host, InternetAddress? remote) async {
    final address =
        remote ?? (await InternetAddress.lookup(host as String)).first;
    final refused = TransportException(_refusedText,
        operation: 'connect', code: -_econnrefused);
    throw socketError(refused, address: address, port: 0);
  }

  final StreamConnection _connection;
  late final StreamController<Uint8List> _input;
  late final _SocketSink _consumer;
  late final IOSink _sink;

  /// What [address] and [port] answer (looked up when first asked for when
  /// null, and kept once the socket is released).
  InternetAddress? _address;
  int? _port;

  /// The peer of a Unix socket connected by path (null otherwise).
  final InternetAddress? _unixPeer;

  /// The subscription to the connection while the input stream is listened
  /// to.
  StreamSubscription<Uint8List>? _reading;

  /// The input stream ended, failed, or its subscription was cancelled.
  bool _readClosed = false;

  /// The sending side was shut down (after [close]) or failed.
  bool _writeClosed = false;

  /// The native socket was closed (both sides closed, an error, or
  /// [destroy]): the remote address is unknown from then on.
  bool _released = false;

  /// [destroy] was called: no address is known from then on.
  bool _destroyed = false;

  // ------------------------------------------------------------ reading

  @override
  StreamSubscription<Uint8List> listen(void Function(Uint8List event)? onData,
          {Function? onError, void Function()? onDone, bool? cancelOnError}) =>
      _input.stream.listen(onData,
          onError: onError, onDone: onDone, cancelOnError: cancelOnError);

  void _startReading() {
    if (_input.isClosed) return;
    _reading = _connection.listen(_input.add,
        onError: (Object error) => _fail(_error(error)), onDone: _readEnded);
  }

  void _readEnded() {
    _reading = null;
    _readClosed = true;
    _closeInput();
    if (connectionCore(_connection).isClosed) {
      _closedWithWorker();
    } else if (_writeClosed) {
      _release();
    }
  }

  /// The worker was closed: the socket ends as [destroy] ends it, and [done]
  /// completes (a later [close] completes too, as dart:io's does once the
  /// socket is gone).
  void _closedWithWorker() {
    _writeClosed = true;
    _consumer.stop();
    _release();
    // Once the stopped `addStream` has let go of the sink (a turn later).
    unawaited(Future<void>(() async {
      try {
        await _sink.close();
      } on StateError {
        // Bound to a stream the program added since: that one ends it.
      }
    }));
  }

  /// The input subscription was cancelled: reading stops, writing goes on.
  Future<void>? _stopReading() {
    _readClosed = true;
    final reading = _reading;
    _reading = null;
    if (_writeClosed) _release();
    return reading?.cancel();
  }

  void _closeInput() {
    if (!_input.isClosed) unawaited(_input.close());
  }

  /// The first error of either side, as dart:io handles it: the input stream
  /// gets it (then ends), the sink's current `addStream` fails with it, and
  /// the socket is released.
  void _fail(Object error) {
    if (_released) return;
    if (!_input.isClosed) {
      _input.addError(error);
      _closeInput();
    }
    _readClosed = true;
    _writeClosed = true;
    _consumer.stop(error);
    _release();
  }

  // ------------------------------------------------------------ writing

  @override
  Encoding get encoding => _sink.encoding;

  @override
  set encoding(Encoding value) => _sink.encoding = value;

  @override
  void add(List<int> data) => _sink.add(data);

  /// Throws an [UnsupportedError]: errors cannot be sent over a socket.
  @override
  void addError(Object error, [StackTrace? stackTrace]) =>
      throw UnsupportedError('Cannot send errors on sockets');

  @override
  Future<void> addStream(Stream<List<int>> stream) => _sink.addStream(stream);

  @override
  void write(Object? object) => _sink.write(object);

  @override
  void writeAll(Iterable<Object?> objects, [String separator = '']) =>
      _sink.writeAll(objects, separator);

  @override
  void writeCharCode(int charCode) => _sink.writeCharCode(charCode);

  @override
  void writeln([Object? object = '']) => _sink.writeln(object);

  @override
  Future<void> flush() => _sink.flush();

  /// Closes the sending side once everything added was sent (the peer reads
  /// end of stream); reading goes on. Completes like [done].
  @override
  Future<void> close() => _sink.close();

  /// Completes with this socket when the sending side was closed, or fails
  /// with the socket's first error.
  @override
  Future<void> get done => _sink.done;

  /// Closes both sides at once, as dart:io's does: the input stream ends, a
  /// pending [close] or [done] completes, the current `addStream` stops
  /// taking data. What the kernel takes at once of the bytes the sink took
  /// still goes out (the kernel sends it after the close, as it does what
  /// dart:io wrote into it); the rest is dropped. Nothing waits for the peer.
  @override
  void destroy() {
    if (_destroyed) return;
    _destroyed = true;
    _readClosed = true;
    _writeClosed = true;
    _consumer.stop();
    // The small chunks gathered in this turn are queued too: closing the
    // native socket lets the kernel take what it can of the queue.
    _consumer.sendPending();
    _release();
    final reading = _reading;
    _reading = null;
    unawaited(reading?.cancel());
    _closeInput();
  }

  /// Closes the native socket.
  void _release() {
    if (_released) return;
    // Kept for the questions dart:io still answers once the socket is
    // closed (not destroyed).
    try {
      _address = address;
      _port = port;
    } on SocketException {
      // Closed already (the worker was closed).
    }
    _released = true;
    _consumer.released();
    _connection.destroy();
  }

  // ------------------------------------------------------------ addresses

  TcpConnection? get _tcp {
    final connection = _connection;
    return connection is TcpConnection ? connection : null;
  }

  UnixConnection get _unix => _connection as UnixConnection;

  /// [read] for a socket not destroyed ([remote]: not released either).
  T _query<T>(T Function() read, {bool remote = false}) {
    if (_destroyed || (remote && _released)) {
      throw const SocketException.closed();
    }
    try {
      return read();
    } on TransportException catch (error) {
      throw socketError(error);
    }
  }

  @override
  InternetAddress get address => _query(() => _address ??= _localAddress());

  InternetAddress _localAddress() =>
      _tcp?.localAddress ??
      InternetAddress(_unix.path, type: InternetAddressType.unix);

  @override
  int get port => _query(() => _port ??= _tcp?.localPort ?? 0);

  /// The peer's address, as the kernel names it: without the host name a
  /// connection by name was looked up with (as dart:io's).
  @override
  InternetAddress get remoteAddress => _query(() {
        final tcp = _tcp;
        if (tcp == null) {
          return _unixPeer ??
              InternetAddress(_unix.remotePath, type: InternetAddressType.unix);
        }
        final peer = tcp.remoteAddress;
        return peer.host == peer.address ? peer : InternetAddress(peer.address);
      }, remote: true);

  /// The peer's port (0 for a Unix socket, even once it is closed, as
  /// dart:io says).
  @override
  int get remotePort {
    final tcp = _tcp;
    return _query(() => tcp?.remotePort ?? 0, remote: tcp != null);
  }

  // ------------------------------------------------------------ options

  /// Sets [option], as dart:io does: [SocketOption.tcpNoDelay] (connections
  /// start with it on) is `TCP_NODELAY`; returns true. Throws an [OSError]
  /// when the kernel refuses (as for a Unix socket), as dart:io does.
  @override
  bool setOption(SocketOption option, bool enabled) {
    if (option != SocketOption.tcpNoDelay) {
      throw UnsupportedError('setOption($option)');
    }
    setRawOption(RawSocketOption.fromBool(
        RawSocketOption.levelTcp, _tcpNoDelay, enabled));
    return true;
  }

  /// Reads the option [option] names (`getsockopt` with room for
  /// `option.value.length` bytes). As in dart:io the kernel's bytes land in
  /// `option.value`; the result is those bytes (`option.value` itself when
  /// the kernel filled it, else a view of its start). As in dart:io, the
  /// kernel's refusal is an [OSError] with the errno, and a socket that is
  /// closed throws a [SocketException].
  @override
  Uint8List getRawOption(RawSocketOption option) => _option('getRawOption',
      (core, socket) {
        final into = option.value;
        _checkRawLength(core, into.length, 'getRawOption');
        final written =
            socket.getRawOption(option.level, option.option, into);
        if (written < 0) throw _osError(core, written, 'getRawOption');
        return written == into.length
            ? into
            : Uint8List.sublistView(into, 0, written);
      });

  /// Sets the option [option] names to the bytes of `option.value`
  /// (`setsockopt`). As in dart:io, the kernel's refusal is an [OSError]
  /// with the errno, and a socket that is closed throws a [SocketException].
  @override
  void setRawOption(RawSocketOption option) => _option(
      'setRawOption',
      (core, socket) {
        _checkRawLength(core, option.value.length, 'setRawOption');
        final rc =
            socket.setRawOption(option.level, option.option, option.value);
        if (rc < 0) throw _osError(core, rc, 'setRawOption');
      });

  /// The native error [code] of [operation]: an [OSError] when it is the
  /// kernel's errno (as dart:io throws for `getsockopt`/`setsockopt`), else
  /// the [TransportException] (a closed socket), which becomes a
  /// [SocketException].
  static Object _osError(WorkerCore core, int code, String operation) {
    final error = core.error(code, operation);
    final errno = error.errno;
    if (errno == null || error is TransportClosedException) return error;
    // dart:io's message is the C library's text alone.
    final text = error.nativeMessage ?? error.message;
    return OSError(text.replaceFirst(_osErrorSuffix, ''), errno);
  }

  static void _checkRawLength(WorkerCore core, int length, String operation) {
    final capacity = core.handle.scratch.capacity;
    if (length > capacity) {
      throw ArgumentError.value(
          length, operation, 'option value longer than $capacity bytes');
    }
  }

  /// [call] with the worker and the socket, for a socket not yet released;
  /// native errors become [SocketException]s.
  T _option<T>(String operation,
      T Function(WorkerCore core, SocketHandle socket) call) {
    final socket = connectionSocket(_connection);
    if (_destroyed || _released || socket.isClosed) {
      throw const SocketException.closed();
    }
    final core = connectionCore(_connection);
    try {
      core.scratchFor(operation);
      return call(core, socket);
    } on TransportException catch (error) {
      throw socketError(error);
    }
  }

  /// [error] as dart:io reports it: a [SocketException] naming the peer.
  Object _error(Object error) {
    if (error is! TransportException) return error;
    InternetAddress? peer;
    int? peerPort;
    try {
      peer = remoteAddress;
      peerPort = remotePort;
    } on SocketException {
      // Closed: the error names no peer.
    }
    return socketError(error, address: peer, port: peerPort);
  }

  @override
  String toString() => 'IoUringSocket($_connection)';
}

/// [connection], accepted by a listener bound to [address] and [port]: as in
/// dart:io, those are the socket's [IoUringSocket.address] and
/// [IoUringSocket.port].
IoUringSocket acceptedSocket(
        StreamConnection connection, InternetAddress address, int port) =>
    IoUringSocket._(connection, address: address, port: port);

/// What the native library appends to the C library's text of an errno.
final RegExp _osErrorSuffix = RegExp(r' \(os error \d+\)$');

/// `ECONNREFUSED` from errno.h, and the native library's text for it.
const int _econnrefused = 111;
const String _refusedText = 'Connection refused (os error 111)';

/// `TCP_NODELAY` from netinet/tcp.h.
const int _tcpNoDelay = 1;

/// Bytes waiting to be sent beyond which an `addStream` is paused.
const int _writeWindow = 64 * 1024;

/// Chunks smaller than this are gathered and sent together (see
/// [_SocketSink._pending]).
const int _gatherLimit = 16 * 1024;

/// What the socket's [IOSink] writes to: each chunk goes to the connection's
/// ordered writer; closing shuts the sending side down. Like dart:io's, its
/// futures complete with the socket.
final class _SocketSink implements StreamConsumer<List<int>> {
  _SocketSink(this._socket);

  final IoUringSocket _socket;
  StreamSubscription<List<int>>? _subscription;
  Completer<IoUringSocket>? _added;

  /// Bytes added and not sent yet (gathered or in flight).
  int _waitingBytes = 0;

  /// Small chunks added in this turn of the event loop, sent as one write at
  /// its end. dart:io writes each chunk into the kernel at once, so what one
  /// turn adds (an HTTP response's headers and a small body) leaves in one
  /// segment; sent one by one, each would wait for the send before it, and
  /// a peer could read them apart (dart:io's HttpClient then opens another
  /// connection for the next request instead of reusing this one).
  ///
  /// They are copied straight into a native send buffer taken for the turn
  /// ([_gatherId], -1 for none; [_gathered] bytes so far); when no send
  /// buffer is free (or a chunk does not fit one) they wait in [_pending]
  /// as they are (as dart:io's sink, which may keep a chunk it could not
  /// write at once: the writer does not modify it after adding it).
  final BytesBuilder _pending = BytesBuilder(copy: false);
  bool _sendScheduled = false;
  int _gatherId = -1;
  int _gathered = 0;

  /// The `addStream` ended: it completes once nothing added waits.
  bool _finishWhenSent = false;

  StreamConnection get _connection => _socket._connection;

  @override
  Future<IoUringSocket> addStream(Stream<List<int>> stream) {
    final added = _added = Completer<IoUringSocket>();
    _finishWhenSent = false;
    if (_socket._released) {
      // As dart:io: what is added after the socket was closed goes nowhere.
      added.complete(_socket);
      return added.future;
    }
    _subscription = stream.listen(_write,
        onError: (Object error, StackTrace stack) {
      // As dart:io: an error of the added stream destroys the socket.
      _subscription = null;
      _socket.destroy();
      _finish(error, stack);
    }, onDone: () {
      _subscription = null;
      _sendPending();
      // As dart:io's, the stream is added once the kernel took all of it
      // (a destroy() from then on loses none of it; an HTTP server
      // destroys a connection it will not reuse once the response is
      // added).
      if (_waitingBytes == 0) {
        _finish();
      } else {
        _finishWhenSent = true;
      }
    }, cancelOnError: true);
    return added.future;
  }

  void _write(List<int> data) {
    if (data.isEmpty || _socket._released) return;
    _waitingBytes += data.length;
    if (data.length >= _gatherLimit) {
      _sendPending();
      _send(data);
    } else if (_gather(data)) {
      if (!_sendScheduled) {
        _sendScheduled = true;
        scheduleMicrotask(_sendPending);
      }
    }
    if (_waitingBytes > _writeWindow) _subscription?.pause();
  }

  /// Adds [data] to the chunks gathered in this turn; returns false when
  /// they were sent right away (a full [_gatherLimit]).
  bool _gather(List<int> data) {
    final buffers = connectionCore(_connection).buffers;
    if (_gatherId >= 0 && _gathered + data.length > buffers.bufferSize) {
      _sendPending();
    }
    if (_gatherId < 0 && _pending.isEmpty) _takeSendBuffer(data.length);
    if (_gatherId >= 0) {
      buffers.fill(_gatherId, data, 0, data.length, offset: _gathered);
      _gathered += data.length;
      return true;
    }
    _pending.add(data);
    if (_pending.length < _gatherLimit) return true;
    _sendPending();
    return false;
  }

  /// Takes a free send buffer to gather at least [length] bytes in, if
  /// there is one.
  void _takeSendBuffer(int length) {
    final core = connectionCore(_connection);
    final buffers = core.buffers;
    if (core.isClosed || length > buffers.bufferSize) return;
    final id = buffers.acquire();
    if (id < 0) return;
    _gatherId = id;
    _gathered = 0;
  }

  /// Sends the gathered chunks (if any) as one write.
  void _sendPending() {
    _sendScheduled = false;
    if (_gatherId >= 0) {
      final id = _gatherId;
      final length = _gathered;
      _dropGathered(release: false);
      connectionSendBuffer(
          _connection, id, length, (error) => _sent(length, error));
    }
    if (_pending.isEmpty) return;
    _send(_pending.takeBytes());
  }

  /// Forgets the gathered chunks (the socket was released); gives their send
  /// buffer back when [release].
  void _dropGathered({bool release = true}) {
    if (_gatherId >= 0 && release) {
      connectionCore(_connection).releaseBuffer(_gatherId);
    }
    _gatherId = -1;
    _gathered = 0;
    if (release) _pending.clear();
  }

  /// The socket was released: what was gathered goes nowhere.
  void released() => _dropGathered();

  /// Hands the gathered chunks over to the connection.
  void sendPending() => _sendPending();

  void _send(List<int> data) {
    if (_socket._released) return;
    final length = data.length;
    connectionWriteQuietly(_connection, data, (error) => _sent(length, error));
  }

  /// A write of [length] bytes was sent, or failed with [error].
  void _sent(int length, Object? error) {
    if (error != null) {
      // Told from inside the sender: handled once it is settled.
      scheduleMicrotask(() => _writeFailed(error));
      return;
    }
    _waitingBytes -= length;
    final subscription = _subscription;
    if (subscription != null &&
        subscription.isPaused &&
        _waitingBytes <= _writeWindow) {
      subscription.resume();
    }
    if (_finishWhenSent && _waitingBytes == 0) {
      _finishWhenSent = false;
      _finish();
    }
  }

  /// A write (or the flush ending an `addStream`) failed. Once the socket
  /// was released (destroyed, or failed already), the writes it cut short
  /// fail too: that is no news.
  void _writeFailed(Object error) {
    if (_socket._released) {
      _finish();
    } else {
      _socket._fail(_socket._error(error));
    }
  }

  /// Stops taking from the current `addStream` and ends it: with [error],
  /// or else successfully (as dart:io's does when the socket is destroyed).
  void stop([Object? error]) {
    unawaited(_subscription?.cancel());
    _subscription = null;
    _finish(error);
  }

  void _finish([Object? error, StackTrace? stack]) {
    final added = _added;
    if (added == null || added.isCompleted) return;
    if (error == null) {
      added.complete(_socket);
    } else {
      added.completeError(error, stack);
    }
  }

  @override
  Future<IoUringSocket> close() async {
    final socket = _socket;
    if (socket._released) return socket;
    try {
      await _connection.shutdownWrite();
    } on TransportException catch (error) {
      // Released meanwhile (destroyed or failed): as dart:io, close is done.
      if (socket._released) return socket;
      final failure = socket._error(error);
      socket._fail(failure);
      throw failure;
    }
    socket._writeClosed = true;
    if (socket._readClosed) socket._release();
    return socket;
  }
}
