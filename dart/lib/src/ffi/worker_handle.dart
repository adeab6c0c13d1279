/// [WorkerHandle]: the native worker, and the calls on the worker itself
/// (its loop, its buffer pool, cancelling, counters).
library;

import 'dart:ffi';

import 'bindings.dart';
import 'scratch.dart';

/// Owns one native worker handle (`iot_worker_new` .. `iot_worker_free`)
/// and the worker's [scratch] area.
///
/// A [NativeFinalizer] on `iot_worker_finalize` frees a worker whose owner
/// was never closed (at the latest when the isolate group shuts down). That
/// native function takes the worker id as its `void *` token and does not
/// block: the worker's handle goes stale at once and it is reaped on a native
/// background thread.
final class WorkerHandle implements Finalizable {
  WorkerHandle(this.bindings, this.id, this.scratch, {int externalSize = 0}) {
    _finalizerFor(bindings).attach(this, Pointer<Void>.fromAddress(id),
        detach: this, externalSize: externalSize);
  }

  static NativeFinalizer? _finalizer;

  static NativeFinalizer _finalizerFor(Bindings bindings) =>
      _finalizer ??= NativeFinalizer(bindings.workerFinalizer);

  /// Writes the native default configuration into `scratch.config`.
  static int defaultConfig(Bindings bindings, NativeScratch scratch) =>
      bindings.iot_config_default(scratch.config);

  /// Creates a worker with the configuration in `scratch.config`; its id is
  /// in `scratch.u64` on success. Nobody owns it yet: [WorkerHandle] it, or
  /// [freeUnowned] it.
  static int create(Bindings bindings, NativeScratch scratch) =>
      bindings.iot_worker_new(scratch.config, scratch.u64);

  /// The buffer pool of worker [id] into `scratch.pointer` (base),
  /// `scratch.size` and `scratch.count`.
  static int describeBuffers(
          Bindings bindings, int id, NativeScratch scratch) =>
      bindings.iot_worker_buffers(
          id, scratch.pointer, scratch.size, scratch.count);

  /// Frees worker [id] that no [WorkerHandle] owns yet.
  static int freeUnowned(Bindings bindings, int id) =>
      bindings.iot_worker_free(id);

  final Bindings bindings;

  /// The native worker id.
  final int id;

  /// The worker's native area for call arguments and results.
  final NativeScratch scratch;

  bool _freed = false;

  /// Whether [free] was called.
  bool get isFreed => _freed;

  /// Frees the worker (blocking while the kernel returns its operations,
  /// bounded by the native library at 5 s) and its scratch area. Returns the
  /// native result; a second call returns 0 and does nothing.
  int free() {
    if (_freed) return 0;
    _freed = true;
    _finalizer?.detach(this);
    final rc = bindings.iot_worker_free(id);
    scratch.free();
    return rc;
  }

  // ------------------------------------------------------------ the loop

  /// Has the notifier post the worker id to [port] with [post]
  /// (`Dart_PostCObject`).
  int setNotifierPort(
          Pointer<NativeFunction<Int8 Function(Int64, Pointer<Void>)>> post,
          int port) =>
      bindings.iot_worker_set_notifier_port(id, post, port);

  /// Removes the notifier (joining its thread: nothing posts any more).
  int removeNotifier() => bindings.iot_worker_set_notifier_port(id, nullptr, 0);

  /// Has the notifier fire once completions are ready.
  int arm() => bindings.iot_worker_arm(id);

  /// Arms only when no completion is ready: 1 when armed, 0 when completions
  /// wait to be drained (nothing armed).
  int armIfIdle() => bindings.iot_worker_arm_if_idle(id);

  /// Reads up to [capacity] completions into [out]; returns how many.
  int drain(Pointer<iot_completion> out, int capacity) =>
      bindings.iot_worker_drain(id, out, capacity);

  /// Submits what was queued (one `io_uring_enter`).
  int flush() => bindings.iot_worker_flush(id);

  /// Cancels every operation with [tag].
  int cancel(int tag) => bindings.iot_cancel(id, tag);

  /// The worker's counters into `scratch.stats`.
  int stats() => bindings.iot_worker_stats(id, scratch.stats);

  // ------------------------------------------------------------ buffers

  /// Takes a free send buffer: its id in `scratch.id`.
  int acquireBuffer() => bindings.iot_buffer_acquire(id, scratch.id);

  /// Takes a free span (consecutive buffers) for a datagram of [length]
  /// bytes: its first buffer's id in `scratch.id`.
  int acquireSpan(int length) =>
      bindings.iot_buffer_acquire_span(id, length, scratch.id);

  /// Gives back the received piece of [buffer] that starts at [offset], or a
  /// buffer held whole (offset 0).
  int releaseBuffer(int buffer, [int offset = 0]) =>
      bindings.iot_buffer_release(id, buffer, offset);

  // ------------------------------------------------------------ orphans

  /// Closes socket [socket], which no [SocketHandle] owns (it arrived after
  /// its operation was forgotten).
  int closeSocket(int socket) => bindings.iot_socket_close(id, socket);

  /// Closes file [file], which no [FileHandle] owns.
  int closeFile(int file) => bindings.iot_file_close(id, file);
}
