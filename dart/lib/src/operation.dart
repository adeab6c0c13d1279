/// Pieces every transport library shares: timeouts in the native unit,
/// operations with a single completion, and native text (paths, socket
/// addresses) longer than the worker's own scratch area holds.
library;

import 'dart:async';
import 'dart:convert';
import 'dart:ffi';
import 'dart:io' show InternetAddress;
import 'dart:typed_data';

import 'package:ffi/ffi.dart';

import 'address.dart';
import 'exception.dart';
import 'ffi/bindings.dart';
import 'ffi/handles.dart';
import 'futures.dart';
import 'worker.dart';
import 'worker_core.dart';

/// [timeout] in whole milliseconds (rounded up) for the native calls; 0 for
/// none. Throws a [RangeError] for a timeout below 1 ms or above 2^32 - 1 ms.
int timeoutMillis(Duration? timeout, String name) {
  if (timeout == null) return 0;
  final ms = (timeout.inMicroseconds + 999) ~/ 1000;
  if (ms < 1 || ms > 0xffffffff) {
    throw RangeError.range(ms, 1, 0xffffffff, name, 'timeout in milliseconds');
  }
  return ms;
}

/// One native operation with a single completion (a connect, an open, a
/// sync, a stat): [future] completes with what [convert] makes of the
/// completion's result and handle, or fails with the operation's error.
final class SingleOp<T> implements CompletionHandler {
  SingleOp(this.core, this.operation, this.convert,
      {this.timeout, this.onEnd, this.path});

  final WorkerCore core;

  /// The operation's name in errors (`connect`, `open`, ...).
  final String operation;

  /// Turns a successful completion into the future's value; may throw, which
  /// fails the future.
  final T Function(int result, int handle) convert;

  /// The timeout given to the native call (for the timeout error).
  final Duration? timeout;

  /// The file or socket path the operation is on (for its errors).
  final String? path;

  /// Called exactly once when the operation is over, whatever the outcome,
  /// after [convert] ran: frees what the operation held for the kernel.
  final void Function()? onEnd;

  final Completer<T> _completer = Completer<T>();
  bool _ended = false;

  /// The tag while the operation is queued natively, else 0.
  int _tag = 0;

  Future<T> get future => _completer.future;

  /// Queues the operation: [submit] makes the native call with the tag it is
  /// given and returns the call's result. Returns [future] (its error counts
  /// as handled: an ignored failure is no uncaught error), failed at once
  /// when the call was refused or [cancellation] was cancelled; rethrows what
  /// [submit] throws (an invalid argument) after cleaning up. Cancelling
  /// [cancellation] later cancels the operation natively: it fails with a
  /// [TransportCancelledException].
  Future<T> start(int Function(int tag) submit, {Cancellation? cancellation}) {
    if (core.isClosed || (cancellation?.isCancelled ?? false)) {
      _end();
      final refused = core.isClosed
          ? closedError(operation, 'worker')
          : TransportCancelledException('cancelled', operation: operation);
      return handledFuture(Future<T>.error(refused));
    }
    final tag = core.register(this);
    final int rc;
    try {
      rc = submit(tag);
    } catch (_) {
      core.unregister(tag);
      _end();
      rethrow;
    }
    if (rc < 0) {
      core.unregister(tag);
      _end();
      final refused = core.error(rc, operation, timeout: timeout, path: path);
      return handledFuture(Future<T>.error(refused));
    }
    _tag = tag;
    cancellation?._current = this;
    core.submitted();
    return handledFuture(_completer.future);
  }

  void _cancel() {
    if (_tag != 0) core.cancel(_tag);
  }

  void _end() {
    if (_ended) return;
    _ended = true;
    onEnd?.call();
  }

  @override
  void onCompletion(int tag, int kind, int result, int flags, int handle,
      int bufferId, int offset) {
    core.unregister(tag);
    _tag = 0;
    try {
      if (result < 0) {
        _completer.completeError(
            core.error(result, operation, timeout: timeout, path: path));
      } else {
        _completer.complete(convert(result, handle));
      }
    } catch (error, stack) {
      if (!_completer.isCompleted) _completer.completeError(error, stack);
    } finally {
      _end();
    }
  }

  @override
  void onWorkerClosed(TransportClosedException error) {
    _tag = 0;
    _end();
    if (!_completer.isCompleted) _completer.completeError(error);
  }
}

/// Cancels a multi-step operation (a connect that tries one address after
/// another): the step in flight is cancelled natively, and no further step
/// starts.
final class Cancellation {
  bool _cancelled = false;
  SingleOp<Object?>? _current;

  bool get isCancelled => _cancelled;

  void cancel() {
    if (_cancelled) return;
    _cancelled = true;
    _current?._cancel();
  }
}

/// Takes a free send buffer of [core]: its id, or a negative native result:
/// `-ENOBUFS` when every send buffer is in use, after queueing [waiter] to be
/// woken when one may be free; another error when the worker is closed.
int acquireSendBuffer(WorkerCore core, SendBufferWaiter waiter) {
  final id = core.buffers.acquire();
  if (id == -Errno.enobufs) core.waitForSendBuffer(waiter);
  return id;
}

