/// TCP echo server: `--isolates` serving isolates (default 1), each with its
/// own io_uring worker; received buffers are sent back as they are (zero
/// copy).
///
/// ```text
/// dart run example/echo_server.dart [--host 127.0.0.1] [--port 7777]
///     [--isolates 1] [--mode reuseport|acceptor]
/// ```
/// `--mode reuseport` (the default): every isolate (this one and
/// `--isolates` - 1 spawned) has its own listener on the shared port
/// (`SO_REUSEPORT`) and the kernel spreads connections.
/// `--mode acceptor`: the main isolate alone accepts, and hands each
/// connection to the least loaded of `--isolates` server isolates (a
/// [WorkerPool]) through the rings (`TcpConnection.handOff`).
///
/// Prints `listening on HOST:PORT` once it accepts (`--port 0`: the port the
/// system chose); stops cleanly on SIGINT or SIGTERM (exit code 0). In
/// acceptor mode it then prints how many connections each server isolate
/// served.
library;

import 'dart:async';
import 'dart:io';
import 'dart:isolate';

import 'package:iouring_transport/iouring_transport.dart';

import 'support/cli.dart';

const String _usage = 'echo_server.dart [--host H] [--port P] [--isolates N] '
    '[--mode reuseport|acceptor]';

Future<void> main(List<String> arguments) async {
  final _Options options;
  try {
    options = _Options.parse(arguments);
  } on FormatException catch (error) {
    usageError('echo_server', error.message, _usage);
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
    await listeningUntilSignalled(
        '${printableHost(options.host)}:${listener.port}');
    await listener.close();
  }
  try {
    // Every worker of the process gets the request: the servers stop
    // (taking the hand-offs still on their way), then close.
    Transport.requestStop();
    final served = await pool.done;
    // A report, not an error: stdout, so that a clean stop leaves stderr
    // empty.
    if (listener != null) {
      stdout.writeln('served ${served.join(' + ')} connections');
    }
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

/// Every isolate listens on the shared port (`SO_REUSEPORT`); the first one
/// binds `--port` (0: the system picks), the others the port it got.
Future<void> _reusePortMode(_Options options) async {
  // Each server replies on this port once (listening or failed), and its
  // end arrives here too (null), also when a spawned one dies of an uncaught
  // error.
  final replies = ReceivePort();
  final events = StreamIterator<Object?>(replies);
  final stops = <SendPort>[];
  var running = 0;
  var port = options.port;
  String? failure;
  for (var i = 0; i < options.isolates && failure == null; i++) {
    final message = <Object?>[replies.sendPort, options.host, port];
    if (i == 0) {
      // This isolate is the first server, so that one server is one isolate
      // (and one worker); its end is reported like a spawned one's exit.
      unawaited(_serve(message)
          .catchError((Object error) => stderr.writeln('echo_server: $error'))
          .whenComplete(() => replies.sendPort.send(null)));
    } else {
      await Isolate.spawn(_serve, message,
          onExit: replies.sendPort, debugName: 'echo-$i');
    }
    running++;
    await events.moveNext(); // the port stays open: always true
    switch (events.current) {
      case [final SendPort stop, final int bound]:
        stops.add(stop);
        port = bound;
      case final String error:
        failure = error;
      default: // exited before replying (its error is on stderr)
        running--;
        failure = 'a server isolate exited before listening';
    }
  }

  if (failure == null) {
    await listeningUntilSignalled('${printableHost(options.host)}:$port');
  } else {
    stderr.writeln('echo_server: $failure');
    exitCode = 1;
  }

  for (final isolate in stops) {
    isolate.send('stop');
  }
  // Wait for every server to end; an end is the only null message.
  while (running > 0 && await events.moveNext()) {
    if (events.current == null) running--;
  }
  await events.cancel();
}

/// One server (this isolate or a spawned one): replies `[commands port, bound
/// port]` (or an error text), serves until it gets any command, then closes.
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
    final values =
        parseOptions(arguments, const {'host', 'port', 'isolates', 'mode'});
    final mode = values['mode'] ?? 'reuseport';
    if (mode != 'reuseport' && mode != 'acceptor') {
      throw const FormatException('--mode must be reuseport or acceptor');
    }
    return _Options(
        values['host'] ?? '127.0.0.1',
        numberOption(values, 'port', fallback: 7777, min: 0, max: 65535),
        numberOption(values, 'isolates', fallback: 1, min: 1, max: 1024),
        mode);
  }

  final String host;
  final int port;
  final int isolates;

  /// `reuseport` or `acceptor`.
  final String mode;
}
