/// Handing connections between workers: [TcpConnectionHandOff.handOff]
/// sends one, [WorkerHandOffs.handedOffConnections] receives them, and a
/// [HandOffException] says what went wrong. The sockets travel through the
/// worker's messaging (`messenger.dart`).
library;

import 'exception.dart';
import 'ffi/bindings.dart';
import 'futures.dart';
import 'messenger.dart';
import 'tcp.dart';
import 'worker.dart';
import 'worker_core.dart';

/// A hand-off ([TcpConnectionHandOff.handOff]) failed.
///
/// [connection] is the connection, usable on this worker again (the same
/// object when the hand-off was refused at once, a new one when the socket
/// came back from a target that went away), or null when the socket was lost
/// on the way (the target was freed with the hand-off unprocessed: the
/// socket was closed). [isWorkerGone] tells whether the target was unknown,
/// closed or stopped; the caller may hand [connection] to another worker.
final class HandOffException extends TransportException {
  HandOffException(super.message,
      {super.operation, super.code, super.nativeMessage, this.connection});

  /// The connection, back on this worker, or null when it was lost.
  final TcpConnection? connection;

  /// Whether the target worker was unknown, closed or stopped
  /// (`IOT_E_WORKER_GONE`).
  bool get isWorkerGone => code == IOT_E_WORKER_GONE;

  @override
  String toString() {
    final c = code;
    return 'HandOffException: ${operation ?? 'hand off'}: $message'
        '${c == null ? '' : ' (code $c)'}'
        '${connection == null ? '; the connection was lost' : ''}';
  }
}

/// Hands a connection over to another worker.
extension TcpConnectionHandOff on TcpConnection {
  /// Hands this connection to worker [toWorker] (a worker id, usually of
  /// another isolate), which gets it on its [Worker.handedOffConnections]
  /// stream and serves it from then on. From this call on, this object is
  /// closed here (as after [TcpConnection.destroy]); nothing is sent to the
  /// peer.
  ///
  /// The connection must be idle: hand it over straight from the accept,
  /// before listening to it (or taking [TcpConnection.payloads]) and with no
  /// write queued or in flight. A busy connection throws a [StateError]; a
  /// closed one gives a failed future with a [TransportClosedException].
  ///
  /// Completes when the kernel posted the hand-off into the target's queue.
  /// Fails with a [HandOffException] when the hand-off was refused or came
  /// back (the target is gone, say); its `connection` is then usable here
  /// again.
  Future<void> handOff(int toWorker) {
    final found = tcpConnectionForHandOff(this);
    if (found == null) {
      return failedFuture(closedError('hand off', 'connection'));
    }
    final core = found.core;
    return Messenger.of(core).handOff(found.socket, toWorker,
        handedOver: () => tcpConnectionHandedOff(this),
        failure: (code, back) => _handOffError(
            core,
            code,
            back == null
                ? null
                : identical(back, found.socket)
                    ? this
                    : adoptTcpConnection(core, back)));
  }
}

/// Connections handed over to a worker.
extension WorkerHandOffs on Worker {
  /// Connections other workers handed over to this one
  /// (`TcpConnection.handOff`), ready to read and write here, like the
  /// connections a [TcpListener] yields. Stream semantics as for
  /// [Worker.messages]; a connection that arrives after the subscription was
  /// cancelled is closed.
  Stream<TcpConnection> get handedOffConnections {
    final core = workerCore(this);
    return Messenger.of(core)
        .handedOffSockets
        .map((socket) => adoptTcpConnection(core, socket));
  }
}

HandOffException _handOffError(
    WorkerCore core, int code, TcpConnection? connection) {
  final text = nativeErrorMessage(core.bindings, code);
  return HandOffException(text,
      operation: 'hand off',
      code: code,
      nativeMessage: text,
      connection: connection);
}
