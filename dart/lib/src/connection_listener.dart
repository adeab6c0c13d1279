/// [ConnectionListener]: a listening stream socket (TCP or Unix) as a
/// stream of accepted connections.
library;

import 'dart:async';

import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/socket_handles.dart';
import 'stream_connection.dart';
import 'undelivered.dart';
import 'worker_core.dart';

/// After an accept error (say `EMFILE`), the listener waits this long before
/// accepting again, so a lasting error does not turn into a busy loop.
const Duration _acceptRetryDelay = Duration(milliseconds: 100);

/// A listening stream socket ([T] is `TcpConnection` or `UnixConnection`): a
/// single-subscription stream of accepted connections.
///
/// Accepting starts when the stream is listened to (one multishot accept
/// stays armed). Pausing the subscription stops accepting, so new
/// connections wait in the kernel's backlog; resuming accepts again.
/// Cancelling the subscription closes the listener, and destroys the
/// connections accepted that the listener never got (those that waited in
/// the paused subscription). Accept errors (such as
/// running out of file descriptors) are reported as error events and
/// accepting goes on.
abstract base class ConnectionListener<T extends StreamConnection>
    extends Stream<T> {
  /// For the transport's own listeners: [adopt] wraps an accepted socket.
  ConnectionListener.internal(WorkerCore core, SocketHandle socket,
      T Function(SocketHandle socket) adopt)
      : _acceptor = _Acceptor<T>(core, socket, adopt);

  final _Acceptor<T> _acceptor;

  /// Whether [close] was called (or the worker was closed).
  bool get isClosed => _acceptor.socket.isClosed;

  @override
  StreamSubscription<T> listen(void Function(T connection)? onData,
          {Function? onError, void Function()? onDone, bool? cancelOnError}) =>
      _acceptor.undelivered.delivering(_acceptor.controller.stream).listen(
          onData,
          onError: onError,
          onDone: onDone,
          cancelOnError: cancelOnError);

  /// Stops listening and closes the socket; the stream of connections ends.
  /// Connections already accepted stay open. Idempotent.
  Future<void> close() {
    _acceptor.close();
    return Future<void>.value();
  }
}

final class _Acceptor<T extends StreamConnection> implements CompletionHandler {
  _Acceptor(this.core, this.socket, this.adopt) {
    controller = StreamController<T>(
        onListen: _start,
        onPause: _pause,
        onResume: _resume,
        onCancel: _cancelled);
  }

  final WorkerCore core;
  final SocketHandle socket;
  final T Function(SocketHandle socket) adopt;
  late final StreamController<T> controller;

  /// Connections added to [controller] that its listener has not got yet: a
  /// cancel destroys them.
  final Undelivered<T> undelivered = Undelivered<T>();
  int _tag = 0;
  bool _cancelling = false;
  bool _done = false;
  Timer? _retry;

  void _start() {
    if (_done || _tag != 0) return;
    if (socket.isClosed) {
      if (core.isClosed) controller.addError(closedError('accept', 'worker'));
      _finish();
      return;
    }
    final tag = core.register(this);
    final rc = socket.accept(tag, IOT_OP_MULTISHOT, 0);
    if (rc < 0) {
      core.unregister(tag);
      controller.addError(core.error(rc, 'accept'));
      _finish();
      return;
    }
    _tag = tag;
    core.submitted();
  }

  void _pause() {
    _retry?.cancel();
    _retry = null;
    if (_tag != 0 && !_cancelling && core.cancel(_tag) == 0) {
      _cancelling = true;
    }
  }

  void _resume() {
    if (_tag == 0) _start();
  }

  /// The subscription's onCancel: closes the listener and destroys what it
  /// accepted for the listener that never got it.
  void _cancelled() {
    close();
    undelivered.disposeAll((connection) => connection.destroy());
  }

  /// Closes the listener.
  void close() {
    _retry?.cancel();
    _retry = null;
    socket.close();
    // An accept in flight completes with -ECANCELED and ends the stream then.
    if (_tag == 0) _finish();
  }

  void _finish() {
    if (_done) return;
    _done = true;
    _retry?.cancel();
    _retry = null;
    socket.close();
    unawaited(controller.close());
  }

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    if (result >= 0 && handle != 0) {
      final connection = adopt(SocketHandle(core.handle, handle));
      // Nobody listens once the subscription was cancelled (accepting starts
      // when it is listened to).
      if (_done || !controller.hasListener) {
        connection.destroy();
      } else {
        undelivered.add(connection);
        controller.add(connection);
      }
    }
    final more = flags & IOT_COMPLETION_MORE != 0;
    if (more) {
      if (result < 0 && !_done) controller.addError(core.error(result, 'accept'));
      return;
    }
    core.unregister(tag);
    _tag = 0;
    final wasCancelling = _cancelling;
    _cancelling = false;
    if (_done) return;
    if (socket.isClosed) {
      _finish();
      return;
    }
    if (result < 0 && !(wasCancelling && result == -Errno.ecanceled)) {
      controller.addError(core.error(result, 'accept'));
      _retry = Timer(_acceptRetryDelay, () {
        _retry = null;
        if (!controller.isPaused) _start();
      });
      return;
    }
    if (!controller.isPaused) _start();
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    _tag = 0;
    if (_done) return;
    if (core.failure != null && !socket.closeCalled) controller.addError(error);
    _finish();
  }
}
