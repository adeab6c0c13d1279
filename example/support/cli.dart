/// Command-line helpers shared by the examples and the benchmark servers:
/// `--name value` options, usage errors, announcing the listening address
/// and waiting for a stop signal. dart:io only, so that a dart:io benchmark
/// peer that uses them loads nothing of the package.
library;

import 'dart:async';
import 'dart:io';

final RegExp _option = RegExp(r'^--([a-z][a-z-]*)(?:=(.*))?$');

/// The options in [arguments] (`--name value` or `--name=value`), each one
/// of [known]; throws a [FormatException] for anything else.
Map<String, String> parseOptions(List<String> arguments, Set<String> known) {
  final options = <String, String>{};
  final rest = arguments.iterator;
  while (rest.moveNext()) {
    final match = _option.firstMatch(rest.current);
    final name = match?.group(1);
    if (match == null || name == null || !known.contains(name)) {
      throw FormatException('unknown argument ${rest.current}');
    }
    final inline = match.group(2);
    if (inline != null) {
      options[name] = inline;
    } else if (rest.moveNext()) {
      options[name] = rest.current;
    } else {
      throw FormatException('--$name needs a value');
    }
  }
  return options;
}

/// Option [name] of [options] as a number in [min]..[max], or [fallback].
int numberOption(Map<String, String> options, String name,
    {required int fallback, required int min, required int max}) {
  final text = options[name];
  if (text == null) return fallback;
  final value = int.tryParse(text);
  if (value == null || value < min || value > max) {
    throw FormatException('--$name must be a number in $min..$max');
  }
  return value;
}

/// [host] as printed in `listening on HOST:PORT` (IPv6 in brackets).
String printableHost(String host) => host.contains(':') ? '[$host]' : host;

/// Prints `listening on [address]`, the line a launcher waits for, then
/// completes on the first SIGINT or SIGTERM. The signals are watched before
/// the line is printed, so a signal sent as soon as the line is read stops
/// the program cleanly instead of killing it.
Future<void> listeningUntilSignalled(String address) async {
  final stop = _signalled();
  stdout.writeln('listening on $address');
  await stop;
}

/// Completes on the first SIGINT or SIGTERM (and stops watching both); both
/// are watched when this returns.
Future<void> _signalled() async {
  final received = StreamController<ProcessSignal>();
  final watches = <StreamSubscription<ProcessSignal>>[
    for (final signal in [ProcessSignal.sigint, ProcessSignal.sigterm])
      signal.watch().listen(received.add),
  ];
  await received.stream.first;
  await Future.wait(watches.map((watch) => watch.cancel()));
}

/// Reports a usage error of [program] on stderr (exit code 64).
void usageError(String program, Object error, String usage) {
  stderr
    ..writeln('$program: $error')
    ..writeln('usage: $usage');
  exitCode = 64;
}
