/// [FileInfo]: a file's size, times and mode.
library;

import 'ffi/bindings.dart';

/// What [IoFile.stat] and [IoFile.statPath] report.
final class FileInfo {
  FileInfo._(iot_file_info info)
      : size = info.size,
        allocated = info.allocated,
        accessed = _time(info.accessed_sec, info.accessed_nsec),
        modified = _time(info.modified_sec, info.modified_nsec),
        changed = _time(info.changed_sec, info.changed_nsec),
        mode = info.mode;

  static DateTime _time(int seconds, int nanoseconds) =>
      DateTime.fromMicrosecondsSinceEpoch(
          seconds * 1000000 + nanoseconds ~/ 1000);

  /// Length in bytes.
  final int size;

  /// Bytes of storage allocated: more than [size] after [IoFile.allocate],
  /// less for a sparse file.
  final int allocated;

  /// Last access (local time).
  final DateTime accessed;

  /// Last modification of the contents (local time).
  final DateTime modified;

  /// Last change of the contents or the metadata (local time).
  final DateTime changed;

  /// File type and permission bits, as `st_mode`.
  final int mode;

  /// The permission bits (`mode & 07777`).
  int get permissions => mode & 0xfff;

  /// Whether it is a regular file.
  bool get isFile => (mode & 0xf000) == 0x8000;

  /// Whether it is a directory.
  bool get isDirectory => (mode & 0xf000) == 0x4000;

  @override
  String toString() => 'FileInfo(size: $size, modified: $modified, '
      'mode: 0${mode.toRadixString(8)})';
}

/// The [FileInfo] of a native `iot_file_info` (for the file operations; not
/// exported).
FileInfo fileInfoOf(iot_file_info info) => FileInfo._(info);
