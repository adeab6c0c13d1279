/// Runs the programs of example/ as child processes of a test: each program
/// is compiled once to a kernel file (started from source, this VM compiles
/// it again at every start, seconds each), started with the test's own VM,
/// and killed when the test ends.
library;

import 'dart:async';
import 'dart:convert';
import 'dart:io';

import 'package:test/test.dart';

/// How long a started example may take to print its `listening on` line, or
/// to exit after a signal or when it runs to completion.
const Duration exampleWait = Duration(seconds: 30);

/// The timeout of a test that runs an example: generous, as the first test of
/// each example may wait for its compilation.
const Timeout exampleTestTimeout = Timeout(Duration(seconds: 90));

/// The signals an example must stop cleanly on.
const List<ProcessSignal> stopSignals = [
  ProcessSignal.sigint,
  ProcessSignal.sigterm,
];

/// How long compiling one example may take (the front end is slow on this VM
/// and shares the machine with other tests).
const Duration _compileWait = Duration(seconds: 80);

/// How many examples compile at the same time.
const int _compileLanes = 2;

/// The examples of one test file, compiled in the background from its
/// `setUpAll` on, in the order given (so the first tests wait the least).
final class Examples {
  /// Registers the compilation of [names] (files `DIRECTORY/NAME.dart`,
  /// [directory] relative to the repository) and the removal of the kernel
  /// files after the last test.
  Examples(List<String> names, {this.directory = 'example'}) {
    setUpAll(() {
      _directory = Directory.systemTemp.createTempSync('iouring_examples_');
      for (final name in names) {
        // Awaited by the tests that run it; its failure is theirs.
        _kernel(name).ignore();
      }
    });
    tearDownAll(() async {
      for (final compiler in _compilers) {
        compiler.kill(ProcessSignal.sigkill);
      }
      _directory.deleteSync(recursive: true);
      await _eventHandlerCaughtUp();
    });
  }

  /// Completes once dart:io's event handler thread did what it was asked
  /// before: when a process exits, dart:io closes its stdin pipe there, a
  /// moment later, and a leak check right after the last exit would see the
  /// pipe. The handler takes requests in order, so the close of a fresh
  /// listener completes after those.
  static Future<void> _eventHandlerCaughtUp() async {
    final probe = await RawServerSocket.bind(InternetAddress.loopbackIPv4, 0)
        .timeout(exampleWait);
    await probe.close().timeout(exampleWait);
  }

  /// Where the programs are, relative to the repository.
  final String directory;

  late final Directory _directory;
  final Map<String, Future<String>> _kernels = {};
  final List<Future<void>> _lanes =
      List<Future<void>>.filled(_compileLanes, Future<void>.value());
  int _nextLane = 0;
  final List<Process> _compilers = [];

  /// The package config of this test run, which the examples' `package:`
  /// imports resolve against.
  static final Uri _packageConfig = Uri.base.resolve(
      Platform.packageConfig ?? '.dart_tool/package_config.json');

  /// The kernel file of program [name], compiled once.
  Future<String> kernel(String name) => _kernel(name);

  Future<String> _kernel(String name) => _kernels.putIfAbsent(name, () {
        final lane = _nextLane++ % _lanes.length;
        final compiled = _lanes[lane].then((_) => _compile(name));
        _lanes[lane] = compiled.then((_) {}, onError: (Object _) {});
        return compiled;
      });

  Future<String> _compile(String name) async {
    final source = _packageConfig.resolve('../$directory/$name.dart');
    final kernel = '${_directory.path}/$name.dill';
    final compiler = await Process.start(Platform.resolvedExecutable, [
      '--packages=${_packageConfig.toFilePath()}',
      '--snapshot-kind=kernel',
      '--snapshot=$kernel',
      source.toFilePath(),
    ]);
    _compilers.add(compiler);
    final output = _collect(compiler.stdout, compiler.stderr);
    final exitCode = await compiler.exitCode.timeout(_compileWait);
    final text = await output.timeout(_compileWait);
    if (exitCode != 0) {
      throw StateError(
          'compiling $directory/$name.dart failed ($exitCode): $text');
    }
    return kernel;
  }

  /// Starts example [name] with [arguments]. The process is killed when the
  /// test ends, whatever happened.
  ///
  /// It finds the native library as `dart run example/NAME.dart` would: by
  /// the inherited `IOURING_TRANSPORT_LIB`, else in this repository's build
  /// directory, which the library locates through the package config.
  Future<ExampleProcess> start(String name, List<String> arguments) async {
    final kernel = await _kernel(name);
    final process = await Process.start(Platform.resolvedExecutable, [
      '--enable-asserts',
      '--packages=${_packageConfig.toFilePath()}',
      kernel,
      ...arguments,
    ]);
    addTearDown(() => process.kill(ProcessSignal.sigkill));
    return ExampleProcess._(name, process);
  }

