import 'dart:async';
import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

void main() {
  setUpTransport();

  group('library', () {
    test('is loaded from an existing file', () {
      final path = loadTransportLibrary();
      expect(File(path).existsSync(), isTrue);
      expect(loadedLibraryPath, path);
    });

    test('an explicit path is the only candidate', () {
      expect(libraryCandidates(path: '/nowhere/$libraryFileName'),
          ['/nowhere/$libraryFileName']);
    });

    test('the default search ends with the development build', () {
      final candidates = libraryCandidates();
      // libraryCandidates ignores the variable when it is set but empty.
      final fromEnvironment = Platform.environment[libraryEnvironmentVariable];
      if (fromEnvironment != null && fromEnvironment.isNotEmpty) {
        expect(candidates, hasLength(1));
      } else {
        expect(candidates.last, endsWith('/target/release/$libraryFileName'));
        expect(candidates.first,
            endsWith('/lib/$libraryFileName')); // next to the executable
      }
    });
  });

  group('worker', () {
    test('opens with empty counters and closes idempotently', () async {
      final worker = Worker();
      expect(worker.isClosed, isFalse);
      final stats = worker.stats();
      expect(stats.opsInFlight, 0);
      expect(stats.socketsOpen, 0);
      expect(stats.buffersOutstanding, 0);
      final first = worker.close();
      expect(worker.isClosed, isTrue);
      expect(identical(worker.close(), first), isTrue);
      await first;
      expect(worker.stats, throwsA(isA<TransportClosedException>()));
    });

    test('takes its configuration', () async {
      final worker = testWorker(const WorkerConfig(
          ringEntries: 64,
          receiveBufferCount: 32,
          sendBufferCount: 8,
          bufferSize: 4096,
          completionBatch: 16));
      expect(worker.bufferSize, 4096);
    });

    test('rejects a bad configuration with the native error', () {
      expect(() => Worker(config: const WorkerConfig(bufferSize: 0)),
          throwsA(isA<TransportException>().having((e) => e.errno, 'errno', 22)));
      expect(() => Worker(config: const WorkerConfig(completionBatch: 0)),
          throwsRangeError);
    });

    test('Worker.current is one worker per isolate, renewed after close',
        () async {
      final current = Worker.current;
      expect(identical(Worker.current, current), isTrue);
      await current.close();
      final renewed = Worker.current;
      expect(identical(renewed, current), isFalse);
      expect(renewed.isClosed, isFalse);
      await renewed.close();
    });

    test('several workers live side by side', () async {
      final a = testWorker();
      final b = testWorker();
      expect(a.id, isNot(b.id));
      final server = await startEchoServer(InternetAddress.loopbackIPv4,
          worker: a);
      final client = await TcpConnection.connect(
          InternetAddress.loopbackIPv4, server.port,
          worker: b);
      await expectEcho(client, ByteReader(client), pattern(1000, 1));
      await client.close();
    });

    test(
        'a turn hands out at most 64 receives: the others wait until what '
        'the program did with those (its microtasks) is done', () async {
      const count = 200;
      final worker = testWorker();
      final listener = await TcpListener.bind('127.0.0.1', 0, worker: worker);
      final accepted = StreamIterator(listener);
      final servers = <TcpConnection>[];
      final clients = <TcpConnection>[];
      for (var i = 0; i < count; i++) {
        clients.add(await TcpConnection.connect('127.0.0.1', listener.port,
            worker: worker));
        expect(await accepted.moveNext(), isTrue);
        servers.add(accepted.current);
      }
      // In the servers' kernel buffers before they receive: each receive
      // completes as it is submitted, so one turn drains all of them.
      await Future.wait([for (final client in clients) client.write([7])]);
      var received = 0;
      var beforeMicrotask = 0;
      var microtaskRan = false;
      final all = Completer<void>();
      for (final server in servers) {
        server.listen((_) {
          if (received++ == 0) scheduleMicrotask(() => microtaskRan = true);
          if (!microtaskRan) beforeMicrotask++;
          if (received == count) all.complete();
        });
      }
      await all.future.bounded;
      expect(beforeMicrotask, 64);
      for (final connection in [...clients, ...servers]) {
        connection.destroy();
      }
      await accepted.cancel();
      await listener.close();
    });
  });
}
