/// Child processes of pack_test: commands run to their end within a time
/// limit, and an unpacked echo server driven over loopback. Every wait is
/// bounded and every child is killed when its test ends.
library;

import 'dart:async';
import 'dart:convert';
import 'dart:io';
import 'dart:typed_data';

import 'package:test/test.dart';

/// What a command printed (stdout and stderr as they came) and its exit code.
typedef Finished = ({int exitCode, String output});

/// Runs [executable] to its end within [timeout]; a test failure (after
/// killing it) when it takes longer. Killed when the test ends, whatever
/// happened.
Future<Finished> runToEnd(
  String executable,
  List<String> arguments, {
  required Duration timeout,
  String? workingDirectory,
  Map<String, String>? environment,
}) async {
  final process = await Process.start(executable, arguments,
      workingDirectory: workingDirectory, environment: environment);
  addTearDown(() => process.kill(ProcessSignal.sigkill));
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
    fail('`$executable ${arguments.join(' ')}` did not finish within '
        '$timeout; its output so far:\n$output');
  }
  await drained.timeout(const Duration(seconds: 30));
  return (exitCode: code, output: '$output');
}

/// How long a started server may take to print its lines, to answer, or to
/// exit after a signal (the machine is shared: generous).
const Duration serverWait = Duration(seconds: 30);

/// A started echo server (`test/support/pack_echo_server.dart`, packed):
/// its `library PATH` and `listening on 127.0.0.1:PORT` lines, an echo
/// through it, and its stop.
final class EchoServerProcess {
  EchoServerProcess._(this._process) {
    _stdoutDone = _process.stdout
        .transform(const Utf8Decoder(allowMalformed: true))
        .transform(const LineSplitter())
        .forEach(_onLine)
        .whenComplete(() {
      if (!_listening.isCompleted) {
        _listening.completeError(StateError(
            'stdout closed without a `listening on` line; stdout:\n'
            '${_lines.join('\n')}\nstderr:\n$_stderr'));
      }
    });
    _listening.future.ignore(); // a test that waits for it sees the error
    _stderrDone = _process.stderr
        .transform(const Utf8Decoder(allowMalformed: true))
        .forEach(_stderr.write);
  }

  /// Starts [executable] with no environment at all (no PATH, no HOME, no
  /// IOURING_TRANSPORT_LIB) in [workingDirectory]; killed when the test ends.
  static Future<EchoServerProcess> start(String executable,
      {required String workingDirectory}) async {
    final process = await Process.start(executable, const [],
        workingDirectory: workingDirectory,
        environment: const {},
        includeParentEnvironment: false);
    addTearDown(() => process.kill(ProcessSignal.sigkill));
    return EchoServerProcess._(process);
  }

  final Process _process;
  final List<String> _lines = [];
  final StringBuffer _stderr = StringBuffer();
  final Completer<int> _listening = Completer<int>();
  late final Future<void> _stdoutDone;
  late final Future<void> _stderrDone;

  static final RegExp _listeningLine =
      RegExp(r'^listening on 127\.0\.0\.1:(\d+)$');

  void _onLine(String line) {
    _lines.add(line);
    final match = _listeningLine.firstMatch(line);
    if (match != null && !_listening.isCompleted) {
      _listening.complete(int.parse(match[1]!));
    }
  }

  /// The port of the `listening on` line.
  Future<int> port() async {
    try {
      return await _listening.future.timeout(serverWait);
    } on TimeoutException {
      fail('no `listening on` line within $serverWait; stdout:\n'
          '${_lines.join('\n')}\nstderr:\n$_stderr');
    }
  }

  /// The path of the `library PATH` line (printed before `listening on`).
  String? get libraryPath => _lines
      .where((line) => line.startsWith('library '))
      .map((line) => line.substring('library '.length))
      .firstOrNull;

  /// Sends [bytes] to the server and returns what comes back once as many
  /// bytes arrived (or the server closed).
  Future<List<int>> echo(Uint8List bytes) async {
    final socket = await Socket.connect('127.0.0.1', await port(),
        timeout: serverWait);
    try {
      socket.add(bytes);
      await socket.flush().timeout(serverWait);
      final received = <int>[];
      await for (final chunk in socket.timeout(serverWait)) {
        received.addAll(chunk);
        if (received.length >= bytes.length) break;
      }
      return received;
    } finally {
      socket.destroy();
    }
  }

  /// Sends SIGTERM and returns the exit code, with everything it printed on
  /// stderr.
  Future<({int exitCode, String stderr})> terminate() async {
    expect(_process.kill(ProcessSignal.sigterm), isTrue,
        reason: 'the server had already exited');
    final code = await _process.exitCode.timeout(serverWait);
    await Future.wait([_stdoutDone, _stderrDone]).timeout(serverWait);
    return (exitCode: code, stderr: '$_stderr');
  }
}
