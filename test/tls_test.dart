// The package's own TLS API: TlsContext, TcpListener.bindSecure,
// TcpConnection.connectSecure (and the Unix ones), against dart:io's
// SecureSocket / SecureServerSocket and against itself: byte-exact echoes,
// the negotiated session, handshake failures as typed exceptions on both
// sides with the listener serving on, timeouts, resets, and no leaks.
@TestOn('linux')
library;

import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';
import 'support/tls.dart';

/// A secure echo server on [worker] (127.0.0.1, a free port) with [context];
/// its handshake failures are collected in [failures].
Future<SecureListener<TcpConnection>> secureEchoServer(
    Worker worker, TlsContext context,
    {List<TlsHandshakeException>? failures,
    Duration? handshakeTimeout}) async {
  final server = await TcpListener.bindSecure(
          InternetAddress.loopbackIPv4, 0, context,
          worker: worker, handshakeTimeout: handshakeTimeout)
      .bounded;
  if (failures != null) server.handshakeErrors.listen(failures.add);
  server.listen((connection) => echo(connection));
  addTearDown(server.close);
  return server;
}

/// Reads exactly [length] bytes from [stream] (then cancels it).
Future<Uint8List> readExactly(Stream<List<int>> stream, int length) async {
  final out = BytesBuilder(copy: false);
  if (length == 0) return Uint8List(0);
  await for (final chunk in stream) {
    out.add(chunk);
    if (out.length >= length) break;
  }
  return out.takeBytes();
}

