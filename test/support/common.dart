/// Helpers shared by the tests: loading the native library, test bytes,
/// reading exact byte counts from a stream, echo servers, connected pairs of
/// every stream and datagram kind, peers that reset, waits on a worker's own
/// drains (never on a timer) and a zone that records uncaught errors.
library;

import 'dart:async';
import 'dart:collection';
import 'dart:io';
import 'dart:math' as math;
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'inbox.dart';
import 'leaks.dart';

/// Loads the native library (the repository's development build unless
/// `IOURING_TRANSPORT_LIB` says otherwise) before the tests of a file run.
/// Also checks that the file's tests leak no file descriptor and no payload
/// (see `checkLeaksAroundFile`).
void setUpTransport() {
  setUpAll(() {
    loadTransportLibrary();
  });
  checkLeaksAroundFile();
}

/// A fresh worker for one test, closed when the test ends.
Worker testWorker([WorkerConfig config = const WorkerConfig()]) {
  final worker = Worker(config: config);
  addTearDown(worker.close);
  return worker;
}

/// Deterministic, non-repeating-looking test bytes (xorshift32).
Uint8List pattern(int length, int seed) {
  final out = Uint8List(length);
  var x = ((seed * 2654435761) & 0xffffffff) | 1;
  for (var i = 0; i < length; i++) {
    x ^= (x << 13) & 0xffffffff;
    x ^= x >> 17;
    x ^= (x << 5) & 0xffffffff;
    out[i] = x & 0xff;
  }
  return out;
}

/// [length] bytes that start with [number] (4 bytes, little endian).
Uint8List numbered(int number, [int length = 4]) {
  final bytes = Uint8List(length);
  ByteData.sublistView(bytes).setUint32(0, number, Endian.little);
  return bytes;
}

/// The number [numbered] put at the start of [bytes].
int numberOf(Uint8List bytes) =>
    ByteData.sublistView(bytes).getUint32(0, Endian.little);

