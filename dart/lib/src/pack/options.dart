/// The command line of `dart run iouring_transport:pack`, parsed by hand (the
/// package depends on nothing but `ffi`).
library;

/// Where the archive goes when `--output` is not given.
const String defaultOutputDir = 'build';

/// The directory inside the archive that holds the native library (and, with
/// `--kind vm`, the Dart VM and the program's snapshot).
const String archiveLibDir = 'lib';

/// The text `--help` prints.
const String packUsage = r'''
Packs a Dart program that uses iouring_transport into one .tar.gz that runs on
another Linux machine with no Dart SDK and no Rust toolchain.

Usage: dart run iouring_transport:pack [options] <entry.dart>

Options:
  -o, --output DIR     where to write <name>.tar.gz (default: build)
      --name NAME      name of the archive, its top directory and the program
                       (default: the entry file's name without .dart); letters,
                       digits and . _ + -
      --kind aot|vm    aot: a self-contained executable (dart compile exe);
                       vm: the Dart VM running this tool, the program's kernel
                       snapshot and a launcher script. Default: aot where
                       `dart compile exe` works, else vm.
      --train ARGS     with kind vm: an app-jit snapshot (faster start) trained
                       by running the program once with ARGS (the next
                       argument, split at spaces; may be empty); that run must
                       exit by itself
      --include PATH   copy a file or directory into <name>/ (repeatable)
      --no-build       skip `cargo build`; pack an already built library
      --lib PATH       with --no-build: the libiouring_transport.so to pack
                       (default: <workspace>/target/<triple>/release/, or under
                       $CARGO_TARGET_DIR when that is set)
  -h, --help           print this help

Steps: check the toolchains, build the native library for this Dart VM's
target (cargo build --release -p iouring_transport --target <triple>), compile
the program, stage <name>/, write the archive.

The archive (kind aot):
  <name>/<name>                        the program
  <name>/lib/libiouring_transport.so   the native library
The archive (kind vm):
  <name>/<name>                        launcher script (sh)
  <name>/lib/dart                      the Dart VM
  <name>/lib/<name>.dill               kernel snapshot (<name>.jit with --train)
  <name>/lib/libiouring_transport.so   the native library
and each --include as <name>/<its name>.

On the target (Linux >= 6.1 with io_uring enabled, the build machine's CPU
architecture, a glibc at least as new as the build machine's):
  tar xzf <name>.tar.gz && ./<name>/<name>
''';

/// What the archive ships to run the program.
enum PackKind {
  /// A self-contained executable from `dart compile exe`.
  aot,

  /// The Dart VM, a snapshot of the program and a launcher script.
  vm,
}

/// A command line the pack tool cannot use; [message] says why.
final class PackUsageException implements Exception {
  const PackUsageException(this.message);

  final String message;

  @override
  String toString() => 'PackUsageException: $message';
}

/// What a command line asks for: [PackHelp] or [PackOptions].
sealed class PackCommand {
  const PackCommand();
}

/// `-h`/`--help`: print [packUsage] and nothing else.
final class PackHelp extends PackCommand {
  const PackHelp();
}

/// Pack [entry] into `<outputDir>/<name>.tar.gz`.
final class PackOptions extends PackCommand {
  const PackOptions({
    required this.entry,
    required this.name,
    this.outputDir = defaultOutputDir,
    this.kind,
    this.trainArgs,
    this.includes = const [],
    this.build = true,
    this.lib,
  });

  /// The program's main file, as given (relative to the working directory).
  final String entry;

  /// Name of the archive, of its top directory and of the program in it.
  final String name;

  /// Directory the archive is written to (created when missing).
  final String outputDir;

  /// What to ship; null: [PackKind.aot] where `dart compile exe` works, else
  /// [PackKind.vm].
  final PackKind? kind;

  /// The arguments of the training run of an app-jit snapshot (`--train`);
  /// null for a kernel snapshot (or kind aot).
  final List<String>? trainArgs;

  /// Files and directories copied into `<name>/`, without trailing slashes.
  final List<String> includes;

  /// Whether to run `cargo build` (false for `--no-build`).
  final bool build;

  /// With `--no-build`: the library to pack; null for the default build path.
  final String? lib;
}

