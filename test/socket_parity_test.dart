/// One set of socket tests run twice: against dart:io (`ServerSocket.bind`,
/// `Socket.connect`) and against this package's drop-in layer
/// (`IoUringServerSocket.bind`, `IoUringSocket.connect`). Each test states
/// what dart:io does; both implementations must pass it.
///
/// Where dart:io does something surprising the tests assert it anyway (ours
/// matches it); where ours cannot or should not match, a comment says so and
/// the test asserts only what both do.
library;

import 'dart:async';
import 'dart:convert';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// Binds a listener, as `ServerSocket.bind` does.
typedef BindFunction = Future<ServerSocket> Function(Object address, int port,
    {bool shared});

/// Connects a socket, as `Socket.connect` does.
typedef ConnectFunction = Future<Socket> Function(Object host, int port,
    {Object? sourceAddress, int sourcePort, Duration? timeout});

/// A socket implementation under test: how it binds and connects.
final class SocketApi {
  const SocketApi(this.name, this.bindUntracked, this.connectUntracked);

  final String name;

  /// Binds without closing at the end of the test (for binds that fail).
  final BindFunction bindUntracked;

  /// Connects without destroying at the end of the test (for connects that
  /// fail).
  final ConnectFunction connectUntracked;

  /// A listener on [address] and [port] (0: any free port), closed when the
  /// test ends.
  Future<ServerSocket> bind(Object address,
      {int port = 0, bool shared = false}) async {
    final listener =
        await bindUntracked(address, port, shared: shared).bounded;
    addTearDown(listener.close);
    return listener;
  }

  /// A socket connected to [host] and [port], destroyed when the test ends.
  Future<Socket> connect(Object host, int port) async {
    final socket = await connectUntracked(host, port).bounded;
    addTearDown(socket.destroy);
    return socket;
  }

  /// A client connected to a fresh listener on [address] (IPv4 loopback by
  /// default; a Unix address works too) and the socket the listener accepted
  /// for it. The listener stops after that one.
  Future<(Socket client, Socket server)> pair(
      [Object? address, ServerSocket? listener]) async {
    final at = address ?? InternetAddress.loopbackIPv4;
    final server = listener ?? await bind(at);
    final accepted = server.first;
    final client = await connect(at, server.port);
    final socket = await accepted.bounded;
    addTearDown(socket.destroy);
    return (client, socket);
  }

  /// A client of this implementation connected to a dart:io listener, and
  /// the dart:io socket accepted for it (which [resetSocket] can reset: our
  /// sockets cannot set `SO_LINGER`).
  Future<(Socket client, Socket dartIoPeer)> pairWithDartIoPeer() async {
    final listener =
        await ServerSocket.bind(InternetAddress.loopbackIPv4, 0).bounded;
    addTearDown(listener.close);
    final accepted = listener.first;
    final client = await connect(InternetAddress.loopbackIPv4, listener.port);
    final peer = await accepted.bounded;
    addTearDown(peer.destroy);
    return (client, peer);
  }
}

final List<SocketApi> _apis = [
  const SocketApi('dart:io', ServerSocket.bind, Socket.connect),
  const SocketApi('io_uring', IoUringServerSocket.bind, IoUringSocket.connect),
];

void main() {
  setUpTransport();

  for (final api in _apis) {
    group(api.name, () {
      _dataTests(api);
      _closingTests(api);
      _misuseTests(api);
      _errorTests(api);
      _addressTests(api);
      _unixTests(api);
      _backPressureTests(api);
      _listenerTests(api);
      _optionTests(api);
    });
  }
}

// ---------------------------------------------------------------- data

