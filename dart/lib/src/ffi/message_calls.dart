/// The native calls of workers' messaging: messages, payloads and stop, per
/// worker ([MessageCalls]) and process-wide ([TransportCalls]).
library;

import 'dart:ffi';

import 'bindings.dart';
import 'worker_handle.dart';

/// A worker's messaging calls.
extension MessageCalls on WorkerHandle {
  /// Posts [tag] and [value] into worker [target]'s completion queue.
  int sendMessage(int target, int tag, int value) =>
      bindings.iot_message_send(id, target, tag, value);

  /// Posts [payload] ([length] bytes) to worker [target].
  int sendPayload(int target, int tag, int payload, int length) =>
      bindings.iot_message_send_payload(id, target, tag, payload, length);

  /// Takes a payload of the process-wide pool: its id in `scratch.u64`.
  int acquirePayload() => bindings.iot_payload_acquire(id, scratch.u64);

  /// Gives a payload back to the pool.
  int releasePayload(int payload) => bindings.iot_payload_release(id, payload);

  /// Stops accepting messages.
  int stop() => bindings.iot_worker_stop(id);
}

/// The process-wide calls (no worker).
extension TransportCalls on Bindings {
  bool get messagingSupported => iot_messaging_supported() == 1;

  int requestStop(int value) => iot_transport_request_stop(value);

  int payloadsInUse() => iot_payloads_in_use();

  int configurePayloads(int size, int count) =>
      iot_payload_pool_configure(size, count);

  /// The payload pool's base, payload size and count into the outputs.
  int payloadPool(Pointer<Pointer<Uint8>> outBase, Pointer<Uint32> outSize,
          Pointer<Uint32> outCount) =>
      iot_payload_pool(outBase, outSize, outCount);

  /// The least loaded of the [count] workers at [candidates], into [out].
  int leastLoaded(Pointer<Uint64> candidates, int count, Pointer<Uint64> out) =>
      iot_worker_least_loaded(candidates, count, out);
}
