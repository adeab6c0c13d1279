/// What UDP and Unix datagram sockets share: the receive stream (with each
/// datagram's sender and truncation), sends with send-buffer back-pressure,
/// socket options and the drop counter.
///
/// A datagram larger than one native buffer travels in a *span*: consecutive
/// buffers the native pool keeps for datagrams up to the protocol maximum.
/// Received ones arrive whole in a span (copied out as one `Uint8List`, as a
/// small one is from its buffer); a large send takes a free span instead of
/// a send buffer, and waits for one like a small send waits for a buffer.
library;

import 'dart:async';
import 'dart:collection';
import 'dart:ffi';
import 'dart:typed_data';

import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/socket_handles.dart';
import 'futures.dart';
import 'receiver.dart';
import 'timeouts.dart';
import 'worker_core.dart';

/// `EMSGSIZE`: a datagram larger than the protocol (or the worker) allows.
const int emsgsize = 90;

/// The error for a datagram of [length] bytes that [limit] refuses, in the
/// words of [operation].
TransportException datagramTooLarge(int length, String limit) =>
    TransportException(
        'a datagram of $length bytes is larger than $limit allows',
        operation: 'send',
        code: -emsgsize);

/// Where one datagram goes: the native send call for a filled buffer.
abstract interface class DatagramTarget {
  /// Queues the send of [length] bytes at the start of host buffer
  /// [bufferId] on [socket] with [tag]; returns the native call's result.
  int submit(WorkerCore core, SocketHandle socket, int bufferId, int length,
      int tag, int timeoutMs);
}

/// Makes the stream event for one received datagram: [data] is a copy of its
/// payload, [bufferId] the buffer it arrived in (still held, so the sender
/// can be read from it with `iot_datagram_sender`), [truncated] whether the
/// kernel cut it to fit the buffer.
typedef DatagramEvent<T> = T Function(
    Uint8List data, int bufferId, bool truncated);

/// The machinery of one datagram socket, owned by a `UdpSocket` or a
/// `UnixDatagramSocket`.
final class DatagramChannel<T> implements SendBufferWaiter {
  DatagramChannel(this.core, this.socket, DatagramEvent<T> event)
      : receiver = _DatagramReceiver<T>(core, socket, event);

  final WorkerCore core;
  final SocketHandle socket;

  /// The receive stream.
  final Receiver<T> receiver;

  /// Sends waiting for a send buffer, in call order.
  final Queue<_DatagramSend> _queue = Queue<_DatagramSend>();
  bool _waiting = false;
  Duration? _readTimeout;

  Stream<T> get stream => receiver;

  /// See `UdpSocket.readTimeout`.
  Duration? get readTimeout => _readTimeout;

  set readTimeout(Duration? value) {
    timeoutMillis(value, 'readTimeout');
    _readTimeout = value;
    receiver.readTimeout = value;
  }

  bool get isClosed => socket.isClosed;

  /// Sends [data] as one datagram to [target]; completes when the kernel
  /// took it.
  Future<void> send(List<int> data, DatagramTarget target, Duration? timeout) {
    final timeoutMs = timeoutMillis(timeout, 'timeout');
    if (socket.isClosed) {
      return failedFuture(closedError('send', 'socket'));
    }
    if (core.sendBufferCount == 0) {
      return failedFuture(StateError(
          'the worker has no send buffers (WorkerConfig.sendBufferCount)'));
    }
    final send = _DatagramSend(this, data, target, timeout, timeoutMs);
    _queue.add(send);
    if (!_waiting) _pump();
    return handledFuture(send.completer.future);
  }

  void _pump() {
    while (_queue.isNotEmpty) {
      if (socket.isClosed) {
        _failQueued(core.isClosed
            ? closedError('send', 'worker')
            : closedError('send', 'socket'));
        return;
      }
      final length = _queue.first.data.length;
      final id = _acquire(length);
      if (id == -emsgsize) {
        // No span holds it (or the buffers are too small to make spans of).
        _queue.removeFirst().fail(datagramTooLarge(
            length,
            'a worker with ${core.buffers.bufferSize}-byte buffers '
            '(WorkerConfig.bufferSize)'));
        continue;
      }
      if (id < 0) {
        _waiting = id == -Errno.enobufs;
        if (!_waiting) _failQueued(core.error(id, 'send'));
        return;
      }
      _queue.removeFirst().start(id);
    }
  }

  /// A send buffer for [length] bytes, or a span when they need more; a
  /// negative native result when there is none (`-ENOBUFS`: this channel is
  /// woken when one may be free).
  int _acquire(int length) {
    if (length <= core.buffers.bufferSize) return acquireSendBuffer(core, this);
    final id = core.buffers.acquireSpan(length);
    if (id == -Errno.enobufs) core.waitForSendBuffer(this);
    return id;
  }