void _dataTests(SocketApi api) {
  test('small writes and a 4 MiB write arrive whole and in order, both ways',
      () async {
    final (client, server) = await api.pair();
    final atServer = ByteReader(server);
    final atClient = ByteReader(client);
    final sent = BytesBuilder();
    for (var i = 1; i <= 100; i++) {
      final chunk = pattern(i, i);
      client.add(chunk);
      sent.add(chunk);
    }
    final big = pattern(4 << 20, 1);
    client.add(big);
    sent.add(big);
    final expected = sent.takeBytes();
    expect(sameBytes(await atServer.read(expected.length).bounded, expected),
        isTrue,
        reason: 'client to server');
    final reply = pattern((4 << 20) + 7, 2);
    server.add(reply);
    expect(sameBytes(await atClient.read(reply.length).bounded, reply), isTrue,
        reason: 'server to client');
  });

  test('addStream sends every chunk in order and completes with the socket',
      () async {
    final (client, server) = await api.pair();
    final atServer = ByteReader(server);
    // About 4 MiB in chunks of uneven sizes.
    final chunks = [for (var i = 0; i < 64; i++) pattern(65536 + i * 3, i)];
    final added = client.addStream(Stream.fromIterable(chunks));
    for (final chunk in chunks) {
      expect(sameBytes(await atServer.read(chunk.length).bounded, chunk),
          isTrue);
    }
    expect(await added.bounded, same(client));
    // The sink takes adds again once the stream is done.
    client.add([1, 2, 3]);
    expect(await atServer.read(3).bounded, [1, 2, 3]);
  });

  test('write, writeln, writeAll and writeCharCode encode with the encoding',
      () async {
    final (client, server) = await api.pair();
    final atServer = ByteReader(server);
    expect(client.encoding, utf8, reason: 'the default');
    client
      ..write('héllo')
      ..writeln(42)
      ..writeln()
      ..writeAll(['a', 1, null], ',')
      ..writeCharCode(0x20ac);
    client.encoding = latin1;
    client.write('é');
    await client.close().bounded;
    expect(await atServer.readToEnd().bounded, [
      ...utf8.encode('héllo42\n\na,1,null€'),
      0xe9,
    ]);
  });

  test('flush completes once what was added is sent; the socket stays open',
      () async {
    final (client, server) = await api.pair();
    final atServer = ByteReader(server);
    await client.flush().bounded; // nothing added yet
    client.add([1, 2, 3]);
    await client.flush().bounded;
    expect(await atServer.read(3).bounded, [1, 2, 3]);
    client.write('more');
    await client.flush().bounded;
    expect(utf8.decode(await atServer.read(4).bounded), 'more');
    expect(atServer.isDone, isFalse, reason: 'flush does not close');
  });

  test('what a completed flush sent survives a destroy right after it',
      () async {
    final (client, server) = await api.pair();
    final atServer = ByteReader(server);
    // Small pieces: ours gathers them into one send, which the flush must
    // wait for too.
    final data = pattern(1000, 4);
    client
      ..write('header')
      ..add(data);
    await client.flush().bounded;
    client.destroy();
    final received = await atServer.readToEnd().bounded;
    expect(utf8.decode(received.sublist(0, 6)), 'header');
    expect(sameBytes(received.sublist(6), data), isTrue);
  });
}

// ---------------------------------------------------------------- closing

void _closingTests(SocketApi api) {
  test(
      'close half-closes: the peer reads the end of the stream and answers, '
      'this side reads the answer; close and done complete with the socket',
      () async {
    final (client, server) = await api.pair();
    final atClient = ByteReader(client);
    client.write('request');
    final closed = client.close();
    expect(utf8.decode(await ByteReader(server).readToEnd().bounded),
        'request');
    server.write('response');
    await server.close().bounded;
    expect(utf8.decode(await atClient.readToEnd().bounded), 'response');
    expect(await closed.bounded, same(client));
    expect(await client.done.bounded, same(client));
    expect(await server.done.bounded, same(server));
  });

  test('close with nothing written: the peer reads an empty stream',
      () async {
    final (client, server) = await api.pair();
    expect(await client.close().bounded, same(client));
    expect(await ByteReader(server).readToEnd().bounded, isEmpty);
  });

  test(
      'destroy after writing: both input streams end, done completes, and '
      'the peer still gets what was added before', () async {
    final (client, server) = await api.pair();
    final clientInput = Inbox<Uint8List>(client);
    final atServer = ByteReader(server);
    // dart:io wrote these into the kernel at add(), which sends them after
    // the descriptor is closed.
    final data = pattern(100000, 5);
    client
      ..add([1, 2, 3])
      ..add(data);
    client.destroy();
    await clientInput.done();
    expect(clientInput.errors, isEmpty);
    expect(await client.done.bounded, same(client));
    final received = await atServer.readToEnd().bounded;
    expect(received.sublist(0, 3), [1, 2, 3]);
    expect(sameBytes(received.sublist(3), data), isTrue);
  });

  test(
      'destroy with more added than the peer took: once the peer reads, it '
      'gets a prefix of it, then the end', () async {
    final (client, server) = await api.pair();
    final data = pattern(32 << 20, 6);
    client.add(data);
    // Far more than both kernels hold while the peer does not read: the
    // sink still holds some of it when it is destroyed.
    client.destroy();
    final received = await ByteReader(server).readToEnd().bounded;
    // Both drop what the kernel did not take: dart:io what its sink had not
    // written into it, ours what the kernel did not take at the destroy.
    expect(received.length, inInclusiveRange(1, data.length - 1));
    expect(sameBytes(received, data.sublist(0, received.length)), isTrue);
  });

  test(
      'destroy with a large write a peer never reads: done completes at '
      'once, and the socket is closed at once', () async {
    final worker = Worker.current;
    final before = worker.stats().socketsOpen;
    final (client, peer) = await api.pairWithDartIoPeer();
    // The peer never listens, so it never reads: far more than both kernels
    // hold stays pending in the sink.
    client.add(Uint8List(32 << 20));
    client.destroy();
    expect(await client.done.timeout(_prompt), same(client));
    // dart:io's socket is gone from the worker's count as it is from
    // dart:io's (never on it); ours is closed, not sending on.
    expect(worker.stats().socketsOpen, before);
    // The peer then reads what the kernel took, and the end.
    final received = await ByteReader(peer).readToEnd().bounded;
    expect(received.length, lessThan(32 << 20));
  });

  test(
      'a program that destroys a socket with a large write its peer never '
      'reads exits at once', () async {
    final listener =
        await ServerSocket.bind(InternetAddress.loopbackIPv4, 0).bounded;
    addTearDown(listener.close);
    // Accepted and never read (destroyed when the test ends).
    listener.listen((peer) => addTearDown(peer.destroy));
    final program = await Process.start(Platform.resolvedExecutable, [
      '--packages=${_packageConfig.toFilePath()}',
      _packageConfig.resolve('../test/support/destroy_exit.dart').toFilePath(),
      api.name,
      '${listener.port}',
    ]);
    addTearDown(() => program.kill(ProcessSignal.sigkill));
    final errors = program.stderr.transform(utf8.decoder).join();
    final lines = program.stdout
        .transform(utf8.decoder)
        .transform(const LineSplitter())
        .asBroadcastStream();
    // Compiling and connecting take their time (long on a loaded machine);
    // the exit, once the socket was destroyed, must not (ours used to send
    // on for up to 10 s).
    expect(await lines.first.timeout(_programStart), 'destroyed');
    final exitCode = await program.exitCode.timeout(_prompt);
    expect(exitCode, 0, reason: await errors);
  });

  test('destroy before any write: both input streams end', () async {
    final (client, server) = await api.pair();
    final clientInput = Inbox<Uint8List>(client);
    final serverInput = Inbox<Uint8List>(server);
    client.destroy();
    await clientInput.done();
    await serverInput.done();
    expect([...clientInput.errors, ...serverInput.errors], isEmpty);
    // dart:io: `done` of a socket destroyed before anything was added never
    // completes (its IOSink never started), and ours is the same; that cannot
    // be asserted without a timer.
  });

  test('destroy while close is pending: close and done still complete',
      () async {
    final (client, _) = await api.pair();
    client.write('x');
    final closed = client.close();
    client.destroy();
    expect(await closed.bounded, same(client));
    expect(await client.done.bounded, same(client));
  });

  test('close after destroy completes; what is added after destroy is dropped',
      () async {
    final (client, server) = await api.pair();
    final serverInput = ByteReader(server);
    client.destroy();
    client.add([1, 2, 3]);
    await client.flush().bounded;
    expect(await client.close().bounded, same(client));
    expect(await serverInput.readToEnd().bounded, isEmpty);
  });

  test('cancelling the input subscription leaves the sending side open',
      () async {
    final (client, server) = await api.pair();
    final atServer = ByteReader(server);
    await client.listen((_) {}).cancel();
    client.write('still writing');
    await client.close().bounded;
    expect(utf8.decode(await atServer.readToEnd().bounded), 'still writing');
  });
}

