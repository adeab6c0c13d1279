/// Unix domain sockets: stream listeners and connections (the same reading,
/// writing and closing as TCP, `stream_connection.dart`) and datagram
/// sockets.
///
/// A socket path is a filesystem path, or `@name` for `name` in Linux's
/// abstract namespace (no file; write `./@x` for a file really named `@x`).
/// Names are at most 107 bytes.
library;

import 'dart:async';
import 'dart:ffi';
import 'dart:io' show InternetAddress, InternetAddressType;
import 'dart:typed_data';

import 'connection_listener.dart';
import 'datagram.dart';
import 'ffi/bindings.dart';
import 'ffi/socket_handles.dart';
import 'futures.dart';
import 'stream_connect.dart';
import 'stream_connection.dart';
import 'timeouts.dart';
import 'tls/secure_listener.dart';
import 'tls/tls_context.dart';
import 'tls/tls_session.dart';
import 'worker.dart';
import 'worker_core.dart';

/// The bind flags for [replaceStale].
int _bindFlags(bool replaceStale) => replaceStale ? IOT_UNIX_REPLACE_STALE : 0;

/// A listening Unix stream socket: a single-subscription stream of accepted
/// [UnixConnection]s, with the semantics of every [ConnectionListener].
///
/// Closing it removes the socket file it created (unless another file
/// replaced it meanwhile).
final class UnixListener extends ConnectionListener<UnixConnection> {
  UnixListener._(WorkerCore core, SocketHandle socket, this.path)
      : super.internal(
            core, socket, (accepted) => UnixConnection._(core, accepted));

  /// Listens on [path] (a filesystem path, or `@name` in the abstract
  /// namespace).
  ///
  /// An existing file at [path] fails the bind with errno 98 (`EADDRINUSE`),
  /// unless [replaceStale] is set and it is a socket file nobody listens on
  /// any more (left behind by a process that crashed): that one is removed
  /// and replaced. A live socket or any other file is never replaced.
  /// [backlog] is the kernel's accept queue length (0: the system maximum).
  static Future<UnixListener> bind(String path,
      {int backlog = 0, bool replaceStale = false, Worker? worker}) async {
    RangeError.checkValueInInterval(backlog, 0, 0x7fffffff, 'backlog');
    final core = workerCore(worker ?? Worker.current);
    final text = core.scratchFor('bind').path(path);
    final out = core.scratchFor('socket').u64;
    final rc =
        core.handle.unixListen(text, backlog, _bindFlags(replaceStale));
    if (rc < 0) throw core.error(rc, 'bind', path: path);
    return UnixListener._(core, SocketHandle(core.handle, out.value), path);
  }

  /// Listens as [bind] does, serving TLS with the server configuration
  /// [context]: see `TcpListener.bindSecure` (the [SecureListener]'s
  /// address is [path] as an `InternetAddressType.unix` address).
  static Future<SecureListener<UnixConnection>> bindSecure(
      String path, TlsContext context,
      {Duration? handshakeTimeout,
      int backlog = 0,
      bool replaceStale = false,
      Worker? worker}) async {
    if (!context.isServer) {
      throw ArgumentError.value(
          context, 'context', 'not a server context (TlsContext.server)');
    }
    timeoutMillis(handshakeTimeout, 'handshakeTimeout');
    final listener = await bind(path,
        backlog: backlog, replaceStale: replaceStale, worker: worker);
    return SecureListener<UnixConnection>.internal(listener, context,
        address: InternetAddress(path, type: InternetAddressType.unix),
        port: 0,
        handshakeTimeout: handshakeTimeout);
  }

  /// The path the listener is bound to, as given to [bind].
  final String path;

  @override
  String toString() => 'UnixListener($path)';
}

/// A Unix stream connection: a single-subscription stream of received
/// bytes, and an ordered writer with back-pressure. Reading, writing and
/// closing are those of every [StreamConnection].
final class UnixConnection extends StreamConnection {
  UnixConnection._(WorkerCore core, SocketHandle socket)
      : super.internal(core, socket);

  /// Connects to the Unix stream socket at [path] (`@name`: abstract).
  ///
  /// A missing socket fails with errno 2 (`ENOENT`), one nobody listens on
  /// with errno 111 (`ECONNREFUSED`). With a [timeout], a connect that is
  /// not established in time (a full backlog) fails with a
  /// [TransportTimeoutException].
  static Future<UnixConnection> connect(String path,
          {Duration? timeout, Worker? worker}) =>
      handledFuture(_connect(path, timeout, worker));

  /// Connects as [connect] does, then runs a TLS client handshake with
  /// [context] for [serverName] (the name the server's certificate must be
  /// valid for), as `TcpConnection.connectSecure` does. [timeout] bounds
  /// the connect and the handshake together.
  static Future<UnixConnection> connectSecure(
          String path, TlsContext context,
          {required String serverName, Duration? timeout, Worker? worker}) =>
      handledFuture(_connectSecure(path, context, serverName, timeout, worker));

  static Future<UnixConnection> _connectSecure(String path, TlsContext context,
      String serverName, Duration? timeout, Worker? worker) async {
    return connectSecured(
        context, serverName, timeout, () => _connect(path, timeout, worker));
  }

  static Future<UnixConnection> _connect(
      String path, Duration? timeout, Worker? worker) async {
    final timeoutMs = timeoutMillis(timeout, 'timeout');
    final core = workerCore(worker ?? Worker.current);
    final scratch = core.scratchFor('connect');
    return connectStream<UnixConnection>(
        core,
        timeout,
        (tag) => core.handle.unixConnect(scratch.path(path), tag, timeoutMs),
        (socket) => UnixConnection._(core, socket),
        path: path);
  }