  void _failQueued(TransportException error) {
    for (final send in _queue) {
      send.fail(error);
    }
    _queue.clear();
  }

  @override
  void onSendBufferAvailable() {
    _waiting = false;
    _pump();
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    _waiting = false;
    _failQueued(error);
  }

  /// Reads socket option [option] (`IOT_OPTION_*`).
  int getOption(int option, String operation) {
    if (socket.isClosed) throw closedError(operation, 'socket');
    final out = core.scratchFor(operation).value;
    final rc = socket.getOption(option);
    if (rc < 0) throw core.error(rc, operation);
    return out.value;
  }

  /// Sets socket option [option] (`IOT_OPTION_*`) to [value].
  void setOption(int option, int value, String operation) {
    if (socket.isClosed) throw closedError(operation, 'socket');
    RangeError.checkValueInInterval(value, 0, 0xffffffff, operation);
    final rc = socket.setOption(option, value);
    if (rc < 0) throw core.error(rc, operation);
  }

  /// Datagrams the kernel dropped because the receive queue was full.
  int get dropped {
    if (socket.isClosed) throw closedError('dropped', 'socket');
    final out = core.scratchFor('dropped').value;
    final rc = socket.dropped();
    if (rc < 0) throw core.error(rc, 'dropped');
    return out.value;
  }

  /// The local address of the socket as text, and its port (0 for Unix).
  ({String address, int port}) localAddress(String operation) {
    if (socket.isClosed) throw closedError(operation, 'socket');
    return core.socketAddress(socket, IOT_ADDRESS_LOCAL, operation);
  }

  /// The sender of the datagram in held buffer [bufferId] as text (an IP, or
  /// a Unix path: `@name` for abstract names, empty for an unbound sender),
  /// and its port (0 for Unix).
  ({String address, int port}) sender(int bufferId) {
    final scratch = core.scratchFor('recv');
    final rc = core.handle.datagramSender(bufferId);
    if (rc < 0) throw core.error(rc, 'recv');
    return (address: scratch.read(rc), port: scratch.port.value);
  }

  /// Closes the socket: sends in flight fail with a
  /// [TransportClosedException], the receive stream ends. Idempotent.
  void close() {
    socket.close();
    _failQueued(closedError('send', 'socket'));
    receiver.onClosed();
  }
}

/// The receive loop of a datagram socket: each event is made by the owner's
/// [DatagramEvent] from a copy of the datagram.
final class _DatagramReceiver<T> extends Receiver<T> {
  _DatagramReceiver(WorkerCore core, SocketHandle socket, this._event)
      : super(core, socket, null, datagram: true);

  final DatagramEvent<T> _event;

  @override
  T convert(int bufferId, int offset, int length, int flags) {
    final core = this.core;
    try {
      final data = core.buffers.copy(bufferId, offset, length);
      return _event(data, bufferId, flags & IOT_COMPLETION_TRUNCATED != 0);
    } finally {
      core.releaseBuffer(bufferId);
    }
  }
}

/// One datagram send: its own tag, as datagram sends complete in any order.
final class _DatagramSend implements CompletionHandler {
  _DatagramSend(
      this.channel, this.data, this.target, this.timeout, this.timeoutMs);

  final DatagramChannel<Object?> channel;
  final List<int> data;
  final DatagramTarget target;
  final Duration? timeout;
  final int timeoutMs;
  final Completer<void> completer = Completer<void>();

  void fail(Object error) {
    if (!completer.isCompleted) completer.completeError(error);
  }

  /// Fills host buffer [bufferId] and queues the send.
  void start(int bufferId) {
    final core = channel.core;
    final socket = channel.socket;
    core.buffers.fill(bufferId, data, 0, data.length);
    final tag = core.register(this);
    final int rc;
    try {
      rc = target.submit(core, socket, bufferId, data.length, tag, timeoutMs);
    } catch (error) {
      core.unregister(tag);
      core.releaseBuffer(bufferId);
      fail(error);
      return;
    }
    if (rc < 0) {
      // The buffer is still ours when the send was refused.
      core.unregister(tag);
      core.releaseBuffer(bufferId);
      fail(core.error(rc, 'send', closedLocally: socket.isClosed));
      return;
    }
    core.submitted();
  }

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    final core = channel.core;
    core.unregister(tag);
    if (result < 0) {
      fail(core.error(result, 'send',
          timeout: timeout, closedLocally: channel.socket.isClosed));
    } else if (!completer.isCompleted) {
      completer.complete();
    }
  }

  @override
  void onWorkerClosed(TransportClosedException error) => fail(error);
}