// ---------------------------------------------------------------- misuse

void _misuseTests(SocketApi api) {
  test('adding or writing after close throws a StateError', () async {
    final (client, _) = await api.pair();
    await client.close().bounded;
    expect(() => client.add([1]), throwsStateError);
    expect(() => client.write('x'), throwsStateError);
    // A second close and a flush after close complete.
    expect(await client.close().bounded, same(client));
    await client.flush().bounded;
  });

  test('add, write and flush while addStream is bound throw a StateError',
      () async {
    final (client, server) = await api.pair();
    final atServer = ByteReader(server);
    final source = StreamController<List<int>>();
    final added = client.addStream(source.stream);
    expect(() => client.add([1]), throwsStateError);
    expect(() => client.write('x'), throwsStateError);
    expect(client.flush, throwsStateError);
    expect(() => client.addStream(const Stream<List<int>>.empty()),
        throwsStateError);
    source.add([7, 8]);
    await source.close();
    expect(await added.bounded, same(client));
    expect(await atServer.read(2).bounded, [7, 8]);
  });

  test('addError throws an UnsupportedError: errors cannot be sent', () async {
    final (client, server) = await api.pair();
    expect(() => client.addError(StateError('x')), throwsUnsupportedError);
    // The socket is unharmed.
    client.write('ok');
    await client.close().bounded;
    expect(utf8.decode(await ByteReader(server).readToEnd().bounded), 'ok');
  });

  test('a socket is a single-subscription stream', () async {
    final (client, _) = await api.pair();
    client.listen((_) {});
    expect(() => client.listen((_) {}), throwsStateError);
  });
}

// ---------------------------------------------------------------- errors

/// A [SocketException] whose OS error has errno [errno] (a number or a
/// matcher).
TypeMatcher<SocketException> _socketErrno(Object errno) =>
    isA<SocketException>()
        .having((e) => e.osError?.errorCode, 'osError.errorCode', errno);

/// The timeout of connects that are meant to time out.
const Duration _connectTimeout = Duration(milliseconds: 500);

/// What "at once" may take on a loaded test machine: far less than the 10 s
/// ours used to spend sending on after a destroy.
const Duration _prompt = Duration(seconds: 4);

/// How long a test program may take to compile and start.
const Duration _programStart = Duration(minutes: 2);

/// The package config the test runs with (for the programs it starts).
final Uri _packageConfig = Uri.base.resolve(_packageConfigPath);

String get _packageConfigPath =>
    Platform.packageConfig ?? '.dart_tool/package_config.json';

