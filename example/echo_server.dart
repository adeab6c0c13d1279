/// TCP echo server: one isolate per core, each with its own io_uring worker
/// and its own listener on the shared port (`SO_REUSEPORT`); received
/// buffers are sent back as they are (zero copy).
///
/// ```text
/// dart run example/echo_server.dart [--host 127.0.0.1] [--port 7777] [--isolates 1]
/// ```
/// Prints `listening on HOST:PORT` once every isolate accepts; stops cleanly
/// on SIGINT or SIGTERM.
library;

import 'dart:async';
import 'dart:io';
import 'dart:isolate';

import 'package:iouring_transport/iouring_transport.dart';

Future<void> main(List<String> arguments) async {
  final _Options options;
  try {
    options = _Options.parse(arguments);
  } on FormatException catch (error) {
    stderr
      ..writeln('echo_server: ${error.message}')
      ..writeln('usage: echo_server.dart [--host H] [--port P] [--isolates N]');
    exitCode = 64;
    return;
  }

  final replies = ReceivePort();
  final events = StreamIterator<Object?>(replies);
  final stops = <SendPort>[];
  var port = options.port;
  String? failure;
  for (var i = 0; i < options.isolates && failure == null; i++) {
    await Isolate.spawn(_serve, <Object?>[replies.sendPort, options.host, port],
        debugName: 'echo-$i');
    if (!await events.moveNext()) break;
    final reply = events.current;
    if (reply is List<Object?>) {
      stops.add(reply[0] as SendPort);
      port = reply[1] as int;
    } else {
      failure = '$reply';
    }
  }

  if (failure == null) {
    final host = options.host.contains(':') ? '[${options.host}]' : options.host;
    stdout.writeln('listening on $host:$port');
    final stop = Completer<void>();
    void onSignal(ProcessSignal _) {
      if (!stop.isCompleted) stop.complete();
    }

    final signals = [
      ProcessSignal.sigint.watch().listen(onSignal),
      ProcessSignal.sigterm.watch().listen(onSignal),
    ];
    await stop.future;
    for (final subscription in signals) {
      await subscription.cancel();
    }
  } else {
    stderr.writeln('echo_server: $failure');
    exitCode = 1;
  }

  for (final isolate in stops) {
    isolate.send('stop');
  }
  for (var i = 0; i < stops.length; i++) {
    if (!await events.moveNext()) break;
  }
  await events.cancel();
}

/// One serving isolate: replies `[commands port, bound port]` (or an error
/// text), serves until it gets any command, then replies `stopped`.
Future<void> _serve(List<Object?> message) async {
  final reply = message[0] as SendPort;
  final host = message[1] as String;
  final port = message[2] as int;
  final Worker worker;
  try {
    worker = Worker();
  } on TransportException catch (error) {
    reply.send('$error');
    return;
  }
  final TcpListener listener;
  try {
    listener =
        await TcpListener.bind(host, port, reusePort: true, worker: worker);
  } on TransportException catch (error) {
    await worker.close();
    reply.send('$error');
    return;
  }
  listener.listen(_echo,
      onError: (Object error) => stderr.writeln('echo_server: $error'));
  final commands = ReceivePort();
  reply.send(<Object?>[commands.sendPort, listener.port]);
  await commands.first;
  await listener.close();
  await worker.close();
  reply.send('stopped');
}

void _echo(TcpConnection connection) {
  connection.payloads.listen(
      (payload) => unawaited(connection.writePayload(payload)),
      onError: (Object _) => connection.destroy(),
      onDone: () => unawaited(connection.close()));
}

final class _Options {
  _Options(this.host, this.port, this.isolates);

  factory _Options.parse(List<String> arguments) {
    var host = '127.0.0.1';
    var port = 7777;
    var isolates = 1;
    final values = _flagValues(arguments);
    for (final MapEntry(:key, :value) in values.entries) {
      switch (key) {
        case 'host':
          host = value;
        case 'port':
          port = _intFlag(key, value, 0, 65535);
        case 'isolates':
          isolates = _intFlag(key, value, 1, 1024);
        default:
          throw FormatException('unknown option --$key');
      }
    }
    return _Options(host, port, isolates);
  }

  final String host;
  final int port;
  final int isolates;
}

/// `--name value` and `--name=value` pairs.
Map<String, String> _flagValues(List<String> arguments) {
  final values = <String, String>{};
  for (var i = 0; i < arguments.length; i++) {
    final argument = arguments[i];
    if (!argument.startsWith('--')) {
      throw FormatException('unexpected argument $argument');
    }
    final equals = argument.indexOf('=');
    if (equals > 0) {
      values[argument.substring(2, equals)] = argument.substring(equals + 1);
    } else if (i + 1 < arguments.length) {
      values[argument.substring(2)] = arguments[++i];
    } else {
      throw FormatException('$argument needs a value');
    }
  }
  return values;
}

int _intFlag(String name, String value, int min, int max) {
  final parsed = int.tryParse(value);
  if (parsed == null || parsed < min || parsed > max) {
    throw FormatException('--$name must be a number in $min..$max');
  }
  return parsed;
}
