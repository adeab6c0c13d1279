/// dart:io's HttpServer served over [IoUringServerSocket]
/// (`HttpServer.listenOn`), driven by dart:io's HttpClient, WebSocket and
/// raw dart:io sockets: keep-alive, chunked bodies, large bodies,
/// pipelining, clients that go away mid-body, a WebSocket upgrade, and a
/// shelf application.
library;

import 'dart:async';
import 'dart:convert';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:shelf/shelf_io.dart' as shelf_io;
import 'package:test/test.dart';

import '../example/support/shelf_app.dart';
import 'support/common.dart';
import 'support/http_client.dart';
import 'support/inbox.dart';

/// An HttpServer on a fresh [IoUringServerSocket] (IPv4 loopback, a free
/// port), closed (with its connections) when the test ends, and so is the
/// socket: an HttpServer made with `listenOn` leaves its socket open.
Future<HttpServer> _server() async {
  final socket =
      await IoUringServerSocket.bind(InternetAddress.loopbackIPv4, 0).bounded;
  addTearDown(socket.close);
  final server = HttpServer.listenOn(socket);
  addTearDown(() => server.close(force: true));
  return server;
}

/// An HttpServer answering every request with [handler].
Future<HttpServer> _serve(
    FutureOr<void> Function(HttpRequest request) handler) async {
  final server = await _server();
  server.listen((request) async {
    await handler(request);
  });
  return server;
}

/// `http://127.0.0.1:PORT/PATH` of [server].
Uri _uri(HttpServer server, [String path = '/']) =>
    Uri.parse('http://127.0.0.1:${server.port}$path');

/// [method] [path] of [server] with [body], as [fetch] does.
Future<(HttpClientResponse, Uint8List)> _fetch(
        HttpClient client, HttpServer server, String method, String path,
        {List<int>? body, bool chunked = false}) =>
    fetch(client, method, _uri(server, path), body: body, chunked: chunked);

/// Answers with the request's body, byte for byte.
Future<void> _echo(HttpRequest request) async {
  final body = await readAll(request);
  request.response
    ..contentLength = body.length
    ..add(body);
  await request.response.close();
}

