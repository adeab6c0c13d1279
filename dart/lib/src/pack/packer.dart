/// The steps of `dart run iouring_transport:pack`: check the toolchains,
/// build the native library for this Dart VM's target, compile the program,
/// stage the files, write the archive.
library;

import 'dart:ffi';
import 'dart:io';
import 'dart:isolate';

import '../ffi/library.dart' show libraryEnvironmentVariable, libraryFileName;
import '../ffi/native_target.dart';
import 'command.dart';
import 'options.dart';
import 'toolchain.dart';

export 'command.dart' show PackException;

/// The package library whose location tells where the package (and the cargo
/// workspace above it) lives.
const String _packageLibrary =
    'package:iouring_transport/iouring_transport.dart';

/// `cargo` arguments that build the library for [target], run in the
/// workspace root.
List<String> cargoBuildArgs(String target) =>
    ['build', '--release', '-p', 'iouring_transport', '--target', target];

/// The Dart VM's name inside the archive of kind vm: `<name>/lib/dart`.
///
/// The VM sits in `lib/` beside the native library because the library
/// loader looks in `<executable's dir>/lib/` and then `<executable's dir>/`,
/// and with kind vm the executable is the VM: both kinds keep the library at
/// `<name>/lib/libiouring_transport.so`.
const String archiveVmFile = '$archiveLibDir/dart';

/// What [pack] wrote: the archive's path and size, and what it ships.
typedef PackResult = ({String archive, int bytes, PackKind kind});

/// How long a `--train` run may take before it is stopped.
const Duration defaultTrainingTimeout = Duration(minutes: 5);

/// Packs per [options] and returns what it wrote.
///
/// [progress] gets one line per step, `[n/5] what it does (seconds)`, and a
/// line saying so when kind vm is chosen because aot is unavailable.
/// [environment] is laid over this process's environment for every command
/// run and for `PATH` and `CARGO_TARGET_DIR`. Throws a [PackException] when
/// a step fails; it then leaves no archive behind (an archive of an earlier
/// run stays as it was) and removes the output directory again if it created
/// it.
Future<PackResult> pack(
  PackOptions options, {
  required StringSink progress,
  Map<String, String> environment = const {},
  Duration trainingTimeout = defaultTrainingTimeout,
}) async {
  final env = {...Platform.environment, ...environment};
  final abi = Abi.current();
  final target = rustTargetTriple(abi) ??
      (throw PackException('pack builds for Linux (x86_64, i686, aarch64, '
          'armv7, riscv64) only, and this Dart VM is $abi'));

  // Bad input fails here, before anything slow runs.
  await _checkEntry(options.entry);
  for (final include in options.includes) {
    if (await FileSystemEntity.type(include) ==
        FileSystemEntityType.notFound) {
      throw PackException('--include $include: no such file or directory');
    }
  }
  final packageConfig = await findPackageConfig(options.entry);
  final output = await _OutputDir.prepare(options.outputDir);

  final steps = _Steps(progress, total: 5);
  try {
    final (:kind, :whyNotAot, :dart, :toolchain, :root) =
        await steps.run('checking the Dart and Rust toolchains', () async {
      // --train makes an app-jit snapshot, which only kind vm ships.
      final requested =
          options.kind ?? (options.trainArgs == null ? null : PackKind.vm);
      final (:kind, :whyNotAot, :dart) = await _chooseKind(requested, env);
      final root = options.build || options.lib == null
          ? await findWorkspaceRoot()
          : null;
      final toolchain = options.build
          ? await findRustToolchain(target,
              environment: env, workingDirectory: root!.path)
          : null;
      return (
        kind: kind,
        whyNotAot: whyNotAot,
        dart: dart,
        toolchain: toolchain,
        root: root,
      );
    });
    if (whyNotAot != null) {
      progress.writeln('kind vm: no aot, because $whyNotAot; the archive '
          'ships the Dart VM with a kernel snapshot of the program');
    }

    final library = await _nativeLibrary(options, steps,
        target: target, toolchain: toolchain, root: root, environment: env);

    final staging = await Directory.systemTemp.createTemp('iouring_pack_');
    try {
      final appDir = Directory('${staging.path}/${options.name}');
      await Directory('${appDir.path}/$archiveLibDir').create(recursive: true);
      final program = switch (kind) {
        PackKind.aot => await _compileExecutable(options, steps,
            dart: dart!, into: appDir, environment: env),
        PackKind.vm => await _compileSnapshot(options, steps,
            packageConfig: packageConfig,
            library: library,
            into: appDir,
            environment: env,
            trainingTimeout: trainingTimeout),
      };
      await _stage(options, steps,
          kind: kind,
          program: program,
          library: library,
          into: appDir,
          environment: env);
      final archive = File('${output.dir.path}/${options.name}.tar.gz');
      await steps.run('writing ${archive.path}',
          () => _writeArchive(staging, options.name, archive, env));
      return (archive: archive.path, bytes: await archive.length(), kind: kind);
    } finally {
      await staging.delete(recursive: true);
    }
  } on Object {
    await output.discardIfCreated();
    rethrow;
  }
}