/// Parses the pack tool's [args].
///
/// `-h`/`--help` anywhere before `--` wins over everything else. Options take
/// their value as the next argument or after `=` (`--name app`,
/// `--name=app`); a value that looks like an option is refused so that a
/// forgotten value is reported instead of swallowing the next flag. `--train`
/// is the exception: the program's own options are its usual value, so it
/// takes the next argument as it is. Throws a [PackUsageException] for
/// anything it cannot use.
PackCommand parsePackArgs(List<String> args) {
  if (args.takeWhile((a) => a != '--').any((a) => a == '-h' || a == '--help')) {
    return const PackHelp();
  }

  String? entry;
  String? outputDir;
  String? name;
  String? lib;
  PackKind? kind;
  List<String>? trainArgs;
  var build = true;
  final includes = <String>[];
  var optionsEnded = false;

  var i = 0;
  // The value of [option]: after `=` ([inline]) or the next argument.
  String valueOf(String option, String? inline, {bool verbatim = false}) {
    final String value;
    if (inline != null) {
      value = inline;
    } else if (i < args.length && (verbatim || !_looksLikeOption(args[i]))) {
      value = args[i++];
    } else {
      final got = i < args.length ? ' (got "${args[i]}")' : '';
      throw PackUsageException('option $option needs a value$got');
    }
    if (value.isEmpty && !verbatim) {
      throw PackUsageException('option $option needs a non-empty value');
    }
    return value;
  }

  while (i < args.length) {
    final arg = args[i++];
    if (optionsEnded || !_looksLikeOption(arg)) {
      if (entry != null) {
        throw PackUsageException(
            'one entry file only: got "$entry" and "$arg"');
      }
      entry = arg;
      continue;
    }
    if (arg == '--') {
      optionsEnded = true;
      continue;
    }
    final equals = arg.startsWith('--') ? arg.indexOf('=') : -1;
    final option = equals < 0 ? arg : arg.substring(0, equals);
    final inline = equals < 0 ? null : arg.substring(equals + 1);
    switch (option) {
      case '-o' || '--output':
        outputDir = _trimTrailingSlashes(valueOf(option, inline));
      case '--name':
        name = valueOf(option, inline);
      case '--kind':
        final value = valueOf(option, inline);
        kind = PackKind.values.where((k) => k.name == value).firstOrNull ??
            (throw PackUsageException(
                'option --kind must be aot or vm, not "$value"'));
      case '--train':
        trainArgs = valueOf(option, inline, verbatim: true)
            .split(' ')
            .where((word) => word.isNotEmpty)
            .toList(growable: false);
      case '--include':
        includes.add(_trimTrailingSlashes(valueOf(option, inline)));
      case '--lib':
        lib = valueOf(option, inline);
      case '--no-build':
        if (inline != null) {
          throw PackUsageException('option --no-build takes no value');
        }
        build = false;
      default:
        throw PackUsageException('unknown option "$option"');
    }
  }

  if (entry == null) {
    throw const PackUsageException(
        'missing the entry file, e.g. `dart run iouring_transport:pack '
        'bin/server.dart`');
  }
  if (!entry.endsWith('.dart')) {
    throw PackUsageException('the entry file must be a .dart file: "$entry"');
  }
  if (lib != null && build) {
    throw const PackUsageException(
        '--lib names an already built library: use it with --no-build');
  }
  if (trainArgs != null) {
    if (kind == PackKind.aot) {
      throw const PackUsageException(
          '--train makes an app-jit snapshot, which only --kind vm ships');
    }
    kind = PackKind.vm;
  }

  final entryBase = _baseName(entry);
  final archiveName = name ?? entryBase.substring(0, entryBase.length - 5);
  _checkName(archiveName, given: name != null);
  final taken = {
    archiveName: 'the program',
    archiveLibDir: 'the library directory',
  };
  for (final include in includes) {
    final base = _baseName(include);
    if (base.isEmpty || base == '.' || base == '..') {
      throw PackUsageException(
          '--include "$include": name a file or directory, not "$base"');
    }
    final holder = taken[base];
    if (holder != null) {
      throw PackUsageException(
          '--include "$include" would land on $archiveName/$base, which is '
          'already $holder');
    }
    taken[base] = '--include "$include"';
  }

  return PackOptions(
    entry: entry,
    name: archiveName,
    outputDir: outputDir ?? defaultOutputDir,
    kind: kind,
    trainArgs: trainArgs,
    includes: List.unmodifiable(includes),
    build: build,
    lib: lib,
  );
}

bool _looksLikeOption(String arg) => arg.startsWith('-') && arg != '-';

String _trimTrailingSlashes(String path) {
  var end = path.length;
  while (end > 1 && path[end - 1] == '/') {
    end--;
  }
  return path.substring(0, end);
}

/// The last segment of [path] (Linux paths; trailing slashes ignored).
String _baseName(String path) {
  final trimmed = _trimTrailingSlashes(path);
  return trimmed.substring(trimmed.lastIndexOf('/') + 1);
}

/// A name that is a plain file name everywhere it goes: the archive file, its
/// top directory, the program, and a word of the vm launcher script.
final RegExp _plainName = RegExp(r'^[A-Za-z0-9_][A-Za-z0-9._+-]*$');

void _checkName(String name, {required bool given}) {
  final source = given ? 'the --name' : 'the name taken from the entry file,';
  if (name.contains('/') || name == '.' || name == '..') {
    throw PackUsageException(
        '$source "$name" would put the archive outside the output directory: '
        'give a plain file name with --name');
  }
  if (!_plainName.hasMatch(name)) {
    throw PackUsageException(
        '$source "$name" is not a plain name: use letters, digits and '
        '. _ + - (not first: . or -), e.g. --name server');
  }
  if (name == archiveLibDir) {
    throw PackUsageException(
        'the name "$archiveLibDir" clashes with the $archiveLibDir/ directory '
        'that holds the native library; choose another with --name');
  }
}
