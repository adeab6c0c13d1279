import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// [chunks] one after the other.
Uint8List _joined(List<Uint8List> chunks) {
  var length = 0;
  for (final chunk in chunks) {
    length += chunk.length;
  }
  final out = Uint8List(length);
  var at = 0;
  for (final chunk in chunks) {
    out.setRange(at, at + chunk.length, chunk);
    at += chunk.length;
  }
  return out;
}

/// Reads a whole stream of chunks into one list, at most [testWait].
Future<Uint8List> _collect(Stream<Uint8List> stream) async =>
    _joined(await stream.toList().bounded);

void main() {
  setUpTransport();

  test('write, sync, read back byte-exact at every size', () async {
    final worker = testWorker();
    final dir = tempDirectory('iot_file_');
    final size = worker.bufferSize;
    for (final length in [0, 1, size - 1, size, size + 1, 8 << 20]) {
      final path = '${dir.path}/data-$length';
      final data = pattern(length, length);
      final file = await IoFile.open(path, mode: IoFileMode.write, worker: worker)
          .bounded;
      await file.write(data, offset: 0).bounded;
      await file.sync().bounded;
      final back = await file.read(length + 10, offset: 0).bounded;
      expect(back.length, length, reason: 'length $length');
      expect(sameBytes(back, data), isTrue, reason: 'length $length');
      expect((await file.stat().bounded).size, length);
      await file.close().bounded;
      expect(sameBytes(File(path).readAsBytesSync(), data), isTrue,
          reason: 'length $length as dart:io reads it');
    }
    final stats = worker.stats();
    expect(stats.buffersOutstanding, 0);
    expect(stats.socketsOpen, 0, reason: 'every file closed');
  });

  test('reads and writes at the file position follow each other', () async {
    final worker = testWorker();
    final path = '${tempDirectory('iot_file_').path}/position';
    final file = await IoFile.open(path, mode: IoFileMode.write, worker: worker)
        .bounded;
    final first = pattern(40000, 1);
    final second = pattern(30000, 2);
    final a = file.write(first);
    final b = file.write(second);
    await a.bounded;
    await b.bounded;
    await file.close().bounded;
    expect(File(path).readAsBytesSync(), [...first, ...second]);
    final reader = await IoFile.open(path, worker: worker).bounded;
    addTearDown(reader.close);
    expect(await reader.read(10).bounded, first.sublist(0, 10));
    expect(await reader.read(39990).bounded, first.sublist(10));
    expect(await reader.read(100000).bounded, second);
    expect(await reader.read(10).bounded, isEmpty, reason: 'at the end');
    // An explicit offset leaves the position alone.
    expect(await reader.read(5, offset: 40000).bounded, second.sublist(0, 5));
    expect(await reader.read(5).bounded, isEmpty);
  });

  test('append mode writes at the end whatever the offset', () async {
    final worker = testWorker();
    final path = '${tempDirectory('iot_file_').path}/log';
    File(path).writeAsStringSync('abc');
    final file = await IoFile.open(path, mode: IoFileMode.append, worker: worker)
        .bounded;
    await file.write('def'.codeUnits).bounded;
    await file.write('ghi'.codeUnits, offset: 0).bounded;
    await file.close().bounded;
    expect(File(path).readAsStringSync(), 'abcdefghi');
    final writeOnly = await IoFile.open(path,
            mode: IoFileMode.writeOnlyAppend, worker: worker)
        .bounded;
    await writeOnly.write('!'.codeUnits).bounded;
    await expectLater(writeOnly.read(1, offset: 0), throwsA(transportErrno(9))).bounded;
    await writeOnly.close().bounded;
    expect(File(path).readAsStringSync(), 'abcdefghi!');
  });

  test('stat of a file, a path and a directory', () async {
    final worker = testWorker();
    final dir = tempDirectory('iot_file_');
    final path = '${dir.path}/stat';
    final before = DateTime.now().subtract(const Duration(seconds: 5));
    final file = await IoFile.open(path, mode: IoFileMode.write, worker: worker)
        .bounded;
    addTearDown(file.close);
    await file.write(Uint8List(1234)).bounded;
    final info = await file.stat().bounded;
    expect(info.size, 1234);
    expect(info.isFile, isTrue);
    expect(info.isDirectory, isFalse);
    expect(info.permissions & 0x180, 0x180, reason: 'owner read and write');
    expect(info.modified.isAfter(before), isTrue);
    expect(info.modified.isBefore(DateTime.now().add(const Duration(seconds: 5))),
        isTrue);
    final byPath = await IoFile.statPath(path, worker: worker).bounded;
    expect(byPath.size, 1234);
    expect(byPath.mode, info.mode);
    final ofDir = await IoFile.statPath(dir.path, worker: worker).bounded;
    expect(ofDir.isDirectory, isTrue);
    await expectLater(IoFile.statPath('${dir.path}/missing', worker: worker),
        throwsA(transportErrno(2))).bounded;
  });

  test('allocate and truncate', () async {
    final worker = testWorker();
    final path = '${tempDirectory('iot_file_').path}/sized';
    final file = await IoFile.open(path, mode: IoFileMode.write, worker: worker)
        .bounded;
    addTearDown(file.close);
    await file.write(pattern(100, 3)).bounded;
    try {
      await file.allocate(0, 1 << 20).bounded;
      expect((await file.stat().bounded).size, 1 << 20);
      await file.allocate(0, 2 << 20, keepSize: true).bounded;
      final kept = await file.stat().bounded;
      expect(kept.size, 1 << 20);
      expect(kept.allocated, greaterThanOrEqualTo(2 << 20));
    } on TransportException catch (error) {
      // EOPNOTSUPP: a file system without fallocate.
      if (error.errno != 95) rethrow;
    }
    try {
      await file.truncate(10).bounded;
    } on IoUringUnavailableException {
      markTestSkipped('this kernel cannot truncate through io_uring (< 6.9)');
      return;
    }
    expect((await file.stat().bounded).size, 10);
    expect(await file.read(100, offset: 0).bounded, pattern(100, 3).sublist(0, 10));
    // A write queued after the truncate lands after it.
    await file.write([1, 2], offset: 10).bounded;
    expect((await file.stat().bounded).size, 12);
  });

  test('kernel errors: missing, directory, read-only, exclusive', () async {
    final worker = testWorker();
    final dir = tempDirectory('iot_file_');
    await expectLater(IoFile.open('${dir.path}/missing', worker: worker),
        throwsA(transportErrno(2).having((e) => e.operation, 'operation', 'open'))).bounded;
    await expectLater(
        IoFile.open(dir.path, mode: IoFileMode.write, worker: worker),
        throwsA(transportErrno(21))).bounded;
    final asDirectory = await IoFile.open(dir.path, worker: worker).bounded;
    await expectLater(asDirectory.read(10), throwsA(transportErrno(21))).bounded;
    await asDirectory.close().bounded;
    final path = '${dir.path}/read-only';
    File(path).writeAsStringSync('read only');
    final readOnly = await IoFile.open(path, worker: worker).bounded;
    await expectLater(readOnly.write([1, 2]), throwsA(transportErrno(9))).bounded;
    // The write error is reported by the next flush, once.
    final ignored = readOnly.write([3]);
    await expectLater(readOnly.flush(), throwsA(transportErrno(9))).bounded;
    await readOnly.flush().bounded;
    await expectLater(ignored, throwsA(transportErrno(9))).bounded;
    expect(await readOnly.read(100).bounded, 'read only'.codeUnits);
    await readOnly.close().bounded;
    await expectLater(
        IoFile.open(path,
            mode: IoFileMode.writeOnly, exclusive: true, worker: worker),
        throwsA(transportErrno(17))).bounded;
    expect(() => IoFile.open(path, exclusive: true, worker: worker),
        throwsArgumentError,
        reason: 'exclusive needs a mode that creates');
    expect(File(path).readAsStringSync(), 'read only');
    expect(worker.stats().socketsOpen, 0);
  });

  test('a whole file as a stream, with pauses', () async {
    final worker = testWorker();
    final path = '${tempDirectory('iot_file_').path}/stream';
    final data = pattern((1 << 20) + 123, 4);
    File(path).writeAsBytesSync(data);
    expect(sameBytes(await _collect(IoFile.openRead(path, worker: worker)), data),
        isTrue);
    expect(
        sameBytes(
            await _collect(IoFile.openRead(path, start: 1000, worker: worker)),
            data.sublist(1000)),
        isTrue);
    // Paused, the read stream stops at its window and loses nothing.
    final file = await IoFile.open(path, worker: worker).bounded;
    addTearDown(file.close);
    final chunks = <Uint8List>[];
    var bytes = 0;
    final inbox = Inbox<Uint8List>(file.readStream(window: 4));
    inbox.subscription.pause();
    await untilStats(worker, (stats) => stats.buffersOutstanding >= 4,
        reason: 'the window of chunks held while paused');
    // A stream that ignored its window would take more buffers with each
    // of these drains (its reads complete at once from the page cache).
    for (var i = 0; i < 10; i++) {
      await nextDrain(worker);
      expect(worker.stats().buffersOutstanding, 4,
          reason: 'no more than the window held');
    }
    expect(inbox.received, 0, reason: 'nothing delivered while paused');
    inbox.subscription.resume();
    while (bytes < data.length) {
      final chunk = await inbox.next();
      chunks.add(chunk);
      bytes += chunk.length;
    }
    await inbox.done();
    expect(inbox.errors, isEmpty);
    expect(sameBytes(_joined(chunks), data), isTrue);
    expect(worker.stats().buffersOutstanding, 0);
  });

  test('copy through native buffers: read payloads written as they are',
      () async {
    final worker = testWorker();
    final dir = tempDirectory('iot_file_');
    final data = pattern((3 << 20) + 7, 5);
    File('${dir.path}/src').writeAsBytesSync(data);
    final src = await IoFile.open('${dir.path}/src', worker: worker).bounded;
    final dst = await IoFile.open('${dir.path}/dst',
            mode: IoFileMode.writeOnly, worker: worker)
        .bounded;
    await src
        .readPayloads(window: 8)
        .asyncMap((payload) => dst.writePayload(payload))
        .drain<void>()
        .bounded;
    await dst.close().bounded;
    await src.close().bounded;
    expect(sameBytes(File('${dir.path}/dst').readAsBytesSync(), data), isTrue);
    expect(worker.stats().buffersOutstanding, 0);
  });

  test('timeouts: a FIFO without a writer', () async {
    final worker = testWorker();
    final fifo = await makeFifo('${tempDirectory('iot_file_').path}/fifo');
    await expectLater(
        IoFile.open(fifo,
            timeout: const Duration(milliseconds: 200), worker: worker),
        throwsA(isA<TransportTimeoutException>()
            .having((e) => e.operation, 'operation', 'open')
            .having((e) => e.timeout, 'timeout',
                const Duration(milliseconds: 200)))).bounded;
    // Opened for both ends, it opens at once, and a read waits for data.
    final both = await IoFile.open(fifo,
            mode: IoFileMode.readWrite, worker: worker)
        .bounded;
    await expectLater(
        both.read(10, timeout: const Duration(milliseconds: 200)),
        throwsA(isA<TransportTimeoutException>()
            .having((e) => e.operation, 'operation', 'read'))).bounded;
    await both.write([1, 2, 3]).bounded;
    expect(await both.read(10).bounded, [1, 2, 3]);
    await both.close().bounded;
  });

  test('closed files and workers refuse everything', () async {
    final worker = Worker();
    final path = '${tempDirectory('iot_file_').path}/closed';
    final file = await IoFile.open(path, mode: IoFileMode.write, worker: worker)
        .bounded;
    final closed = file.close();
    expect(identical(file.close(), closed), isTrue);
    await closed.bounded;
    expect(file.isClosed, isTrue);
    await expectLater(file.read(1), throwsA(isA<TransportClosedException>())).bounded;
    await expectLater(file.write([1]), throwsA(isA<TransportClosedException>())).bounded;
    await expectLater(file.sync(), throwsA(isA<TransportClosedException>())).bounded;
    await expectLater(file.stat(), throwsA(isA<TransportClosedException>())).bounded;
    await expectLater(file.readStream(),
        emitsInOrder(<Object>[emitsError(isA<TransportClosedException>()), emitsDone])).bounded;
    final other = await IoFile.open(path, mode: IoFileMode.readWrite, worker: worker)
        .bounded;
    final stream = expectLater(other.readStream(), emitsDone);
    await worker.close().bounded;
    await stream.bounded;
    await expectLater(other.write([1]), throwsA(isA<TransportClosedException>())).bounded;
    await other.close().bounded; // a no-op on a closed worker
    await expectLater(IoFile.open(path, worker: worker),
        throwsA(isA<TransportClosedException>())).bounded;
  });
}
