// Tests of the pack tool (`dart run iouring_transport:pack`): its command
// line, its failures, and a packed echo server that runs from its unpacked
// archive with a clean environment. Needs `dart`, `cargo` and `tar` on PATH.
//
// The pack tool's pieces live in the package's src/ so that they can be
// tested here without spawning it.
// ignore_for_file: implementation_imports
@TestOn('linux')
library;

import 'dart:async';
import 'dart:convert';
import 'dart:io';

import 'package:iouring_transport/src/pack/options.dart';
import 'package:iouring_transport/src/pack/packer.dart';
import 'package:test/test.dart';

void main() {
  group('parsePackArgs', () {
    test('defaults: name from the entry file, output build/, build on', () {
      final options = parsePackArgs(['bin/server.dart']) as PackOptions;
      expect(options.entry, 'bin/server.dart');
      expect(options.name, 'server');
      expect(options.outputDir, 'build');
      expect(options.includes, isEmpty);
      expect(options.build, isTrue);
      expect(options.lib, isNull);
    });

    test('every option, with separate and inline values', () {
      final options = parsePackArgs([
        '-o',
        'out',
        '--name=app',
        '--include',
        'config.yaml',
        '--include=assets/',
        '--no-build',
        '--lib',
        '/opt/libiouring_transport.so',
        'bin/server.dart',
      ]) as PackOptions;
      expect(options.entry, 'bin/server.dart');
      expect(options.outputDir, 'out');
      expect(options.name, 'app');
      expect(options.includes, ['config.yaml', 'assets']);
      expect(options.build, isFalse);
      expect(options.lib, '/opt/libiouring_transport.so');

      final long = parsePackArgs(['--output', 'dist', 'server.dart']);
      expect((long as PackOptions).outputDir, 'dist');
    });

    test('-- ends the options', () {
      final options = parsePackArgs(['--', '-weird.dart']) as PackOptions;
      expect(options.entry, '-weird.dart');
      expect(options.name, '-weird');
    });

    test('--help and -h win over everything else', () {
      expect(parsePackArgs(['--help']), isA<PackHelp>());
      expect(parsePackArgs(['-h']), isA<PackHelp>());
      expect(parsePackArgs(['--bogus', 'a.dart', '--help']), isA<PackHelp>());
      // After `--`, "--help" is the entry file's name.
      expect(() => parsePackArgs(['--', '--help']),
          throwsA(isA<PackUsageException>()));
    });

    test('the usage text names every option and the run command', () {
      for (final option in [
        '--output',
        '-o',
        '--name',
        '--include',
        '--no-build',
        '--lib',
        '--help',
        'tar xzf <name>.tar.gz && ./<name>/<name>',
      ]) {
        expect(packUsage, contains(option));
      }
    });

    void expectUsageError(List<String> args, String messagePart) {
      expect(
          () => parsePackArgs(args),
          throwsA(isA<PackUsageException>()
              .having((e) => e.message, 'message', contains(messagePart))));
    }

    test('an unknown flag', () {
      expectUsageError(['--frobnicate', 'bin/server.dart'],
          'unknown option "--frobnicate"');
      expectUsageError(['bin/server.dart', '-x'], 'unknown option "-x"');
      expectUsageError(['bin/server.dart', '--help=yes'], 'unknown option');
    });

    test('a missing value', () {
      expectUsageError(['bin/server.dart', '--name'], '--name needs a value');
      expectUsageError(['bin/server.dart', '-o'], '-o needs a value');
      expectUsageError(['--output', '--no-build', 'bin/server.dart'],
          '--output needs a value (got "--no-build")');
      expectUsageError(['--include=', 'bin/server.dart'],
          '--include needs a non-empty value');
    });

    test('a value for a flag', () {
      expectUsageError(['--no-build=yes', 'bin/server.dart'],
          '--no-build takes no value');
    });

    test('no entry, two entries, not a .dart file', () {
      expectUsageError([], 'missing the entry file');
      expectUsageError(['-o', 'out'], 'missing the entry file');
      expectUsageError(['a.dart', 'b.dart'], 'one entry file only');
      expectUsageError(['bin/server'], 'must be a .dart file');
    });

    test('--lib without --no-build', () {
      expectUsageError(
          ['--lib', 'x.so', 'bin/server.dart'], 'use it with --no-build');
    });

    test('names that cannot lay out the archive', () {
      expectUsageError(['--name', 'a/b', 'x.dart'], 'invalid name "a/b"');
      expectUsageError(['--name', '..', 'x.dart'], 'invalid name ".."');
      expectUsageError(['lib.dart'], 'clashes with the lib/ directory');
      expectUsageError(['--include', 'x', '--include', 'other/x', 's.dart'],
          'would land on s/x');
      expectUsageError(['--include', 'conf/s', 's.dart'], 'the executable');
      expectUsageError(
          ['--include', 'res/lib/', 's.dart'], 'the library directory');
      expectUsageError(
          ['--include', '.', 's.dart'], 'name a file or directory');
    });
  });

  group('paths', () {
    test('the workspace root of this checkout holds the native crate',
        () async {
      final root = await findWorkspaceRoot();
      expect(File('${root.path}/native/Cargo.toml').existsSync(), isTrue);
      expect(File('${root.path}/dart/pubspec.yaml').existsSync(), isTrue);
    });

    test('the built library follows CARGO_TARGET_DIR', () {
      final root = Directory('/ws');
      expect(builtLibraryPath(root, {}),
          '/ws/target/release/libiouring_transport.so');
      expect(builtLibraryPath(root, {'CARGO_TARGET_DIR': ''}),
          '/ws/target/release/libiouring_transport.so');
      expect(builtLibraryPath(root, {'CARGO_TARGET_DIR': '/tmp/t'}),
          '/tmp/t/release/libiouring_transport.so');
      expect(builtLibraryPath(root, {'CARGO_TARGET_DIR': 'out'}),
          '/ws/out/release/libiouring_transport.so');
    });

    test('the dart command is an executable of the running SDK', () {
      final dart = dartExecutable();
      final sdkDart = dart.endsWith('/dart') && File(dart).existsSync();
      expect(dart == 'dart' || sdkDart, isTrue, reason: dart);
    });
  });

  group('pack fails clearly', () {
    late Directory temp;
    late String entry;
    setUp(() async {
      temp = await Directory.systemTemp.createTemp('pack_test_');
      entry = '${temp.path}/server.dart';
      await File(entry).writeAsString('void main() {}\n');
    });
    tearDown(() => temp.delete(recursive: true));

    // Packs [args] into <temp>/out, expecting a PackException whose message
    // has every one of [messageParts], and no archive.
    Future<void> expectPackError(List<String> args, List<String> messageParts,
        {Map<String, String> environment = const {}}) async {
      final options =
          parsePackArgs([...args, '-o', '${temp.path}/out']) as PackOptions;
      final lines = <String>[];
      await expectLater(
          pack(options, log: lines.add, environment: environment)
              .timeout(const Duration(seconds: 30)),
          throwsA(isA<PackException>().having((e) => e.message, 'message',
              allOf([for (final part in messageParts) contains(part)]))));
      expect(File('${options.outputDir}/${options.name}.tar.gz').existsSync(),
          isFalse);
    }

    test('--no-build without a built library', () async {
      final targetDir = '${temp.path}/empty-target';
      await expectPackError(
          [entry, '--no-build'],
          [
            'no built native library at '
                '$targetDir/release/libiouring_transport.so',
            'cargo build --release -p iouring_transport',
            '--lib PATH',
          ],
          environment: {'CARGO_TARGET_DIR': targetDir});
    });

    test('--no-build --lib pointing at nothing', () async {
      final lib = '${temp.path}/nowhere/libiouring_transport.so';
      await expectPackError(
          [entry, '--no-build', '--lib', lib],
          ['--lib $lib: no such file']);
    });

    test('cargo missing from PATH', () async {
      await expectPackError(
          [entry], ['cargo', 'rustup', '--no-build --lib PATH'],
          environment: {'PATH': '${temp.path}/no-bin'});
    });

    test('a missing entry file or include', () async {
      await expectPackError(['${temp.path}/absent.dart'],
          ['entry file not found: ${temp.path}/absent.dart']);
      await expectPackError([entry, '--include', '${temp.path}/absent.txt'],
          ['--include ${temp.path}/absent.txt: no such file or directory']);
    });
  });

  test(
      'packs the echo server; the unpacked archive runs with a clean '
      'environment and echoes over TCP', () async {
    final temp = await Directory.systemTemp.createTemp('pack_e2e_');
    addTearDown(() => temp.delete(recursive: true));
    final out = '${temp.path}/out';
    final notes = File('${temp.path}/NOTES.txt');
    await notes.writeAsString('packed by pack_test\n');

    final packed = await _run(
        dartExecutable(),
        [
          'run',
          'iouring_transport:pack',
          'example/echo_server.dart',
          '-o',
          out,
          '--include',
          notes.path,
        ],
        timeout: const Duration(minutes: 12));
    expect(packed.exitCode, 0, reason: packed.output);
    for (final step in [
      '[1/4] building native library '
          '(cargo build --release -p iouring_transport)',
      '[2/4] compiling example/echo_server.dart',
      '[3/4] staging echo_server/',
      '[4/4] writing $out/echo_server.tar.gz',
      'packed $out/echo_server.tar.gz',
    ]) {
      expect(packed.output, contains(step));
    }

    final archive = '$out/echo_server.tar.gz';
    final listing = await _run('tar', ['-tzf', archive],
        timeout: const Duration(seconds: 60));
    expect(listing.exitCode, 0, reason: listing.output);
    expect(
        const LineSplitter().convert(listing.output),
        containsAll([
          'echo_server/echo_server',
          'echo_server/lib/libiouring_transport.so',
          'echo_server/NOTES.txt',
        ]));

    // Unpack somewhere else, as on the target machine.
    final target = await Directory('${temp.path}/elsewhere').create();
    final unpacked = await _run('tar', ['-xzf', archive, '-C', target.path],
        timeout: const Duration(seconds: 60));
    expect(unpacked.exitCode, 0, reason: unpacked.output);
    final exe = File('${target.path}/echo_server/echo_server');
    const ownerExecute = 0x40; // 0o100
    expect((await exe.stat()).mode & ownerExecute, ownerExecute,
        reason: 'the executable bit of ${exe.path}');
    expect(
        File('${target.path}/echo_server/lib/libiouring_transport.so')
            .existsSync(),
        isTrue);
    expect(await File('${target.path}/echo_server/NOTES.txt').readAsString(),
        'packed by pack_test\n');

    // No IOURING_TRANSPORT_LIB, no PATH, no HOME: the library must be found
    // next to the executable.
    final server = await Process.start(exe.path, ['--port', '0'],
        workingDirectory: target.path,
        environment: const {},
        includeParentEnvironment: false);
    final errors = StringBuffer();
    final errorsDone = server.stderr
        .transform(const Utf8Decoder(allowMalformed: true))
        .forEach(errors.write);
    final lines = StreamIterator(server.stdout
        .transform(const Utf8Decoder(allowMalformed: true))
        .transform(const LineSplitter()));
    try {
      final int port;
      try {
        port = await _listeningPort(lines)
            .timeout(const Duration(seconds: 30));
      } on Object catch (error) {
        fail('the packed server did not report its port ($error); '
            'stderr:\n$errors');
      }

      final socket = await Socket.connect('127.0.0.1', port,
          timeout: const Duration(seconds: 10));
      final replies = StreamIterator(socket);
      try {
        final payload = utf8.encode('hello through the packed server\n');
        socket.add(payload);
        await socket.flush().timeout(const Duration(seconds: 10));
        final received = <int>[];
        while (received.length < payload.length &&
            await replies.moveNext().timeout(const Duration(seconds: 10))) {
          received.addAll(replies.current);
        }
        expect(received, payload);
      } finally {
        await replies.cancel().timeout(const Duration(seconds: 10));
        socket.destroy();
      }
    } finally {
      await _stop(server);
      await lines.cancel().timeout(const Duration(seconds: 10));
      await errorsDone.timeout(const Duration(seconds: 10));
    }
  }, timeout: const Timeout(Duration(minutes: 15)));
}