/// Whether [a] and [b] hold the same bytes (fast enough for many MiB).
bool sameBytes(List<int> a, List<int> b) {
  if (a.length != b.length) return false;
  for (var i = 0; i < a.length; i++) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

/// Waits until [condition] holds for the counters of [worker].
///
/// The counters change when the worker drains completions (or when the test
/// itself releases or closes something), so the condition is checked after
/// each round trip of an operation through the worker's own ring (a stat of
/// `/`): every check follows one more drain, and no timer is involved. A
/// condition the kernel never brings about fails the test after
/// [maxRoundTrips] round trips or [testWait].
Future<void> untilStats(
    Worker worker, bool Function(WorkerStats stats) condition,
    {required String reason, int maxRoundTrips = 100000}) async {
  final watch = Stopwatch()..start();
  for (var trips = 0; !condition(worker.stats()); trips++) {
    if (trips >= maxRoundTrips || watch.elapsed > testWait) {
      fail('$reason: not reached after $trips round trips '
          '(${watch.elapsed}): ${worker.stats()}');
    }
    await nextDrain(worker);
  }
}

/// Completes after one more operation went through [worker]'s ring and its
/// completion was drained: every completion the kernel posted before it was
/// drained (and dispatched) by then, too.
Future<void> nextDrain(Worker worker) =>
    IoFile.statPath('/', worker: worker).bounded;

/// Waits until [worker] has no operation in flight, no buffer out and no
/// socket or file open (see [untilStats]).
Future<void> expectNothingLeft(Worker worker) => untilStats(
    worker,
    (stats) =>
        stats.opsInFlight == 0 &&
        stats.buffersOutstanding == 0 &&
        stats.socketsOpen == 0,
    reason: 'nothing left behind');

/// Runs [body] in a zone of its own and returns the errors that reached that
/// zone uncaught (futures and streams that failed with nobody listening),
/// after [body] completed and one more event-loop turn let late reports in.
/// An error [body] itself throws fails the test.
Future<List<Object>> uncaughtErrorsOf(Future<void> Function() body) async {
  final uncaught = <Object>[];
  final finished = Completer<void>();
  runZonedGuarded(() {
    body().then(finished.complete, onError: finished.completeError);
  }, (error, stack) => uncaught.add(error));
  await finished.future.bounded;
  await Future<void>(() {});
  return uncaught;
}

/// Makes a FIFO at [path] (with `mkfifo`, which every Linux has) and returns
/// [path]; fails the test if it cannot.
Future<String> makeFifo(String path) async {
  final result = await Process.run('mkfifo', [path]).bounded;
  if (result.exitCode != 0) fail('mkfifo $path failed: ${result.stderr}');
  return path;
}

/// Whether this machine has an IPv6 loopback.
Future<bool> ipv6Available() async {
  try {
    final socket = await ServerSocket.bind(InternetAddress.loopbackIPv6, 0);
    await socket.close();
    return true;
  } on SocketException {
    return false;
  }
}

/// A dart:io listener whose accepted sockets are never read (their receive
/// windows fill up) and stay open until the test ends.
Future<ServerSocket> silentPeer() async {
  final server =
      await ServerSocket.bind(InternetAddress.loopbackIPv4, 0).bounded;
  final accepted = <Socket>[];
  server.listen(accepted.add);
  addTearDown(() async {
    for (final socket in accepted) {
      socket.destroy();
    }
    await server.close();
  });
  return server;
}

/// A client on [worker] connected to a dart:io server, and the dart:io
/// socket the server accepted for it (the server is closed again).
Future<(TcpConnection client, Socket peer)> dartIoPeer(Worker worker) async {
  final server =
      await ServerSocket.bind(InternetAddress.loopbackIPv4, 0).bounded;
  final accepted = server.first;
  final client = await TcpConnection.connect(
          InternetAddress.loopbackIPv4, server.port,
          worker: worker)
      .bounded;
  addTearDown(client.destroy);
  final peer = await accepted.bounded;
  addTearDown(peer.destroy);
  return (client, peer);
}

/// `SO_LINGER` on Linux.
const int _soLinger = 13;

/// `SO_LINGER` on with a zero timeout: closing the socket then sends an RST
/// instead of a FIN.
RawSocketOption resetOnClose() {
  // struct linger { int l_onoff; int l_linger; }
  final linger = Uint8List(8);
  ByteData.sublistView(linger).setInt32(0, 1, Endian.host);
  return RawSocketOption(RawSocketOption.levelSocket, _soLinger, linger);
}

/// Closes [socket] with a reset (see [resetOnClose]).
void resetSocket(Socket socket) {
  socket.setRawOption(resetOnClose());
  socket.destroy();
}

/// A connection made with [connect] and the one [listener] accepted for it;
/// the listener is closed once it accepted (its subscription is cancelled),
/// both connections are destroyed when the test ends.
Future<(T client, T server)> acceptedPair<T extends StreamConnection>(
    ConnectionListener<T> listener, Future<T> Function() connect) async {
  final accepted = listener.first;
  final client = await connect().bounded;
  addTearDown(client.destroy);
  final server = await accepted.bounded;
  addTearDown(server.destroy);
  return (client, server);
}

/// A TCP connection on [worker] to a listener on [serverWorker] (default
/// [worker]), IPv4 loopback, and the connection accepted for it.
Future<(TcpConnection client, TcpConnection server)> tcpPair(Worker worker,
    {Worker? serverWorker}) async {
  final listener = await TcpListener.bind(InternetAddress.loopbackIPv4, 0,
          worker: serverWorker ?? worker)
      .bounded;
  return acceptedPair(
      listener,
      () => TcpConnection.connect(InternetAddress.loopbackIPv4, listener.port,
          worker: worker));
}

/// A Unix stream connection on [worker] to a listener at a fresh abstract
/// name, and the connection accepted for it.
Future<(UnixConnection client, UnixConnection server)> unixPair(
    Worker worker) async {
  final name = abstractName('pair');
  final listener = await UnixListener.bind(name, worker: worker).bounded;
  return acceptedPair(
      listener, () => UnixConnection.connect(name, worker: worker));
}

/// Every stream connection kind (TCP, Unix), as a function making a
/// connected pair on a worker.
final Map<String,
        Future<(StreamConnection client, StreamConnection server)> Function(
            Worker worker)> streamPairs = {
  'TCP': tcpPair,
  'Unix': unixPair,
};

/// One socket of a datagram kind (UDP, Unix) under test: the data of what
/// it receives, and sending to another socket of the same kind.
final class DatagramEnd {
  DatagramEnd(this.socket, this.received, this._send, this.address,
      this.close);

  /// The `UdpSocket` or `UnixDatagramSocket`.
  final Object socket;

  /// Closes the socket.
  final Future<void> Function() close;

  /// The data of every datagram received (listening starts receiving).
  final Stream<Uint8List> received;

  final Future<void> Function(List<int> data, Object address) _send;

  /// Where other sockets send to: a port on the IPv4 loopback, or a path.
  final Object address;

  /// Sends [data] to [other].
  Future<void> sendTo(DatagramEnd other, List<int> data) =>
      _send(data, other.address);
}

/// Every datagram kind, as a function binding a socket on a worker (closed
/// when the test ends).
final Map<String, Future<DatagramEnd> Function(Worker worker)> datagramKinds =
    {
  'UDP': (worker) async {
    final socket =
        await UdpSocket.bind(InternetAddress.loopbackIPv4, 0, worker: worker)
            .bounded;
    addTearDown(socket.close);
    return DatagramEnd(
        socket,
        socket.map((datagram) => datagram.data),
        (data, port) =>
            socket.send(data, InternetAddress.loopbackIPv4, port as int),
        socket.port,
        socket.close);
  },
  'Unix': (worker) async {
    final socket = await UnixDatagramSocket.bind(null, worker: worker).bounded;
    addTearDown(socket.close);
    return DatagramEnd(socket, socket.map((datagram) => datagram.data),
        (data, path) => socket.send(data, path as String), socket.path,
        socket.close);
  },
};

var _abstractNames = 0;

/// A name in the abstract Unix namespace that no other test (or test run)
/// uses.
String abstractName(String what) => '@iouring-transport-test-$what-$pid-'
    '${DateTime.now().microsecondsSinceEpoch}-${_abstractNames++}';

/// A [TransportException] whose errno matches [errno] (a number or a
/// matcher).
TypeMatcher<TransportException> transportErrno(Object errno) =>
    isA<TransportException>().having((e) => e.errno, 'errno', errno);

/// Reads a byte stream in exact amounts.
final class ByteReader {
  ByteReader(Stream<List<int>> stream) {
    _subscription = stream.listen(_onData,
        onError: _onError, onDone: _onDone, cancelOnError: true);
  }

  late final StreamSubscription<List<int>> _subscription;
  final Queue<List<int>> _chunks = Queue<List<int>>();
  int _available = 0;
  int _firstOffset = 0;
  bool _done = false;
  Object? _error;
  StackTrace? _stack;
  Completer<void>? _waiter;

  /// Bytes received so far and not yet read.
  int get available => _available;

  /// Whether the stream ended.
  bool get isDone => _done;

  void _onData(List<int> chunk) {
    if (chunk.isEmpty) return;
    _chunks.add(chunk);
    _available += chunk.length;
    _wake();
  }

  void _onError(Object error, StackTrace stack) {
    _error = error;
    _stack = stack;
    _done = true;
    _wake();
  }

  void _onDone() {
    _done = true;
    _wake();
  }

  void _wake() {
    final waiter = _waiter;
    _waiter = null;
    if (waiter != null && !waiter.isCompleted) waiter.complete();
  }

  Future<void> _waitFor(int length) async {
    while (_available < length) {
      final error = _error;
      if (error != null) {
        Error.throwWithStackTrace(error, _stack ?? StackTrace.current);
      }
      if (_done) {
        throw StateError('stream ended with $_available of $length bytes');
      }
      final waiter = _waiter = Completer<void>();
      await waiter.future;
    }
  }

  /// The next [length] bytes.
  Future<Uint8List> read(int length) async {
    await _waitFor(length);
    final out = Uint8List(length);
    var filled = 0;
    while (filled < length) {
      final chunk = _chunks.first;
      final n = math.min(chunk.length - _firstOffset, length - filled);
      out.setRange(filled, filled + n, chunk, _firstOffset);
      filled += n;
      _firstOffset += n;
      if (_firstOffset == chunk.length) {
        _chunks.removeFirst();
        _firstOffset = 0;
      }
    }
    _available -= length;
    return out;
  }

  /// Everything until the stream ends.
  Future<Uint8List> readToEnd() async {
    while (!_done) {
      final waiter = _waiter = Completer<void>();
      await waiter.future;
    }
    final error = _error;
    if (error != null) {
      Error.throwWithStackTrace(error, _stack ?? StackTrace.current);
    }
    return read(_available);
  }

  Future<void> cancel() => _subscription.cancel();
}

/// Echoes everything [connection] receives, then closes it after the peer's
/// end of stream. [zeroCopy] echoes the received buffers themselves.
void echo(TcpConnection connection, {bool zeroCopy = true}) {
  if (zeroCopy) {
    connection.payloads.listen(
        (payload) => unawaited(connection.writePayload(payload)),
        onError: (Object _) => connection.destroy(),
        onDone: () => unawaited(connection.close()));
  } else {
    connection.listen((bytes) => unawaited(connection.write(bytes)),
        onError: (Object _) => connection.destroy(),
        onDone: () => unawaited(connection.close()));
  }
}

/// An in-package echo server on [address], port chosen by the system.
Future<TcpListener> startEchoServer(Object address,
    {required Worker worker, bool zeroCopy = true}) async {
  final server = await TcpListener.bind(address, 0, worker: worker);
  server.listen((connection) => echo(connection, zeroCopy: zeroCopy));
  addTearDown(server.close);
  return server;
}

/// A client on [worker] connected to a fresh in-package echo server on the
/// same worker (IPv4 loopback).
Future<TcpConnection> connectToEchoServer(Worker worker,
    {bool zeroCopy = true}) async {
  final server = await startEchoServer(InternetAddress.loopbackIPv4,
      worker: worker, zeroCopy: zeroCopy);
  return TcpConnection.connect(InternetAddress.loopbackIPv4, server.port,
      worker: worker);
}

/// A dart:io echo server on [address], port chosen by the system.
Future<ServerSocket> startDartIoEchoServer(InternetAddress address) async {
  final server = await ServerSocket.bind(address, 0);
  server.listen((socket) {
    socket.listen(socket.add,
        onError: (Object _) => socket.destroy(),
        onDone: () => unawaited(socket.close()));
  });
  addTearDown(server.close);
  return server;
}

/// Sends [data] over [connection] and checks that the same bytes come back
/// through [reader] (which reads the same connection).
Future<void> expectEcho(
    TcpConnection connection, ByteReader reader, Uint8List data) async {
  await connection.write(data);
  final back = await reader.read(data.length);
  expect(sameBytes(back, data), isTrue, reason: 'echoed bytes differ');
}
