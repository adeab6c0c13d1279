// The Dart benchmark servers of bench/dart/ as child processes: each serves
// its protocol (echo, TLS echo, HTTP and HTTPS) to a dart:io client and stops
// cleanly on SIGTERM, and the dart:io peers' kernels hold nothing of the
// package, which a JIT VM would load for them too (its peak would then carry
// our kernel, about 2 MiB: tool/dart_import_cost.sh).
@TestOn('linux')
library;

import 'dart:convert';
import 'dart:io';

import 'package:test/test.dart';

import 'support/common.dart';
import 'support/example_process.dart';
import 'support/http_client.dart' show fetch;
import 'support/inbox.dart';
import 'support/tls.dart';

const List<String> _dartIoServers = [
  'dartio_echo_server',
  'dartio_tls_echo_server',
  'dartio_http_server',
];

const List<String> _ourServers = [
  'iouring_echo_server',
  'iouring_tls_echo_server',
  'iouring_http_server',
];

void main() {
  final servers =
      Examples([..._dartIoServers, ..._ourServers], directory: 'bench/dart');
  final pki = setUpPki();

  List<String> certificateArguments() => [
        '--cert', pki().server.certificatePath, //
        '--key', pki().server.keyPath,
      ];

  Future<void> expectEcho(Socket socket) async {
    final data = pattern(256 << 10, 7);
    final back = socket.fold<List<int>>(
        <int>[], (all, chunk) => all..addAll(chunk));
    socket.add(data);
    await socket.close().bounded;
    expect(sameBytes(await back.bounded, data), isTrue,
        reason: 'echoed bytes differ');
  }

  for (final impl in ['dartio', 'iouring']) {
    test('${impl}_echo_server echoes and stops on SIGTERM', () async {
      final server =
          await servers.start('${impl}_echo_server', ['--port', '0']);
      final port = await server.listeningPort();
      await expectEcho(
          await Socket.connect(InternetAddress.loopbackIPv4, port).bounded);
      await server.stop(ProcessSignal.sigterm);
    }, timeout: exampleTestTimeout);

    test('${impl}_tls_echo_server echoes over TLS and stops on SIGTERM',
        () async {
      final server = await servers.start('${impl}_tls_echo_server',
          ['--port', '0', ...certificateArguments()]);
      final port = await server.listeningPort();
      await expectEcho(await SecureSocket.connect('localhost', port,
              context: pki().dartClientContext())
          .bounded);
      await server.stop(ProcessSignal.sigterm);
    }, timeout: exampleTestTimeout);

    for (final tls in [false, true]) {
      final scheme = tls ? 'https' : 'http';
      test('${impl}_http_server answers /plain and /4k over $scheme',
          () async {
        final server = await servers.start('${impl}_http_server',
            ['--port', '0', if (tls) ...certificateArguments()]);
        final port = await server.listeningPort();
        final client =
            HttpClient(context: tls ? pki().dartClientContext() : null);
        addTearDown(() => client.close(force: true));
        final host = tls ? 'localhost' : '127.0.0.1';
        Uri at(String path) => Uri.parse('$scheme://$host:$port$path');
        final (plain, plainBody) = await fetch(client, 'GET', at('/plain'));
        expect(plain.statusCode, 200);
        expect(utf8.decode(plainBody), 'Hello, World!');
        final (fourKiB, fourKiBBody) = await fetch(client, 'GET', at('/4k'));
        expect(fourKiB.statusCode, 200);
        expect(fourKiBBody, List<int>.filled(4096, 0x61));
        await server.stop(ProcessSignal.sigterm);
      }, timeout: exampleTestTimeout);
    }
  }

  test('the dart:io peers load nothing of the package; ours do', () async {
    const ours = 'package:iouring_transport/';
    Future<bool> loadsThePackage(String name) async {
      final kernel = await File(await servers.kernel(name)).readAsBytes();
      return latin1.decode(kernel).contains(ours);
    }

    for (final name in _dartIoServers) {
      expect(await loadsThePackage(name), isFalse, reason: name);
    }
    for (final name in _ourServers) {
      expect(await loadsThePackage(name), isTrue, reason: name);
    }
  }, timeout: const Timeout(Duration(minutes: 4)));
}