/// Resolves the kind to pack: [requested], or aot when `dart compile exe`
/// works and vm otherwise. Returns the kind, why aot was not taken when the
/// default fell back to vm (null otherwise), and (kind aot) the `dart` that
/// compiles the executable.
Future<({PackKind kind, String? whyNotAot, String? dart})> _chooseKind(
    PackKind? requested, Map<String, String> environment) async {
  if (requested == PackKind.vm) {
    return (kind: PackKind.vm, whyNotAot: null, dart: null);
  }
  final unavailable = await aotUnavailableReason(environment: environment);
  if (unavailable == null) {
    final dart = findOnPath('dart', environment);
    return (kind: PackKind.aot, whyNotAot: null, dart: dart);
  }
  if (requested == PackKind.aot) {
    throw PackException('--kind aot needs `dart compile exe`, but '
        '$unavailable; pack with --kind vm instead (the Dart VM with a '
        'snapshot of the program)');
  }
  return (kind: PackKind.vm, whyNotAot: unavailable, dart: null);
}

/// Step 2: builds the native library (or checks the `--no-build` one) and
/// returns its path, after checking that the Dart VM of [target] can load it.
Future<String> _nativeLibrary(
  PackOptions options,
  _Steps steps, {
  required String target,
  required RustToolchain? toolchain,
  required Directory? root,
  required Map<String, String> environment,
}) async {
  final String path;
  if (toolchain != null) {
    final args = cargoBuildArgs(target);
    path = await steps.run(
        'building the native library for $target: '
        '${toolchain.describe(args)}', () async {
      await runChecked(toolchain.cargo, args,
          workingDirectory: root!.path,
          environment: {...environment, ...toolchain.environment},
          notFound: 'install Rust (https://rustup.rs)',
          failed: 'cargo could not build the native library');
      final built = builtLibraryPath(root, environment, target);
      if (!await File(built).exists()) {
        throw PackException(
            'cargo build succeeded but $built does not exist');
      }
      _checkLoadable(built);
      return built;
    });
  } else {
    final given = options.lib;
    path = given ?? builtLibraryPath(root!, environment, target);
    await steps.run('checking the native library $path (--no-build)',
        () async {
      if (!await File(path).exists()) {
        throw PackException(given != null
            ? '--lib $path: no such file'
            : 'no built native library at $path (--no-build reuses a '
                'previous build): build it with '
                '`cargo ${cargoBuildArgs(target).join(' ')}` in the workspace '
                'root, drop --no-build, or point at one with --lib PATH');
      }
      _checkLoadable(path);
    });
  }
  return File(path).absolute.path;
}

/// Refuses a library that the Dart VM running this tool (the one that runs
/// the packed program, or whose architecture `dart compile exe` targets)
/// cannot load: its ELF header names another architecture.
void _checkLoadable(String library) {
  final mismatch = nativeTargetMismatch(library, Abi.current());
  if (mismatch != null) {
    throw PackException('cannot pack the native library $library: $mismatch');
  }
}

