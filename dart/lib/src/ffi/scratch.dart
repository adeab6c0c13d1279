/// [NativeScratch]: a worker's one native area for the arguments and
/// results of its native calls.
library;

import 'dart:convert';
import 'dart:ffi';
import 'dart:typed_data';

import 'package:ffi/ffi.dart';

import 'bindings.dart';
import 'native_block.dart';

// Layout of the area.
const int _outU64 = 0; // uint64_t (worker id, socket id, payload)
const int _outPointer = 8; // uint8_t * (buffer pool base)
const int _outSize = 16; // uint32_t
const int _outCount = 20; // uint32_t
const int _outId = 24; // uint32_t (buffer id)
const int _outPort = 28; // uint16_t
const int _outValue = 32; // uint32_t (option values, counters)
const int _stats = 40; // iot_stats (room for 32 bytes)
const int _config = 72; // iot_config (room for 24 bytes)
const int _ip = 96; // a numeric IP address in (64 bytes)
const int _sourceIp = 160; // a second one, for a connect's source (64 bytes)
const int _text = 224; // text in and out (addresses, paths, option values)

/// Room for one path (`PATH_MAX`, with its NUL) or socket address.
const int _textCapacity = 4096;

/// Numeric IP addresses are shorter than this (with their NUL).
const int _ipCapacity = 64;

/// A worker's native area for text arguments and results (IP addresses,
/// paths and Unix socket addresses up to 4095 bytes, raw option values) and
/// small outputs (ids, a port, a value, the worker's config and stats).
/// Every native call reads or writes it only while it runs, so one per
/// worker serves all of them. Freed with the worker.
final class NativeScratch {
  factory NativeScratch() =>
      NativeScratch._(NativeBlock(_text + _textCapacity));

  NativeScratch._(this._block)
      : _bytes = (_block.pointer + _text).asTypedList(_textCapacity) {
    assert(sizeOf<iot_stats>() <= _config - _stats, 'iot_stats outgrew');
    assert(sizeOf<iot_config>() <= _ip - _config, 'iot_config outgrew');
  }

  final NativeBlock _block;
  final Uint8List _bytes;

  Pointer<Uint8> get _base => _block.pointer;

  /// A `uint64_t` output (worker, socket and payload ids).
  Pointer<Uint64> get u64 => (_base + _outU64).cast<Uint64>();

  /// A `uint8_t *` output.
  Pointer<Pointer<Uint8>> get pointer =>
      (_base + _outPointer).cast<Pointer<Uint8>>();

  /// `uint32_t` outputs (sizes and counts).
  Pointer<Uint32> get size => (_base + _outSize).cast<Uint32>();
  Pointer<Uint32> get count => (_base + _outCount).cast<Uint32>();

  /// A `uint32_t` output (buffer ids).
  Pointer<Uint32> get id => (_base + _outId).cast<Uint32>();

  /// A `uint16_t` output (ports).
  Pointer<Uint16> get port => (_base + _outPort).cast<Uint16>();

  /// A `uint32_t` input and output (option values, counters).
  Pointer<Uint32> get value => (_base + _outValue).cast<Uint32>();

  /// The worker's counters.
  Pointer<iot_stats> get stats => (_base + _stats).cast<iot_stats>();

  /// A worker's configuration.
  Pointer<iot_config> get config => (_base + _config).cast<iot_config>();

  /// The text area (`char *`), [capacity] bytes.
  Pointer<Utf8> get text => (_base + _text).cast<Utf8>();

  /// The text area as bytes (raw option values).
  Pointer<Uint8> get bytes => _base + _text;

  /// Size of [text] in bytes, the terminating NUL included.
  int get capacity => _textCapacity;

  /// Writes [ip] (a numeric address: ASCII, at most 63 characters)
  /// NUL-terminated into the scratch's IP area (apart from [text], so a
  /// call can take an IP and a path) and returns it. Throws an
  /// [ArgumentError] for anything else.
  Pointer<Utf8> ip(String ip) => _writeIp(_ip, ip);

  /// As [ip], into a second area: a connect's source address.
  Pointer<Utf8> sourceIp(String ip) => _writeIp(_sourceIp, ip);

  Pointer<Utf8> _writeIp(int at, String ip) {
    if (ip.length >= _ipCapacity) {
      throw ArgumentError.value(ip, 'address', 'too long');
    }
    final bytes = (_base + at).asTypedList(_ipCapacity);
    for (var i = 0; i < ip.length; i++) {
      final unit = ip.codeUnitAt(i);
      if (unit == 0 || unit > 0x7f) {
        throw ArgumentError.value(ip, 'address', 'not a numeric address');
      }
      bytes[i] = unit;
    }
    bytes[ip.length] = 0;
    return (_base + at).cast<Utf8>();
  }

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

  /// Copies [value] (at most [capacity] bytes) into the text area.
  void putBytes(Uint8List value) => _bytes.setRange(0, value.length, value);

  /// Copies the first [length] bytes of the text area into [into].
  void takeBytes(Uint8List into, int length) =>
      into.setRange(0, length, _bytes);

  /// Frees the area (with its worker). Idempotent.
  void free() => _block.free();
}
