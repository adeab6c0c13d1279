import 'dart:io';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// What [future] fails with.
Future<Object> _failure(Future<Object?> future) async {
  try {
    await future.bounded;
  } on Object catch (error) {
    return error;
  }
  fail('expected $future to fail');
}

void main() {
  setUpTransport();

  late Directory dir;
  setUp(() => dir = Directory.systemTemp.createTempSync('iot_errors_'));
  tearDown(() => dir.deleteSync(recursive: true));

  test('transport errors are IOExceptions, as dart:io handlers expect',
      () async {
    final worker = testWorker();
    final error = await _failure(
        TcpConnection.connect(InternetAddress.loopbackIPv4, 1, worker: worker));
    expect(error, isA<IOException>());
    expect(error, isA<TransportException>());
  });

  test('file errors name the path', () async {
    final worker = testWorker();
    final missing = '${dir.path}/missing/file';
    for (final attempt in [
      IoFile.open(missing, worker: worker),
      IoFile.statPath(missing, worker: worker),
    ]) {
      final error = await _failure(attempt) as TransportException;
      expect(error.path, missing);
      expect(error.errno, 2);
      expect(error.toString(), contains("'$missing'"));
    }
  });

  test('Unix socket errors name the path', () async {
    final worker = testWorker();
    final missing = '${dir.path}/no.sock';
    final connect = await _failure(UnixConnection.connect(missing, worker: worker))
        as TransportException;
    expect(connect.path, missing);
    expect(connect.errno, 2);
    final taken = File('${dir.path}/plain')..writeAsStringSync('x');
    final bind = await _failure(UnixListener.bind(taken.path, worker: worker))
        as TransportException;
    expect(bind.path, taken.path);
    expect(bind.toString(), contains(taken.path));
  });
}