void main() {
  setUpTransport();
  final pki = _pki = setUpPki();

  group('context', () {
    test('a bad key or certificate is a TlsConfigException with a reason',
        () {
      expect(
          () => TlsContext.server(
              certificateChain: pki().server.certificate,
              privateKey: pki().client.key),
          throwsA(isA<TlsConfigException>()
              .having((e) => e.code, 'code', -5040)
              .having((e) => e.reason, 'reason', isNotEmpty)));
      expect(
          () => TlsContext.server(
              certificateChain: 'not a PEM'.codeUnits,
              privateKey: pki().server.key),
          throwsA(isA<TlsConfigException>()));
      expect(() => TlsContext.client(),
          throwsA(isA<TlsConfigException>()),
          reason: 'a client with nothing to trust');
      expect(
          () => TlsContext.client(
              trustedCertificates: pki().ca.certificate, alpnProtocols: ['']),
          throwsArgumentError);
    });

    test('from files, and a missing file is a TlsConfigException', () async {
      final context = await TlsContext.serverFromFiles(
          certificateChain: pki().server.certificatePath,
          privateKey: pki().server.keyPath);
      expect(context.isServer, isTrue);
      context.close();
      context.close();
      expect(context.isClosed, isTrue);
      await expectLater(
          TlsContext.clientFromFiles(
              trustedCertificates: '${pki().directory.path}/missing.pem'),
          throwsA(isA<TlsConfigException>()));
    });

    test('a closed context starts no handshake', () async {
      final worker = testWorker();
      final context = TlsContext.client(
          trustedCertificates: pki().ca.certificate);
      final server = await secureEchoServer(worker, pki().serverContext());
      context.close();
      await expectLater(
          TcpConnection.connectSecure('127.0.0.1', server.port, context,
              worker: worker),
          throwsStateError);
      await server.close();
      await expectNothingLeft(worker);
    });
  });

  group('our server, dart:io SecureSocket client', () {
    test('echoes 1 B, 64 KiB and 8 MiB byte for byte', () async {
      final worker = testWorker();
      final server = await secureEchoServer(worker, pki().serverContext());
      for (final size in [1, 64 * 1024, 8 * 1024 * 1024]) {
        final socket = await SecureSocket.connect('localhost', server.port,
                context: pki().dartClientContext())
            .bounded;
        final data = pattern(size, size);
        final back = readExactly(socket, size);
        socket.add(data);
        final got = await back.bounded;
        expect(got.length, size);
        expect(sameBytes(got, data), isTrue, reason: '$size bytes differ');
        socket.destroy();
      }
      await server.close();
      await expectNothingLeft(worker);
    });

    test('the session: version, ALPN, SNI, client certificate', () async {
      final worker = testWorker();
      final server = await TcpListener.bindSecure(
              InternetAddress.loopbackIPv4,
              0,
              pki().serverContext(
                  clientAuth: TlsClientAuth.optional,
                  alpnProtocols: ['h2', 'http/1.1']),
              worker: worker)
          .bounded;
      addTearDown(server.close);
      final accepted = server.first;
      final socket = await SecureSocket.connect('localhost', server.port,
              context: pki().dartClientContext(withCertificate: true),
              supportedProtocols: ['http/1.1'])
          .bounded;
      addTearDown(socket.destroy);
      final connection = await accepted.bounded;
      addTearDown(connection.destroy);
      final session = connection.tlsSession!;
      expect(connection.isSecure, isTrue);
      expect(session.isServer, isTrue);
      expect(session.protocol, 'TLSv1.3');
      expect(session.protocolVersion, 0x0304);
      expect(session.cipherSuite, isNot(0));
      expect(session.alpnProtocol, 'http/1.1');
      expect(socket.selectedProtocol, 'http/1.1');
      expect(session.serverName, 'localhost');
      expect(session.peerCertificate, pki().client.der);
      expect(session.isResumed, isFalse);
    });

    test('TLS 1.2 only', () async {
      final worker = testWorker();
      final server = await TcpListener.bindSecure(InternetAddress.loopbackIPv4,
              0, pki().serverContext(versions: TlsVersions.tls12Only),
              worker: worker)
          .bounded;
      addTearDown(server.close);
      final accepted = server.first;
      final socket = await SecureSocket.connect('127.0.0.1', server.port,
              context: pki().dartClientContext())
          .bounded;
      addTearDown(socket.destroy);
      final connection = await accepted.bounded;
      addTearDown(connection.destroy);
      expect(connection.tlsSession!.protocol, 'TLSv1.2');
      expect(connection.tlsSession!.serverName, isNull,
          reason: 'no SNI for an IP address');
      expect(connection.tlsSession!.peerCertificate, isNull);
    });
  });

  group('our client, dart:io SecureServerSocket', () {
    test('echoes 1 B, 64 KiB and 8 MiB byte for byte', () async {
      final worker = testWorker();
      final server = await SecureServerSocket.bind(
              InternetAddress.loopbackIPv4, 0, pki().dartServerContext(),
              supportedProtocols: ['h2', 'http/1.1'])
          .bounded;
      addTearDown(server.close);
      server.listen((socket) => socket.listen(socket.add,
          onError: (Object _) => socket.destroy(),
          onDone: () => unawaited(socket.close())));
      for (final size in [1, 64 * 1024, 8 * 1024 * 1024]) {
        final client = await TcpConnection.connectSecure(
                'localhost', server.port, pki().clientContext(
                    alpnProtocols: ['h2']),
                worker: worker)
            .bounded;
        final session = client.tlsSession!;
        expect(session.isServer, isFalse);
        // What the dart:io server says it chose (h2 where its ALPN works;
        // some dart:io builds negotiate none as servers).
        expect(session.alpnProtocol, anyOf('h2', isNull));
        expect(session.serverName, 'localhost');
        expect(session.peerCertificate, pki().server.der);
        final data = pattern(size, size + 1);
        final back = readExactly(client, size);
        await client.write(data).bounded;
        final got = await back.bounded;
        expect(sameBytes(got, data), isTrue, reason: '$size bytes differ');
        await client.close().bounded;
      }
      await expectNothingLeft(worker);
    });

    test('the end of the stream after the server closes', () async {
      final worker = testWorker();
      final server = await SecureServerSocket.bind(
              InternetAddress.loopbackIPv4, 0, pki().dartServerContext())
          .bounded;
      addTearDown(server.close);
      server.listen((socket) {
        socket.add('bye'.codeUnits);
        unawaited(socket.close());
      });
      final client = await TcpConnection.connectSecure(
              '127.0.0.1', server.port, pki().clientContext(),
              worker: worker)
          .bounded;
      final got = await client
          .fold<List<int>>(<int>[], (all, chunk) => all..addAll(chunk))
          .bounded;
      expect(String.fromCharCodes(got), 'bye');
      await client.close();
      await expectNothingLeft(worker);
    });
  });

  group('ourselves on both sides', () {
    test('TCP: an 8 MiB echo, then a resumed session', () async {
      final worker = testWorker();
      final server = await secureEchoServer(worker, pki().serverContext());
      final clientContext = pki().clientContext();
      final resumed = <bool>[];
      for (final size in [8 * 1024 * 1024, 10]) {
        final client = await TcpConnection.connectSecure(
                'localhost', server.port, clientContext,
                worker: worker)
            .bounded;
        final data = pattern(size, 7);
        final back = readExactly(client, size);
        await client.write(data).bounded;
        expect(sameBytes(await back.bounded, data), isTrue);
        resumed.add(client.tlsSession!.isResumed);
        await client.close();
      }
      expect(resumed, [false, true]);
      await server.close();
      await expectNothingLeft(worker);
    });

    test('Unix stream sockets', () async {
      final worker = testWorker();
      final path = abstractName('tls');
      final server = await UnixListener.bindSecure(path, pki().serverContext(),
              worker: worker)
          .bounded;
      addTearDown(server.close);
      server.listen((connection) {
        connection.listen((bytes) => unawaited(connection.write(bytes)),
            onDone: () => unawaited(connection.close()));
      });
      final client = await UnixConnection.connectSecure(
              path, pki().clientContext(),
              serverName: 'localhost', worker: worker)
          .bounded;
      expect(client.isSecure, isTrue);
      final data = pattern(100000, 3);
      final back = readExactly(client, data.length);
      await client.write(data);
      expect(sameBytes(await back.bounded, data), isTrue);
      await client.close();
      await server.close();
      await expectNothingLeft(worker);
    });
  });

  group('handshake failures', () {
    /// Connects our client with [clientContext] to our server with
    /// [serverContext]; returns both sides' errors (the server's from
    /// `handshakeErrors`), then checks the server still serves a good
    /// client.
    Future<(TlsHandshakeException, TlsHandshakeException)> failBoth(
        TlsContext serverContext, TlsContext clientContext,
        {String serverName = 'localhost',
        TlsContext? goodClient,
        bool servesOn = true}) async {
      final worker = testWorker();
      final server = await TcpListener.bindSecure(
              InternetAddress.loopbackIPv4, 0, serverContext,
              worker: worker)
          .bounded;
      final serverFailure = server.handshakeErrors.first;
      server.listen(echo);
      Object? clientError;
      try {
        await TcpConnection.connectSecure('127.0.0.1', server.port,
                clientContext,
                serverName: serverName, worker: worker)
            .bounded;
      } on Object catch (error) {
        clientError = error;
      }
      final serverError = await serverFailure.bounded;
      expect(clientError, isA<TlsHandshakeException>());
      expect(clientError, isA<IOException>());
      expect(server.failedHandshakes, 1);
      // The listener serves on.
      if (servesOn) {
        await expectSecureEcho(server.port, worker, context: goodClient);
      }
      await server.close();
      await expectNothingLeft(worker);
      return (clientError as TlsHandshakeException, serverError);
    }

    test('unknown CA', () async {
      final (client, server) = await failBoth(
          pki().serverContext(identity: pki().rogueServer),
          pki().clientContext(),
          goodClient: pki().clientContext(trust: pki().rogueCa));
      expect(client.failure, TlsFailure.unknownIssuer);
      expect(client.code, -5042);
      expect(client.reason.toLowerCase(), contains('issuer'));
      expect(client.address, InternetAddress.loopbackIPv4);
      expect(client.isServer, isFalse);
      expect(server.failure, TlsFailure.alertReceived);
      expect(server.isServer, isTrue);
      expect(server.reason, isNotEmpty);
    });

    test('expired certificate', () async {
      final (client, _) = await failBoth(
          pki().serverContext(identity: pki().expiredServer),
          pki().clientContext(),
          servesOn: false);
      expect(client.failure, TlsFailure.badCertificate);
      expect(client.reason.toLowerCase(), contains('expired'));
    });

    test('name mismatch', () async {
      final (client, server) = await failBoth(
          pki().serverContext(), pki().clientContext(),
          serverName: 'other.example');
      expect(client.failure, TlsFailure.nameMismatch);
      expect(client.code, -5043);
      expect(server.failure, TlsFailure.alertReceived);
    });

    test('version mismatch', () async {
      final (client, server) = await failBoth(
          pki().serverContext(versions: TlsVersions.tls13Only),
          pki().clientContext(versions: TlsVersions.tls12Only));
      expect(server.failure, TlsFailure.noCommonProtocol);
      expect(client.failure,
          anyOf(TlsFailure.alertReceived, TlsFailure.noCommonProtocol));
    });

    test('no ALPN protocol in common', () async {
      final (client, server) = await failBoth(
          pki().serverContext(alpnProtocols: ['h2']),
          pki().clientContext(alpnProtocols: ['spdy/3']));
      expect(server.failure, TlsFailure.noCommonProtocol);
      expect(client.failure, TlsFailure.alertReceived);
    });

    test('a required client certificate missing', () async {
      final worker = testWorker();
      final failures = <TlsHandshakeException>[];
      final server = await secureEchoServer(
          worker, pki().serverContext(clientAuth: TlsClientAuth.required),
          failures: failures);
      final serverFailure = server.handshakeErrors.first;
      // In TLS 1.3 the client's handshake is over before the server
      // checks its certificate: the refusal arrives as the first read.
      Object? clientError;
      try {
        final client = await TcpConnection.connectSecure(
                '127.0.0.1', server.port, pki().clientContext(),
                worker: worker)
            .bounded;
        await client.write([1]);
        await client.toList().bounded;
        client.destroy();
      } on Object catch (error) {
        clientError = error;
      }
      final failure = await serverFailure.bounded;
      expect(failure.failure, TlsFailure.certificateRequired);
      expect(failure.code, -5048);
      expect(clientError, isA<TransportException>());
      // With the certificate the same server serves.
      final client = await TcpConnection.connectSecure(
              '127.0.0.1', server.port,
              pki().clientContext(withCertificate: true),
              worker: worker)
          .bounded;
      final back = readExactly(client, 3);
      await client.write([1, 2, 3]);
      expect(await back.bounded, [1, 2, 3]);
      await client.close();
      await server.close();
      await expectNothingLeft(worker);
    });

    test('a plaintext client on the TLS port', () async {
      final worker = testWorker();
      final server = await secureEchoServer(worker, pki().serverContext());
      final serverFailure = server.handshakeErrors.first;
      final plain = await Socket.connect('127.0.0.1', server.port).bounded;
      plain.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
      // The server answers with an alert and closes.
      final answer = await plain
          .fold<List<int>>(<int>[], (all, chunk) => all..addAll(chunk))
          .bounded;
      final plainPort = plain.port;
      plain.destroy();
      final failure = await serverFailure.bounded;
      expect(failure.failure, TlsFailure.protocolError);
      expect(failure.code, -5046);
      expect(failure.address, InternetAddress.loopbackIPv4);
      expect(failure.port, plainPort);
      expect(answer, isNotEmpty, reason: 'a TLS alert record');
      expect(answer.first, 21, reason: 'record type alert');
      await expectSecureEcho(server.port, worker);
      await server.close();
      await expectNothingLeft(worker);
    });

    test('our client on a plaintext server', () async {
      final worker = testWorker();
      final server = await ServerSocket.bind(InternetAddress.loopbackIPv4, 0);
      addTearDown(server.close);
      server.listen((socket) {
        socket.write('HTTP/1.1 400 Bad Request\r\n\r\n');
        unawaited(socket.close());
        socket.listen(null, onError: (Object _) {});
      });
      await expectLater(
          TcpConnection.connectSecure(
              '127.0.0.1', server.port, pki().clientContext(),
              worker: worker),
          throwsA(isA<TlsHandshakeException>().having(
              (e) => e.failure,
              'failure',
              anyOf(TlsFailure.protocolError, TlsFailure.connection))));
      await expectNothingLeft(worker);
    });

    test('dart:io client: unknown CA is refused by the client', () async {
      final worker = testWorker();
      final failures = <TlsHandshakeException>[];
      final server = await secureEchoServer(
          worker, pki().serverContext(identity: pki().rogueServer),
          failures: failures);
      final serverFailure = server.handshakeErrors.first;
      await expectLater(
          SecureSocket.connect('localhost', server.port,
              context: pki().dartClientContext()),
          throwsA(isA<HandshakeException>()));
      final failure = await serverFailure.bounded;
      expect(failure.failure,
          anyOf(TlsFailure.alertReceived, TlsFailure.connection));
      await server.close();
      await expectNothingLeft(worker);
    });

    test('a handshake that never finishes times out', () async {
      final worker = testWorker();
      final server = await secureEchoServer(worker, pki().serverContext(),
          handshakeTimeout: const Duration(milliseconds: 300));
      final serverFailure = server.handshakeErrors.first;
      final silent = await Socket.connect('127.0.0.1', server.port).bounded;
      addTearDown(silent.destroy);
      final failure = await serverFailure.bounded;
      expect(failure.failure, TlsFailure.timeout);
      expect(failure.message, contains('300 ms'));
      expect(server.pendingHandshakes, 0);
      await expectSecureEcho(server.port, worker);
      // And our client against a server that never answers.
      final mute = await silentPeer();
      await expectLater(
          TcpConnection.connectSecure('127.0.0.1', mute.port,
              pki().clientContext(),
              timeout: const Duration(milliseconds: 300), worker: worker),
          throwsA(isA<TlsHandshakeException>()
              .having((e) => e.failure, 'failure', TlsFailure.timeout)));
      await server.close();
      await expectNothingLeft(worker);
    });

    test('closing the listener drops handshakes in progress', () async {
      final worker = testWorker();
      final server = await secureEchoServer(worker, pki().serverContext());
      final silent = await Socket.connect('127.0.0.1', server.port).bounded;
      addTearDown(silent.destroy);
      final closed = silent.drain<void>().catchError((Object _) {});
      await untilStats(worker, (stats) => server.pendingHandshakes == 1,
          reason: 'the handshake started');
      await server.close();
      await closed.bounded;
      expect(server.failedHandshakes, 0);
      await expectNothingLeft(worker);
    });
  });

  group('after the handshake', () {
    test('a peer reset mid-record fails the stream, nothing leaks',
        () async {
      // The proxy, once told to, forwards only the first bytes of the next
      // chunk (part of a record) and then resets the connection to us.
      var cut = false;
      final (:worker, :server, :connection, :client, upstream: _) =
          await _dartClientThroughProxy(pki, (chunk, upstream) {
        if (!cut) {
          upstream.add(chunk);
          return;
        }
        upstream.add(chunk.sublist(0, 100));
        unawaited(upstream.flush().then((_) => resetSocket(upstream)));
      });
      final inbox = Inbox<Uint8List>(connection);
      client.add(pattern(10, 1));
      await inbox.next().bounded;
      cut = true;
      client.add(pattern(40000, 2));
      await inbox.done().bounded;
      expect(inbox.errors, hasLength(1));
      expect(inbox.errors.first,
          isA<TransportException>().having((e) => e.errno, 'errno', 104));
      expect(inbox.received, 1, reason: 'no plaintext of the cut record');
      connection.destroy();
      await server.close();
      await expectNothingLeft(worker);
    });

    test('a record that fails to decrypt fails the stream with the reason',
        () async {
      final (:worker, :server, :connection, client: _, :upstream) =
          await _dartClientThroughProxy(
              pki, (chunk, upstream) => upstream.add(chunk));
      final inbox = Inbox<Uint8List>(connection);
      // An application-data record of noise, straight to our server.
      upstream.add([23, 3, 3, 0, 40, ...pattern(40, 9)]);
      await inbox.done().bounded;
      expect(inbox.errors, hasLength(1));
      final error = inbox.errors.single as TransportException;
      expect(TlsFailure.fromCode(error.code!), TlsFailure.decryptError);
      // The session's own words follow the code's text.
      expect(error.message, startsWith('${error.nativeMessage}: '));
      expect(
          error.message.length, greaterThan(error.nativeMessage!.length + 2));
      connection.destroy();
      await server.close();
      await expectNothingLeft(worker);
    });

    test('a secured connection cannot be handed off; it stays usable',
        () async {
      if (!Transport.messagingSupported) {
        markTestSkipped('no io_uring messaging on this kernel');
        return;
      }
      final worker = testWorker();
      final other = testWorker();
      final server = await secureEchoServer(worker, pki().serverContext());
      final client = await TcpConnection.connectSecure(
              'localhost', server.port, pki().clientContext(),
              worker: worker)
          .bounded;
      Object? error;
      try {
        await client.handOff(other.id).bounded;
      } on Object catch (e) {
        error = e;
      }
      expect(error, isA<HandOffException>());
      final refused = error as HandOffException;
      expect(refused.code, -5049, reason: 'IOT_E_TLS_STATE');
      expect(refused.connection, same(client));
      final back = readExactly(client, 4);
      await client.write([1, 2, 3, 4]);
      expect(await back.bounded, [1, 2, 3, 4]);
      await client.close();
      await server.close();
      await expectNothingLeft(worker);
    });

    test('closing the worker during a handshake fails it, nothing leaks',
        () async {
      final worker = Worker();
      // A server that reads the ClientHello and never answers.
      final mute = await ServerSocket.bind(InternetAddress.loopbackIPv4, 0);
      addTearDown(mute.close);
      final hello = Completer<void>();
      mute.listen((socket) {
        addTearDown(socket.destroy);
        socket.listen((_) {
          if (!hello.isCompleted) hello.complete();
        }, onError: (Object _) {});
      });
      final connecting = TcpConnection.connectSecure(
          '127.0.0.1', mute.port, pki().clientContext(),
          worker: worker);
      await hello.future.bounded;
      await worker.close();
      await expectLater(
          connecting,
          throwsA(isA<TlsHandshakeException>()
              .having((e) => e.failure, 'failure', TlsFailure.cancelled)));
    });

    test('the stats show nothing outstanding after many connections',
        () async {
      final worker = testWorker();
      final server = await secureEchoServer(worker, pki().serverContext());
      final context = pki().clientContext();
      await Future.wait([
        for (var i = 0; i < 20; i++)
          () async {
            final client = await TcpConnection.connectSecure(
                    'localhost', server.port, context,
                    worker: worker)
                .bounded;
            final back = readExactly(client, 1000);
            await client.write(pattern(1000, i));
            expect(sameBytes(await back.bounded, pattern(1000, i)), isTrue);
            await client.close();
          }()
      ]);
      await server.close();
      await expectNothingLeft(worker);
    });
  });
}

