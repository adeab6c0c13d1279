// The dart:io drop-in over TLS: HttpServer.listenOn(IoUringSecureServerSocket)
// serving HTTPS to dart:io's HttpClient (keep-alive, large and chunked
// bodies, client certificates), IoUringSecureSocket as a SecureSocket
// against dart:io's SecureServerSocket (its peer certificate as dart:io
// reports the same certificate), ALPN, and handshake failures as dart:io's
// HandshakeException with the server serving on.
@TestOn('linux')
library;

import 'dart:async';
import 'dart:convert';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/http_client.dart';
import 'support/inbox.dart';
import 'support/tls.dart';

void main() {
  setUpTransport();
  final pki = setUpPki();

  /// An HTTPS server: HttpServer.listenOn over a fresh secure server socket
  /// (IPv4 loopback, a free port) answering with [handler].
  Future<(HttpServer, IoUringSecureServerSocket)> serveHttps(
      Worker worker, FutureOr<void> Function(HttpRequest request) handler,
      {TlsContext? context}) async {
    final socket = await IoUringSecureServerSocket.bind(
            InternetAddress.loopbackIPv4, 0,
            context ?? pki().serverContext(alpnProtocols: ['http/1.1']),
            worker: worker)
        .bounded;
    addTearDown(socket.close);
    final server = HttpServer.listenOn(socket);
    addTearDown(() => server.close(force: true));
    server.listen((request) async {
      await handler(request);
    });
    return (server, socket);
  }

  HttpClient httpsClient({bool withCertificate = false}) {
    final client = HttpClient(
        context: pki().dartClientContext(withCertificate: withCertificate));
    addTearDown(() => client.close(force: true));
    return client;
  }

  Future<void> echoBody(HttpRequest request) async {
    final body = await readAll(request);
    request.response
      ..headers.set('x-scheme', request.requestedUri.scheme)
      ..headers.set('x-port', '${request.connectionInfo!.remotePort}')
      ..contentLength = body.length
      ..add(body);
    await request.response.close();
  }

  group('HTTPS: HttpServer.listenOn(ours), dart:io HttpClient', () {
    test('keep-alive: several requests on one connection, https scheme',
        () async {
      final worker = testWorker();
      final (server, socket) = await serveHttps(worker, echoBody);
      final client = httpsClient()..maxConnectionsPerHost = 1;
      final ports = <String>{};
      for (var i = 0; i < 5; i++) {
        final (response, body) = await fetch(client, 'POST',
            Uri.parse('https://localhost:${server.port}/$i'),
            body: utf8.encode('request $i'));
        expect(response.statusCode, 200);
        expect(utf8.decode(body), 'request $i');
        expect(response.headers.value('x-scheme'), 'https');
        expect(response.certificate!.subject, '/CN=localhost');
        ports.add(response.headers.value('x-port')!);
      }
      expect(ports, hasLength(1), reason: 'one kept-alive connection');
      expect(socket.listener.failedHandshakes, 0);
    });

    test('a large body (8 MiB) both ways, and a chunked one', () async {
      final worker = testWorker();
      final (server, _) = await serveHttps(worker, echoBody);
      final client = httpsClient();
      final large = pattern(8 * 1024 * 1024, 5);
      final (response, body) = await fetch(
          client, 'PUT', Uri.parse('https://localhost:${server.port}/big'),
          body: large);
      expect(response.statusCode, 200);
      expect(body.length, large.length);
      expect(sameBytes(body, large), isTrue);
      final chunkedBody = pattern(50000, 6);
      final (chunkedResponse, chunkedBack) = await fetch(client, 'POST',
          Uri.parse('https://localhost:${server.port}/chunked'),
          body: chunkedBody, chunked: true);
      expect(chunkedResponse.statusCode, 200);
      expect(sameBytes(chunkedBack, chunkedBody), isTrue);
    });

    test('a chunked response', () async {
      final worker = testWorker();
      final (server, _) = await serveHttps(worker, (request) async {
        for (var i = 0; i < 100; i++) {
          request.response.add(pattern(1000, i));
          await request.response.flush();
        }
        await request.response.close();
      });
      final (response, body) = await fetch(
          httpsClient(), 'GET', Uri.parse('https://127.0.0.1:${server.port}/'));
      expect(response.headers.chunkedTransferEncoding, isTrue);
      expect(body.length, 100000);
      expect(sameBytes(body.sublist(99000), pattern(1000, 99)), isTrue);
    });

    test('a required client certificate: request.certificate', () async {
      final worker = testWorker();
      final (server, socket) = await serveHttps(worker, (request) async {
        request.response.write(request.certificate?.subject ?? 'none');
        await request.response.close();
      },
          context: pki().serverContext(clientAuth: TlsClientAuth.required));
      final uri = Uri.parse('https://localhost:${server.port}/');
      final (response, body) =
          await fetch(httpsClient(withCertificate: true), 'GET', uri);
      expect(response.statusCode, 200);
      expect(utf8.decode(body), '/CN=test client');
      // Without one: the client fails, the server goes on.
      final failed = socket.listener.handshakeErrors.first;
      await expectLater(fetch(httpsClient(), 'GET', uri),
          throwsA(isA<IOException>()));
      expect((await failed.bounded).failure, TlsFailure.certificateRequired);
      final (again, _) =
          await fetch(httpsClient(withCertificate: true), 'GET', uri);
      expect(again.statusCode, 200);
    });

    test('a plain HTTP client on the HTTPS port; the server serves on',
        () async {
      final worker = testWorker();
      final (server, socket) = await serveHttps(worker, echoBody);
      final failed = socket.listener.handshakeErrors.first;
      final plain = HttpClient();
      addTearDown(() => plain.close(force: true));
      await expectLater(
          fetch(plain, 'GET', Uri.parse('http://127.0.0.1:${server.port}/')),
          throwsA(isA<IOException>()));
      expect((await failed.bounded).failure, TlsFailure.protocolError);
      final (response, body) = await fetch(httpsClient(), 'POST',
          Uri.parse('https://localhost:${server.port}/'),
          body: [1, 2, 3]);
      expect(response.statusCode, 200);
      expect(body, [1, 2, 3]);
    });
  });

  group('IoUringSecureServerSocket directly', () {
    test('sockets are SecureSockets; failures are HandshakeException events',
        () async {
      final worker = testWorker();
      final server = await IoUringSecureServerSocket.bind(
              InternetAddress.loopbackIPv4,
              0,
              pki().serverContext(alpnProtocols: ['h2', 'http/1.1']),
              worker: worker)
          .bounded;
      addTearDown(server.close);
      final inbox = Inbox<Socket>(server);
      // A client trusting another CA: refused, reported as an error event.
      await expectLater(
          SecureSocket.connect('localhost', server.port,
              context: SecurityContext()
                ..setTrustedCertificates(pki().rogueCa.certificatePath)),
          throwsA(isA<HandshakeException>()));
      await inbox.until(() => inbox.errors.isNotEmpty).bounded;
      expect(inbox.errors.single, isA<HandshakeException>());
      expect(inbox.errors.single, isA<IoUringHandshakeException>());
      // A good client next.
      final client = await SecureSocket.connect('localhost', server.port,
              context: pki().dartClientContext(), supportedProtocols: ['h2'])
          .bounded;
      addTearDown(client.destroy);
      final accepted = await inbox.next().bounded;
      addTearDown(accepted.destroy);
      expect(accepted, isA<SecureSocket>());
      final secure = accepted as SecureSocket;
      expect(secure.selectedProtocol, 'h2');
      expect(client.selectedProtocol, 'h2');
      expect(secure.peerCertificate, isNull);
      expect(secure.remotePort, client.port);
      expect(() => secure.renegotiate(), throwsUnsupportedError);
      // Echo through the dart:io-shaped socket.
      secure.listen(secure.add, onDone: () => unawaited(secure.close()));
      final back = client.fold<List<int>>(
          <int>[], (all, chunk) => all..addAll(chunk));
      client.add(pattern(70000, 9));
      await client.close();
      expect(sameBytes(await back.bounded, pattern(70000, 9)), isTrue);
    });
  });

  test('Unix stream sockets through the dart:io-shaped classes', () async {
    final worker = testWorker();
    final path = '${pki().directory.path}/tls.sock';
    final unix = InternetAddress(path, type: InternetAddressType.unix);
    final server = await IoUringSecureServerSocket.bind(
            unix, 0, pki().serverContext(),
            worker: worker)
        .bounded;
    addTearDown(server.close);
    expect(server.address, unix);
    expect(server.port, 0);
    server.listen((socket) => socket.listen(socket.add,
        onDone: () => unawaited(socket.close())));
    final socket = await IoUringSecureSocket.connect(unix, 0,
            context: pki().clientContext(),
            serverName: 'localhost',
            worker: worker)
        .bounded;
    final back =
        socket.fold<List<int>>(<int>[], (all, chunk) => all..addAll(chunk));
    socket.add(pattern(30000, 1));
    await socket.close();
    expect(sameBytes(await back.bounded, pattern(30000, 1)), isTrue);
    await server.close();
    await expectNothingLeft(worker);
  });

  group('IoUringSecureSocket.connect, dart:io SecureServerSocket', () {
    test('echo; the peer certificate as dart:io reports it', () async {
      final worker = testWorker();
      final server = await SecureServerSocket.bind(
              InternetAddress.loopbackIPv4, 0, pki().dartServerContext())
          .bounded;
      addTearDown(server.close);
      server.listen((socket) => socket.listen(socket.add,
          onError: (Object _) => socket.destroy(),
          onDone: () => unawaited(socket.close())));
      final socket = await IoUringSecureSocket.connect(
              'localhost', server.port,
              context: pki().clientContext(), worker: worker)
          .bounded;
      expect(socket, isA<SecureSocket>());
      expect(socket.remotePort, server.port);
      expect(socket.session.protocol, 'TLSv1.3');
      // The same certificate as a dart:io client sees it.
      final reference = await SecureSocket.connect('localhost', server.port,
              context: pki().dartClientContext())
          .bounded;
      final expected = reference.peerCertificate!;
      reference.destroy();
      final certificate = socket.peerCertificate!;
      expect(certificate.der, expected.der);
      expect(certificate.subject, expected.subject);
      expect(certificate.issuer, expected.issuer);
      expect(certificate.issuer, '/O=iouring_transport tests/CN=Test CA');
      expect(certificate.startValidity, expected.startValidity);
      expect(certificate.endValidity, expected.endValidity);
      expect(certificate.sha1, expected.sha1);
      expect(certificate.pem.trim(), expected.pem.trim());
      final data = pattern(1 << 20, 4);
      final back = socket.fold<List<int>>(
          <int>[], (all, chunk) => all..addAll(chunk));
      socket.add(data);
      await socket.close();
      expect(sameBytes(await back.bounded, data), isTrue);
      await expectNothingLeft(worker);
    });

    test('our client certificate, as a dart:io server requiring one sees it',
        () async {
      final worker = testWorker();
      final context = pki().dartServerContext()
        ..setTrustedCertificates(pki().ca.certificatePath);
      final server = await SecureServerSocket.bind(
              InternetAddress.loopbackIPv4, 0, context,
              requireClientCertificate: true)
          .bounded;
      addTearDown(server.close);
      final seen = server.first;
      final socket = await IoUringSecureSocket.connect(
              '127.0.0.1', server.port,
              context: pki().clientContext(withCertificate: true),
              worker: worker)
          .bounded;
      final accepted = await seen.bounded;
      expect(accepted.peerCertificate!.der, pki().client.der);
      expect(accepted.peerCertificate!.subject, '/CN=test client');
      // The way back: bytes from dart:io, then its end of stream.
      accepted.add([7, 8, 9]);
      await accepted.close();
      final got = await socket
          .fold<List<int>>(<int>[], (all, chunk) => all..addAll(chunk))
          .bounded;
      expect(got, [7, 8, 9]);
      socket.destroy();
      accepted.destroy();
      await expectNothingLeft(worker);
    });

    test('failures: HandshakeException, SocketException', () async {
      final worker = testWorker();
      final server = await SecureServerSocket.bind(
              InternetAddress.loopbackIPv4, 0,
              pki().dartServerContext(identity: pki().rogueServer))
          .bounded;
      addTearDown(server.close);
      server.listen((socket) => socket.destroy(), onError: (Object _) {});
      await expectLater(
          IoUringSecureSocket.connect('localhost', server.port,
              context: pki().clientContext(), worker: worker),
          throwsA(isA<IoUringHandshakeException>()
              .having((e) => e.cause.failure, 'failure',
                  TlsFailure.unknownIssuer)
              .having((e) => e.message, 'message', contains('UnknownIssuer'))));
      await server.close();
      await expectLater(
          IoUringSecureSocket.connect('127.0.0.1', server.port,
              context: pki().clientContext(), worker: worker),
          throwsA(isA<SocketException>()));
      await expectNothingLeft(worker);
    });
  });
}