/// A TCP port on the IPv4 loopback that nobody listens on (it was free a
/// moment ago).
Future<int> _unusedPort() async {
  final probe = await ServerSocket.bind(InternetAddress.loopbackIPv4, 0);
  final port = probe.port;
  await probe.close();
  return port;
}

/// A client of [api] connected to a dart:io raw listener, and a function
/// that resets the socket accepted for it and completes once the reset is
/// out (the raw socket's close completes when its descriptor is closed).
Future<(Socket client, Future<void> Function() reset)> _resettablePair(
    SocketApi api) async {
  final listener =
      await RawServerSocket.bind(InternetAddress.loopbackIPv4, 0).bounded;
  addTearDown(listener.close);
  final accepted = listener.first;
  final client = await api.connect(InternetAddress.loopbackIPv4, listener.port);
  final peer = await accepted.bounded;
  addTearDown(peer.close);
  return (
    client,
    () async {
      peer.setRawOption(resetOnClose());
      await peer.close().bounded;
    }
  );
}

void _errorTests(SocketApi api) {
  test(
      'connecting to a port nobody listens on fails with a SocketException '
      '(errno 111) naming the address', () async {
    final port = await _unusedPort();
    // dart:io's exception names the failed socket's own (ephemeral) local
    // port, ours the port connected to: the port is not compared.
    await expectLater(
        api.connectUntracked('127.0.0.1', port).bounded,
        throwsA(_socketErrno(111).having(
            (e) => e.address, 'address', InternetAddress.loopbackIPv4)));
  });

  test(
      'connecting to port 0 fails with a SocketException (errno 111) naming '
      'the address', () async {
    // dart:io asks the kernel, which refuses port 0 as it refuses a port
    // nobody listens on; the port is not compared (see above).
    for (final host in ['127.0.0.1', InternetAddress.loopbackIPv4]) {
      await expectLater(
          api.connectUntracked(host, 0).bounded,
          throwsA(_socketErrno(111).having(
              (e) => e.address, 'address', InternetAddress.loopbackIPv4)));
    }
  });

  test('connecting to a port out of range fails with an ArgumentError',
      () async {
    // dart:io throws at once, ours from the future: both are failures.
    for (final port in [-1, 65536]) {
      await expectLater(
          Future.sync(() => api.connectUntracked('127.0.0.1', port)).bounded,
          throwsArgumentError);
    }
  });

  test(
      'a connect not established within its timeout fails with a '
      'SocketException', () async {
    // Nothing accepts: once the accept queue is full the kernel drops new
    // handshakes, and a connect waits (filled with dart:io connects until
    // one times out).
    final listener =
        await ServerSocket.bind(InternetAddress.loopbackIPv4, 0, backlog: 1)
            .bounded;
    addTearDown(listener.close);
    var full = false;
    for (var i = 0; i < 16 && !full; i++) {
      try {
        final queued = await Socket.connect(
            InternetAddress.loopbackIPv4, listener.port,
            timeout: _connectTimeout);
        addTearDown(queued.destroy);
      } on SocketException {
        full = true;
      }
    }
    expect(full, isTrue, reason: 'the accept queue filled up');
    await expectLater(
        api
            .connectUntracked(InternetAddress.loopbackIPv4, listener.port,
                timeout: _connectTimeout)
            .bounded,
        throwsA(isA<SocketException>()));
  });

  test(
      'binding a port in use fails with a SocketException naming the address '
      'and port', () async {
    final first = await api.bind(InternetAddress.loopbackIPv4);
    // The errno is not compared: dart:io, which knows its own listeners,
    // refuses a second bind of this process without asking the kernel (no
    // errno, a message about `shared`); ours gets the kernel's EADDRINUSE.
    await expectLater(
        api.bindUntracked(InternetAddress.loopbackIPv4, first.port).bounded,
        throwsA(isA<SocketException>()
            .having((e) => e.address, 'address', InternetAddress.loopbackIPv4)
            .having((e) => e.port, 'port', first.port)));
  });

  test(
      "a peer's reset while writing fails done and the input stream with "
      'SocketExceptions', () async {
    final (client, peer) = await api.pairWithDartIoPeer();
    final input = Inbox<Uint8List>(client);
    // More than the kernel buffers of both ends hold while the peer does not
    // read: the write is still in flight when the reset comes.
    client.add(Uint8List(32 << 20));
    resetSocket(peer);
    // ECONNRESET, or EPIPE when a send is refused after the reset.
    final reset = _socketErrno(anyOf(104, 32));
    await expectLater(client.done.bounded, throwsA(reset));
    await input.done();
    expect(input.errors, [reset]);
    // close reports the same failure.
    await expectLater(client.close().bounded, throwsA(reset));
  });

  test(
      "a peer's reset while nothing is sent fails the input stream; close and "
      'done then complete with the socket', () async {
    final (client, peer) = await api.pairWithDartIoPeer();
    final input = Inbox<Uint8List>(client);
    resetSocket(peer);
    await input.done();
    expect(input.errors, [_socketErrno(104)]);
    expect(() => client.remotePort, throwsA(isA<SocketException>()),
        reason: 'the socket is closed after an error');
    expect(await client.close().bounded, same(client));
    expect(await client.done.bounded, same(client));
  });

  test(
      "a peer's reset while an add waits in the sink fails the input stream "
      'and done', () async {
    final (client, peer) = await api.pairWithDartIoPeer();
    final atPeer = ByteReader(peer);
    // Added, not flushed: the sink stays bound to its stream.
    client.add([1, 2, 3]);
    expect(await atPeer.read(3).bounded, [1, 2, 3]);
    final input = Inbox<Uint8List>(client);
    resetSocket(peer);
    await input.done();
    expect(input.errors, [_socketErrno(104)]);
    await expectLater(client.done.bounded, throwsA(_socketErrno(104)));
  });

  test(
      "a peer's reset the socket did not read: the next add fails close and "
      'done', () async {
    final (client, reset) = await _resettablePair(api);
    await reset();
    client.add([1, 2, 3]);
    final failure = _socketErrno(anyOf(104, 32));
    await expectLater(client.close().bounded, throwsA(failure));
    await expectLater(client.done.bounded, throwsA(failure));
  });

  test(
      "writing to a peer that reset: flush fails with a SocketException, then "
      'close and done complete', () async {
    final (client, peer) = await api.pairWithDartIoPeer();
    client.add(Uint8List(32 << 20));
    final flushed = client.flush();
    resetSocket(peer);
    // dart:io gives a failure to the flush that waits for it, not to done;
    // the sink is then usable for close, and done completes.
    await expectLater(flushed.bounded, throwsA(_socketErrno(anyOf(104, 32))));
    expect(await client.close().bounded, same(client));
    expect(await client.done.bounded, same(client));
  });
}

