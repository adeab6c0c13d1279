/// The receive loop shared by stream connections (TCP, Unix) and datagram
/// sockets (UDP, Unix): one native receive kept armed while the stream is
/// listened to and not paused.
library;

import 'dart:async';
import 'dart:convert';

import 'buffers.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/socket_handles.dart';
import 'ffi/tls_handles.dart';
import 'single_subscription.dart';
import 'timeouts.dart';
import 'worker_core.dart';

/// Datagram receive errors that concern one datagram exchange, not the socket
/// (an ICMP error from a peer, reported by the next receive on a connected
/// socket): the stream gets an error event and receiving goes on.
const int _ehostunreach = 113;
const int _enetunreach = 101;

bool _isTransientDatagramError(int code) =>
    code == -Errno.econnrefused ||
    code == -_ehostunreach ||
    code == -_enetunreach;

/// Receives on one socket into a single-subscription stream of [T].
///
/// Listening starts receiving. Without a read timeout one multishot receive
/// stays armed; with one, each receive is a one-shot receive bounded by it.
/// Pausing cancels the receive, so nothing piles up in Dart and the kernel's
/// queue (and, for a stream, the peer) takes the back-pressure; resuming
/// receives again. A stream's multishot receive is cancelled lazily: it stays
/// armed until data arrives while paused (that data waits in the paused
/// stream), so a pause and resume with nothing received in between, as an
/// HTTP server makes around every request, costs no native call. For a
/// stream socket a result of 0 is the end of stream; for a datagram socket it
/// is an empty datagram.
///
/// Events reach the listener synchronously from the worker's turn that
/// dispatches the completion (no microtask per received chunk; what the
/// listener writes goes out with that turn's flush); an event raised by a
/// call of the program's (listening, resuming, closing the socket, closing
/// the worker) goes out in a microtask, so the listener is never called back
/// from inside that call. A paused subscription buffers events as usual.
///
/// A subclass turns each received buffer into an event ([convert]).
///
/// The receiver is its own stream and the subscription of its one listener
/// (see [SingleSubscriptionStream]: no `StreamController` per connection).
abstract base class Receiver<T> extends SingleSubscriptionStream<T>
    implements CompletionHandler, SendBufferWaiter {
  /// The receive loop of a stream socket, or of a datagram socket when
  /// [datagram]; its owner keeps [readTimeout] up to date.
  Receiver(this._core, this._socket, this.readTimeout,
      {required bool datagram})
      : _datagram = datagram;

  final WorkerCore _core;
  final SocketHandle _socket;

  /// The worker, for subclasses.
  WorkerCore get core => _core;

  final bool _datagram;

  /// Bounds each wait for data from the next receive on (null: none, one
  /// multishot receive); the owner sets it.
  Duration? readTimeout;

  /// Turns received buffer `bufferId` (`length` bytes from `offset`, the
  /// completion's `flags`) into an event. It owns the buffer from then on:
  /// it copies and releases it, or hands it out as a payload.
  T convert(int bufferId, int offset, int length, int flags);

  @override
  void onListened() => _start();

  @override
  void onInputPaused() => _pause();

  @override
  void onInputResumed() => _resume();

  @override
  void onCancelled() => _cancel();

  // ---------------------------------------------------- the receive loop

  /// The tag of the receive in flight (0: none).
  int _tag = 0;

  /// The timeout of the receive in flight.
  Duration? _timeout;

  /// The receive in flight was cancelled to pause.
  bool _cancelling = false;

  /// A one-shot datagram receive waits for a free send buffer.
  bool _waitingForBuffer = false;

  /// No more events: ended, failed or the subscription was cancelled.
  bool _done = false;

  /// A completion dispatched by the worker's turn is being handled: events
  /// go to the listener at once (see [_event]).
  bool _synchronous = false;

  /// Sends an event to the stream: at once while [_synchronous], else in a
  /// microtask (in order with the events sent before it).
  void _event(void Function() send) {
    if (_synchronous) {
      send();
    } else {
      scheduleMicrotask(send);
    }
  }

  void _start() {
    if (_done || _tag != 0 || _waitingForBuffer) return;
    if (_socket.isClosed) {
      if (_core.isClosed) {
        _fail(closedError('recv', 'worker'));
      } else {
        _finish();
      }
      return;
    }
    final timeout = readTimeout;
    final timeoutMs = timeoutMillis(timeout, 'readTimeout');
    final flags = timeoutMs > 0 ? 0 : IOT_OP_MULTISHOT;
    final tag = _core.register(this);
    final rc = _datagram
        ? _socket.recvDatagram(tag, flags, timeoutMs)
        : _socket.recv(tag, flags, timeoutMs);
    if (rc < 0) {
      _core.unregister(tag);
      if (_datagram && rc == -Errno.enobufs) {
        // A one-shot datagram receive lands in a send buffer and takes it
        // when queued: wait until one is free.
        _waitingForBuffer = true;
        _core.waitForSendBuffer(this);
        return;
      }
      _fail(_core.error(rc, 'recv'));
      return;
    }
    _tag = tag;
    _timeout = timeout;
    _core.submitted();
  }

  void _pause() {
    // A stream's multishot receive (no timeout) is stopped by the first data
    // that arrives while paused (onCompletion); any other at once.
    if (!_datagram && _timeout == null) return;
    _stop();
  }

  void _stop() {
    if (_tag != 0 && !_cancelling && _core.cancel(_tag) == 0) {
      _cancelling = true;
    }
  }

  void _resume() {
    if (_tag == 0) _start();
  }

  void _cancel() {
    _done = true;
    _stop();
  }

  /// Why the socket's TLS session failed, when [code] is a TLS failure (the
  /// code alone says only which kind).
  String? _tlsFailure(int code) {
    if (code > IOT_E_TLS_CONFIG || code < IOT_E_TLS_STATE) return null;
    if (_socket.isClosed) return null;
    final text = _socket.tlsErrorText();
    if (text == null || text.isEmpty) return null;
    return utf8.decode(text, allowMalformed: true);
  }

  void _fail(TransportException error) {
    if (_done) return;
    _event(() => addErrorEvent(error));
    _finish();
  }

  void _finish() {
    if (_done) return;
    _done = true;
    _event(closeEvents);
  }

  /// The socket was closed locally.
  void onClosed() {
    // A receive in flight completes with -ECANCELED and ends the stream then.
    if (_tag == 0) _finish();
  }

  @override
  void onSendBufferAvailable() {
    _waitingForBuffer = false;
    if (!_done && !isInputPaused) _start();
  }

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    _synchronous = _core.dispatching;
    try {
      _complete(tag, result, flags, bufferId, offset);
    } finally {
      _synchronous = false;
    }
  }

  void _complete(int tag, int result, int flags, int bufferId, int offset) {
    // Before the delivery: a listener that pauses when it gets this data
    // keeps the receive armed (see _pause).
    final arrivedPaused = isInputPaused;
    if (flags & IOT_COMPLETION_BUFFER != 0) {
      final deliver = !_done &&
          !_socket.isClosed &&
          (result > 0 || (_datagram && result == 0));
      if (deliver) {
        _deliver(bufferId, offset, result, flags);
      } else {
        _core.releaseBuffer(bufferId, heldAt(flags, offset));
      }
    }
    if (flags & IOT_COMPLETION_MORE != 0) {
      // Data reached a paused stream: now stop receiving (see _pause).
      if (arrivedPaused) _stop();
      return;
    }
    _core.unregister(tag);
    _tag = 0;
    final wasCancelling = _cancelling;
    _cancelling = false;
    final timeout = _timeout;
    _timeout = null;
    if (_done) return;
    if (result == 0 && !_datagram) {
      // End of stream (the header: `IOT_KIND_RECV` with result 0), whether or
      // not the kernel named a buffer (released above). Receiving again would
      // only get 0 again, at once, forever.
      _finish();
      return;
    }
    if (result < 0) {
      if (_socket.isClosed) {
        if (_core.isClosed) {
          _fail(closedError('recv', 'worker'));
        } else {
          _finish(); // closed locally
        }
      } else if (wasCancelling &&
          (result == -Errno.ecanceled || result == -Errno.enobufs)) {
        // Cancelled to pause (a receive cancelled while the pool was empty
        // may report -ENOBUFS).
        if (!isInputPaused) _start();
      } else if (_datagram && _isTransientDatagramError(result)) {
        final error = _core.error(result, 'recv');
        _event(() => addErrorEvent(error));
        if (!isInputPaused) _start();
      } else {
        _fail(_core.error(result, 'recv',
            timeout: timeout, reason: _tlsFailure(result)));
      }
      return;
    }
    // Data (or an empty datagram) on a final completion: this receive ended
    // (a one-shot receive, or one cancelled to pause). Receive again unless
    // paused.
    if (!isInputPaused) _start();
  }

  void _deliver(int bufferId, int offset, int length, int flags) {
    final T event;
    try {
      event = convert(bufferId, offset, length, flags);
    } catch (error, stack) {
      // The conversion owned the buffer; the receive goes on.
      _event(() => addErrorEvent(error, stack));
      return;
    }
    _event(() => addEvent(event));
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    _tag = 0;
    _waitingForBuffer = false;
    if (_core.failure != null && !_socket.closeCalled) {
      _fail(error);
    } else {
      _finish();
    }
  }
}