void main() {
  setUpTransport();

  test(
      'keep-alive: several requests share one connection (same local port, '
      'one peer seen by the server)', () async {
    final peers = <int>{};
    final server = await _serve((request) async {
      peers.add(request.connectionInfo!.remotePort);
      request.response.write('answer ${request.uri.path}');
      await request.response.close();
    });
    // One connection at most: a request waits until the previous response
    // gave the connection back, so a new local port means the server closed
    // it. Without the limit dart:io's HttpClient may open a second one: it
    // gives a connection back a little after the response's end, and with
    // our socket a response's headers and body arrive apart (the headers'
    // flush completes when the send completed, a round trip through the
    // ring, and only then does HttpServer add the body), so the next request
    // can come first.
    final client = testHttpClient()..maxConnectionsPerHost = 1;
    final localPorts = <int?>{};
    for (var i = 0; i < 5; i++) {
      final (response, body) = await _fetch(client, server, 'GET', '/$i');
      expect(response.statusCode, 200);
      expect(response.persistentConnection, isTrue);
      expect(utf8.decode(body), 'answer /$i');
      localPorts.add(response.connectionInfo?.localPort);
    }
    expect(localPorts, hasLength(1), reason: 'one connection for all');
    expect(localPorts.single, isNotNull);
    expect(peers, hasLength(1));
  });

  test('a chunked response arrives whole, with its chunked encoding',
      () async {
    final pieces = [for (var i = 0; i < 20; i++) 'piece $i;' * (i + 1)];
    final server = await _serve((request) async {
      final response = request.response..bufferOutput = false;
      for (final piece in pieces) {
        response.write(piece);
        await response.flush();
      }
      await response.close();
    });
    final (response, body) =
        await _fetch(testHttpClient(), server, 'GET', '/');
    expect(response.headers.chunkedTransferEncoding, isTrue);
    expect(response.contentLength, -1);
    expect(utf8.decode(body), pieces.join());
  });

  test('a chunked request arrives whole, with its chunked encoding',
      () async {
    final chunkedSeen = Completer<bool>();
    final server = await _serve((request) async {
      chunkedSeen.complete(request.headers.chunkedTransferEncoding);
      await _echo(request);
    });
    final data = pattern(50000, 1);
    final (_, body) = await _fetch(testHttpClient(), server, 'POST', '/',
        body: data, chunked: true);
    expect(await chunkedSeen.future.bounded, isTrue);
    expect(sameBytes(body, data), isTrue);
  });

  test('large bodies both ways: a 6 MiB upload echoed, an 8 MiB download',
      () async {
    final download = pattern(8 << 20, 2);
    final server = await _serve((request) async {
      if (request.method == 'POST') {
        await _echo(request);
      } else {
        request.response
          ..contentLength = download.length
          ..add(download);
        await request.response.close();
      }
    });
    final client = testHttpClient();
    final upload = pattern((6 << 20) + 5, 3);
    final (posted, echoed) =
        await _fetch(client, server, 'POST', '/', body: upload);
    expect(posted.statusCode, 200);
    expect(sameBytes(echoed, upload), isTrue, reason: 'the echoed upload');
    final (_, downloaded) = await _fetch(client, server, 'GET', '/');
    expect(sameBytes(downloaded, download), isTrue, reason: 'the download');
  });

  test('pipelining: two requests sent at once are answered in order',
      () async {
    final server = await _serve((request) async {
      request.response.write('path ${request.uri.path}');
      await request.response.close();
    });
    final socket = await Socket.connect(InternetAddress.loopbackIPv4,
            server.port)
        .bounded;
    addTearDown(socket.destroy);
    final reply = ByteReader(socket);
    // One write holding both requests; the second asks to close after it.
    socket.write('GET /first HTTP/1.1\r\nHost: test\r\n\r\n'
        'GET /second HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
    await socket.flush().bounded;
    final text = latin1.decode(await reply.readToEnd().bounded);
    final statuses = RegExp(r'HTTP/1\.1 200 OK').allMatches(text);
    expect(statuses, hasLength(2), reason: text);
    final first = text.indexOf('path /first');
    final second = text.indexOf('path /second');
    expect(first, isNonNegative, reason: text);
    expect(second, greaterThan(first), reason: text);
  });

  test(
      'a client gone mid-body: the request stream fails or ends short, and '
      'the server goes on serving', () async {
    final ended = Completer<String>();
    var received = 0;
    final server = await _serve((request) async {
      if (request.uri.path != '/upload') {
        request.response.write('still serving');
        await request.response.close();
        return;
      }
      request.listen((chunk) => received += chunk.length,
          onError: (Object error) {
        if (!ended.isCompleted) ended.complete('error ${error.runtimeType}');
      }, onDone: () {
        if (!ended.isCompleted) ended.complete('done');
      });
    });
    final socket = await Socket.connect(InternetAddress.loopbackIPv4,
            server.port)
        .bounded;
    addTearDown(socket.destroy);
    socket.write('POST /upload HTTP/1.1\r\nHost: test\r\n'
        'Content-Length: 1000000\r\n\r\n');
    socket.add(pattern(10000, 4));
    await socket.flush().bounded;
    socket.destroy();
    final outcome = await ended.future.bounded;
    expect(outcome, anyOf('done', startsWith('error')));
    expect(received, lessThan(1000000));
    final (response, body) =
        await _fetch(testHttpClient(), server, 'GET', '/next');
    expect(response.statusCode, 200);
    expect(utf8.decode(body), 'still serving');
  });

  test('several clients at once are served on their own connections',
      () async {
    final server = await _serve(_echo);
    final results = await Future.wait([
      for (var i = 0; i < 8; i++)
        _fetch(testHttpClient(), server, 'POST', '/',
            body: pattern(100000 + i, i)),
    ]);
    for (var i = 0; i < results.length; i++) {
      expect(sameBytes(results[i].$2, pattern(100000 + i, i)), isTrue,
          reason: 'client $i');
    }
  });

  test(
      'a WebSocket upgrade takes the socket over (detachSocket) and echoes '
      'messages both ways', () async {
    final server = await _serve((request) async {
      final socket = await WebSocketTransformer.upgrade(request);
      await socket.map<Object?>((message) => 'echo $message').pipe(socket);
    });
    final client =
        await WebSocket.connect('ws://127.0.0.1:${server.port}/').bounded;
    addTearDown(client.close);
    final replies = Inbox<Object?>(client);
    for (var i = 0; i < 3; i++) {
      client.add('message $i');
      expect(await replies.next(), 'echo message $i');
    }
    await client.close().bounded;
    await replies.done();
    expect(client.closeCode, WebSocketStatus.noStatusReceived);
  });

  group('shelf (shelf_io.serveRequests with shelf_router)', () {
    late HttpServer server;
    late HttpClient client;

    setUp(() async {
      server = await _server();
      shelf_io.serveRequests(server, shelfApp().call);
      client = testHttpClient();
    });

    test('GET /hello/<name> answers hello <name>', () async {
      final (response, body) =
          await _fetch(client, server, 'GET', '/hello/world');
      expect(response.statusCode, 200);
      expect(utf8.decode(body), 'hello world');
    });

    test('POST /echo answers with the body (1 MiB, byte-exact)', () async {
      final data = pattern(1 << 20, 5);
      final (response, body) =
          await _fetch(client, server, 'POST', '/echo', body: data);
      expect(response.statusCode, 200);
      expect(sameBytes(body, data), isTrue);
    });

    test('an unknown route is 404', () async {
      final (response, _) = await _fetch(client, server, 'GET', '/nowhere');
      expect(response.statusCode, 404);
    });
  });

  test(
      'a closed HttpServer (listenOn) drops new connections on its socket; '
      'closing the socket refuses them', () async {
    final socket =
        await IoUringServerSocket.bind(InternetAddress.loopbackIPv4, 0).bounded;
    addTearDown(socket.close);
    final server = HttpServer.listenOn(socket);
    server.listen((request) => request.response.close());
    await server.close().bounded;
    // As with any ServerSocket: HttpServer keeps the socket it was given
    // (and its subscription), and destroys a connection it still accepts
    // once a request comes in on it.
    final dropped =
        await Socket.connect(InternetAddress.loopbackIPv4, socket.port)
            .bounded;
    addTearDown(dropped.destroy);
    dropped.write('GET / HTTP/1.1\r\nHost: test\r\n\r\n');
    expect(await ByteReader(dropped).readToEnd().bounded, isEmpty);
    await socket.close().bounded;
    await expectLater(
        Socket.connect(InternetAddress.loopbackIPv4, socket.port).bounded,
        throwsA(isA<SocketException>()
            .having((e) => e.osError?.errorCode, 'errno', 111)));
  });
}
