/// [IoUringSocket]: a dart:io [Socket] whose reads and writes go through the
/// isolate's io_uring worker, for code written against dart:io.
library;

import 'dart:async';
import 'dart:convert';
import 'dart:io';
import 'dart:typed_data';

import '../exception.dart';
import '../stream_connection.dart';
import '../tcp.dart';
import '../unix.dart';
import '../worker.dart';
import 'socket_exception.dart';

/// A connected TCP or Unix stream socket with dart:io's [Socket] semantics,
/// on an io_uring worker.
///
/// It goes wherever a [Socket] goes: reading is the stream (each event a
/// fresh [Uint8List]), writing is the [IOSink] (`add`, `addStream`,
/// `write*`, `flush`); [close] closes the sending side only (the peer reads
/// end of stream, and this side can still read), [destroy] closes both at
/// once, [done] completes when the sending side is closed or fails. The
/// socket is released when both sides are closed. Errors are
/// [SocketException]s naming the peer's address and port.
///
/// Writes are copied into the worker's native send buffers and sent in order;
/// while more than a few buffers' worth is waiting, the sink stops taking
/// data from an `addStream` (back-pressure, as dart:io's).
final class IoUringSocket extends Stream<Uint8List> implements Socket {
  IoUringSocket._(this._connection, {InternetAddress? unixAddress})
      : _unixAddress = unixAddress {
    _sink = IOSink(_SocketSink(this));
  }

  /// Wraps an accepted or connected TCP connection.
  IoUringSocket.fromTcp(TcpConnection connection) : this._(connection);

  /// Connects to [host] on [port], like [Socket.connect].
  ///
  /// [host] is a `String` (a name is looked up), an [InternetAddress], or a
  /// Unix socket address (`InternetAddress(path, type:
  /// InternetAddressType.unix)`, [port] ignored). With a [timeout], a
  /// connection not established in time fails. Every failure is a
  /// [SocketException]. [sourceAddress] and [sourcePort] are not supported
  /// yet and must be left out.
  static Future<IoUringSocket> connect(Object host, int port,
      {Object? sourceAddress,
      int sourcePort = 0,
      Duration? timeout,
      Worker? worker}) async {
    if (sourceAddress != null || sourcePort != 0) {
      throw UnsupportedError('sourceAddress and sourcePort');
    }
    final remote = host is InternetAddress ? host : null;
    try {
      if (remote != null && remote.type == InternetAddressType.unix) {
        final connection = await UnixConnection.connect(remote.address,
            timeout: timeout, worker: worker);
        return IoUringSocket._(connection, unixAddress: remote);
      }
      return IoUringSocket.fromTcp(await TcpConnection.connect(host, port,
          timeout: timeout, worker: worker));
    } on TransportException catch (error) {
      throw socketError(error, address: remote, port: port);
    }
  }

  final StreamConnection _connection;

  /// The peer's address of a Unix socket connected by path (null for TCP).
  final InternetAddress? _unixAddress;
  late final IOSink _sink;

  /// The input stream ended, failed, or its subscription was cancelled.
  bool _readClosed = false;

  /// The sending side was shut down (after [close]) or failed.
  bool _writeClosed = false;

  /// The socket was released ([destroy], or both sides closed).
  bool _destroyed = false;

  // ------------------------------------------------------------ reading

  @override
  StreamSubscription<Uint8List> listen(void Function(Uint8List event)? onData,
      {Function? onError, void Function()? onDone, bool? cancelOnError}) {
    late final StreamSubscription<Uint8List> input;
    final controller = StreamController<Uint8List>(
        sync: true,
        onPause: () => input.pause(),
        onResume: () => input.resume(),
        onCancel: () {
          _readSideClosed();
          return input.cancel();
        });
    input = _connection.listen(controller.add, onError: (Object error) {
      controller.addError(_error(error));
    }, onDone: () {
      _readSideClosed();
      unawaited(controller.close());
    });
    return controller.stream.listen(onData,
        onError: onError, onDone: onDone, cancelOnError: cancelOnError);
  }

  void _readSideClosed() {
    _readClosed = true;
    if (_writeClosed) _release();
  }

  // ------------------------------------------------------------ writing

  @override
  Encoding get encoding => _sink.encoding;

  @override
  set encoding(Encoding value) => _sink.encoding = value;

  @override
  void add(List<int> data) => _sink.add(data);

  @override
  void addError(Object error, [StackTrace? stackTrace]) =>
      _sink.addError(error, stackTrace);

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

  @override
  Future<void> get done => _sink.done;

  /// Closes both sides at once: data not yet sent is dropped, the input
  /// stream ends.
  @override
  void destroy() {
    _readClosed = true;
    _writeClosed = true;
    _release();
  }

