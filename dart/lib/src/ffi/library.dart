/// Finds and opens `libiouring_transport.so`, once per isolate.
library;

import 'dart:ffi';
import 'dart:io';
import 'dart:isolate';

import '../exception.dart';
import 'bindings.dart';
import 'native_target.dart';

/// File name of the native library.
const String libraryFileName = 'libiouring_transport.so';

/// Environment variable naming the library file to load.
const String libraryEnvironmentVariable = 'IOURING_TRANSPORT_LIB';

Bindings? _bindings;
String? _loadedFrom;

/// The bindings of this isolate, loading the library on first use (see
/// [loadBindings] for where it is looked for).
Bindings get bindings => _bindings ?? loadBindings();

/// The path the library was loaded from in this isolate, or null before the
/// first load.
String? get loadedLibraryPath => _loadedFrom;

/// Loads the native library (once per isolate; later calls return the same
/// bindings and ignore [path]).
///
/// Where it is looked for, in order:
/// 1. [path], when given: only that file;
/// 2. else the file named by `$IOURING_TRANSPORT_LIB`, when set: only that file;
/// 3. else next to the running executable, as packed programs ship it:
///    `<exe dir>/lib/libiouring_transport.so`, then
///    `<exe dir>/libiouring_transport.so`;
/// 4. else the development builds of this repository, where `<repo>` is the
///    directory above the package directory `dart/`: first the build for the
///    running VM's ABI, `<repo>/target/<triple>/release/` (a 32-bit VM on a
///    64-bit machine: `target/i686-unknown-linux-gnu/release/`), then the
///    host build `<repo>/target/release/`.
///
/// A file built for another architecture than the running VM's is skipped
/// (`dlopen` refuses it, and its ELF header says why). Throws a
/// [TransportLibraryException] that lists every path tried, and why each was
/// not loaded.
Bindings loadBindings({String? path}) {
  final existing = _bindings;
  if (existing != null) return existing;
  // Tried one by one: the repository's builds are only looked for when the
  // executable's directory has no library (see [_candidates]).
  final candidates = <String>[];
  final refused = <String>[];
  for (final candidate in _candidates(path)) {
    candidates.add(candidate);
    final DynamicLibrary dylib;
    try {
      dylib = DynamicLibrary.open(candidate);
    } on ArgumentError catch (error) {
      refused.add('  $candidate: ${_whyNotLoaded(candidate, error)}');
      continue;
    }
    final Bindings loaded;
    try {
      loaded = Bindings(dylib);
    } on ArgumentError catch (error) {
      throw TransportLibraryException(
          '$candidate is not a matching build of the native library '
          '(${error.message}); rebuild it with `${_buildCommand()}`',
          triedPaths: candidates);
    }
    _loadedFrom = candidate;
    return _bindings = loaded;
  }
  throw TransportLibraryException(
      'could not load $libraryFileName; tried:\n'
      '${refused.join('\n')}\n'
      'Build it in the repository root with `${_buildCommand()}`, or set '
      '$libraryEnvironmentVariable to its path.',
      triedPaths: candidates);
}

/// Why `dlopen` refused [path]: looked into only then, because reading the
/// file's header costs a JIT VM over half a MiB that a program whose library
/// loads need not pay (`dlopen` refuses another architecture's build itself).
String _whyNotLoaded(String path, ArgumentError error) {
  if (!File(path).existsSync()) return 'not found';
  return nativeTargetMismatch(path, Abi.current()) ??
      'could not load it: ${error.message}';
}

/// The cargo command that builds the library for the running VM's ABI (into
/// `target/<triple>/release/`, which the default search tries first).
String _buildCommand() {
  const build = 'cargo build --release -p iouring_transport';
  final triple = rustTargetTriple(Abi.current());
  return triple == null ? build : '$build --target $triple';
}

/// Loads the native library now (see [loadBindings] for where it is looked
/// for) and returns the path it was loaded from. Later calls return the same
/// path and ignore [path].
String loadTransportLibrary({String? path}) {
  loadBindings(path: path);
  final loaded = _loadedFrom;
  if (loaded == null) throw StateError('the native library is not loaded');
  return loaded;
}

/// The paths [loadBindings] tries, in order.
List<String> libraryCandidates({String? path}) => _candidates(path).toList();

/// The paths [loadBindings] tries, each computed when the one before it failed:
/// finding the repository resolves the package's URI, which costs a JIT VM
/// about 1 MiB that a packed program need not pay.
Iterable<String> _candidates(String? path) sync* {
  if (path != null) {
    yield path;
    return;
  }
  final fromEnvironment = Platform.environment[libraryEnvironmentVariable];
  if (fromEnvironment != null && fromEnvironment.isNotEmpty) {
    yield fromEnvironment;
    return;
  }
  final exeDir = File(Platform.resolvedExecutable).parent.path;
  yield '$exeDir/lib/$libraryFileName';
  yield '$exeDir/$libraryFileName';
  final repo = _repositoryRoot();
  if (repo == null) return;
  final triple = rustTargetTriple(Abi.current());
  if (triple != null) yield '$repo/target/$triple/release/$libraryFileName';
  yield '$repo/target/release/$libraryFileName';
}

/// `<repo>` for a checkout of this repository: the parent of the package
/// directory, found through the package's own `package:` URI. Null when the
/// program runs without package sources (e.g. compiled with `dart compile`).
String? _repositoryRoot() {
  Uri? resolved;
  try {
    resolved = Isolate.resolvePackageUriSync(
        Uri.parse('package:iouring_transport/iouring_transport.dart'));
  } on Object {
    return null;
  }
  if (resolved == null || !resolved.isScheme('file')) return null;
  // <repo>/dart/lib/iouring_transport.dart -> <repo>
  return File.fromUri(resolved).parent.parent.parent.path;
}