  /// The local path of the connection: empty for a connecting socket
  /// (unnamed), the listener's path for an accepted one.
  String get path =>
      connectionAddress(this, IOT_ADDRESS_LOCAL, 'path').address;

  /// The peer's path: the listener's path for a connecting socket, empty
  /// for an accepted one (its peer is unnamed).
  String get remotePath =>
      connectionAddress(this, IOT_ADDRESS_PEER, 'remotePath').address;

  @override
  String toString() => 'UnixConnection(${connectionSocket(this).id})';
}

/// One received Unix datagram.
final class UnixDatagram {
  const UnixDatagram(this.data, this.path, {this.truncated = false});

  /// The payload (a copy; the native buffer went back to the pool).
  final Uint8List data;

  /// The sender's path (`@name` for an abstract name, including the names
  /// the kernel picks for sockets bound without a path); empty when the
  /// sender is not bound, so it cannot be answered.
  final String path;

  /// Whether the datagram was longer than the worker could take (a span of
  /// buffers, at least 65,535 bytes; or, on a worker whose buffers are too
  /// small to make spans of, `Worker.bufferSize` less a 144-byte header)
  /// and [data] holds only its first bytes.
  final bool truncated;

  @override
  String toString() => 'UnixDatagram(${data.length} bytes from '
      '${path.isEmpty ? '(unbound)' : path}${truncated ? ', truncated' : ''})';
}

/// A Unix datagram socket: a single-subscription stream of received
/// [UnixDatagram]s, and [send] to any socket path.
///
/// Receiving, sending and closing work like a `UdpSocket`'s: pausing
/// cancels the receive (datagrams wait in the kernel's queue), each send is
/// one native buffer and completes when the kernel took the datagram, and
/// [close] fails sends in flight with a [TransportClosedException]. A send
/// to a receiver whose queue is full waits (bound it with a timeout); one to
/// a missing receiver fails with errno 2 (`ENOENT`) or 111
/// (`ECONNREFUSED`). Closing removes the socket file the socket created.
final class UnixDatagramSocket extends Stream<UnixDatagram> {
  UnixDatagramSocket._(WorkerCore core, SocketHandle socket) {
    _channel = DatagramChannel<UnixDatagram>(core, socket, _datagram);
  }

  /// Binds a datagram socket to [path] (`@name`: abstract), or with a null
  /// [path] to a name the kernel picks in the abstract namespace, so the
  /// receivers of its datagrams can still answer ([path] tells it).
  /// [replaceStale] as for [UnixListener.bind].
  static Future<UnixDatagramSocket> bind(String? path,
      {bool replaceStale = false, Worker? worker}) async {
    final core = workerCore(worker ?? Worker.current);
    final text = path == null ? nullptr : core.scratchFor('bind').path(path);
    final out = core.scratchFor('socket').u64;
    final rc = core.handle.unixDatagramBind(text, _bindFlags(replaceStale));
    if (rc < 0) throw core.error(rc, 'bind', path: path);
    return UnixDatagramSocket._(core, SocketHandle(core.handle, out.value));
  }

  late final DatagramChannel<UnixDatagram> _channel;
  String? _path;

  /// Whether [close] was called (or the worker was closed).
  bool get isClosed => _channel.isClosed;

  /// The path the socket is bound to (`@name` for abstract names, including
  /// one the kernel picked).
  String get path => _path ??= _channel.localAddress('path').address;

  /// Bounds each wait for a datagram (null: no limit). Set it before
  /// listening. When it expires, the stream gets a
  /// [TransportTimeoutException] and ends.
  Duration? get readTimeout => _channel.readTimeout;

  set readTimeout(Duration? value) => _channel.readTimeout = value;

  UnixDatagram _datagram(Uint8List data, int bufferId, bool truncated) =>
      UnixDatagram(data, _channel.sender(bufferId).address,
          truncated: truncated);

  @override
  StreamSubscription<UnixDatagram> listen(
          void Function(UnixDatagram datagram)? onData,
          {Function? onError,
          void Function()? onDone,
          bool? cancelOnError}) =>
      _channel.stream.listen(onData,
          onError: onError, onDone: onDone, cancelOnError: cancelOnError);

  /// Sends [data] as one datagram to the socket at [path] (`@name`:
  /// abstract); completes when the kernel took it. [timeout] bounds the wait
  /// for room in the receiver's queue. [data] is read when a send buffer is
  /// free: do not modify it until the future completes. A datagram larger
  /// than a span of the worker's buffers (at least 65,535 bytes; or, on a
  /// worker whose buffers are too small to make spans of, one buffer) fails
  /// with errno 90 (`EMSGSIZE`).
  Future<void> send(List<int> data, String path, {Duration? timeout}) =>
      _channel.send(data, _UnixTarget(path), timeout);

  /// How many datagrams the kernel dropped for this socket (since it was
  /// created).
  int get dropped => _channel.dropped;

  /// Closes the socket at once (removing its socket file): sends in flight
  /// fail with a [TransportClosedException], the stream of datagrams ends.
  /// Idempotent.
  Future<void> close() {
    _channel.close();
    return Future<void>.value();
  }

  @override
  String toString() => 'UnixDatagramSocket(${_path ?? '?'})';
}

/// A datagram to a socket path.
final class _UnixTarget implements DatagramTarget {
  const _UnixTarget(this.path);

  final String path;

  @override
  int submit(WorkerCore core, SocketHandle socket, int bufferId, int length,
          int tag, int timeoutMs) =>
      socket.sendToPath(bufferId, 0, length,
          core.scratchFor('send').path(path), tag, timeoutMs);
}
