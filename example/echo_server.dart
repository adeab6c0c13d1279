/// TCP echo server: one isolate per core, each with its own io_uring worker;
/// received buffers are sent back as they are (zero copy).
///
/// ```text
/// dart run example/echo_server.dart [--host 127.0.0.1] [--port 7777]
///     [--isolates 1] [--mode reuseport|acceptor]
/// ```
/// `--mode reuseport` (the default): every isolate has its own listener on
/// the shared port (`SO_REUSEPORT`) and the kernel spreads connections.
/// `--mode acceptor`: the main isolate alone accepts, and hands each
/// connection to the least loaded of `--isolates` server isolates (a
/// [WorkerPool]) through the rings (`TcpConnection.handOff`).
///
/// Prints `listening on HOST:PORT` once it accepts; stops cleanly on SIGINT
/// or SIGTERM.
library;

import 'dart:async';
import 'dart:io';
import 'dart:isolate';

import 'package:iouring_transport/iouring_transport.dart';

import 'support/cli.dart';

Future<void> main(List<String> arguments) async {
  final _Options options;
  try {
    options = _Options.parse(arguments);
  } on FormatException catch (error) {
    stderr
      ..writeln('echo_server: ${error.message}')
      ..writeln('usage: echo_server.dart [--host H] [--port P] [--isolates N] '
          '[--mode reuseport|acceptor]');
    exitCode = 64;
    return;
  }
  if (options.mode == 'acceptor') {
    await _acceptorMode(options);
  } else {
    await _reusePortMode(options);
  }
}

// ---------------------------------------------------------------- acceptor

/// One acceptor (this isolate's own worker) hands every connection to the
/// least loaded server isolate; on a signal, a stop request winds the
/// servers down.
Future<void> _acceptorMode(_Options options) async {
  final WorkerPool<int> pool;
  try {
    pool = await WorkerPool.spawn(options.isolates, _serveHandedOff,
        debugName: 'echo');
  } on Object catch (error) {
    stderr.writeln('echo_server: $error');
    exitCode = 1;
    return;
  }
  Worker? acceptor;
  TcpListener? listener;
  try {
    final worker = acceptor = Worker();
    listener = await TcpListener.bind(options.host, options.port,
        worker: worker);
  } on TransportException catch (error) {
    stderr.writeln('echo_server: $error');
    exitCode = 1;
  }
  if (listener != null) {
    listener.listen((connection) => unawaited(_handOff(connection, pool)),
        onError: (Object error) => stderr.writeln('echo_server: $error'));
    stdout.writeln('listening on ${printableHost(options.host)}:${listener.port}');
    await signalled();
    await listener.close();
  }
  // Every worker of the process gets the request: the servers stop (taking
  // the hand-offs still on their way), then close.
  Transport.requestStop();
  try {
    final served = await pool.done;
    stderr.writeln('echo_server: served ${served.join(' + ')} connections');
  } on Object catch (error) {
    stderr.writeln('echo_server: $error');
    exitCode = 1;
  }
  await acceptor?.close();
}

/// Hands [connection] to the least loaded server; if that one is gone, to
/// the next; closes it when none is left.
Future<void> _handOff(TcpConnection connection, WorkerPool<int> pool) async {
  var current = connection;
  try {
    for (var attempt = 0; attempt < pool.workerIds.length; attempt++) {
      try {
        await current.handOff(pool.leastLoaded());
        return;
      } on HandOffException catch (error) {
        final back = error.connection;
        if (back == null) return; // lost on the way (closed natively)
        current = back;
      }
    }
  } on WorkerGoneException {
    // Every server stopped.
  } on Object catch (error) {
    stderr.writeln('echo_server: hand-off: $error');
  }
  current.destroy();
}

/// A server isolate: echoes the connections handed to its worker until a
/// stop request; returns how many it served.
Future<int> _serveHandedOff(WorkerContext context) async {
  final worker = context.worker;
  var served = 0;
  worker.handedOffConnections.listen((connection) {
    served++;
    _echo(connection);
  });
  await worker.stopRequests.first;
  // Refuse new hand-offs; those already on their way still arrive.
  await worker.stop();
  return served;
}

// ---------------------------------------------------------------- reuseport

/// Every isolate listens on the shared port (`SO_REUSEPORT`).
Future<void> _reusePortMode(_Options options) async {
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
    stdout.writeln('listening on ${printableHost(options.host)}:$port');
    await signalled();
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
  _Options(this.host, this.port, this.isolates, this.mode);

  factory _Options.parse(List<String> arguments) {
    var host = '127.0.0.1';
    var port = 7777;
    var isolates = 1;
    var mode = 'reuseport';
    final values = parseOptions(arguments, const {'host', 'port', 'isolates', 'mode'});
    for (final MapEntry(:key, :value) in values.entries) {
      switch (key) {
        case 'host':
          host = value;
        case 'port':
          port = _intFlag(key, value, 0, 65535);
        case 'isolates':
          isolates = _intFlag(key, value, 1, 1024);
        case 'mode':
          if (value != 'reuseport' && value != 'acceptor') {
            throw const FormatException(
                '--mode must be reuseport or acceptor');
          }
          mode = value;
        default:
          throw FormatException('unknown option --$key');
      }
    }
    return _Options(host, port, isolates, mode);
  }

  final String host;
  final int port;
  final int isolates;

  /// `reuseport` or `acceptor`.
  final String mode;
}

int _intFlag(String name, String value, int min, int max) {
  final parsed = int.tryParse(value);
  if (parsed == null || parsed < min || parsed > max) {
    throw FormatException('--$name must be a number in $min..$max');
  }
  return parsed;
}
