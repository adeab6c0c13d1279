/// Every program in example/ run end to end: started as its own process,
/// driven with dart:io clients over loopback sockets and temp files, stopped
/// with a signal, and held to a clean exit (code 0, nothing on stderr).
library;

import 'dart:io';
import 'dart:typed_data';

import 'package:test/test.dart';

import 'support/common.dart';
import 'support/example_process.dart';
import 'support/inbox.dart';

void main() {
  // In the order the tests first need them.
  final examples = Examples(
      ['echo_server', 'echo_client', 'udp_echo', 'unix_echo', 'file_copy']);

  group('echo_server', () {
    const modes = [
      (description: 'one isolate', arguments: <String>[]),
      (
        description: 'two isolates sharing the port (SO_REUSEPORT)',
        arguments: ['--isolates', '2'],
      ),
      (
        description: 'an acceptor handing off to two isolates',
        arguments: ['--mode', 'acceptor', '--isolates', '2'],
      ),
    ];
    for (final (:description, :arguments) in modes) {
      for (final signal in stopSignals) {
        test(
            'with $description echoes concurrent connections, then exits '
            'cleanly on $signal while a connection is open', () async {
          final server = await examples
              .start('echo_server', ['--port', '0', ...arguments]);
          final port = await server.listeningPort();
          // Several at once, so a two-isolate server likely spreads them.
          const connections = 4;
          await Future.wait([
            for (var i = 0; i < connections; i++)
              _connectTcp(port).then((socket) =>
                  _expectEchoThenEnd(socket, pattern(100000 + i, i))),
          ]);
          // Stopping with a live connection is the case that once printed
          // "TransportClosedException: worker closed".
          final open = await _connectTcp(port);
          final reader = ByteReader(open);
          final data = pattern(1000, 99);
          open.add(data);
          expect(sameBytes(await reader.read(data.length).bounded, data),
              isTrue,
              reason: 'echoed bytes differ');

          final exit = await server.stop(signal);
          if (arguments.contains('acceptor')) {
            final served = RegExp(r'^served (\d+) \+ (\d+) connections$')
                .firstMatch(exit.stdoutLines.last);
            expect(served, isNotNull, reason: '$exit');
            expect(int.parse(served![1]!) + int.parse(served[2]!),
                connections + 1,
                reason: 'every connection is handed off: $exit');
          } else {
            expect(exit.stdoutLines, hasLength(1), reason: '$exit');
          }
        }, timeout: exampleTestTimeout);
      }
    }
  });

  group('echo_client', () {
    test('measures round trips against echo_server', () async {
      final server = await examples.start('echo_server', ['--port', '0']);
      final port = await server.listeningPort();
      final client = await examples.run('echo_client', [
        '--port', '$port', //
        '--connections', '3', '--size', '1000', '--seconds', '1',
      ]);
      expect(client.exitCode, 0, reason: '$client');
      expect(client.stderr, isEmpty, reason: '$client');
      final rate = RegExp(r'^(\d+) requests of 1000 bytes over 3 connections '
              r'in \d+\.\d\d s: \d+ req/s$')
          .firstMatch(client.stdoutLines.single);
      expect(rate, isNotNull, reason: '$client');
      expect(int.parse(rate![1]!), greaterThan(0), reason: '$client');
      await server.stop(ProcessSignal.sigint);
    }, timeout: exampleTestTimeout);

    test('reports a refused connection with exit code 1 and no rate',
        () async {
      // A port that was free a moment ago: nothing listens on it.
      final probe = await ServerSocket.bind(InternetAddress.loopbackIPv4, 0);
      final port = probe.port;
      await probe.close();
      final client = await examples.run(
          'echo_client', ['--port', '$port', '--connections', '1']);
      expect(client.exitCode, 1, reason: '$client');
      expect(client.stdoutLines, isEmpty, reason: '$client');
      expect(client.stderr, startsWith('echo_client: '), reason: '$client');
    }, timeout: exampleTestTimeout);
  });

  group('udp_echo', () {
    for (final signal in stopSignals) {
      test('returns each datagram to its sender, then exits cleanly on $signal',
          () async {
        final server = await examples.start('udp_echo', ['--port', '0']);
        final port = await server.listeningPort();
        final client =
            await RawDatagramSocket.bind(InternetAddress.loopbackIPv4, 0);
        addTearDown(client.close);
        final events = Inbox<RawSocketEvent>(client);
        for (final size in [1, 512, 1400]) {
          final data = pattern(size, size);
          expect(client.send(data, InternetAddress.loopbackIPv4, port), size);
          final reply = await _receiveDatagram(client, events);
          expect(reply.port, port);
          expect(sameBytes(reply.data, data), isTrue,
              reason: 'echoed datagram of $size bytes differs');
        }
        await server.stop(signal);
      }, timeout: exampleTestTimeout);
    }
  });

  group('unix_echo', () {
    for (final signal in stopSignals) {
      test(
          'echoes on a socket file, then exits cleanly on $signal and '
          'removes the file', () async {
        final path = '${tempDirectory('iouring_unix_echo_').path}/echo.sock';
        final server = await examples.start('unix_echo', ['--path', path]);
        expect(await server.listeningAddress(), path);
        await _expectEchoThenEnd(await _connectUnix(path), pattern(200000, 5));
        await server.stop(signal);
        expect(FileSystemEntity.typeSync(path, followLinks: false),
            FileSystemEntityType.notFound);
      }, timeout: exampleTestTimeout);
    }

    test('echoes on an abstract name, then exits cleanly on SIGINT', () async {
      final name = '@iouring-transport-example-$pid-'
          '${DateTime.now().microsecondsSinceEpoch}';
      final server = await examples.start('unix_echo', ['--path', name]);
      expect(await server.listeningAddress(), name);
      await _expectEchoThenEnd(await _connectUnix(name), pattern(200000, 6));
      await server.stop(ProcessSignal.sigint);
    }, timeout: exampleTestTimeout);
  });

  group('file_copy', () {
    test('copies a 6 MiB file byte for byte over a longer destination',
        () async {
      final directory = tempDirectory('iouring_file_copy_');
      final source = File('${directory.path}/source');
      final destination = File('${directory.path}/destination');
      // Not a multiple of any buffer size, so the last piece is partial.
      final data = pattern((6 << 20) + 3, 7);
      source.writeAsBytesSync(data);
      // Longer than the source: the copy must truncate it.
      destination.writeAsBytesSync(Uint8List(7 << 20));

      final copy =
          await examples.run('file_copy', [source.path, destination.path]);
      expect(copy.exitCode, 0, reason: '$copy');
      expect(copy.stderr, isEmpty, reason: '$copy');
      expect(copy.stdoutLines.single,
          matches(RegExp('^copied ${data.length} bytes in \\d+\\.\\d{3} s\$')));
      expect(sameBytes(destination.readAsBytesSync(), data), isTrue,
          reason: 'the copy differs from the source');
    }, timeout: exampleTestTimeout);

    test('of a missing source exits 1 and creates no destination', () async {
      final directory = tempDirectory('iouring_file_copy_');
      final destination = '${directory.path}/destination';
      final copy = await examples
          .run('file_copy', ['${directory.path}/missing', destination]);
      expect(copy.exitCode, 1, reason: '$copy');
      expect(copy.stdoutLines, isEmpty, reason: '$copy');
      expect(copy.stderr, startsWith('file_copy: '), reason: '$copy');
      expect(File(destination).existsSync(), isFalse);
    }, timeout: exampleTestTimeout);
  });

  group('bad usage', () {
    const usages = [
      (example: 'echo_server', arguments: ['--bogus', '1']),
      (example: 'echo_server', arguments: ['--port', '65536']),
      (example: 'echo_server', arguments: ['--mode', 'sideways']),
      (example: 'echo_client', arguments: ['--bogus', '1']),
      (example: 'udp_echo', arguments: ['--bogus', '1']),
      (example: 'unix_echo', arguments: ['--bogus', '1']),
      (example: 'file_copy', arguments: ['--bogus', 'a', 'b']),
    ];
    usageErrorTests(examples, usages);
  });
}