// ---------------------------------------------------------------- addresses

/// Checks what a listener on [address] (port 0), a client and the accepted
/// socket say about their ends, as dart:io says it: a client's `address` is
/// the address it connected to and an accepted socket's is its listener's
/// (not `getsockname`); the ports are the real ones.
Future<void> _expectAddresses(SocketApi api, InternetAddress address) async {
  final listener = await api.bind(address);
  expect(listener.address, address);
  expect(listener.port, inInclusiveRange(1, 65535));
  final (client, server) = await api.pair(address, listener);
  expect(client.address, address);
  expect(client.port, inInclusiveRange(1, 65535));
  expect(client.port, isNot(listener.port));
  expect(client.remoteAddress, address);
  expect(client.remotePort, listener.port);
  expect(server.address, address);
  expect(server.port, listener.port);
  expect(server.remoteAddress, address);
  expect(server.remotePort, client.port);
}

/// Every address getter of [socket] throws a [SocketException].
void _expectAddressesClosed(Socket socket) {
  expect(() => socket.address, throwsA(isA<SocketException>()));
  expect(() => socket.port, throwsA(isA<SocketException>()));
  expect(() => socket.remoteAddress, throwsA(isA<SocketException>()));
  expect(() => socket.remotePort, throwsA(isA<SocketException>()));
}

void _addressTests(SocketApi api) {
  test('IPv4 loopback, port 0: each end names itself and its peer', () async {
    await _expectAddresses(api, InternetAddress.loopbackIPv4);
  });

  test('IPv6 loopback, port 0: each end names itself and its peer', () async {
    if (!await ipv6Available()) {
      markTestSkipped('no IPv6 loopback on this machine');
      return;
    }
    await _expectAddresses(api, InternetAddress.loopbackIPv6);
  });

  test('a host given as text: the addresses are the parsed ones', () async {
    final listener = await api.bind('127.0.0.1');
    expect(listener.address, InternetAddress.loopbackIPv4);
    final (client, _) = await api.pair('127.0.0.1', listener);
    expect(client.address, InternetAddress.loopbackIPv4);
    expect(client.remoteAddress, InternetAddress.loopbackIPv4);
  });

  test(
      'a host name: address is the looked-up address (with the name), '
      'remoteAddress the kernel\'s (without it)', () async {
    final listener = await api.bind(InternetAddress.loopbackIPv4);
    final accepted = listener.first;
    final client = await api.connect('localhost', listener.port);
    addTearDown((await accepted.bounded).destroy);
    expect(client.address, InternetAddress.loopbackIPv4);
    expect(client.address.host, 'localhost');
    expect(client.remoteAddress, InternetAddress.loopbackIPv4);
    expect(client.remoteAddress.host, '127.0.0.1');
  });

  test('after destroy, every address getter throws a SocketException',
      () async {
    final (client, server) = await api.pair();
    client.destroy();
    server.destroy();
    _expectAddressesClosed(client);
    _expectAddressesClosed(server);
  });

  test(
      'after both directions closed, address and port still answer and the '
      'remote ones throw a SocketException', () async {
    final (client, server) = await api.pair();
    final clientPort = client.port;
    final atClient = ByteReader(client);
    await server.close().bounded;
    await atClient.readToEnd().bounded;
    await client.close().bounded;
    expect(client.address, InternetAddress.loopbackIPv4);
    expect(client.port, clientPort);
    expect(() => client.remoteAddress, throwsA(isA<SocketException>()));
    expect(() => client.remotePort, throwsA(isA<SocketException>()));
  });
}

