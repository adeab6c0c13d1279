/// The leak check every test file runs (through `setUpTransport`): the file
/// descriptors of the test process are the same after the file's tests as
/// before them, and no payload of the process-wide pool is still in use.
library;

import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

/// The open file descriptors of this process and what each refers to
/// (`socket:[123]`, `anon_inode:[io_uring]`, a path).
Map<int, String> openFileDescriptors() {
  final fds = <int, String>{};
  for (final entry in Directory('/proc/self/fd').listSync()) {
    final fd = int.tryParse(entry.uri.pathSegments.last);
    if (fd == null) continue;
    try {
      fds[fd] = Link(entry.path).targetSync();
    } on FileSystemException {
      // The directory listing's own descriptor, closed again by now.
    }
  }
  return fds;
}

/// Whether this test file is the program itself (package:test's direct
/// mode, as the kit's `dart test` runs every file). The SDK's runner loads
/// several files into isolates of one process, where the process's file
/// descriptors and payloads are not this file's alone: the check is off there.
bool get _fileIsTheProcess => Platform.script.path.endsWith('_test.dart');

/// Registers the check around the tests of the calling file.
void checkLeaksAroundFile() {
  if (!_fileIsTheProcess) return;
  late Map<int, String> before;
  setUpAll(() async {
    // dart:io opens its event handler's descriptors on first use: start it
    // before the snapshot, so they do not count as the tests' own.
    final warmUp = await ServerSocket.bind(InternetAddress.loopbackIPv4, 0);
    await warmUp.close();
    // Likewise the transport's own ring, made by the first stop request and
    // kept for the process (no worker exists yet: nobody is asked).
    if (Transport.messagingSupported) Transport.requestStop(0);
    before = openFileDescriptors();
  });
  tearDownAll(() async {
    // A file that used the isolate's default worker closes it here (closing
    // one it never created creates and closes one: no net change).
    await Worker.current.close();
    Map<int, String> leaked() => {
          for (final MapEntry(:key, :value) in openFileDescriptors().entries)
            if (before[key] != value) key: value,
        };
    // dart:io closes a socket's or a pipe's descriptor later, on its
    // event-handler thread (after destroy(), after a process's output or
    // exit code ended), and that thread takes commands in order: each round
    // closes a socket of its own and waits for it, so what was closed before
    // it is closed then. A close that a message still on its way to this
    // isolate starts needs another round, and a process's exit-code pipe
    // closes when the VM's thread that wrote the code gets to it: rounds go
    // on for up to 2 s, and only while what is left are sockets and pipes.
    var leaks = leaked();
    final rounds = Stopwatch()..start();
    while (leaks.isNotEmpty &&
        leaks.values.every(_closedLaterByDartIo) &&
        rounds.elapsed < const Duration(seconds: 2)) {
      await (await ServerSocket.bind(InternetAddress.loopbackIPv4, 0)).close();
      leaks = leaked();
    }
    expect(leaks, isEmpty,
        reason: 'file descriptors opened by the tests and still open');
    expect(Transport.payloadsInUse, 0,
        reason: 'payloads still in use after every test');
  });
}

/// Whether [target] (a `/proc/self/fd` link) is a kind of descriptor dart:io
/// may still be closing: a socket or a pipe.
bool _closedLaterByDartIo(String target) =>
    target.startsWith('socket:[') || target.startsWith('pipe:[');