  /// Runs example [name] with [arguments] to its end.
  Future<ExampleExit> run(String name, List<String> arguments) async =>
      (await start(name, arguments)).exited();
}

/// Everything [out] and [err] carry, interleaved as it came.
Future<String> _collect(Stream<List<int>> out, Stream<List<int>> err) async {
  final text = StringBuffer();
  await Future.wait([
    for (final stream in [out, err])
      stream.transform(utf8.decoder).forEach(text.write),
  ]);
  return '$text';
}

/// How an example process ended.
final class ExampleExit {
  ExampleExit(this.exitCode, this.stdoutLines, this.stderr);

  final int exitCode;
  final List<String> stdoutLines;
  final String stderr;

  @override
  String toString() => 'exit code $exitCode, stdout ${stdoutLines.join(r'\n')}'
      ', stderr $stderr';
}

/// A running example.
final class ExampleProcess {
  ExampleProcess._(this.name, this._process) {
    _stdoutDone = _process.stdout
        .transform(utf8.decoder)
        .transform(const LineSplitter())
        .forEach(_onLine)
        .whenComplete(_onStdoutDone);
    // Only a test that waits for the line sees its failure.
    _listening.future.ignore();
    _stderrDone =
        _process.stderr.transform(utf8.decoder).forEach(_stderr.write);
  }

  static const String _listeningPrefix = 'listening on ';

  final String name;
  final Process _process;
  final List<String> _stdoutLines = [];
  final StringBuffer _stderr = StringBuffer();
  final Completer<String> _listening = Completer<String>();
  late final Future<void> _stdoutDone;
  late final Future<void> _stderrDone;

  void _onLine(String line) {
    _stdoutLines.add(line);
    if (line.startsWith(_listeningPrefix) && !_listening.isCompleted) {
      _listening.complete(line.substring(_listeningPrefix.length));
    }
  }

  void _onStdoutDone() {
    if (!_listening.isCompleted) {
      _listening.completeError(StateError(
          '$name closed its stdout without a `listening on` line'));
    }
  }

  /// What the `listening on ADDRESS` line says (ADDRESS).
  Future<String> listeningAddress() async {
    try {
      return await _listening.future.timeout(exampleWait);
    } on Object {
      // Its stderr says why, if it ended.
      _process.kill(ProcessSignal.sigkill);
      fail('$name did not start listening: ${await exited()}');
    }
  }

  /// The port of a `listening on 127.0.0.1:PORT` line.
  Future<int> listeningPort() async {
    final address = await listeningAddress();
    final match = RegExp(r'^127\.0\.0\.1:(\d+)$').firstMatch(address);
    expect(match, isNotNull, reason: 'listening on $address');
    final port = int.parse(match![1]!);
    expect(port, inInclusiveRange(1, 65535));
    return port;
  }

  /// Waits for the end of the process and of its output.
  Future<ExampleExit> exited() async {
    final exitCode = await _process.exitCode.timeout(exampleWait);
    await Future.wait([_stdoutDone, _stderrDone]).timeout(exampleWait);
    return ExampleExit(exitCode, _stdoutLines, '$_stderr');
  }

  /// Sends [signal] and expects a clean stop: exit code 0, nothing on
  /// stderr, and one `listening on` line in all of stdout. Returns the exit.
  Future<ExampleExit> stop(ProcessSignal signal) async {
    expect(_process.kill(signal), isTrue, reason: '$name already ended');
    final exit = await exited();
    expect(exit.stderr, isEmpty, reason: '$exit');
    expect(exit.exitCode, 0, reason: '$exit');
    expect(exit.stdoutLines.where((line) => line.startsWith(_listeningPrefix)),
        hasLength(1),
        reason: '$exit');
    return exit;
  }
}

/// One test per entry of [usages]: the example, run with those arguments,
/// exits 64 and prints nothing on stdout and two lines on stderr
/// (`EXAMPLE: what is wrong`, then `usage: EXAMPLE.dart ...`).
void usageErrorTests(Examples examples,
    List<({String example, List<String> arguments})> usages) {
  for (final (:example, :arguments) in usages) {
    test('$example ${arguments.join(' ')} exits 64 with a usage line',
        () async {
      final run = await examples.run(example, arguments);
      expect(run.exitCode, 64, reason: '$run');
      expect(run.stdoutLines, isEmpty, reason: '$run');
      final lines = run.stderr.trimRight().split('\n');
      expect(lines, hasLength(2), reason: '$run');
      expect(lines.first, startsWith('$example: '));
      expect(lines.last, startsWith('usage: $example.dart '));
    }, timeout: exampleTestTimeout);
  }
}
