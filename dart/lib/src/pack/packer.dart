/// The steps of `dart run iouring_transport:pack`: build the native library,
/// compile the program, stage the files, write the archive.
library;

import 'dart:convert';
import 'dart:io';
import 'dart:isolate';

import '../ffi/library.dart' show libraryFileName;
import 'options.dart';

/// The package library whose location tells where the package (and the cargo
/// workspace above it) lives.
const String _packageLibrary =
    'package:iouring_transport/iouring_transport.dart';

/// `cargo` arguments that build the library, run in the workspace root.
const List<String> _cargoBuildArgs = [
  'build',
  '--release',
  '-p',
  'iouring_transport',
];

/// A pack step failed: [message] says what, [output] holds the failed
/// command's stdout and stderr (empty when no command ran).
final class PackException implements Exception {
  const PackException(this.message, {this.output = ''});

  final String message;
  final String output;

  @override
  String toString() => output.isEmpty
      ? 'PackException: $message'
      : 'PackException: $message\n$output';
}

/// Packs per [options] and returns the path of the archive it wrote.
///
/// [log] gets one progress line per step. [environment] is laid over this
/// process's environment for every command run and for the lookup of
/// `CARGO_TARGET_DIR`. Throws a [PackException] when a step fails, after
/// removing the staging directory and any partly written archive.
Future<String> pack(
  PackOptions options, {
  required void Function(String line) log,
  Map<String, String> environment = const {},
}) async {
  final env = {...Platform.environment, ...environment};

  if (!await File(options.entry).exists()) {
    throw PackException('entry file not found: ${options.entry}');
  }
  for (final include in options.includes) {
    final type = await FileSystemEntity.type(include);
    if (type == FileSystemEntityType.notFound) {
      throw PackException('--include $include: no such file or directory');
    }
  }

  final String nativeLibrary;
  if (options.build) {
    log('[1/4] building native library (cargo ${_cargoBuildArgs.join(' ')})');
    final root = await findWorkspaceRoot();
    await _run('cargo', _cargoBuildArgs,
        workingDirectory: root.path,
        environment: env,
        notFound: 'cargo is not on PATH: install Rust with rustup '
            '(https://rustup.rs), or pack a library built elsewhere with '
            '--no-build --lib PATH');
    nativeLibrary = builtLibraryPath(root, env);
    if (!await File(nativeLibrary).exists()) {
      throw PackException(
          'cargo build succeeded but $nativeLibrary does not exist');
    }
  } else {
    final given = options.lib;
    nativeLibrary =
        given ?? builtLibraryPath(await findWorkspaceRoot(), env);
    log('[1/4] using the native library $nativeLibrary (--no-build)');
    if (!await File(nativeLibrary).exists()) {
      throw PackException(given != null
          ? '--lib $nativeLibrary: no such file'
          : 'no built native library at $nativeLibrary (--no-build reuses a '
              'previous build): build it with `cargo '
              '${_cargoBuildArgs.join(' ')}` in the workspace root, drop '
              '--no-build, or point at one with --lib PATH');
    }
  }

  final outputDir = Directory(options.outputDir).absolute;
  final archive = File('${outputDir.path}/${options.name}.tar.gz');
  final staging = await Directory.systemTemp.createTemp('iouring_pack_');
  try {
    final appDir = Directory('${staging.path}/${options.name}');
    await Directory('${appDir.path}/$archiveLibDir').create(recursive: true);

    log('[2/4] compiling ${options.entry} (dart compile exe)');
    final dart = dartExecutable();
    final executable = '${appDir.path}/${options.name}';
    await _run(dart, ['compile', 'exe', options.entry, '-o', executable],
        environment: env, notFound: 'cannot run the Dart SDK\'s `$dart`');

    log('[3/4] staging ${options.name}/: ${options.name}, '
        '$archiveLibDir/$libraryFileName'
        '${options.includes.map((p) => ', ${_baseName(p)}').join()}');
    await File(nativeLibrary)
        .copy('${appDir.path}/$archiveLibDir/$libraryFileName');
    for (final include in options.includes) {
      await _copyInto(include, appDir);
    }

    log('[4/4] writing ${archive.path}');
    await outputDir.create(recursive: true);
    try {
      await _run(
          'tar', ['-czf', archive.path, '-C', staging.path, options.name],
          environment: env, notFound: 'tar is not on PATH: install tar');
    } on Object {
      if (await archive.exists()) await archive.delete();
      rethrow;
    }
  } finally {
    await staging.delete(recursive: true);
  }
  return archive.path;
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

/// Where `cargo build --release` in [root] puts the library:
/// `$CARGO_TARGET_DIR/release/` when that is set (relative to [root] when
/// relative), else `<root>/target/release/`.
String builtLibraryPath(Directory root, Map<String, String> environment) {
  final configured = environment['CARGO_TARGET_DIR'] ?? '';
  final targetDir = configured.isEmpty
      ? '${root.path}/target'
      : configured.startsWith('/')
          ? configured
          : '${root.path}/$configured';
  return '$targetDir/release/$libraryFileName';
}

/// The `dart` command of the SDK running this program.
///
/// Under `dart run` and `dart test`, [Platform.resolvedExecutable] is the
/// SDK's VM: `bin/dart` itself, or `bin/dartvm` next to it in SDKs whose
/// `dart` command is a separate front end. Elsewhere (this tool compiled to
/// an executable) it falls back to `dart` on PATH.
String dartExecutable() {
  final vm = File(Platform.resolvedExecutable);
  if (_baseName(vm.path) == 'dart') return vm.path;
  final sibling = File('${vm.parent.path}/dart');
  return sibling.existsSync() ? sibling.path : 'dart';
}

/// Runs [executable] to completion, keeping its stdout and stderr (in the
/// order they arrive) for the [PackException] thrown when it fails.
/// [notFound] explains a command that cannot be started.
Future<void> _run(
  String executable,
  List<String> arguments, {
  String? workingDirectory,
  required Map<String, String> environment,
  required String notFound,
}) async {
  final command = [executable, ...arguments].join(' ');
  final Process process;
  try {
    process = await Process.start(executable, arguments,
        workingDirectory: workingDirectory, environment: environment);
  } on ProcessException catch (error) {
    throw PackException('cannot run `$command`: ${error.message}\n$notFound');
  }
  final output = StringBuffer();
  const decoder = Utf8Decoder(allowMalformed: true);
  final drained = Future.wait([
    process.stdout.transform(decoder).forEach(output.write),
    process.stderr.transform(decoder).forEach(output.write),
  ]);
  final code = await process.exitCode;
  await drained;
  if (code != 0) {
    throw PackException('`$command` failed (exit code $code)',
        output: output.toString());
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