// ---------------------------------------------------------------- Unix

/// A Unix socket address in a fresh temporary directory.
InternetAddress _unixAddress() => InternetAddress(
    '${tempDirectory('iouring_parity_').path}/socket',
    type: InternetAddressType.unix);

void _unixTests(SocketApi api) {
  test('Unix socket: setOption(tcpNoDelay) throws an OSError (EOPNOTSUPP)',
      () async {
    final (client, _) = await api.pair(_unixAddress());
    expect(() => client.setOption(SocketOption.tcpNoDelay, true),
        throwsA(isA<OSError>().having((e) => e.errorCode, 'errno', 95)));
  });

  test(
      'Unix socket: bytes both ways, half-close, the addresses dart:io gives, '
      'and the socket file removed by close', () async {
    final address = _unixAddress();
    final listener = await api.bind(address);
    expect(listener.address, address);
    expect(listener.port, 0);
    final (client, server) = await api.pair(address, listener);
    final atClient = ByteReader(client);
    final request = pattern(300000, 3);
    client.add(request);
    final closed = client.close();
    expect(sameBytes(await ByteReader(server).readToEnd().bounded, request),
        isTrue);
    server.write('answer');
    await server.close().bounded;
    expect(utf8.decode(await atClient.readToEnd().bounded), 'answer');
    await closed.bounded;

    expect(client.address, address, reason: 'the path connected to');
    expect(client.port, 0);
    expect(server.address, address, reason: "the listener's path");
    expect(server.port, 0);
    expect(server.remotePort, 0);
    expect(client.remotePort, 0);

    await listener.close();
    expect(FileSystemEntity.typeSync(address.address, followLinks: false),
        FileSystemEntityType.notFound);
  });

  test('Unix socket: while open, the remote address is the path or unnamed',
      () async {
    final address = _unixAddress();
    final (client, server) = await api.pair(address);
    expect(client.remoteAddress, address);
    // The connecting socket has no name: its peer sees an empty path.
    expect(server.remoteAddress.address, '');
    expect(server.remoteAddress.type, InternetAddressType.unix);
  });

  test(
      'Unix: binding a path in use or a plain file fails with a '
      'SocketException naming the path', () async {
    final address = _unixAddress();
    await api.bind(address);
    // dart:io refuses a path its own process listens on without asking the
    // kernel (errno -1); ours gets EADDRINUSE: the errno is not compared.
    final inUse = isA<SocketException>()
        .having((e) => e.address, 'address', address);
    await expectLater(api.bindUntracked(address, 0).bounded, throwsA(inUse));
    final file = _unixAddress();
    File(file.address).writeAsStringSync('not a socket');
    await expectLater(api.bindUntracked(file, 0).bounded,
        throwsA(isA<SocketException>()));
    expect(File(file.address).readAsStringSync(), 'not a socket');
  });

  test('Unix: connecting to a missing path fails with a SocketException '
      '(errno 2)', () async {
    final address = _unixAddress();
    await expectLater(
        api.connectUntracked(address, 0).bounded, throwsA(_socketErrno(2)));
  });
}

// ------------------------------------------------------------ back-pressure

/// Bytes of the on-demand streams of the back-pressure tests: far more than
/// the kernel buffers of both ends and the sink's own window.
const int _streamedTotal = 64 << 20;

/// The byte at [offset] of those streams (a long period, so that a lost,
/// doubled or reordered chunk shows).
final Uint8List _streamBlock = pattern((1 << 20) + 13, 21);

/// Bytes made on demand, 64 KiB at a time, counting what was made: a
/// subscription that pauses stops it at once (a synchronous controller), so
/// [produced] tells what a sink took.
final class _CountingSource {
  _CountingSource(this.total) {
    _controller = StreamController<List<int>>(
        sync: true, onListen: _schedule, onResume: _schedule);
  }

  static const int _chunkSize = 64 * 1024;

  final int total;
  late final StreamController<List<int>> _controller;

  /// Bytes handed out so far.
  int produced = 0;

  Stream<List<int>> get stream => _controller.stream;

  /// Whether its subscriber holds it paused.
  bool get isPaused => _controller.isPaused;

  /// Whether everything was taken.
  bool get finished => produced == total;

  // Not from inside the subscriber's own resume call.
  void _schedule() => scheduleMicrotask(_pump);

  void _pump() {
    while (_controller.hasListener && !_controller.isPaused && !finished) {
      final length =
          total - produced < _chunkSize ? total - produced : _chunkSize;
      final chunk = Uint8List(length);
      for (var i = 0; i < length; i++) {
        chunk[i] = _streamBlock[(produced + i) % _streamBlock.length];
      }
      produced += length;
      _controller.add(chunk);
    }
    if (finished && !_controller.isClosed) unawaited(_controller.close());
  }
}

/// Reads [input] to its end (or [total] bytes), checking each byte against
/// the stream a [_CountingSource] makes.
Future<void> _expectStreamed(Stream<List<int>> input, int total) async {
  var offset = 0;
  await for (final chunk in input.timeout(testWait)) {
    for (var i = 0; i < chunk.length; i++) {
      if (chunk[i] != _streamBlock[(offset + i) % _streamBlock.length]) {
        fail('byte ${offset + i} differs');
      }
    }
    offset += chunk.length;
    if (offset >= total) break;
  }
  expect(offset, total, reason: 'every byte arrives');
}