/// Binds an IP socket (TCP listener, UDP socket) to [host] (a `String` or an
/// [InternetAddress]; a name is looked up and its first address used) and
/// [port]: [bind] makes the native call with the numeric address and the
/// output for the socket handle. Returns the socket, the address and the
/// bound port (the chosen one for port 0).
Future<({WorkerCore core, SocketHandle socket, InternetAddress address, int port})>
    bindIp(Object host, int port, Worker? worker,
        int Function(WorkerCore core, Pointer<Utf8> ip, Pointer<Uint64> out)
            bind) async {
  RangeError.checkValueInInterval(port, 0, 65535, 'port');
  final core = workerCore(worker ?? Worker.current);
  final addresses = await resolveHost(host, 'bind');
  if (core.isClosed) throw closedError('bind', 'worker');
  final ip = addresses.first;
  final rc = bind(core, core.scratchText(ip.address), core.outSocket);
  if (rc < 0) throw core.error(rc, 'bind');
  final socket = SocketHandle(core.handle, core.outSocket.value);
  final local = core.socketAddress(socket.id, IOT_ADDRESS_LOCAL);
  return (core: core, socket: socket, address: ip, port: local?.port ?? port);
}

// ------------------------------------------------------------ native text

/// Room for one path (`PATH_MAX`, with its NUL) or socket address.
const int _textCapacity = 4096;

/// A worker's native area for text arguments and results: paths and Unix
/// socket addresses (up to 4095 bytes, where the worker's own scratch holds
/// 63), plus small outputs (a port, an option value). Every native call
/// reads or writes it only while it runs, so one per worker serves all.
final class NativeScratch {
  NativeScratch._(this._block)
      : text = _block.pointer.cast<Utf8>(),
        _bytes = _block.pointer.asTypedList(_textCapacity),
        port = (_block.pointer + _textCapacity).cast<Uint16>(),
        value = (_block.pointer + _textCapacity + 4).cast<Uint32>();

  static final Expando<NativeScratch> _byWorker =
      Expando<NativeScratch>('iouring_transport text scratch');

  /// The scratch of [core], created on first use. Throws a
  /// [TransportClosedException] for [operation] once the worker is closed.
  static NativeScratch of(WorkerCore core, String operation) {
    if (core.isClosed) throw closedError(operation, 'worker');
    return _byWorker[core] ??= NativeScratch._(NativeBlock(_textCapacity + 8));
  }

  /// Kept reachable (and so allocated) as long as the scratch is.
  final NativeBlock _block;
  final Uint8List _bytes;

  /// The text area (`char *`), [capacity] bytes.
  final Pointer<Utf8> text;

  /// A `uint16_t` output (ports).
  final Pointer<Uint16> port;

  /// A `uint32_t` output (option values, counters).
  final Pointer<Uint32> value;

  /// Size of [text] in bytes, the terminating NUL included.
  int get capacity => _textCapacity;

  /// Writes [path] as NUL-terminated UTF-8 into [text] and returns [text].
  /// Throws an [ArgumentError] for a path with a NUL character or longer
  /// than 4095 bytes.
  Pointer<Utf8> path(String path) {
    final bytes = utf8.encode(path);
    if (bytes.contains(0)) {
      throw ArgumentError.value(path, 'path', 'contains a NUL character');
    }
    if (bytes.length >= _textCapacity) {
      throw ArgumentError.value(
          path, 'path', 'longer than ${_textCapacity - 1} bytes');
    }
    _bytes.setRange(0, bytes.length, bytes);
    _bytes[bytes.length] = 0;
    return text;
  }

  /// The text a native call wrote into [text]; [length] is the full length
  /// it returned (the text was cut to fit if longer). Bytes that are not
  /// UTF-8 (a path may hold any) become U+FFFD.
  String read(int length) {
    final n = length < _textCapacity ? length : _textCapacity - 1;
    return utf8.decode(Uint8List.sublistView(_bytes, 0, n),
        allowMalformed: true);
  }

  /// The local ([which] `IOT_ADDRESS_LOCAL`) or peer (`IOT_ADDRESS_PEER`)
  /// address of [socket] as text (an IP, or a Unix path with `@name` for
  /// abstract names and empty when unnamed) and its port (0 for Unix).
  /// Throws the native error for [operation].
  ({String address, int port}) socketAddress(
      WorkerCore core, int socket, int which, String operation) {
    final rc = core.bindings
        .iot_socket_address(core.id, socket, which, text, _textCapacity, port);
    if (rc < 0) throw core.error(rc, operation);
    return (address: read(rc), port: port.value);
  }

  /// `setsockopt` of [option] at [level] on [socket] with the bytes of
  /// [value] (at most [capacity]). Throws the native error for [operation].
  void setRawOption(WorkerCore core, int socket, int level, int option,
      Uint8List value, String operation) {
    _checkRawLength(value.length, operation);
    _bytes.setRange(0, value.length, value);
    final rc = core.bindings.iot_socket_set_raw_option(core.id, socket, level,
        option, _block.pointer, value.length);
    if (rc < 0) throw core.error(rc, operation);
  }

  /// `getsockopt` of [option] at [level] on [socket] with room for
  /// `into.length` bytes (at most [capacity]): the bytes the kernel wrote are
  /// copied to the start of [into]; returns how many. Throws the native error
  /// for [operation].
  int getRawOption(WorkerCore core, int socket, int level, int option,
      Uint8List into, String operation) {
    _checkRawLength(into.length, operation);
    value.value = into.length;
    final rc = core.bindings.iot_socket_get_raw_option(
        core.id, socket, level, option, _block.pointer, value);
    if (rc < 0) throw core.error(rc, operation);
    final written = value.value;
    into.setRange(0, written, _bytes);
    return written;
  }

  void _checkRawLength(int length, String operation) {
    if (length > _textCapacity) {
      throw ArgumentError.value(
          length, operation, 'option value longer than $_textCapacity bytes');
    }
  }
}
