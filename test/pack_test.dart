// Tests of the pack tool (`dart run iouring_transport:pack`): its command
// line, the toolchains it picks, its failures (clear message, nothing
// half-written), and a consumer project's echo server packed, unpacked
// elsewhere and run with an empty environment. Needs `dart`, `cargo` and
// `tar` on PATH.
//
// The pack tool's pieces live in the package's src/ so that they can be
// tested here without spawning it.
// ignore_for_file: implementation_imports
@TestOn('linux')
library;

import 'dart:ffi';
import 'dart:io';
import 'dart:isolate';
import 'dart:typed_data';

import 'package:iouring_transport/src/ffi/native_target.dart';
import 'package:iouring_transport/src/pack/command.dart';
import 'package:iouring_transport/src/pack/options.dart';
import 'package:iouring_transport/src/pack/packer.dart';
import 'package:iouring_transport/src/pack/toolchain.dart';
import 'package:test/test.dart';

import 'support/pack_process.dart';

void main() {
  group('parsePackArgs', () {
    test('defaults: name from the entry file, output build/, kind by machine',
        () {
      final options = parsePackArgs(['bin/server.dart']) as PackOptions;
      expect(options.entry, 'bin/server.dart');
      expect(options.name, 'server');
      expect(options.outputDir, 'build');
      expect(options.kind, isNull);
      expect(options.trainArgs, isNull);
      expect(options.includes, isEmpty);
      expect(options.build, isTrue);
      expect(options.lib, isNull);
    });

    test('every option, with separate and inline values', () {
      final options = parsePackArgs([
        '-o',
        'out',
        '--name=app',
        '--kind',
        'vm',
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
      expect(options.kind, PackKind.vm);
      expect(options.includes, ['config.yaml', 'assets']);
      expect(options.build, isFalse);
      expect(options.lib, '/opt/libiouring_transport.so');

      final long = parsePackArgs(['--output', 'dist', '--kind=aot', 's.dart'])
          as PackOptions;
      expect(long.outputDir, 'dist');
      expect(long.kind, PackKind.aot);
    });

    test('--train takes the next argument as it is, split at spaces', () {
      final options =
          parsePackArgs(['--train', '--self-check  --port 0', 's.dart'])
              as PackOptions;
      expect(options.trainArgs, ['--self-check', '--port', '0']);
      expect(options.kind, PackKind.vm, reason: 'app-jit is kind vm');
      expect(options.entry, 's.dart');

      final empty = parsePackArgs(['--train=', 's.dart']) as PackOptions;
      expect(empty.trainArgs, isEmpty);
    });

    test('-- ends the options', () {
      final options =
          parsePackArgs(['--name', 'odd', '--', '-odd.dart']) as PackOptions;
      expect(options.entry, '-odd.dart');
      expect(options.name, 'odd');
    });

    test('--help and -h win over everything else', () {
      expect(parsePackArgs(['--help']), isA<PackHelp>());
      expect(parsePackArgs(['-h']), isA<PackHelp>());
      expect(parsePackArgs(['--bogus', 'a.dart', '--help']), isA<PackHelp>());
      // After `--`, "--help" is the entry file's name.
      expect(() => parsePackArgs(['--', '--help']),
          throwsA(isA<PackUsageException>()));
    });

    test('the usage text names every option, both layouts and the run command',
        () {
      for (final text in [
        '--output',
        '-o',
        '--name',
        '--kind aot|vm',
        '--train',
        '--include',
        '--no-build',
        '--lib',
        '--help',
        '<name>/lib/dart',
        '<name>/lib/<name>.dill',
        '<name>/lib/libiouring_transport.so',
        'tar xzf <name>.tar.gz && ./<name>/<name>',
      ]) {
        expect(packUsage, contains(text));
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

    test('a missing or bad value', () {
      expectUsageError(['bin/server.dart', '--name'], '--name needs a value');
      expectUsageError(['bin/server.dart', '-o'], '-o needs a value');
      expectUsageError(['--output', '--no-build', 'bin/server.dart'],
          '--output needs a value (got "--no-build")');
      expectUsageError(['--include=', 'bin/server.dart'],
          '--include needs a non-empty value');
      expectUsageError(['bin/server.dart', '--train'], '--train needs a value');
      expectUsageError(
          ['--kind', 'jit', 'bin/server.dart'], '--kind must be aot or vm');
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
      expectUsageError(['bin/server.txt'], 'must be a .dart file');
    });

    test('--lib without --no-build; --train with --kind aot', () {
      expectUsageError(
          ['--lib', 'x.so', 'bin/server.dart'], 'use it with --no-build');
      expectUsageError(['--kind', 'aot', '--train', '', 'bin/server.dart'],
          'only --kind vm ships');
    });

    test('an archive name that would escape the output directory', () {
      for (final name in ['../x', '/tmp/x', 'a/b', '..', '.']) {
        expectUsageError(
            ['--name', name, 'x.dart'], 'outside the output directory');
      }
    });

    test('names that cannot lay out the archive', () {
      expectUsageError(['--name=-x', 'x.dart'], 'not a plain name');
      expectUsageError(['--name', 'a b', 'x.dart'], 'not a plain name');
      expectUsageError(['--name', r'$(rm)', 'x.dart'], 'not a plain name');
      expectUsageError(['--', '-odd.dart'], 'the name taken from the entry');
      expectUsageError(['lib.dart'], 'clashes with the lib/ directory');
      expectUsageError(['--include', 'x', '--include', 'other/x', 's.dart'],
          'would land on s/x');
      expectUsageError(['--include', 'conf/s', 's.dart'], 'the program');
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

    test('the built library is under the target triple and CARGO_TARGET_DIR',
        () {
      final root = Directory('/ws');
      const t = 'i686-unknown-linux-gnu';
      expect(builtLibraryPath(root, {}, t),
          '/ws/target/$t/release/libiouring_transport.so');
      expect(builtLibraryPath(root, {'CARGO_TARGET_DIR': ''}, t),
          '/ws/target/$t/release/libiouring_transport.so');
      expect(builtLibraryPath(root, {'CARGO_TARGET_DIR': '/tmp/t'}, t),
          '/tmp/t/$t/release/libiouring_transport.so');
      expect(builtLibraryPath(root, {'CARGO_TARGET_DIR': 'out'}, t),
          '/ws/out/$t/release/libiouring_transport.so');
      expect(cargoBuildArgs(t), [
        'build',
        '--release',
        '-p',
        'iouring_transport',
        '--target',
        t,
      ]);
    });

    test('the package config of an entry is the nearest one above it',
        () async {
      final config = await findPackageConfig('test/pack_test.dart');
      expect(config, File('.dart_tool/package_config.json').absolute.path);

      final temp = await _tempDir('pack_config_');
      expect(await findPackageConfig('${temp.path}/x.dart'), isNull);
    });

    test('the vm launcher runs lib/dart on the snapshot with its arguments',
        () {
      final script = vmLauncherScript('app', 'lib/app.dill');
      expect(script, startsWith('#!/bin/sh\n'));
      expect(script,
          contains(r'exec "$dir/lib/dart" "$dir/lib/app.dill" "$@"' '\n'));
    });
  });

  group('findRustToolchain', () {
    const target = 'i686-unknown-linux-gnu';
    late Directory temp;
    setUp(() async => temp = await _tempDir('pack_toolchain_'));

    // A directory holding a `cargo` and a `rustc` whose target-libdir is
    // [libDir] (and a `rustup` when [rustup]).
    Future<String> fakeToolchain(String name, String libDir,
        {bool rustup = false}) async {
      final dir = await Directory('${temp.path}/$name').create();
      await _script('${dir.path}/cargo', 'exit 0');
      await _script('${dir.path}/rustc', 'echo "$libDir"');
      if (rustup) await _script('${dir.path}/rustup', 'exit 0');
      return dir.path;
    }

    Future<String> standardLibrary(String name) async {
      final dir = await Directory('${temp.path}/$name').create();
      await File('${dir.path}/libstd-0123abcd.rlib').writeAsString('');
      return dir.path;
    }

    test('no cargo on PATH', () async {
      await expectLater(
          findRustToolchain(target,
              environment: {'PATH': '${temp.path}/empty'},
              workingDirectory: temp.path),
          throwsA(isA<PackException>().having((e) => e.message, 'message',
              allOf(contains('cargo is not on PATH'), contains('rustup')))));
    });

    test('a cargo whose rustc lacks the target says what to install',
        () async {
      final dir = await fakeToolchain('plain', '${temp.path}/nowhere');
      await expectLater(
          findRustToolchain(target,
              environment: {'PATH': dir}, workingDirectory: temp.path),
          throwsA(isA<PackException>().having(
              (e) => e.message,
              'message',
              allOf([
                contains('no Rust toolchain on PATH can build $target'),
                contains('$dir/cargo: $dir/rustc has no standard library'),
                contains('rustup target add $target'),
                contains('libstd-rust-web-dev:i386'),
                contains('--no-build --lib PATH'),
              ]))));
    });

    test("takes the first cargo whose rustc has the target's std, rustup's "
        'before the others', () async {
      final std = await standardLibrary('std');
      final lacking = await fakeToolchain('lacking', '${temp.path}/nowhere');
      final system = await fakeToolchain('system', std);
      final rustup = await fakeToolchain('rustup', std, rustup: true);

      final first = await findRustToolchain(target,
          environment: {'PATH': '$lacking:$system'},
          workingDirectory: temp.path);
      expect(first.cargo, '$system/cargo');
      expect(first.rustc, '$system/rustc');
      expect(first.environment, {'RUSTC': '$system/rustc'});
      expect(first.describe(['build']),
          'RUSTC=$system/rustc $system/cargo build');

      final preferred = await findRustToolchain(target,
          environment: {'PATH': '$system:$rustup'},
          workingDirectory: temp.path);
      expect(preferred.cargo, '$rustup/cargo');
    });

    test(r'$RUSTC is the rustc of every cargo', () async {
      final std = await standardLibrary('std');
      final lacking = await fakeToolchain('lacking', '${temp.path}/nowhere');
      final other = await fakeToolchain('other', std);
      final found = await findRustToolchain(target,
          environment: {'PATH': lacking, 'RUSTC': '$other/rustc'},
          workingDirectory: temp.path);
      expect(found.cargo, '$lacking/cargo');
      expect(found.rustc, '$other/rustc');
    });
  });

  test('aot is unavailable on an ia32 VM or without a dart on PATH', () async {
    final reason = await aotUnavailableReason(environment: {'PATH': ''});
    expect(
        reason,
        Abi.current() == Abi.linuxIA32
            ? contains('no AOT compiler for ia32')
            : contains('no `dart` command on PATH'));
  });

  group('pack fails clearly and leaves nothing half-written', () {
    late Directory temp;
    late String entry;
    late String out;
    setUp(() async {
      temp = await _tempDir('pack_fail_');
      entry = '${temp.path}/server.dart';
      await File(entry).writeAsString('void main() {}\n');
      out = '${temp.path}/out';
    });

    // Packs [args] (plus `-o out`), expecting a PackException whose message
    // has every one of [messageParts]; then checks that no archive and no
    // partial file was written. Returns the exception.
    Future<PackException> expectPackError(
      List<String> args,
      List<String> messageParts, {
      Map<String, String> environment = const {},
      Duration trainingTimeout = defaultTrainingTimeout,
    }) async {
      final options = parsePackArgs([...args, '-o', out]) as PackOptions;
      final progress = StringBuffer();
      final PackException error;
      try {
        await pack(options,
                progress: progress,
                environment: environment,
                trainingTimeout: trainingTimeout)
            .timeout(const Duration(seconds: 90));
        fail('pack succeeded; progress:\n$progress');
      } on PackException catch (e) {
        error = e;
      }
      expect(error.message,
          allOf([for (final part in messageParts) contains(part)]));
      final left = Directory(out).existsSync()
          ? Directory(out).listSync().map((e) => e.path).toList()
          : const <String>[];
      expect(left.where((path) => !path.endsWith('/previous.tar.gz')), isEmpty,
          reason: 'files left in $out; progress:\n$progress');
      return error;
    }

    test('a missing entry file, or a directory as the entry', () async {
      await expectPackError(['${temp.path}/absent.dart'],
          ['entry file not found: ${temp.path}/absent.dart']);
      await Directory('${temp.path}/dir.dart').create();
      await expectPackError(['${temp.path}/dir.dart'],
          ['${temp.path}/dir.dart is a directory, not a Dart file']);
    });

    test('a missing --include', () async {
      await expectPackError([entry, '--include', '${temp.path}/absent.txt'],
          ['--include ${temp.path}/absent.txt: no such file or directory']);
    });

    test('an output directory that cannot be written', () async {
      final file = File('${temp.path}/a-file');
      await file.writeAsString('not a directory\n');
      out = '${file.path}/out';
      await expectPackError(
          [entry], ['cannot write to the output directory ${file.path}/out']);
      expect(await file.readAsString(), 'not a directory\n');
    });

    test('no cargo on PATH; the output directory made for the run is removed',
        () async {
      await expectPackError([entry, '--kind', 'vm'],
          ['cargo is not on PATH', '--no-build --lib PATH'],
          environment: {'PATH': '${temp.path}/no-bin'});
      expect(Directory(out).existsSync(), isFalse);
    });

    test('--no-build without a built library', () async {
      final targetDir = '${temp.path}/empty-target';
      final args = [entry, '--kind', 'vm', '--no-build'];
      await expectPackError(
          args,
          [
            'no built native library at '
                '$targetDir/$_triple/release/libiouring_transport.so',
            'cargo build --release -p iouring_transport --target $_triple',
            '--lib PATH',
          ],
          environment: {'CARGO_TARGET_DIR': targetDir});
    });

    test('--no-build --lib pointing at nothing', () async {
      final lib = '${temp.path}/nowhere/libiouring_transport.so';
      final args = [entry, '--kind', 'vm', '--no-build', '--lib', lib];
      await expectPackError(args, ['--lib $lib: no such file']);
    });

    test('a library of another architecture, naming both', () async {
      final lib = await _fakeLibrary('${temp.path}/other.so', _otherTarget);
      final args = [entry, '--kind', 'vm', '--no-build', '--lib', lib];
      await expectPackError(args, [
        'cannot pack the native library $lib',
        'built for ${_otherTarget.triple}',
        'needs $_triple',
      ]);
    });

    test('an entry that does not compile shows the compiler errors; the '
        'previous archive stays', () async {
      await File(entry).writeAsString('void main() { undefinedCall(); }\n');
      final lib = await _fakeLibrary('${temp.path}/this.so', _thisTarget);
      await Directory(out).create();
      final previous = File('$out/previous.tar.gz');
      await previous.writeAsString('an archive of an earlier run');
      final args = [entry, '--kind', 'vm', '--no-build', '--lib', lib];
      final error = await expectPackError(
          [...args, '--name', 'previous'], ['$entry does not compile']);
      expect(error.output, contains("Method not found: 'undefinedCall'"));
      expect(await previous.readAsString(), 'an archive of an earlier run');
    });

    test('a training run that does not exit is stopped', () async {
      // An open ReceivePort keeps the program alive forever.
      await File(entry).writeAsString(
          "import 'dart:isolate';\nvoid main() { ReceivePort(); }\n");
      final lib = await _fakeLibrary('${temp.path}/this.so', _thisTarget);
      await expectPackError(
          [entry, '--train', '', '--no-build', '--lib', lib],
          ['was stopped after 3 s', 'must make the program exit by itself'],
          trainingTimeout: const Duration(seconds: 3));
    });

    test('--kind aot where `dart compile exe` is unavailable', () async {
      final unavailable =
          await aotUnavailableReason(environment: Platform.environment);
      if (unavailable == null) {
        markTestSkipped('`dart compile exe` works here');
        return;
      }
      await expectPackError([entry, '--kind', 'aot', '--no-build'],
          ['--kind aot needs `dart compile exe`', unavailable, '--kind vm']);
    });
  });

  test('the command line: usage errors exit 64, failed steps exit 1',
      () async {
    final temp = await _tempDir('pack_cli_');
    final lib = await _fakeLibrary('${temp.path}/other.so', _otherTarget);
    final entry = '${temp.path}/server.dart';
    await File(entry).writeAsString('void main() {}\n');

    final usage = await runToEnd(
        'dart', ['run', 'iouring_transport:pack', '--kind', 'vm'],
        timeout: const Duration(seconds: 90));
    expect(usage.exitCode, 64, reason: usage.output);
    expect(usage.output, contains('pack: missing the entry file'));
    expect(usage.output, contains('--help` for usage'));

    final wrongLibrary = await runToEnd(
        'dart',
        [
          'run',
          'iouring_transport:pack',
          entry,
          '--kind',
          'vm',
          '--no-build',
          '--lib',
          lib,
          '-o',
          '${temp.path}/out',
        ],
        timeout: const Duration(seconds: 90));
    expect(wrongLibrary.exitCode, 1, reason: wrongLibrary.output);
    expect(wrongLibrary.output,
        contains('pack: cannot pack the native library $lib'));
    expect(wrongLibrary.output, contains('[2/5] checking the native library'));
    expect(Directory('${temp.path}/out').existsSync(), isFalse);
  });

  group('a consumer project', () {
    // A project outside this repository that depends on the package by
    // path, as a user's would; one cargo target directory for all its packs
    // (the first builds, the others find the build done), apart from the
    // repository's own, which other test runs load.
    late Directory temp;
    late Directory project;
    late String cargoTargetDir;

    setUpAll(() async {
      temp = await Directory.systemTemp.createTemp('pack_consumer_');
      project = await Directory('${temp.path}/consumer').create();
      cargoTargetDir = '${temp.path}/cargo-target';
      final package = await _packageDir();
      await File('${project.path}/pubspec.yaml').writeAsString('''
name: pack_consumer
publish_to: none
environment:
  sdk: ^3.6.0
dependencies:
  iouring_transport:
    path: ${package.path}
''');
      await Directory('${project.path}/bin').create();
      await File('${package.parent.path}/test/support/pack_echo_server.dart')
          .copy('${project.path}/bin/server.dart');
      await File('${project.path}/NOTES.txt')
          .writeAsString('packed by pack_test\n');
      final got = await runToEnd('dart', ['pub', 'get'],
          workingDirectory: project.path,
          timeout: const Duration(seconds: 120));
      expect(got.exitCode, 0, reason: got.output);
    });
    tearDownAll(() => temp.delete(recursive: true));

    // Runs `dart run iouring_transport:pack bin/server.dart` with [args] in
    // the project, checks the progress lines and that the archive holds
    // exactly [files] (besides server/NOTES.txt, the --include), unpacks it
    // into an empty directory, starts it with an empty environment from
    // another directory through a symbolic link, echoes bytes through it and
    // stops it with SIGTERM. Returns the pack tool's output.
    Future<String> packAndServe(String label, List<String> args,
        {required List<String> files}) async {
      final out = '${temp.path}/$label-out';
      final packed = await runToEnd(
          'dart',
          [
            'run',
            'iouring_transport:pack',
            'bin/server.dart',
            '-o',
            out,
            '--include',
            'NOTES.txt',
            ...args,
          ],
          workingDirectory: project.path,
          environment: {'CARGO_TARGET_DIR': cargoTargetDir},
          timeout: const Duration(minutes: 4));
      expect(packed.exitCode, 0, reason: packed.output);
      for (var step = 1; step <= 5; step++) {
        expect(packed.output,
            matches(RegExp('^\\[$step/5\\] .+ \\(\\d+\\.\\d s\\)\$',
                multiLine: true)),
            reason: 'step $step:\n${packed.output}');
      }
      final archive = '$out/server.tar.gz';
      expect(packed.output,
          matches(RegExp('^packed ${RegExp.escape(archive)} \\(\\d+\\.\\d MB, ',
              multiLine: true)));

      final listing = await runToEnd('tar', ['-tzf', archive],
          timeout: const Duration(seconds: 60));
      expect(listing.exitCode, 0, reason: listing.output);
      expect(listing.output.trim().split('\n').toSet(),
          {...files, 'server/NOTES.txt'});

      // As on another machine: an empty directory, no environment, started
      // from elsewhere through a link.
      final machine = await Directory('${temp.path}/$label-machine').create();
      final unpacked = await runToEnd(
          'tar', ['-xzf', archive, '-C', machine.path],
          timeout: const Duration(seconds: 60));
      expect(unpacked.exitCode, 0, reason: unpacked.output);
      final app = '${machine.resolveSymbolicLinksSync()}/server';
      expect(await File('$app/NOTES.txt').readAsString(),
          'packed by pack_test\n');
      final elsewhere = await Directory('${temp.path}/$label-cwd').create();
      final link =
          await Link('${elsewhere.path}/run-server').create('$app/server');

      final server = await EchoServerProcess.start(link.path,
          workingDirectory: elsewhere.path);
      await server.port();
      expect(server.libraryPath, '$app/lib/libiouring_transport.so');
      final bytes = _pattern(100 * 1024);
      expect(await server.echo(bytes), bytes);
      final stopped = await server.terminate();
      expect(stopped.exitCode, 0, reason: stopped.stderr);
      expect(stopped.stderr, isEmpty);
      return packed.output;
    }

    test(
        'kind vm (kernel snapshot; the default where aot is unavailable) '
        'packs, unpacks and serves with an empty environment', () async {
      final aotUnavailable =
          await aotUnavailableReason(environment: Platform.environment);
      final output = await packAndServe(
          'kernel', [if (aotUnavailable == null) ...['--kind', 'vm']],
          files: [
            'server/',
            'server/server',
            'server/lib/',
            'server/lib/dart',
            'server/lib/server.dill',
            'server/lib/libiouring_transport.so',
          ]);
      if (aotUnavailable != null) {
        expect(output, contains('kind vm: no aot, because $aotUnavailable'));
      }
      expect(output,
          contains('[2/5] building the native library for $_triple: '));
      expect(
          output, contains('compiling bin/server.dart to a kernel snapshot'));
      expect(output, contains('kind vm)'));
    }, timeout: const Timeout(Duration(minutes: 6)));

    test('kind vm with --train: an app-jit snapshot from a training run',
        () async {
      final output = await packAndServe('app-jit', [
        '--train',
        '--self-check'
      ], files: [
        'server/',
        'server/server',
        'server/lib/',
        'server/lib/dart',
        'server/lib/server.jit',
        'server/lib/libiouring_transport.so',
      ]);
      expect(
          output,
          contains('compiling bin/server.dart to an app-jit snapshot, trained '
              'by running it with: --self-check'));
    }, timeout: const Timeout(Duration(minutes: 6)));

    test(
        'kind aot: a self-contained executable, or where `dart compile exe` '
        'is unavailable a refusal that names --kind vm', () async {
      final unavailable =
          await aotUnavailableReason(environment: Platform.environment);
      if (unavailable != null) {
        final out = '${temp.path}/aot-refused-out';
        final refused = await runToEnd(
            'dart',
            [
              'run',
              'iouring_transport:pack',
              'bin/server.dart',
              '-o',
              out,
              '--kind',
              'aot',
              '--no-build',
            ],
            workingDirectory: project.path,
            environment: {'CARGO_TARGET_DIR': cargoTargetDir},
            timeout: const Duration(minutes: 2));
        expect(refused.exitCode, 1, reason: refused.output);
        expect(
            refused.output,
            allOf(contains('--kind aot needs `dart compile exe`'),
                contains(unavailable), contains('--kind vm')));
        expect(File('$out/server.tar.gz').existsSync(), isFalse);
        return;
      }
      final output = await packAndServe('aot', [
        '--kind',
        'aot'
      ], files: [
        'server/',
        'server/server',
        'server/lib/',
        'server/lib/libiouring_transport.so',
      ]);
      expect(output, contains('compiling bin/server.dart to an executable'));
    }, timeout: const Timeout(Duration(minutes: 6)));
  });
}

/// The Rust target of this Dart VM.
final String _triple = rustTargetTriple(Abi.current())!;

/// An architecture by its Rust triple and ELF header fields.
typedef _ElfTarget = ({String triple, int machine, int bits});

const _ElfTarget _x64Target =
    (triple: 'x86_64-unknown-linux-gnu', machine: 62, bits: 64);
const _ElfTarget _ia32Target =
    (triple: 'i686-unknown-linux-gnu', machine: 3, bits: 32);
const _ElfTarget _arm64Target =
    (triple: 'aarch64-unknown-linux-gnu', machine: 183, bits: 64);

/// This VM's architecture.
final _ElfTarget _thisTarget = [_x64Target, _ia32Target, _arm64Target]
    .firstWhere((t) => t.triple == _triple);

/// An architecture this VM cannot load.
final _ElfTarget _otherTarget =
    _thisTarget == _x64Target ? _ia32Target : _x64Target;

/// Writes a file that passes for a shared library of [target] by its ELF
/// header (which is all the pack tool reads of it) and returns its path.
Future<String> _fakeLibrary(String path, _ElfTarget target) async {
  final header = Uint8List(64);
  header.setAll(0, [0x7f, 0x45, 0x4c, 0x46]); // \x7fELF
  header[4] = target.bits == 64 ? 2 : 1; // EI_CLASS
  header[5] = 1; // EI_DATA: little-endian
  header[6] = 1; // EI_VERSION
  header[16] = 3; // e_type: ET_DYN
  header[18] = target.machine & 0xff; // e_machine
  header[19] = target.machine >> 8;
  await File(path).writeAsBytes(header);
  return path;
}

/// A fresh temporary directory, deleted when the test ends.
Future<Directory> _tempDir(String prefix) async {
  final dir = await Directory.systemTemp.createTemp(prefix);
  addTearDown(() => dir.delete(recursive: true));
  return dir;
}

/// Writes an executable sh script running [body].
Future<void> _script(String path, String body) async {
  await File(path).writeAsString('#!/bin/sh\n$body\n');
  final chmod = await Process.run('chmod', ['755', path]);
  expect(chmod.exitCode, 0, reason: '${chmod.stderr}');
}

/// The package directory `dart/` of this checkout.
Future<Directory> _packageDir() async {
  final library = await Isolate.resolvePackageUri(
      Uri.parse('package:iouring_transport/iouring_transport.dart'));
  return File.fromUri(library!).parent.parent;
}

/// [length] bytes that differ from their neighbours, so that a reordered or
/// shifted echo does not compare equal.
Uint8List _pattern(int length) => Uint8List.fromList(
    [for (var i = 0; i < length; i++) (i * 31 + i ~/ 251) & 0xff]);
