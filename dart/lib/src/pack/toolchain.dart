/// Which tools the pack tool builds with: a cargo whose rustc has the
/// standard library of the Dart VM's target, and whether `dart compile exe`
/// works here.
library;

import 'dart:ffi';
import 'dart:io';

import 'command.dart';

/// A cargo, and the rustc it runs, that can build for [target].
final class RustToolchain {
  const RustToolchain(
      {required this.cargo, required this.rustc, required this.target});

  final String cargo;
  final String rustc;

  /// The Rust target triple it builds for.
  final String target;

  /// The environment that makes [cargo] use [rustc].
  Map<String, String> get environment => {'RUSTC': rustc};

  /// The command line of `cargo` [arguments], as a user would type it.
  String describe(List<String> arguments) =>
      'RUSTC=$rustc ${describeCommand(cargo, arguments)}';
}

/// Finds a cargo on [environment]'s `PATH` whose rustc (`$RUSTC`, else the
/// `rustc` beside it) has the standard library for [target].
///
/// rustup's cargo comes first (the directory that also holds `rustup`), then
/// the others in `PATH` order: with rustup and Debian's Rust both installed,
/// rustup builds the targets it has, and Debian's (whose i386 standard
/// library rustup cannot replace on some machines) the others. rustc is asked
/// in [workingDirectory] so that a rustup toolchain file there counts.
/// Throws a [PackException] saying what to install when none can.
Future<RustToolchain> findRustToolchain(
  String target, {
  required Map<String, String> environment,
  required String workingDirectory,
}) async {
  final onPath = executablesOnPath('cargo', environment);
  if (onPath.isEmpty) {
    throw const PackException(
        'cargo is not on PATH: install Rust (https://rustup.rs), or pack a '
        'library built elsewhere with --no-build --lib PATH');
  }
  bool isRustup(String cargo) => isExecutableFile('${_dirOf(cargo)}/rustup');
  final cargos = [
    ...onPath.where(isRustup),
    ...onPath.where((cargo) => !isRustup(cargo)),
  ];

  final refusals = <String>[];
  final configuredRustc = environment['RUSTC'] ?? '';
  for (final cargo in cargos) {
    final rustc =
        configuredRustc.isNotEmpty ? configuredRustc : '${_dirOf(cargo)}/rustc';
    final missing = await _standardLibraryMissing(rustc, target,
        environment: environment, workingDirectory: workingDirectory);
    if (missing == null) {
      return RustToolchain(cargo: cargo, rustc: rustc, target: target);
    }
    refusals.add('  $cargo: $missing');
  }
  throw PackException(
      'no Rust toolchain on PATH can build $target, the target of this Dart '
      'VM (${Abi.current()}):\n${refusals.join('\n')}\n'
      '${_installAdvice(target)}, or pack a library built elsewhere with '
      '--no-build --lib PATH');
}

/// Why [rustc] cannot build [target] (its standard library for it is
/// missing, or it does not run), or null when it can.
Future<String?> _standardLibraryMissing(
  String rustc,
  String target, {
  required Map<String, String> environment,
  required String workingDirectory,
}) async {
  final CommandResult result;
  try {
    result = await runCommand(
        rustc, ['--print', 'target-libdir', '--target', target],
        workingDirectory: workingDirectory,
        environment: environment,
        notFound: '',
        timeout: const Duration(minutes: 2));
  } on PackException {
    return 'cannot run $rustc';
  }
  final libDir = result.output.trim();
  if (result.exitCode != 0) {
    return '$rustc does not know the target: ${_firstLine(result.output)}';
  }
  final dir = Directory(libDir);
  final hasStd = dir.existsSync() &&
      dir.listSync().any((entry) =>
          entry.path.endsWith('.rlib') &&
          entry.path.substring(entry.path.lastIndexOf('/') + 1).startsWith(
                'libstd-',
              ));
  return hasStd
      ? null
      : '$rustc has no standard library for $target (nothing in $libDir)';
}

String _installAdvice(String target) {
  final rustup = 'install the target with `rustup target add $target`';
  if (target != 'i686-unknown-linux-gnu') return rustup;
  // rustup's i686 standard library cannot be added on some machines; Debian
  // packages one (see tool/cargo_for.sh, which installs it).
  return '$rustup, or on Debian/Ubuntu install the packaged one: '
      '`dpkg --add-architecture i386 && apt-get update && apt-get install '
      'rustc-web cargo-web libstd-rust-web-dev:i386 gcc-multilib` (its cargo '
      'and rustc land in /usr/bin, which must be on PATH)';
}

/// Why `dart compile exe` cannot make this VM's kind of executable here, or
/// null when it can.
///
/// The `dart` on [environment]'s `PATH` must have the command (the Dart VM kit
/// has no AOT compiler and exits 64), and the VM must not be ia32, which the
/// Dart AOT compiler does not target.
Future<String?> aotUnavailableReason(
    {required Map<String, String> environment}) async {
  if (Abi.current() == Abi.linuxIA32) {
    return 'Dart has no AOT compiler for ia32, and this Dart VM is '
        '${Abi.current()}';
  }
  final dart = findOnPath('dart', environment);
  if (dart == null) return 'there is no `dart` command on PATH';
  final CommandResult probe;
  try {
    probe = await runCommand(dart, ['compile', 'exe', '--help'],
        environment: environment,
        notFound: '',
        timeout: const Duration(minutes: 2));
  } on PackException catch (error) {
    return error.message;
  }
  if (probe.exitCode == 0) return null;
  return '`dart compile exe` does not work here (exit code '
      '${probe.exitCode}: ${_firstLine(probe.output)})';
}

String _dirOf(String path) => path.substring(0, path.lastIndexOf('/'));

String _firstLine(String text) => text.trim().split('\n').first;