Future<Socket> _connectTcp(int port) async {
  final socket =
      await Socket.connect(InternetAddress.loopbackIPv4, port).bounded;
  addTearDown(socket.destroy);
  return socket;
}

Future<Socket> _connectUnix(String path) async {
  final address = InternetAddress(path, type: InternetAddressType.unix);
  final socket = await Socket.connect(address, 0).bounded;
  addTearDown(socket.destroy);
  return socket;
}

/// Sends [data] over [socket], expects exactly it back, then half-closes
/// and expects the server to close its side in turn.
Future<void> _expectEchoThenEnd(Socket socket, Uint8List data) async {
  final reader = ByteReader(socket);
  socket.add(data);
  expect(sameBytes(await reader.read(data.length).bounded, data), isTrue,
      reason: 'echoed bytes differ');
  final closed = socket.close();
  expect(await reader.readToEnd().bounded, isEmpty,
      reason: 'nothing after the echo');
  await closed.bounded;
}

/// The next datagram [socket] receives ([events] are its events).
Future<Datagram> _receiveDatagram(
    RawDatagramSocket socket, Inbox<RawSocketEvent> events) async {
  // Events without a datagram (write readiness) come too; a few suffice.
  for (var event = 0; event < 16; event++) {
    final datagram = socket.receive();
    if (datagram != null) return datagram;
    await events.next();
  }
  fail('no datagram after 16 socket events');
}
