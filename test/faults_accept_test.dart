// Accepting survives running out of file descriptors (issue 14): the Dart
// echo example, started under `ulimit -n 64`, gets more connections than it
// has descriptors; once they are gone it serves a new client again. The
// worker reports EMFILE as a non-final accept error and re-arms the accept
// itself, so the example only prints the error.
import 'dart:async';
import 'dart:convert';
import 'dart:io';
import 'dart:isolate';

import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// Compiling the example on this VM takes tens of seconds on a busy machine.
const Duration _compileWait = Duration(seconds: 150);

const int _descriptors = 64;
const int _storm = 300;

void main() {
  setUpTransport();

  test('the echo example serves again after a storm beyond its fd limit',
      () async {
    // Compiled here, not in setUpAll: the test's own timeout covers it.
    final directory = Directory.systemTemp.createTempSync('iouring_faults_');
    addTearDown(() => directory.deleteSync(recursive: true));
    final packages = (await Isolate.packageConfig)!;
    final kernel = '${directory.path}/echo_server.dill';
    final compiled = await Process.run(Platform.resolvedExecutable, [
      '--packages=${packages.toFilePath()}',
      '--snapshot-kind=kernel',
      '--snapshot=$kernel',
      packages.resolve('../example/echo_server.dart').toFilePath(),
    ]).timeout(_compileWait);
    expect(compiled.exitCode, 0, reason: '${compiled.stderr}');

    final server = await Process.start('sh', [
      '-c',
      'ulimit -n $_descriptors && exec "\$0" "\$@"',
      Platform.resolvedExecutable,
      '--packages=${packages.toFilePath()}',
      kernel,
      '--port',
      '0',
    ]);
    addTearDown(() => server.kill(ProcessSignal.sigkill));
    final errors = StringBuffer();
    final stderrDone =
        server.stderr.transform(utf8.decoder).forEach(errors.write);
    final lines =
        server.stdout.transform(utf8.decoder).transform(const LineSplitter());
    final output = StreamIterator(lines);
    expect(await output.moveNext().bounded, isTrue,
        reason: 'no output: $errors');
    final port = int.parse(output.current.split(':').last);

    final storm = <Socket>[];
    for (var i = 0; i < _storm; i++) {
      final socket =
          await Socket.connect(InternetAddress.loopbackIPv4, port).bounded;
      socket.done.ignore();
      socket.add([i & 0xff]);
      storm.add(socket);
    }
    for (final socket in storm) {
      socket.destroy();
    }

    final client =
        await Socket.connect(InternetAddress.loopbackIPv4, port).bounded;
    addTearDown(client.destroy);
    final reader = ByteReader(client);
    final message = utf8.encode('still accepting');
    client.add(message);
    expect(await reader.read(message.length).bounded, message);

    server.kill(ProcessSignal.sigterm);
    await server.exitCode.bounded;
    await stderrDone.bounded;
    expect(errors.toString(),
        anyOf(contains('RLIMIT_NOFILE'), contains('Too many open files')),
        reason: 'the storm is reported');
    await output.cancel();
  }, timeout: const Timeout(Duration(minutes: 4)));
}