/// Step 3, kind aot: `dart compile exe` writes `<name>/<name>`; returns its
/// path.
Future<String> _compileExecutable(
  PackOptions options,
  _Steps steps, {
  required String dart,
  required Directory into,
  required Map<String, String> environment,
}) {
  final executable = '${into.path}/${options.name}';
  final args = ['compile', 'exe', options.entry, '-o', executable];
  return steps.run(
      'compiling ${options.entry} to an executable: '
      '${describeCommand('dart', args.take(3).toList())}', () async {
    await runChecked(dart, args,
        environment: environment,
        notFound: 'install the Dart SDK (https://dart.dev/get-dart)',
        failed: '${options.entry} does not compile');
    return executable;
  });
}

/// Step 3, kind vm: the Dart VM running this tool writes the program's
/// snapshot, `lib/<name>.dill` (or `.jit` after the `--train` run); returns
/// its path.
///
/// The snapshot is written by the very VM the archive ships, not by the
/// `dart` on PATH, so that the two cannot disagree on the kernel format.
Future<String> _compileSnapshot(
  PackOptions options,
  _Steps steps, {
  required String? packageConfig,
  required String library,
  required Directory into,
  required Map<String, String> environment,
  required Duration trainingTimeout,
}) {
  final train = options.trainArgs;
  final snapshot = '${into.path}/${snapshotFile(options)}';
  final args = [
    if (packageConfig != null) '--packages=$packageConfig',
    '--snapshot-kind=${train == null ? 'kernel' : 'app-jit'}',
    '--snapshot=$snapshot',
    options.entry,
    ...?train,
  ];
  final vm = Platform.resolvedExecutable;
  final notFound = 'the Dart VM running this tool ($vm) cannot be started';
  if (train == null) {
    return steps.run('compiling ${options.entry} to a kernel snapshot',
        () async {
      await runChecked(vm, args,
          environment: environment,
          notFound: notFound,
          failed: '${options.entry} does not compile');
      return snapshot;
    });
  }
  return steps.run(
      'compiling ${options.entry} to an app-jit snapshot, trained by running '
      'it with: ${quoteArguments(train)}', () async {
    await runChecked(vm, args,
        // The training run loads the library being packed, not whichever
        // build the development search would find.
        environment: {...environment, libraryEnvironmentVariable: library},
        notFound: notFound,
        failed: '${options.entry} does not compile, or its training run '
            'failed',
        timeout: trainingTimeout,
        timedOut: 'the --train run must make the program exit by itself');
    return snapshot;
  });
}

/// The snapshot's path inside `<name>/` with kind vm.
String snapshotFile(PackOptions options) {
  final extension = options.trainArgs == null ? 'dill' : 'jit';
  return '$archiveLibDir/${options.name}.$extension';
}

/// Step 4: copies the native library, (kind vm) the VM and the launcher, and
/// the `--include`s into [into], next to the compiled [program].
Future<void> _stage(
  PackOptions options,
  _Steps steps, {
  required PackKind kind,
  required String program,
  required String library,
  required Directory into,
  required Map<String, String> environment,
}) {
  final name = options.name;
  final files = [
    name,
    if (kind == PackKind.vm) ...[archiveVmFile, snapshotFile(options)],
    '$archiveLibDir/$libraryFileName',
    for (final include in options.includes) _baseName(include),
  ];
  return steps.run('staging $name/: ${files.join(', ')}', () async {
    await File(library).copy('${into.path}/$archiveLibDir/$libraryFileName');
    if (kind == PackKind.vm) {
      // File.copy keeps the mode: the VM stays executable.
      await File(Platform.resolvedExecutable)
          .copy('${into.path}/$archiveVmFile');
      final launcher = File('${into.path}/$name');
      await launcher.writeAsString(
          vmLauncherScript(name, program.substring(into.path.length + 1)));
      await runChecked('chmod', ['755', launcher.path],
          environment: environment,
          notFound: 'chmod (coreutils) is not on PATH',
          failed: 'cannot make the launcher executable');
    }
    for (final include in options.includes) {
      await _copyInto(include, into);
    }
  });
}

