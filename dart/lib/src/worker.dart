/// [Worker]: one io_uring ring per isolate, the public face of the worker's
/// machinery (`worker_core.dart`) and its messaging (`messenger.dart`).
library;

import 'exception.dart';
import 'messages.dart';
import 'messenger.dart';
import 'transport.dart';
import 'worker_config.dart';
import 'worker_core.dart';
import 'worker_stats.dart';

/// One io_uring ring with its buffer pool, owned by the isolate that created
/// it. Sockets, listeners and payloads belong to one worker and are used from
/// its isolate only.
///
/// Most programs use [Worker.current], the isolate's default worker, which
/// every operation uses when it is not given a worker. To use several cores,
/// run one isolate per core, each with its own worker (a listener bound with
/// `reusePort: true` in each isolate shares one port).
///
/// A worker keeps its isolate alive only while it has work in flight (an
/// operation, a stream being read, a listener accepting, a write waiting) or
/// a message stream listened to: a program whose work is done exits, even
/// with the worker and idle sockets still open (the native side is reclaimed
/// when the isolate ends). [close] it to release it earlier. Closing fails every operation still in flight with a
/// [TransportClosedException], closes every socket of the worker and
/// invalidates every [Payload] it handed out.
final class Worker {
  /// Creates a worker (loading the native library on first use, see
  /// `loadTransportLibrary`).
  ///
  /// Throws an [IoUringUnavailableException] when the kernel does not offer
  /// io_uring (or the operations the library needs), a [TransportException]
  /// with code `IOT_E_MEMLOCK` (-5003) when the kernel refuses the memory (the
  /// message says how to raise `RLIMIT_MEMLOCK`), and a
  /// [TransportLibraryException] when the native library is missing.
  factory Worker({WorkerConfig config = const WorkerConfig()}) =>
      Worker._(WorkerCore.open(config, Messenger.new));

  Worker._(this._core);

  static Worker? _current;

  /// The isolate's default worker, created on first use (and again after it
  /// was closed).
  static Worker get current {
    final existing = _current;
    if (existing != null && !existing.isClosed) return existing;
    return _current = Worker();
  }

  final WorkerCore _core;

  /// The native worker id (unique in the process).
  int get id => _core.id;

  /// Whether [close] was called.
  bool get isClosed => _core.isClosed;

  /// Size of each native buffer: writes are sent in chunks of this size and
  /// a single receive delivers at most this many bytes.
  int get bufferSize => _core.buffers.bufferSize;

  /// The worker's counters (useful for leak checks).
  WorkerStats stats() => _core.stats();

  /// Closes the worker: fails every pending operation with a
  /// [TransportClosedException], closes its sockets, and frees the ring and
  /// buffers (waiting, at most 5 s, until the kernel returned everything).
  /// Idempotent: later calls return the same future.
  Future<void> close() => _core.close();

  // ------------------------------------------------------------ messaging

  /// Posts a message ([tag] and [value], each 0..0xffffffff) straight into
  /// the completion queue of worker [toWorker] (its [id], usually received
  /// from another isolate once at setup), which gets it on [messages].
  /// Messages from one worker to another arrive in the order they were sent.
  ///
  /// Completes when the kernel posted the message into the target's queue.
  /// Fails with a [WorkerGoneException] when the target is unknown, closed
  /// or stopped, an [IoUringUnavailableException] when the kernel cannot
  /// message between rings (Linux < 6.3, see [Transport.messagingSupported]),
  /// and a [TransportClosedException] when this worker closes first. An
  /// ignored future never causes an uncaught error.
  Future<void> sendMessage(int toWorker, int tag, int value) =>
      Messenger.of(_core).sendMessage(toWorker, tag, value);

  /// The messages other workers send here with [sendMessage], as
  /// [WorkerMessage]s (tag and value; the sender is not part of a message:
  /// put it in the tag or value if the receiver needs it).
  ///
  /// A single-subscription stream. Messages that arrive before it is
  /// listened to wait for the listener; pausing buffers them. After the
  /// subscription is cancelled, later messages are dropped. The stream ends
  /// when the worker stopped ([stop]) or closed.
  Stream<WorkerMessage> get messages => Messenger.of(_core).messages;

  /// Sends a copy of [bytes] (at most [Transport.payloadSize], 64 KiB by
  /// default) to worker [toWorker], which gets them on [byteMessages]
  /// without a copy: the bytes travel in a payload of the process-wide
  /// payload pool, and only its slot number crosses the ring. [tag] is
  /// 0..0xffffffff. Completes and fails like [sendMessage]; when every
  /// payload is in use it fails with a [TransportException] whose errno is
  /// 105 (`ENOBUFS`). A payload that could not be delivered returns to the
  /// pool.
  Future<void> sendBytes(int toWorker, int tag, List<int> bytes) =>
      Messenger.of(_core).sendBytes(toWorker, tag, bytes);

  /// The bytes other workers send here with [sendBytes]. Each
  /// [BytesMessage] is a view of the payload itself: **release every one**
  /// ([BytesMessage.release]) or the pool runs dry. Stream semantics as for
  /// [messages]; a message dropped after the subscription was cancelled is
  /// released.
  Stream<BytesMessage> get byteMessages => Messenger.of(_core).byteMessages;

  /// The values of stop requests ([Transport.requestStop]) that reached this
  /// worker. A request asks the program to wind down this worker: finish or
  /// hand over its work, then [stop] and [close] it. Stream semantics as for
  /// [messages].
  Stream<int> get stopRequests => Messenger.of(_core).stopRequests;

  /// Stops accepting messages: sends to this worker fail with a
  /// [WorkerGoneException] from now on, and everything already on its way
  /// still arrives. Completes when nothing more will arrive and every
  /// message this worker sent was reported; the message streams end then.
  /// [close] it after that to lose no message. Other operations (sockets,
  /// sending messages) keep working. Idempotent; fails with a
  /// [TransportClosedException] if the worker closes first.
  Future<void> stop() => Messenger.of(_core).stop();

  /// Among the workers [workerIds] (ids of workers of any isolate), the one
  /// with the lowest load: open sockets at its last drain plus messages on
  /// their way to it; ties rotate from call to call. Closed and stopped
  /// workers are skipped; throws a [WorkerGoneException] when none is left.
  /// Cheap (no lock on any worker): an acceptor can call it per connection.
  static int leastLoaded(List<int> workerIds) => leastLoadedWorker(workerIds);

  @override
  String toString() => 'Worker($id${isClosed ? ', closed' : ''})';
}

/// The internals of [worker] (for the transport's own libraries).
WorkerCore workerCore(Worker worker) => worker._core;
