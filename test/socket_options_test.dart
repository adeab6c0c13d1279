/// Socket options of [IoUringSocket] (`setOption`, `getRawOption`,
/// `setRawOption`) and connecting from a source address and port.
library;

import 'dart:io';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

// From the Linux headers.
const int _tcpNoDelay = 1;
const int _soKeepAlive = 9;
const int _soRcvBuf = 8;

/// A 4-byte int option with room for the kernel's answer.
RawSocketOption _intOption(int level, int option, [int value = 0]) =>
    RawSocketOption.fromInt(level, option, value);

int _int(Uint8List bytes) {
  expect(bytes, hasLength(4));
  return ByteData.sublistView(bytes).getInt32(0, Endian.host);
}

/// An [IoUringSocket] connected to a listener of ours, and the socket the
/// listener accepted; both destroyed when the test ends.
Future<(IoUringSocket client, Socket server)> _pair(Worker worker,
    {Object? sourceAddress, int sourcePort = 0}) async {
  final listener = await IoUringServerSocket.bind(
      InternetAddress.loopbackIPv4, 0,
      worker: worker);
  addTearDown(listener.close);
  final accepted = listener.first;
  final client = await IoUringSocket.connect(
          InternetAddress.loopbackIPv4, listener.port,
          sourceAddress: sourceAddress, sourcePort: sourcePort, worker: worker)
      .bounded;
  addTearDown(client.destroy);
  final server = await accepted.bounded;
  addTearDown(server.destroy);
  return (client, server);
}

/// A port free on [address] just now.
Future<int> _freePort(InternetAddress address) async {
  final probe = await ServerSocket.bind(address, 0);
  final port = probe.port;
  await probe.close();
  return port;
}

void main() {
  setUpTransport();

  test('tcpNoDelay: on at first, setOption turns it off and on', () async {
    final (client, _) = await _pair(testWorker());
    final noDelay = _intOption(RawSocketOption.levelTcp, _tcpNoDelay);
    expect(_int(client.getRawOption(noDelay)), 1);
    expect(client.setOption(SocketOption.tcpNoDelay, false), isTrue);
    expect(_int(client.getRawOption(noDelay)), 0);
    expect(client.setOption(SocketOption.tcpNoDelay, true), isTrue);
    expect(_int(client.getRawOption(noDelay)), 1);
  });

  test('getRawOption writes into the option value, as dart:io does',
      () async {
    final (client, _) = await _pair(testWorker());
    final option = _intOption(RawSocketOption.levelTcp, _tcpNoDelay, 77);
    final got = client.getRawOption(option);
    expect(identical(got, option.value), isTrue);
    expect(_int(option.value), 1);
  });

  test('SO_KEEPALIVE round trips on an accepted socket', () async {
    final (_, server) = await _pair(testWorker());
    for (final on in [true, false, true]) {
      server.setRawOption(RawSocketOption.fromBool(
          RawSocketOption.levelSocket, _soKeepAlive, on));
      expect(
          _int(server.getRawOption(
              _intOption(RawSocketOption.levelSocket, _soKeepAlive))),
          on ? 1 : 0);
    }
  });

  test('SO_RCVBUF reads back doubled', () async {
    final (client, _) = await _pair(testWorker());
    client.setRawOption(
        _intOption(RawSocketOption.levelSocket, _soRcvBuf, 8192));
    expect(
        _int(client
            .getRawOption(_intOption(RawSocketOption.levelSocket, _soRcvBuf))),
        16384);
  });

  test('a bad level is an OSError with the errno, as in dart:io', () async {
    final (client, _) = await _pair(testWorker());
    // ENOPROTOOPT or EOPNOTSUPP, by call and kernel version.
    final errnos = [92, 95];
    final refused =
        isA<OSError>().having((e) => e.errorCode, 'errorCode', isIn(errnos));
    expect(() => client.setRawOption(_intOption(9999, 1, 1)),
        throwsA(refused));
    expect(() => client.getRawOption(_intOption(9999, 1)), throwsA(refused));
  });

  test('options of a destroyed socket throw SocketException.closed',
      () async {
    final (client, _) = await _pair(testWorker());
    client.destroy();
    final noDelay = _intOption(RawSocketOption.levelTcp, _tcpNoDelay);
    expect(() => client.getRawOption(noDelay), throwsA(isA<SocketException>()));
    expect(() => client.setOption(SocketOption.tcpNoDelay, false),
        throwsA(isA<SocketException>()));
  });

  test('connect from a source address and port', () async {
    final source = InternetAddress('127.0.0.2');
    final sourcePort = await _freePort(source);
    final (client, server) = await _pair(testWorker(),
        sourceAddress: source, sourcePort: sourcePort);
    expect(server.remoteAddress, source);
    expect(server.remotePort, sourcePort);
    expect(client.port, sourcePort);
  });

  test('connect from a numeric String source, any port', () async {
    final (_, server) =
        await _pair(testWorker(), sourceAddress: '127.0.0.3');
    expect(server.remoteAddress.address, '127.0.0.3');
  });

  test('a source port in use is a SocketException (EADDRINUSE)', () async {
    final worker = testWorker();
    final taken = await ServerSocket.bind('127.0.0.2', 0);
    addTearDown(taken.close);
    final listener = await ServerSocket.bind(InternetAddress.loopbackIPv4, 0);
    addTearDown(listener.close);
    await expectLater(
        IoUringSocket.connect(InternetAddress.loopbackIPv4, listener.port,
            sourceAddress: '127.0.0.2', sourcePort: taken.port, worker: worker),
        throwsA(isA<SocketException>()
            .having((e) => e.osError?.errorCode, 'errno', 98)));
    expect(worker.stats().socketsOpen, 0);
  });

  test('a source that is not an IP address is an ArgumentError', () async {
    expect(
        () => TcpConnection.connect(InternetAddress.loopbackIPv4, 1,
            sourceAddress: 'localhost', worker: testWorker()),
        throwsArgumentError);
  });
}