/// The launcher `<name>/<name>` of kind vm: runs the VM beside it on the
/// [snapshot] (relative to `<name>/`) with the launcher's arguments, from any
/// working directory and through symbolic links to it. [name] is a plain
/// name (see parsePackArgs), safe in the script as it is.
String vmLauncherScript(String name, String snapshot) => '''
#!/bin/sh
# Runs $name, packed by `dart run iouring_transport:pack` (kind vm): the
# Dart VM in $archiveLibDir/ runs the program's snapshot with the arguments.
self=\$0
while [ -L "\$self" ]; do
  link=\$(readlink "\$self") || exit 1
  case \$link in
  /*) self=\$link ;;
  *) self=\$(dirname "\$self")/\$link ;;
  esac
done
dir=\$(CDPATH='' cd -- "\$(dirname -- "\$self")" && pwd -P) || exit 1
exec "\$dir/$archiveVmFile" "\$dir/$snapshot" "\$@"
''';

/// Step 5: tars `<staging>/<name>` into [archive] through a temporary file
/// beside it, so that a failure never leaves a partial archive and an
/// archive of an earlier run is replaced only by a complete one.
Future<void> _writeArchive(Directory staging, String name, File archive,
    Map<String, String> environment) async {
  final partial = File('${archive.parent.path}/.$name.tar.gz.$pid.partial');
  try {
    await runChecked('tar', ['-czf', partial.path, '-C', staging.path, name],
        environment: environment,
        notFound: 'tar is not on PATH: install tar',
        failed: 'cannot write the archive');
    await partial.rename(archive.path);
  } finally {
    if (await partial.exists()) await partial.delete();
  }
}

/// Checks that [entry] is an existing file.
Future<void> _checkEntry(String entry) async {
  switch (await FileSystemEntity.type(entry)) {
    case FileSystemEntityType.notFound:
      throw PackException('entry file not found: $entry');
    case FileSystemEntityType.directory:
      throw PackException('the entry $entry is a directory, not a Dart file');
    default:
  }
}

/// The `.dart_tool/package_config.json` that [entry]'s project resolved
/// with `dart pub get`: in the entry's directory or the nearest one above it;
/// null when there is none (the compiler then reports each `package:` import
/// it cannot resolve).
Future<String?> findPackageConfig(String entry) async {
  for (Directory? dir = File(entry).absolute.parent;
      dir != null;
      dir = _parentOf(dir)) {
    final config = File('${dir.path}/.dart_tool/package_config.json');
    if (await config.exists()) return config.path;
  }
  return null;
}

Directory? _parentOf(Directory dir) {
  final parent = dir.parent;
  return parent.path == dir.path ? null : parent;
}

/// The cargo workspace root holding the package's native sources.
///
/// The package directory is found through the package config
/// (`package:iouring_transport/iouring_transport.dart` resolves to
/// `<package>/lib/iouring_transport.dart`); the workspace root is its parent,
/// with `Cargo.toml` (a `[workspace]`) and `native/Cargo.toml`. Throws a
/// [PackException] naming what is missing.
Future<Directory> findWorkspaceRoot() async {
  Uri? resolved;
  try {
    resolved = await Isolate.resolvePackageUri(Uri.parse(_packageLibrary));
  } on UnsupportedError {
    resolved = null;
  }
  if (resolved == null || resolved.scheme != 'file') {
    throw const PackException(
        'cannot find the iouring_transport package through the package '
        'config: run the tool as `dart run iouring_transport:pack` in a '
        'project that depends on iouring_transport, or pack a library built '
        'elsewhere with --no-build --lib PATH');
  }
  final packageDir = File.fromUri(resolved).parent.parent;
  final root = packageDir.parent;
  final workspaceToml = File('${root.path}/Cargo.toml');
  final nativeToml = File('${root.path}/native/Cargo.toml');
  final missing = <String>[];
  if (!await workspaceToml.exists()) {
    missing.add(workspaceToml.path);
  } else if (!(await workspaceToml.readAsString()).contains('[workspace]')) {
    missing.add('a [workspace] section in ${workspaceToml.path}');
  }
  if (!await nativeToml.exists()) missing.add(nativeToml.path);
  if (missing.isNotEmpty) {
    throw PackException(
        'the iouring_transport package at ${packageDir.path} has no native '
        'sources next to it (missing ${missing.join(' and ')}): depend on it '
        'through git (with `path: dart`) or a path dependency so that the '
        'Rust workspace comes along, or pack a library built elsewhere with '
        '--no-build --lib PATH');
  }
  return root;
}

