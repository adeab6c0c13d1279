/// Files: reads and writes at explicit offsets and at the file position,
/// the modes' effect on existing contents, and read streams from an offset.
library;

import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

void main() {
  setUpTransport();

  late Worker worker;
  late Directory dir;

  setUp(() {
    worker = testWorker();
    dir = tempDirectory('iot_offsets_');
  });

  /// Opens [name] in [dir] (closed when the test ends).
  Future<IoFile> open(String name, IoFileMode mode) async {
    final file =
        await IoFile.open('${dir.path}/$name', mode: mode, worker: worker)
            .bounded;
    addTearDown(file.close);
    return file;
  }

  test('a write past the end leaves zeros in the gap', () async {
    final file = await open('gap', IoFileMode.write);
    await file.write([1, 2, 3], offset: 10000).bounded;
    expect((await file.stat().bounded).size, 10003);
    final back = await file.read(20000, offset: 0).bounded;
    expect(back.length, 10003);
    expect(back.sublist(0, 10000).every((byte) => byte == 0), isTrue);
    expect(back.sublist(10000), [1, 2, 3]);
  });

  test('writes at explicit offsets land there, whatever order they finish in',
      () async {
    final file = await open('pieces', IoFileMode.write);
    final size = worker.bufferSize * 3 + 11;
    final data = pattern(size * 8, 1);
    // Issued last piece first, all at once.
    await Future.wait([
      for (var i = 7; i >= 0; i--)
        file.write(data.sublist(i * size, (i + 1) * size), offset: i * size)
    ]).bounded;
    await file.flush().bounded;
    expect(sameBytes(File(file.path).readAsBytesSync(), data), isTrue);
  });

  test('reads at, past and across the end', () async {
    final data = pattern(5000, 2);
    File('${dir.path}/ends').writeAsBytesSync(data);
    final file = await open('ends', IoFileMode.read);
    expect(await file.read(100, offset: 5000).bounded, isEmpty);
    expect(await file.read(100, offset: 99999).bounded, isEmpty);
    expect(await file.read(100, offset: 4995).bounded, data.sublist(4995));
    // Larger than a buffer, from an odd offset: the pieces come back in
    // order.
    final long = await file.read(worker.bufferSize * 5, offset: 13).bounded;
    expect(sameBytes(long, data.sublist(13)), isTrue);
    expect(await file.read(0, offset: 0).bounded, isEmpty);
  });

  test('reads and writes at the file position continue each other', () async {
    File('${dir.path}/position').writeAsStringSync('abcdefghij');
    final file = await open('position', IoFileMode.readWrite);
    expect(String.fromCharCodes(await file.read(3).bounded), 'abc');
    await file.write('XYZ'.codeUnits).bounded;
    expect(String.fromCharCodes(await file.read(2).bounded), 'gh');
    // An explicit offset neither uses nor moves the position.
    await file.write('!'.codeUnits, offset: 0).bounded;
    expect(String.fromCharCodes(await file.read(10).bounded), 'ij');
    await file.close().bounded;
    expect(File(file.path).readAsStringSync(), '!bcXYZghij');
  });

  test('readWrite keeps the contents, write truncates, exclusive creates',
      () async {
    final path = '${dir.path}/modes';
    File(path).writeAsStringSync('hello world');
    final kept = await open('modes', IoFileMode.readWrite);
    await kept.write('J'.codeUnits, offset: 0).bounded;
    await kept.close().bounded;
    expect(File(path).readAsStringSync(), 'Jello world');
    final truncated = await open('modes', IoFileMode.writeOnly);
    expect((await truncated.stat().bounded).size, 0);
    final created = await IoFile.open('${dir.path}/new',
            mode: IoFileMode.write,
            exclusive: true,
            permissions: 0x180, // 0600
            worker: worker)
        .bounded;
    addTearDown(created.close);
    expect((await created.stat().bounded).permissions, 0x180);
  });

  test('sync and sync(dataOnly) after writes; stat sees them', () async {
    final file = await open('synced', IoFileMode.write);
    await file.write(pattern(70000, 3)).bounded;
    await file.sync(dataOnly: true).bounded;
    await file.write(pattern(10, 4), offset: 70000).bounded;
    await file.sync().bounded;
    final info = await file.stat().bounded;
    expect(info.size, 70010);
    expect(info.allocated, greaterThan(0));
  });

  test('read streams from an offset, in chunks of at most a buffer',
      () async {
    final data = pattern(worker.bufferSize * 4 + 100, 5);
    File('${dir.path}/stream').writeAsBytesSync(data);
    final file = await open('stream', IoFileMode.read);
    final chunks =
        await file.readStream(offset: 1234, window: 2).toList().bounded;
    expect(chunks.every((chunk) => chunk.length <= worker.bufferSize),
        isTrue);
    final joined = BytesBuilder(copy: false);
    chunks.forEach(joined.add);
    expect(sameBytes(joined.takeBytes(), data.sublist(1234)), isTrue);
    // From the end or past it: no chunk, just the end.
    await expectLater(file.readStream(offset: data.length), emitsDone)
        .bounded;
    await expectLater(file.readStream(offset: data.length + 99), emitsDone)
        .bounded;
    expect(worker.stats().buffersOutstanding, 0);
  });

  test('payloads of one file written into another at offsets', () async {
    final data = pattern(worker.bufferSize * 3, 6);
    File('${dir.path}/source').writeAsBytesSync(data);
    final source = await open('source', IoFileMode.read);
    final target = await open('target', IoFileMode.write);
    // Written back to front: each payload at the offset it came from.
    final payloads = await source.readPayloads(window: 8).toList().bounded;
    var at = data.length;
    for (final payload in payloads.reversed) {
      at -= payload.length;
      await target.writePayload(payload, offset: at).bounded;
      expect(payload.isReleased, isTrue);
    }
    expect(at, 0);
    await target.flush().bounded;
    expect(sameBytes(File(target.path).readAsBytesSync(), data), isTrue);
    expect(worker.stats().buffersOutstanding, 0);
  });
}
