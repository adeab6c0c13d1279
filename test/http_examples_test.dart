/// The HTTP examples run end to end (example/http_server.dart and
/// example/shelf_server.dart): each started as its own process, driven with
/// dart:io's HttpClient over the loopback, stopped with a signal and held to
/// a clean exit (code 0, nothing on stderr, one `listening on` line).
library;

import 'dart:convert';
import 'dart:io';

import 'package:test/test.dart';

import 'support/common.dart';
import 'support/example_process.dart';
import 'support/http_client.dart';

void main() {
  setUpTransport();

  // In the order the tests first need them.
  final examples = Examples(['http_server', 'shelf_server']);

  /// Starts [example] on a free port of the IPv4 loopback; returns it with
  /// the URI of path [path] on it.
  Future<(ExampleProcess, Uri Function(String path))> startServer(
      String example) async {
    final server = await examples.start(example, ['--port', '0']);
    final port = await server.listeningPort();
    return (server, (String path) => Uri.parse('http://127.0.0.1:$port$path'));
  }

  group('http_server', () {
    for (final signal in stopSignals) {
      test(
          'answers hello to GET /, echoes a 1 MiB POST, 404 elsewhere, then '
          'exits cleanly on $signal with a keep-alive connection open',
          () async {
        final (server, uri) = await startServer('http_server');
        final client = testHttpClient();
        final (hello, helloBody) = await fetch(client, 'GET', uri('/'));
        expect(hello.statusCode, 200);
        expect(utf8.decode(helloBody), 'hello');
        final upload = pattern(1 << 20, 1);
        final (echo, echoed) =
            await fetch(client, 'POST', uri('/upload'), body: upload);
        expect(echo.statusCode, 200);
        expect(sameBytes(echoed, upload), isTrue, reason: 'the echoed body');
        final (missing, _) = await fetch(client, 'GET', uri('/missing'));
        expect(missing.statusCode, 404);
        // The client keeps its connection idle: the server stops with it
        // open.
        await server.stop(signal);
      }, timeout: exampleTestTimeout);
    }

    test('a chunked POST is echoed whole', () async {
      final (server, uri) = await startServer('http_server');
      final upload = pattern(30000, 2);
      final (response, echoed) = await fetch(
          testHttpClient(), 'POST', uri('/'),
          body: upload, chunked: true);
      expect(response.statusCode, 200);
      expect(sameBytes(echoed, upload), isTrue);
      await server.stop(ProcessSignal.sigint);
    }, timeout: exampleTestTimeout);

    test('on IPv6 prints its host in brackets', () async {
      if (!await ipv6Available()) {
        markTestSkipped('no IPv6 loopback on this machine');
        return;
      }
      final server =
          await examples.start('http_server', ['--host', '::1', '--port', '0']);
      final address = await server.listeningAddress();
      final port = RegExp(r'^\[::1\]:(\d+)$').firstMatch(address)?[1];
      expect(port, isNotNull, reason: 'listening on $address');
      final (response, body) = await fetch(
          testHttpClient(), 'GET', Uri.parse('http://[::1]:$port/'));
      expect(response.statusCode, 200);
      expect(utf8.decode(body), 'hello');
      await server.stop(ProcessSignal.sigterm);
    }, timeout: exampleTestTimeout);

    test('a port in use: exits 1 and says why on stderr', () async {
      final taken = await ServerSocket.bind(InternetAddress.loopbackIPv4, 0);
      addTearDown(taken.close);
      final run =
          await examples.run('http_server', ['--port', '${taken.port}']);
      expect(run.exitCode, 1, reason: '$run');
      expect(run.stdoutLines, isEmpty, reason: '$run');
      expect(run.stderr, startsWith('http_server: '), reason: '$run');
    }, timeout: exampleTestTimeout);
  });

  group('shelf_server', () {
    for (final signal in stopSignals) {
      test(
          'routes GET /hello/<name> and POST /echo, 404 elsewhere, then exits '
          'cleanly on $signal', () async {
        final (server, uri) = await startServer('shelf_server');
        final client = testHttpClient();
        final (hello, helloBody) =
            await fetch(client, 'GET', uri('/hello/world'));
        expect(hello.statusCode, 200);
        expect(utf8.decode(helloBody), 'hello world');
        final upload = pattern(300000, 3);
        final (echo, echoed) =
            await fetch(client, 'POST', uri('/echo'), body: upload);
        expect(echo.statusCode, 200);
        expect(sameBytes(echoed, upload), isTrue, reason: 'the echoed body');
        final (missing, _) = await fetch(client, 'GET', uri('/nowhere'));
        expect(missing.statusCode, 404);
        await server.stop(signal);
      }, timeout: exampleTestTimeout);
    }
  });

  group('bad usage', () {
    const usages = [
      (example: 'http_server', arguments: ['--bogus', '1']),
      (example: 'http_server', arguments: ['--port', '65536']),
      (example: 'shelf_server', arguments: ['--port']),
    ];
    usageErrorTests(examples, usages);
  });
}