/// One-byte round trips over a dart:io loopback connection: each one is a
/// few turns of the event loop with IO events (no timer), in which pending
/// completions of both implementations are delivered.
final class _LoopbackPing {
  _LoopbackPing._(this._socket, this._replies);

  static Future<_LoopbackPing> open() async {
    final echo =
        await ServerSocket.bind(InternetAddress.loopbackIPv4, 0).bounded;
    addTearDown(echo.close);
    echo.listen((socket) {
      addTearDown(socket.destroy);
      socket.listen(socket.add);
    });
    final socket =
        await Socket.connect(InternetAddress.loopbackIPv4, echo.port).bounded;
    addTearDown(socket.destroy);
    return _LoopbackPing._(socket, Inbox<Uint8List>(socket));
  }

  final Socket _socket;
  final Inbox<Uint8List> _replies;

  Future<void> roundTrip() async {
    _socket.add(const [0]);
    await _replies.next();
  }
}

/// Waits until nothing takes from [source] any more: paused, with the same
/// count over 20 round trips in a row. Returns the bytes taken. Fails when
/// the whole stream was taken (nothing held it back).
Future<int> _untilStalled(_CountingSource source, _LoopbackPing ping) async {
  const quietRounds = 20;
  final watch = Stopwatch()..start();
  var quiet = 0;
  var last = -1;
  for (var round = 0; round < 100000; round++) {
    if (source.finished) {
      fail('all ${source.total} bytes were taken: nothing held them back');
    }
    if (watch.elapsed > testWait) {
      fail('still taking after ${watch.elapsed}: ${source.produced} bytes');
    }
    if (source.isPaused && source.produced == last) {
      if (++quiet == quietRounds) return last;
    } else {
      quiet = 0;
      last = source.produced;
    }
    await ping.roundTrip();
  }
  fail('not stalled after 100000 round trips: ${source.produced} bytes');
}

void _backPressureTests(SocketApi api) {
  test(
      'addStream to a peer that does not read stops taking from the stream '
      '(the pause reaches it); once the peer reads, everything arrives',
      () async {
    final ping = await _LoopbackPing.open();
    final (writer, reader) = await api.pair();
    final source = _CountingSource(_streamedTotal);
    final added = writer.addStream(source.stream);
    final taken = await _untilStalled(source, ping);
    expect(taken, lessThan(_streamedTotal ~/ 2),
        reason: 'the sink held no more than a window');
    await _expectStreamed(reader, _streamedTotal);
    expect(await added.bounded, same(writer));
  });

  test(
      "a paused input subscription stops the peer's writes; resuming delivers "
      'everything in order', () async {
    final ping = await _LoopbackPing.open();
    final (writer, reader) = await api.pair();
    final received = StreamController<List<int>>();
    var receivedBytes = 0;
    final subscription = reader.listen((chunk) {
      receivedBytes += chunk.length;
      received.add(chunk);
    }, onDone: received.close);
    subscription.pause();
    final source = _CountingSource(_streamedTotal);
    final added = writer.addStream(source.stream);
    await _untilStalled(source, ping);
    expect(receivedBytes, 0, reason: 'no event while paused');
    subscription.resume();
    await _expectStreamed(received.stream, _streamedTotal);
    expect(await added.bounded, same(writer));
  });
}

// ---------------------------------------------------------------- listener

/// Connects to [port] until a connect is refused (errno 111): dart:io
/// closes a listener whose subscription was cancelled a moment later, in its
/// event handler thread. A connect that reached the backlog just as the
/// listener closed is reset (errno 104) and does not count. Fails after 50
/// connects that were not refused.
Future<void> _untilRefused(SocketApi api, int port) async {
  for (var attempt = 0; attempt < 50; attempt++) {
    try {
      final socket = await api
          .connectUntracked(InternetAddress.loopbackIPv4, port)
          .bounded;
      socket.destroy();
    } on SocketException catch (error) {
      if (error.osError?.errorCode == 104) continue;
      expect(error, _socketErrno(111));
      return;
    }
  }
  fail('still accepting connections after 50 attempts');
}

