/// How file operations fail: bad arguments (before anything is queued),
/// the kernel's errors for paths, payload misuse, workers without send
/// buffers, and write errors reported by flush and close.
library;

import 'dart:async';
import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

void main() {
  setUpTransport();

  test('bad arguments are refused before anything is queued', () async {
    final worker = testWorker();
    final path = '${tempDirectory('iot_file_errors_').path}/f';
    final file =
        await IoFile.open(path, mode: IoFileMode.write, worker: worker)
            .bounded;
    addTearDown(file.close);
    expect(() => file.read(-1), throwsRangeError);
    expect(() => file.read(1, offset: -1), throwsRangeError);
    expect(() => file.write([1], offset: -1), throwsRangeError);
    expect(() => file.allocate(-1, 1), throwsRangeError);
    expect(() => file.allocate(0, -1), throwsRangeError);
    expect(() => file.truncate(-1), throwsRangeError);
    expect(() => file.readStream(offset: -1), throwsRangeError);
    expect(() => file.readStream(window: -1), throwsRangeError);
    expect(() => IoFile.open(path, permissions: 0x1000, worker: worker),
        throwsRangeError);
    expect(() => IoFile.open('a\u0000b', worker: worker), throwsArgumentError);
    expect(() => IoFile.open('/${'x' * 5000}', worker: worker),
        throwsArgumentError);
    expect(() => IoFile.statPath('a\u0000b', worker: worker),
        throwsArgumentError);
    final stats = worker.stats();
    expect(stats.opsInFlight, 0);
    expect(stats.buffersOutstanding, 0);
    // Nothing to do: done at once.
    expect(await file.read(0).bounded, isEmpty);
    await file.write(const <int>[]).bounded;
  });

  test('paths the kernel refuses: missing, not a directory, too long a name',
      () async {
    final worker = testWorker();
    final dir = tempDirectory('iot_file_errors_');
    final plain = File('${dir.path}/plain')..writeAsStringSync('x');
    await expectLater(IoFile.open('${dir.path}/missing/file', worker: worker),
        throwsA(transportErrno(2))).bounded;
    await expectLater(
        IoFile.open('${plain.path}/child',
            mode: IoFileMode.write, worker: worker),
        throwsA(transportErrno(20))).bounded;
    await expectLater(
        IoFile.open('${dir.path}/${'n' * 300}',
            mode: IoFileMode.write, worker: worker),
        throwsA(transportErrno(36))).bounded;
    await expectLater(IoFile.statPath('${plain.path}/child', worker: worker),
        throwsA(transportErrno(20))).bounded;
    expect(worker.stats().socketsOpen, 0, reason: 'no file was opened');
  });

  test('openRead of a missing file: the stream fails with ENOENT and ends',
      () async {
    final worker = testWorker();
    final missing = '${tempDirectory('iot_file_errors_').path}/missing';
    final stream = Inbox<List<int>>(IoFile.openRead(missing, worker: worker));
    await stream.done();
    expect(stream.errors, [
      transportErrno(2).having((e) => e.operation, 'operation', 'open')
    ]);
    expect(stream.received, 0);
  });

  test('openRead on a closed worker fails the stream', () async {
    final worker = Worker();
    await worker.close();
    final path = '${tempDirectory('iot_file_errors_').path}/f';
    File(path).writeAsStringSync('x');
    await expectLater(
        IoFile.openRead(path, worker: worker),
        emitsInOrder(<Object>[
          emitsError(isA<TransportClosedException>()),
          emitsDone,
        ])).bounded;
  });

  test('payloads of another worker or already released are refused',
      () async {
    final worker = testWorker();
    final other = testWorker();
    final dir = tempDirectory('iot_file_errors_');
    File('${dir.path}/source').writeAsBytesSync(pattern(100, 1));
    final source = await IoFile.open('${dir.path}/source', worker: other)
        .bounded;
    addTearDown(source.close);
    final target = await IoFile.open('${dir.path}/target',
            mode: IoFileMode.write, worker: worker)
        .bounded;
    addTearDown(target.close);
    final payloads = StreamIterator<Payload>(source.readPayloads());
    addTearDown(payloads.cancel);
    expect(await payloads.moveNext().bounded, isTrue);
    final payload = payloads.current;
    expect(() => target.writePayload(payload), throwsArgumentError,
        reason: 'a payload of another worker');
    expect(payload.isReleased, isFalse, reason: 'refused, still held');
    payload.release();
    expect(() => source.writePayload(payload), throwsStateError);
    expect(other.stats().buffersOutstanding, 0);
  });

  test('a worker without send buffers refuses reads and writes', () async {
    final worker = testWorker(const WorkerConfig(sendBufferCount: 0));
    final path = '${tempDirectory('iot_file_errors_').path}/f';
    File(path).writeAsStringSync('data');
    final file =
        await IoFile.open(path, mode: IoFileMode.readWrite, worker: worker)
            .bounded;
    addTearDown(file.close);
    await expectLater(file.read(4), throwsStateError).bounded;
    await expectLater(file.write([1]), throwsStateError).bounded;
    // What needs no buffer still works.
    expect((await file.stat().bounded).size, 4);
    await file.sync().bounded;
    // Connections cannot write either.
    final (client, _) = await tcpPair(worker);
    await expectLater(client.write([1]), throwsStateError).bounded;
  });

  test('close reports a write error no flush took; it is the same future '
      'every time', () async {
    final worker = testWorker();
    final path = '${tempDirectory('iot_file_errors_').path}/read-only';
    File(path).writeAsStringSync('x');
    final file = await IoFile.open(path, worker: worker).bounded;
    final write = file.write([1, 2]);
    final closed = file.close();
    expect(identical(file.close(), closed), isTrue);
    await expectLater(closed, throwsA(transportErrno(9))).bounded;
    await expectLater(write, throwsA(transportErrno(9))).bounded;
    expect(file.isClosed, isTrue);
    expect(worker.stats().socketsOpen, 0, reason: 'closed despite the error');
    expect(File(path).readAsStringSync(), 'x');
  });
}
