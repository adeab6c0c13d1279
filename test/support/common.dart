/// Helpers shared by the tests: loading the native library, test bytes,
/// reading exact byte counts from a stream, echo servers.
library;

import 'dart:async';
import 'dart:collection';
import 'dart:io';
import 'dart:math' as math;
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

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

/// Whether [a] and [b] hold the same bytes (fast enough for many MiB).
bool sameBytes(List<int> a, List<int> b) {
  if (a.length != b.length) return false;
  for (var i = 0; i < a.length; i++) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

/// Waits until [condition] holds, checking every few milliseconds (test code
/// only), failing after [timeout].
Future<void> waitUntil(bool Function() condition,
    {Duration timeout = const Duration(seconds: 10), String? reason}) async {
  final watch = Stopwatch()..start();
  while (!condition()) {
    if (watch.elapsed > timeout) {
      fail('timed out waiting${reason == null ? '' : ' for $reason'}');
    }
    await Future<void>.delayed(const Duration(milliseconds: 5));
  }
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