void _listenerTests(SocketApi api) {
  test(
      'closing the listener ends its stream and returns it; accepted sockets '
      'stay open', () async {
    final listener = await api.bind(InternetAddress.loopbackIPv4);
    final accepted = Inbox<Socket>(listener);
    final client =
        await api.connect(InternetAddress.loopbackIPv4, listener.port);
    final server = await accepted.next();
    addTearDown(server.destroy);
    expect(await listener.close().bounded, same(listener));
    await accepted.done();
    expect(accepted.errors, isEmpty);
    await expectLater(
        api.connectUntracked(InternetAddress.loopbackIPv4, listener.port),
        throwsA(_socketErrno(111)));
    final atClient = ByteReader(client);
    server.write('still open');
    await server.close().bounded;
    expect(utf8.decode(await atClient.readToEnd().bounded), 'still open');
  });

  test(
      'shared: a second listener binds the same port and connections reach '
      'the listeners', () async {
    final first = await api.bind(InternetAddress.loopbackIPv4, shared: true);
    final second = await api.bind(InternetAddress.loopbackIPv4,
        port: first.port, shared: true);
    expect(second.port, first.port);
    final accepted = StreamController<Socket>();
    for (final listener in [first, second]) {
      listener.listen(accepted.add);
    }
    final client = await api.connect(InternetAddress.loopbackIPv4, first.port);
    final server = await accepted.stream.first.bounded;
    addTearDown(server.destroy);
    client.write('reached');
    await client.close().bounded;
    expect(utf8.decode(await ByteReader(server).readToEnd().bounded),
        'reached');
  });

  test('a listener closed before it is listened to gives an empty stream',
      () async {
    final listener = await api.bind(InternetAddress.loopbackIPv4);
    await listener.close().bounded;
    expect(await listener.toList().bounded, isEmpty);
  });

  test('cancelling the subscription closes the listener', () async {
    final listener = await api.bind(InternetAddress.loopbackIPv4);
    // Asked before: dart:io's listener forgets a port it never told once it
    // is closed.
    final port = listener.port;
    await listener.listen((_) {}).cancel();
    await _untilRefused(api, port);
  });
}

// ---------------------------------------------------------------- options

/// `TCP_NODELAY`, `SO_KEEPALIVE` from the Linux headers.
const int _tcpNoDelay = 1;
const int _soKeepAlive = 9;

int _intOf(Uint8List bytes) =>
    ByteData.sublistView(bytes).getInt32(0, Endian.host);

void _optionTests(SocketApi api) {
  test('setOption(tcpNoDelay) reads back through getRawOption', () async {
    final (client, _) = await api.pair();
    final noDelay =
        RawSocketOption.fromInt(RawSocketOption.levelTcp, _tcpNoDelay, 0);
    for (final on in [false, true, false]) {
      expect(client.setOption(SocketOption.tcpNoDelay, on), isTrue);
      expect(_intOf(client.getRawOption(noDelay)), on ? 1 : 0);
    }
  });

  test('setRawOption(SO_KEEPALIVE) round trips', () async {
    final (_, server) = await api.pair();
    for (final on in [true, false]) {
      server.setRawOption(RawSocketOption.fromBool(
          RawSocketOption.levelSocket, _soKeepAlive, on));
      final got = server.getRawOption(RawSocketOption.fromInt(
          RawSocketOption.levelSocket, _soKeepAlive, 7));
      expect(_intOf(got), on ? 1 : 0);
    }
  });

  test(
      'getRawOption and setRawOption the kernel refuses throw an OSError '
      'with its errno', () async {
    final (client, _) = await api.pair();
    const unknownTcpOption = 9999;
    final unknown =
        RawSocketOption.fromInt(RawSocketOption.levelTcp, unknownTcpOption, 0);
    final enoprotoopt = isA<OSError>()
        .having((e) => e.errorCode, 'errno', 92)
        .having((e) => e.message, 'message', 'Protocol not available');
    expect(() => client.getRawOption(unknown), throwsA(enoprotoopt));
    expect(() => client.setRawOption(unknown), throwsA(enoprotoopt));
    // An empty value: setsockopt says EINVAL; getsockopt reads nothing.
    final noValue = Uint8List(0);
    final empty =
        RawSocketOption(RawSocketOption.levelSocket, _soKeepAlive, noValue);
    expect(() => client.setRawOption(empty),
        throwsA(isA<OSError>().having((e) => e.errorCode, 'errno', 22)));
    expect(client.getRawOption(empty), isEmpty);
    // An unknown level: EOPNOTSUPP.
    expect(
        () => client.getRawOption(RawSocketOption(12345, 1, Uint8List(4))),
        throwsA(isA<OSError>().having((e) => e.errorCode, 'errno', 95)));
  });

  test('getRawOption and setRawOption after destroy throw a SocketException',
      () async {
    final (client, _) = await api.pair();
    client.destroy();
    final noDelay =
        RawSocketOption.fromInt(RawSocketOption.levelTcp, _tcpNoDelay, 0);
    expect(() => client.getRawOption(noDelay), throwsA(isA<SocketException>()));
    expect(() => client.setRawOption(noDelay), throwsA(isA<SocketException>()));
  });

  test('connect binds to sourceAddress and sourcePort', () async {
    final listener = await api.bind(InternetAddress.loopbackIPv4);
    final accepted = listener.first;
    final source = InternetAddress('127.0.0.2');
    final probe = await ServerSocket.bind(source, 0);
    final sourcePort = probe.port;
    await probe.close();
    final client = await api
        .connectUntracked(InternetAddress.loopbackIPv4, listener.port,
            sourceAddress: source, sourcePort: sourcePort)
        .bounded;
    addTearDown(client.destroy);
    final server = await accepted.bounded;
    addTearDown(server.destroy);
    expect((server.remoteAddress, server.remotePort), (source, sourcePort));
    expect(client.port, sourcePort);
  });
}
