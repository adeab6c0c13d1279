/// The process-wide payload pool that `Worker.sendBytes` draws from:
/// configured before first use (this file's process configures a small
/// one), exhausted, and refilled by releases.
library;

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

const int _size = 4096;
const int _count = 4;

/// Skips the current test when the kernel cannot message between rings
/// (`IORING_OP_MSG_RING` with passed flags needs Linux 6.3).
bool _skipWithoutMessaging() {
  if (Transport.messagingSupported) return false;
  markTestSkipped('this kernel cannot message between io_uring workers');
  return true;
}

void main() {
  setUpTransport();
  setUpAll(() {
    // Before anything in this process used the pool.
    Transport.configurePayloads(size: _size, count: _count);
  });

  test('the pool has the configured geometry; it cannot change once used',
      () {
    expect(Transport.payloadSize, _size);
    expect(Transport.payloadCount, _count);
    expect(Transport.payloadsInUse, 0);
    expect(() => Transport.configurePayloads(size: 8192, count: 8),
        throwsA(transportErrno(16)));
    expect(() => Transport.configurePayloads(size: 0, count: 1),
        throwsRangeError);
    expect(() => Transport.configurePayloads(size: 1, count: 0),
        throwsRangeError);
    expect(() => Transport.configurePayloads(size: (16 << 20) + 1, count: 1),
        throwsRangeError);
    expect(Transport.payloadSize, _size, reason: 'unchanged');
  });

  test('an exhausted pool fails sends with ENOBUFS; a release makes room',
      () async {
    if (_skipWithoutMessaging()) return;
    final sender = testWorker();
    final receiver = testWorker();
    final held = Inbox<BytesMessage>(receiver.byteMessages);
    addTearDown(held.cancel);
    for (var i = 0; i < _count; i++) {
      await sender.sendBytes(receiver.id, i, numbered(i)).bounded;
    }
    final messages = [for (var i = 0; i < _count; i++) await held.next()];
    expect(Transport.payloadsInUse, _count);
    await expectLater(sender.sendBytes(receiver.id, 9, [9]),
        throwsA(transportErrno(105))).bounded;
    messages.first.release();
    expect(Transport.payloadsInUse, _count - 1);
    await sender.sendBytes(receiver.id, 10, numbered(10)).bounded;
    final last = await held.next();
    expect(numberOf(last.bytes), 10);
    for (final message in [...messages.skip(1), last]) {
      message.release();
    }
    expect(Transport.payloadsInUse, 0);
  });

  test('a payload holds at most payloadSize bytes', () async {
    if (_skipWithoutMessaging()) return;
    final sender = testWorker();
    final receiver = testWorker();
    final arrived = receiver.byteMessages.first;
    expect(
        () => sender.sendBytes(
            receiver.id, 1, List<int>.filled(_size + 1, 1)),
        throwsArgumentError);
    await sender.sendBytes(receiver.id, 1, List<int>.filled(_size, 7)).bounded;
    final message = await arrived.bounded;
    expect(message.length, _size);
    expect(message.bytes.every((byte) => byte == 7), isTrue);
    message.release();
    expect(Transport.payloadsInUse, 0);
  });
}