/// The port of the first `listening on HOST:PORT` line.
Future<int> _listeningPort(StreamIterator<String> lines) async {
  final listening = RegExp(r'listening on \S+:(\d+)');
  while (await lines.moveNext()) {
    final match = listening.firstMatch(lines.current);
    if (match != null) return int.parse(match.group(1)!);
  }
  throw StateError('stdout closed without a "listening on HOST:PORT" line');
}

/// Runs a command to completion within [timeout] (killing it after that),
/// with its stdout and stderr together in `output`.
Future<({int exitCode, String output})> _run(
    String executable, List<String> arguments,
    {required Duration timeout}) async {
  final process = await Process.start(executable, arguments);
  final output = StringBuffer();
  const decoder = Utf8Decoder(allowMalformed: true);
  final drained = Future.wait([
    process.stdout.transform(decoder).forEach(output.write),
    process.stderr.transform(decoder).forEach(output.write),
  ]);
  final int code;
  try {
    code = await process.exitCode.timeout(timeout);
  } on TimeoutException {
    process.kill(ProcessSignal.sigkill);
    fail('`$executable ${arguments.join(' ')}` did not finish within '
        '$timeout; output so far:\n$output');
  }
  await drained.timeout(const Duration(seconds: 30));
  return (exitCode: code, output: output.toString());
}

/// Stops [process] with SIGTERM (SIGKILL if it lingers) and waits for it.
Future<void> _stop(Process process) async {
  process.kill();
  try {
    await process.exitCode.timeout(const Duration(seconds: 10));
  } on TimeoutException {
    process.kill(ProcessSignal.sigkill);
    await process.exitCode.timeout(const Duration(seconds: 10));
  }
}
