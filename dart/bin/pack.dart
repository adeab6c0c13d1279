/// `dart run iouring_transport:pack [options] <entry.dart>`: packs a program
/// that uses iouring_transport into one .tar.gz that runs on another Linux
/// machine with no Dart SDK and no Rust toolchain (see `--help`).
///
/// Exit codes: 0 packed, 64 a command line it cannot use, 1 a failed step
/// (nothing half-written is left behind).
library;

import 'dart:io';

import 'package:iouring_transport/src/pack/options.dart';
import 'package:iouring_transport/src/pack/packer.dart';

Future<void> main(List<String> arguments) async {
  try {
    switch (parsePackArgs(arguments)) {
      case PackHelp():
        stdout.write(packUsage);
      case PackOptions options:
        final packed = await pack(options, progress: stdout);
        stdout
          ..writeln('packed ${packed.archive} (${_megabytes(packed.bytes)} '
              'MB, kind ${packed.kind.name})')
          ..writeln('run it on the target: tar xzf ${options.name}.tar.gz '
              '&& ./${options.name}/${options.name}');
    }
  } on PackUsageException catch (error) {
    stderr
      ..writeln('pack: ${error.message}')
      ..writeln('Run `dart run iouring_transport:pack --help` for usage.');
    exitCode = 64;
  } on PackException catch (error) {
    stderr.writeln('pack: ${error.message}');
    if (error.output.isNotEmpty) stderr.write(error.output);
    exitCode = 1;
  } on FileSystemException catch (error) {
    stderr.writeln('pack: $error');
    exitCode = 1;
  }
}

String _megabytes(int bytes) => (bytes / (1024 * 1024)).toStringAsFixed(1);
