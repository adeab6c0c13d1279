// Payloads of stream receives are pieces of shared native buffers where the
// kernel packs receives (Linux 6.12+): many connections sending a few bytes
// keep a few buffers out of the pool, not one each; a payload held stays
// intact while others come and go; each releases only its own piece.
// WorkerConfig.wholeReceiveBuffers gives every receive a whole buffer again.
import 'dart:async';
import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// [count] dart:io clients of a listener on [worker], each sending 16 bytes
/// numbered with its index; returns the payloads by client index, held.
Future<List<Payload>> _heldPayloads(Worker worker, int count) async {
  final server =
      await TcpListener.bind(InternetAddress.loopbackIPv4, 0, worker: worker);
  addTearDown(server.close);
  final payloads = <int, Payload>{};
  final all = Completer<void>();
  server.listen((connection) {
    connection.payloads.listen((payload) {
      // 16 bytes arrive in one piece: nothing else is sent on the connection.
      expect(payload.length, 16);
      payloads[numberOf(payload.bytes)] = payload;
      if (payloads.length == count) all.complete();
    });
  });
  final clients = <Socket>[];
  for (var i = 0; i < count; i++) {
    final client =
        await Socket.connect(InternetAddress.loopbackIPv4, server.port);
    addTearDown(client.destroy);
    client.add(numbered(i, 16));
    clients.add(client);
  }
  await all.future.bounded;
  return [for (var i = 0; i < count; i++) payloads[i]!];
}

void main() {
  setUpTransport();

  test('small payloads of many connections share a few buffers', () async {
    final worker = testWorker();
    const count = 100;
    final payloads = await _heldPayloads(worker, count);
    final stats = worker.stats();
    expect(stats.piecesOutstanding, count);
    if (stats.packsReceives) {
      // 100 x 16 bytes: one buffer (two if they straddle one's end).
      expect(stats.buffersOutstanding, lessThanOrEqualTo(2), reason: '$stats');
    } else {
      expect(stats.buffersOutstanding, count);
    }
    for (var i = 0; i < count; i++) {
      expect(numberOf(payloads[i].bytes), i, reason: 'payload $i intact');
    }
    // Released in reverse: each gives back its own piece only.
    for (var i = count - 1; i >= 0; i--) {
      payloads[i].release();
      expect(worker.stats().piecesOutstanding, i);
      if (i > 0) expect(numberOf(payloads[i - 1].bytes), i - 1);
    }
    expect(worker.stats().buffersOutstanding, 0);
  });

  test('a held payload stays intact while others come and go', () async {
    final worker = testWorker();
    final held = (await _heldPayloads(worker, 1)).single;
    // 2 MiB through a zero-copy echo on the same worker: the receive ring
    // cycles many times over, never through the piece still held.
    final client = await connectToEchoServer(worker);
    final reader = ByteReader(client);
    for (var i = 0; i < 64; i++) {
      await expectEcho(client, reader, pattern(32 << 10, i));
      expect(numberOf(held.bytes), 0, reason: 'after echo $i');
    }
    expect(held.bytes, numbered(0, 16));
    held.release();
    client.destroy();
    await untilStats(worker, (stats) => stats.buffersOutstanding == 0,
        reason: 'every buffer back');
  });

  test('whole receive buffers on request', () async {
    final worker = testWorker(const WorkerConfig(wholeReceiveBuffers: true));
    expect(worker.stats().packsReceives, isFalse);
    const count = 10;
    final payloads = await _heldPayloads(worker, count);
    final stats = worker.stats();
    expect((stats.piecesOutstanding, stats.buffersOutstanding), (count, count));
    for (final payload in payloads) {
      payload.release();
    }
    expect(worker.stats().buffersOutstanding, 0);
  });

  test('a payload sent on is released with its own piece', () async {
    final worker = testWorker();
    final payloads = await _heldPayloads(worker, 3);
    final (client, server) = await tcpPair(worker);
    final reader = ByteReader(client);
    // The middle one of three pieces goes out as it is, then back to the
    // pool; its neighbours stay the program's.
    await server.writePayload(payloads[1]);
    expect(sameBytes(await reader.read(16), numbered(1, 16)), isTrue);
    expect(worker.stats().piecesOutstanding, 2);
    expect(numberOf(payloads[0].bytes), 0);
    expect(numberOf(payloads[2].bytes), 2);
    payloads[0].release();
    payloads[2].release();
    client.destroy();
    server.destroy();
    await untilStats(worker, (stats) => stats.buffersOutstanding == 0,
        reason: 'every buffer back');
  });

  test('a 48 KB message that waits comes as one payload by default', () async {
    // Buffers are 64 KiB by default: a large message is one receive and one
    // send, not one per 16 KiB.
    final worker = testWorker();
    final (client, server) = await tcpPair(worker);
    final message = pattern(48000, 3);
    // Sent before the server reads: it waits whole in the socket's buffer.
    await client.write(message).bounded;
    final payload = await server.payloads.first.bounded;
    expect(payload.length, 48000);
    expect(sameBytes(payload.bytes, message), isTrue);
    payload.release();
    client.destroy();
    server.destroy();
    await untilStats(worker, (stats) => stats.buffersOutstanding == 0,
        reason: 'every buffer back');
  });

  test('a program that keeps every payload until its message is whole gets '
      'every byte', () async {
    // 40 connections send 64 KiB each, and each payload is kept until its
    // connection's message is whole: 2.5 MiB held, past the receive ring's
    // budget (1 MiB). Past it the ring grows a turn later, not never.
    final worker = testWorker();
    const count = 40, size = 64 * 1024;
    final server =
        await TcpListener.bind(InternetAddress.loopbackIPv4, 0, worker: worker);
    addTearDown(server.close);
    final held = <Payload>[];
    final messages = <int, Uint8List>{};
    final allWhole = Completer<void>();
    server.listen((connection) {
      final pieces = BytesBuilder();
      connection.payloads.listen((payload) {
        held.add(payload);
        pieces.add(payload.bytes);
        if (pieces.length < size) return;
        final message = pieces.takeBytes();
        messages[numberOf(message)] = message;
        if (messages.length == count) allWhole.complete();
      });
    });
    for (var i = 0; i < count; i++) {
      final client =
          await Socket.connect(InternetAddress.loopbackIPv4, server.port);
      addTearDown(client.destroy);
      client.add(numbered(i, size));
    }
    await allWhole.future.bounded;
    for (var i = 0; i < count; i++) {
      expect(sameBytes(messages[i]!, numbered(i, size)), isTrue,
          reason: 'message $i');
    }
    expect(worker.stats().piecesOutstanding, held.length);
    for (final payload in held) {
      payload.release();
    }
    await untilStats(worker, (stats) => stats.buffersOutstanding == 0,
        reason: 'every buffer back');
  });

  test('payloads waiting in a subscription that is cancelled go back at once',
      () async {
    final worker = testWorker();
    final (client, connection) = await tcpPair(worker);
    // The first payload pauses the subscription; what arrives next waits in
    // it, holding its pieces.
    late final StreamSubscription<Payload> subscription;
    subscription = connection.payloads.listen((payload) {
      payload.release();
      subscription.pause();
    });
    for (var i = 0; i < 8; i++) {
      await client.write(numbered(i, 16 * 1024)).bounded;
    }
    await untilStats(worker, (stats) => stats.piecesOutstanding > 0,
        reason: 'payloads waiting in the paused subscription');
    await subscription.cancel();
    // Not when a garbage collection finds them: now.
    expect(worker.stats().piecesOutstanding, 0);
  });
}