/// Where `cargo build --release --target <target>` in [root] puts the
/// library: under `$CARGO_TARGET_DIR` when that is set (relative to [root]
/// when relative), else under `<root>/target/`.
String builtLibraryPath(
    Directory root, Map<String, String> environment, String target) {
  final configured = environment['CARGO_TARGET_DIR'] ?? '';
  final targetDir = configured.isEmpty
      ? '${root.path}/target'
      : configured.startsWith('/')
          ? configured
          : '${root.path}/$configured';
  return '$targetDir/$target/release/$libraryFileName';
}

/// Numbered progress lines: `[n/total] description` when a step starts, its
/// duration when it ends.
final class _Steps {
  _Steps(this._out, {required this.total});

  final StringSink _out;
  final int total;
  int _started = 0;

  Future<T> run<T>(String description, Future<T> Function() step) async {
    _out.write('[${++_started}/$total] $description');
    final clock = Stopwatch()..start();
    try {
      final result = await step();
      _out.writeln(' (${_seconds(clock.elapsed)})');
      return result;
    } on Object {
      _out.writeln(' (failed after ${_seconds(clock.elapsed)})');
      rethrow;
    }
  }

  static String _seconds(Duration elapsed) =>
      '${(elapsed.inMilliseconds / 1000).toStringAsFixed(1)} s';
}

/// The output directory, checked writable, and whether this run created it.
final class _OutputDir {
  _OutputDir._(this.dir, {required this.created});

  final Directory dir;
  final bool created;

  /// Creates [path] when missing and checks that a file can be written in
  /// it, so that a long build does not end in an unwritable place.
  static Future<_OutputDir> prepare(String path) async {
    final dir = Directory(path).absolute;
    final existed = await dir.exists();
    try {
      await dir.create(recursive: true);
      final probe = File('${dir.path}/.pack-probe.$pid');
      await probe.writeAsString('');
      await probe.delete();
    } on FileSystemException catch (error) {
      throw PackException('cannot write to the output directory $path: '
          '${error.osError?.message ?? error.message}'
          '${error.path == null ? '' : ' (${error.path})'}');
    }
    return _OutputDir._(dir, created: !existed);
  }

  /// Removes the directory again if this run created it and it is still
  /// empty (deleting a non-empty directory without `recursive` fails).
  Future<void> discardIfCreated() async {
    if (!created) return;
    try {
      await dir.delete();
    } on FileSystemException {
      // Something else was put there meanwhile: leave it.
    }
  }
}

/// Copies the file or directory [source] to `<into>/<its name>`.
Future<void> _copyInto(String source, Directory into) async {
  final target = '${into.path}/${_baseName(source)}';
  if (await FileSystemEntity.isDirectory(source)) {
    await Directory(target).create();
    await for (final entity in Directory(source).list(recursive: true)) {
      final copy = '$target${entity.path.substring(source.length)}';
      if (entity is Directory) {
        await Directory(copy).create(recursive: true);
      } else if (entity is File) {
        await File(copy).parent.create(recursive: true);
        await entity.copy(copy);
      } else {
        throw PackException('--include $source: cannot copy ${entity.path} '
            '(a broken or looping symbolic link)');
      }
    }
  } else {
    await File(source).copy(target);
  }
}

/// The last segment of a path without trailing slashes.
String _baseName(String path) => path.substring(path.lastIndexOf('/') + 1);