/// A good client (ours) echoes through the secure server on [port].
Future<void> expectSecureEcho(int port, Worker worker,
    {TlsContext? context}) async {
  context ??= _pki().clientContext();
  final client = await TcpConnection.connectSecure('127.0.0.1', port, context,
          worker: worker)
      .bounded;
  final back = readExactly(client, 5);
  await client.write([5, 4, 3, 2, 1]);
  expect(await back.bounded, [5, 4, 3, 2, 1]);
  await client.close();
}

late TestPki Function() _pki;

/// Our secure server on a fresh worker, and a dart:io client reaching it
/// through [_proxyTo] with [forward], both closed with the test: the worker,
/// the server, our end of the connection, the client, and the proxy's
/// connection to our server (`upstream`). The proxy ends the client too, so the client's
/// errors are no news.
Future<_ProxiedClient> _dartClientThroughProxy(TestPki Function() pki,
    void Function(Uint8List chunk, Socket upstream) forward) async {
  final worker = testWorker();
  final server = await TcpListener.bindSecure(
          InternetAddress.loopbackIPv4, 0, pki().serverContext(),
          worker: worker)
      .bounded;
  addTearDown(server.close);
  final accepted = server.first;
  final (proxy, upstreamReady) = await _proxyTo(server.port, forward);
  final client = await SecureSocket.connect('localhost', proxy.port,
          context: pki().dartClientContext())
      .bounded;
  addTearDown(client.destroy);
  unawaited(client.done.then((_) {}, onError: (Object _) {}));
  client.listen(null, onError: (Object _) {});
  final connection = await accepted.bounded;
  return (
    worker: worker,
    server: server,
    connection: connection,
    client: client,
    upstream: await upstreamReady.bounded,
  );
}

typedef _ProxiedClient = ({
  Worker worker,
  SecureListener<TcpConnection> server,
  TcpConnection connection,
  SecureSocket client,
  Socket upstream,
});

/// A proxy on loopback to our server at [port]: each chunk a client sends
/// goes to [forward] with the connection to the server, which decides what
/// reaches it; the server's bytes go back as they are. Returns the proxy
/// (closed with the test) and the connection to the server, once a client
/// connected.
Future<(ServerSocket, Future<Socket>)> _proxyTo(
    int port, void Function(Uint8List chunk, Socket upstream) forward) async {
  final proxy = await ServerSocket.bind(InternetAddress.loopbackIPv4, 0);
  addTearDown(proxy.close);
  final upstreamReady = Completer<Socket>();
  proxy.listen((downstream) async {
    final upstream = await Socket.connect('127.0.0.1', port);
    addTearDown(upstream.destroy);
    upstreamReady.complete(upstream);
    upstream.listen(downstream.add,
        onError: (Object _) => downstream.destroy(),
        onDone: downstream.destroy);
    downstream.listen((chunk) => forward(chunk, upstream),
        onError: (Object _) {}, onDone: () {});
    addTearDown(downstream.destroy);
  });
  return (proxy, upstreamReady.future);
}
