/// The command line the Dart benchmark servers share:
/// `--impl iouring|dartio [--port P]`.
library;

import '../../example/support/cli.dart';

/// Which sockets a benchmark server runs on, and its port (0: any).
typedef BenchOptions = ({bool iouring, int port});

/// The options of [program] in [arguments], or null after the usage error
/// was reported (exit code 64).
BenchOptions? parseBenchOptions(String program, List<String> arguments) {
  final usage = '$program.dart --impl iouring|dartio [--port P]';
  try {
    final options = parseOptions(arguments, {'impl', 'port'});
    final port =
        numberOption(options, 'port', fallback: 0, min: 0, max: 65535);
    return switch (options['impl']) {
      'iouring' => (iouring: true, port: port),
      'dartio' => (iouring: false, port: port),
      _ => throw const FormatException('--impl must be iouring or dartio'),
    };
  } on FormatException catch (error) {
    usageError(program, error.message, usage);
    return null;
  }
}
