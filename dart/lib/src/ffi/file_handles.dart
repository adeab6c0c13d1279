/// [FileHandle]: one open file of a worker and every native call on it,
/// plus the calls that need no open file (open, stat by path).
library;

import 'dart:ffi';

import 'package:ffi/ffi.dart';

import 'bindings.dart';
import 'resource_handle.dart';
import 'worker_handle.dart';

/// Owns one open file handle of a worker (`iot_file_open` ..
/// `iot_file_close`).
final class FileHandle extends ResourceHandle {
  FileHandle(WorkerHandle worker, int id) : super(worker, id, _close);

  static int _close(WorkerHandle worker, int id) =>
      worker.bindings.iot_file_close(worker.id, id);

  /// Reads up to [length] bytes at [at] (or the file position,
  /// `IOT_OFFSET_CURRENT`) into buffer [bufferId] from [offset].
  int read(int bufferId, int offset, int length, int at, int tag,
          int timeoutMs) =>
      bindings.iot_file_read(
          worker.id, id, bufferId, offset, length, at, tag, timeoutMs);

  /// Writes [length] bytes of buffer [bufferId] from [offset] at [at] (or
  /// the file position).
  int write(int bufferId, int offset, int length, int at, int tag,
          int timeoutMs) =>
      bindings.iot_file_write(
          worker.id, id, bufferId, offset, length, at, tag, timeoutMs);

  /// Reads from [at] to the end in buffers, at most [window] in flight.
  int readStream(int at, int window, int tag, int timeoutMs) =>
      bindings.iot_file_read_stream(worker.id, id, at, window, tag, timeoutMs);

  int sync(int flags, int tag, int timeoutMs) =>
      bindings.iot_file_sync(worker.id, id, flags, tag, timeoutMs);

  int allocate(int mode, int offset, int length, int tag, int timeoutMs) =>
      bindings.iot_file_allocate(
          worker.id, id, mode, offset, length, tag, timeoutMs);

  int truncate(int length, int tag, int timeoutMs) =>
      bindings.iot_file_truncate(worker.id, id, length, tag, timeoutMs);

  /// Stats the file into [out], which must stay allocated until the
  /// operation completes.
  int stat(Pointer<iot_file_info> out, int tag, int timeoutMs) =>
      bindings.iot_file_stat(worker.id, id, out, tag, timeoutMs);
}

/// The file calls that need no open file.
extension FileCalls on WorkerHandle {
  /// Opens [path]; the completion carries the new file's handle.
  int openFile(Pointer<Utf8> path, int flags, int mode, int tag,
          int timeoutMs) =>
      bindings.iot_file_open(id, path, flags, mode, tag, timeoutMs);

  /// Stats [path] into [out], which must stay allocated until the operation
  /// completes.
  int statPath(Pointer<Utf8> path, Pointer<iot_file_info> out, int tag,
          int timeoutMs) =>
      bindings.iot_path_stat(id, path, out, tag, timeoutMs);
}