  void _release() {
    if (_destroyed) return;
    _destroyed = true;
    _connection.destroy();
  }

  // ------------------------------------------------------------ addresses

  TcpConnection? get _tcp {
    final connection = _connection;
    return connection is TcpConnection ? connection : null;
  }

  UnixConnection get _unix => _connection as UnixConnection;

  T _query<T>(T Function() read) {
    try {
      return read();
    } on TransportException catch (error) {
      throw socketError(error);
    }
  }

  @override
  InternetAddress get address => _query(() {
        final tcp = _tcp;
        return tcp != null
            ? tcp.localAddress
            : InternetAddress(_unix.path, type: InternetAddressType.unix);
      });

  @override
  int get port => _query(() => _tcp?.localPort ?? 0);

  @override
  InternetAddress get remoteAddress => _query(() {
        final tcp = _tcp;
        if (tcp != null) return tcp.remoteAddress;
        return _unixAddress ??
            InternetAddress(_unix.remotePath, type: InternetAddressType.unix);
      });

  @override
  int get remotePort => _query(() => _tcp?.remotePort ?? 0);

  // ------------------------------------------------------------ options

  /// Sets [option]. Connections are created with `TCP_NODELAY` on, and
  /// [SocketOption.tcpNoDelay] can only keep it so for now.
  @override
  bool setOption(SocketOption option, bool enabled) {
    if (option == SocketOption.tcpNoDelay && enabled) return true;
    throw UnsupportedError('setOption($option, $enabled)');
  }

  @override
  Uint8List getRawOption(RawSocketOption option) =>
      throw UnsupportedError('getRawOption');

  @override
  void setRawOption(RawSocketOption option) =>
      throw UnsupportedError('setRawOption');

  /// [error] as dart:io reports it: a [SocketException] naming the peer.
  Object _error(Object error) {
    if (error is! TransportException) return error;
    InternetAddress? peer;
    int? peerPort;
    try {
      peer = remoteAddress;
      peerPort = remotePort;
    } on Object {
      // Closed: the error names no peer.
    }
    return socketError(error, address: peer, port: peerPort);
  }

  @override
  String toString() => 'IoUringSocket($_connection)';
}

/// Bytes waiting to be sent beyond which an `addStream` is paused.
const int _writeWindow = 64 * 1024;

/// What the socket's [IOSink] writes to: each chunk goes to the connection's
/// ordered writer; closing shuts the sending side down.
final class _SocketSink implements StreamConsumer<List<int>> {
  _SocketSink(this._socket);

  final IoUringSocket _socket;
  StreamSubscription<List<int>>? _subscription;
  Completer<void>? _added;
  int _waitingBytes = 0;

  StreamConnection get _connection => _socket._connection;

  @override
  Future<void> addStream(Stream<List<int>> stream) {
    final added = _added = Completer<void>();
    if (_socket._destroyed) {
      // As dart:io: what is added after destroy() goes nowhere.
      added.complete();
      return added.future;
    }
    _subscription = stream.listen(_write,
        onError: (Object error, StackTrace stack) {
      _socket.destroy();
      _finish(error, stack);
    }, onDone: () {
      _subscription = null;
      _connection.flush().then((_) => _finish(), onError: _fail);
    }, cancelOnError: true);
    return added.future;
  }

  void _write(List<int> data) {
    if (data.isEmpty) return;
    if (_socket._destroyed) return;
    final length = data.length;
    _waitingBytes += length;
    _connection.write(data).then((_) {
      _waitingBytes -= length;
      final subscription = _subscription;
      if (subscription != null &&
          subscription.isPaused &&
          _waitingBytes <= _writeWindow) {
        subscription.resume();
      }
    }, onError: _fail);
    if (_waitingBytes > _writeWindow) _subscription?.pause();
  }

  void _fail(Object error) {
    _subscription?.cancel();
    _subscription = null;
    _socket._writeClosed = true;
    if (!_socket._destroyed) _socket.destroy();
    _finish(_socket._error(error));
  }

  void _finish([Object? error, StackTrace? stack]) {
    final added = _added;
    if (added == null || added.isCompleted) return;
    if (error == null) {
      added.complete();
    } else {
      added.completeError(error, stack);
    }
  }

  @override
  Future<void> close() async {
    if (_socket._destroyed) return;
    try {
      await _connection.shutdownWrite();
    } on TransportException catch (error) {
      if (_socket._destroyed) return;
      throw _socket._error(error);
    } finally {
      _socket._writeClosed = true;
      if (_socket._readClosed) _socket._release();
    }
  }
}
