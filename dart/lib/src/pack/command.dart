/// Running the commands the pack tool needs (cargo, rustc, dart, tar) with
/// their output kept for the error that reports a failure.
library;

import 'dart:async';
import 'dart:convert';
import 'dart:io';

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

/// What a finished command printed and how it exited.
typedef CommandResult = ({int exitCode, String output});

/// Runs [executable] to completion and returns its exit code and its stdout
/// and stderr together (in the order they arrive).
///
/// Throws a [PackException] when it cannot start (with [notFound] saying what
/// to do) or runs longer than [timeout] (it is killed; [timedOut] says why
/// that is wrong).
Future<CommandResult> runCommand(
  String executable,
  List<String> arguments, {
  String? workingDirectory,
  required Map<String, String> environment,
  required String notFound,
  Duration timeout = const Duration(minutes: 30),
  String timedOut = 'it did not finish',
}) async {
  final command = describeCommand(executable, arguments);
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
  final int code;
  try {
    code = await process.exitCode.timeout(timeout);
  } on TimeoutException {
    process.kill(ProcessSignal.sigkill);
    await process.exitCode;
    // A grandchild may still hold the pipes open: take what is there.
    await drained.timeout(const Duration(seconds: 5), onTimeout: () => []);
    throw PackException(
        '`$command` was stopped after ${timeout.inSeconds} s: $timedOut',
        output: output.toString());
  }
  await drained;
  return (exitCode: code, output: output.toString());
}

/// Runs [executable] like [runCommand] and throws a [PackException] (with
/// its output) when it exits with a non-zero code; [failed] names what
/// failed, for the message.
Future<void> runChecked(
  String executable,
  List<String> arguments, {
  String? workingDirectory,
  required Map<String, String> environment,
  required String notFound,
  required String failed,
  Duration timeout = const Duration(minutes: 30),
  String timedOut = 'it did not finish',
}) async {
  final result = await runCommand(executable, arguments,
      workingDirectory: workingDirectory,
      environment: environment,
      notFound: notFound,
      timeout: timeout,
      timedOut: timedOut);
  if (result.exitCode != 0) {
    throw PackException(
        '$failed: `${describeCommand(executable, arguments)}` exited with '
        'code ${result.exitCode}',
        output: result.output);
  }
}

/// The command line as a user would type it (see [quoteArguments]).
String describeCommand(String executable, List<String> arguments) =>
    quoteArguments([executable, ...arguments]);

/// [arguments] joined with spaces, each one that a shell would split or
/// expand in single quotes.
String quoteArguments(List<String> arguments) => [
      for (final argument in arguments)
        argument.isEmpty || argument.contains(_shellSpecial)
            ? "'${argument.replaceAll("'", r"'\''")}'"
            : argument,
    ].join(' ');

final RegExp _shellSpecial = RegExp(r'''[\s'"$`\\*?&|;<>()]''');

/// The executable [name] in the first directory of [environment]'s `PATH`
/// that has one, or null.
String? findOnPath(String name, Map<String, String> environment) =>
    executablesOnPath(name, environment).firstOrNull;

/// Every executable file [name] in the directories of [environment]'s `PATH`,
/// in `PATH` order, each file once (two directories may hold the same file
/// through a symbolic link, such as /bin and /usr/bin).
List<String> executablesOnPath(String name, Map<String, String> environment) {
  final found = <String>[];
  final seen = <String>{};
  for (final dir in (environment['PATH'] ?? '').split(':')) {
    if (dir.isEmpty) continue;
    final candidate = '$dir/$name';
    if (!isExecutableFile(candidate)) continue;
    if (seen.add(File(candidate).resolveSymbolicLinksSync())) {
      found.add(candidate);
    }
  }
  return found;
}

/// Whether [path] is a regular file (after symbolic links) that someone may
/// execute.
bool isExecutableFile(String path) {
  final stat = FileStat.statSync(path);
  const anyExecute = 0x49; // 0o111
  return stat.type == FileSystemEntityType.file && stat.mode & anyExecute != 0;
}
