// example/tls_echo.dart as a child process: dart:io SecureSocket clients and
// `openssl s_client` get their bytes back, a plaintext client is refused
// (reported on stdout) while the server serves on, it stops cleanly on
// SIGINT and SIGTERM, and bad arguments are usage errors.
@TestOn('linux')
library;

import 'dart:convert';
import 'dart:io';

import 'package:test/test.dart';

import 'support/common.dart';
import 'support/example_process.dart';
import 'support/inbox.dart';
import 'support/tls.dart';

void main() {
  final examples = Examples(['tls_echo']);
  final pki = setUpPki();

  List<String> certificateArguments() => [
        '--cert', pki().server.certificatePath, //
        '--key', pki().server.keyPath,
      ];

  Future<void> expectSecureEcho(int port, int size) async {
    final socket = await SecureSocket.connect('localhost', port,
            context: pki().dartClientContext())
        .bounded;
    final data = pattern(size, size);
    final back = socket.fold<List<int>>(
        <int>[], (all, chunk) => all..addAll(chunk));
    socket.add(data);
    await socket.close();
    expect(sameBytes(await back.bounded, data), isTrue,
        reason: 'echoed bytes differ');
  }

  for (final signal in stopSignals) {
    test('echoes dart:io SecureSocket clients, stops cleanly on $signal',
        () async {
      final server = await examples
          .start('tls_echo', ['--port', '0', ...certificateArguments()]);
      final port = await server.listeningPort();
      await Future.wait([
        for (final size in [1, 65536, 1 << 20]) expectSecureEcho(port, size),
      ]);
      // A connection still open when the signal comes.
      final open = await SecureSocket.connect('localhost', port,
              context: pki().dartClientContext())
          .bounded;
      addTearDown(open.destroy);
      open.listen(null, onError: (Object _) {});
      final exit = await server.stop(signal);
      expect(exit.stdoutLines, hasLength(1), reason: '$exit');
    }, timeout: exampleTestTimeout);
  }

  test('openssl s_client talks to it; a plaintext client is refused',
      () async {
    final server = await examples
        .start('tls_echo', ['--port', '0', ...certificateArguments()]);
    final port = await server.listeningPort();
    final openssl = await Process.start('openssl', [
      's_client', '-connect', '127.0.0.1:$port', //
      '-CAfile', pki().ca.certificatePath, '-servername', 'localhost',
      '-verify_return_error', '-quiet', '-no_ign_eof',
    ]);
    addTearDown(() => openssl.kill(ProcessSignal.sigkill));
    final lines = openssl.stdout
        .transform(utf8.decoder)
        .transform(const LineSplitter());
    final echoed = lines.first;
    final errors = openssl.stderr.transform(utf8.decoder).join();
    openssl.stdin.writeln('hello over TLS');
    expect(await echoed.bounded, 'hello over TLS');
    await openssl.stdin.close();
    expect(await openssl.exitCode.bounded, 0, reason: await errors);

    final plain = await Socket.connect('127.0.0.1', port).bounded;
    plain.write('hello in plaintext\n');
    // The server answers with an alert and closes the connection.
    final answer = await plain
        .fold<List<int>>(<int>[], (all, chunk) => all..addAll(chunk))
        .bounded;
    plain.destroy();
    expect(answer, isNotEmpty);
    expect(answer.first, 21, reason: 'a TLS alert record');
    // It serves on.
    await expectSecureEcho(port, 1000);

    final exit = await server.stop(ProcessSignal.sigterm);
    final failures =
        exit.stdoutLines.where((line) => line.startsWith('handshake failed'));
    expect(failures, hasLength(1), reason: '$exit');
    expect(failures.single, contains('protocolError'), reason: '$exit');
  }, timeout: exampleTestTimeout);

  test('a missing key file exits 1 with the reason', () async {
    final run = await examples.run('tls_echo', [
      '--port', '0', '--cert', pki().server.certificatePath, //
      '--key', '${pki().directory.path}/missing.key',
    ]);
    expect(run.exitCode, 1, reason: '$run');
    expect(run.stdoutLines, isEmpty, reason: '$run');
    expect(run.stderr, startsWith('tls_echo: TlsConfigException'),
        reason: '$run');
  }, timeout: exampleTestTimeout);

  usageErrorTests(examples, [
    (example: 'tls_echo', arguments: ['--port', '0']),
    (example: 'tls_echo', arguments: ['--cert', 'a.pem']),
    (example: 'tls_echo', arguments: ['--bogus', '1']),
  ]);
}
