import 'dart:ffi';
import 'dart:io';
import 'dart:isolate';
import 'dart:typed_data';

import 'package:iouring_transport/iouring_transport.dart';
import 'package:test/test.dart';

import 'support/common.dart';
import 'support/inbox.dart';

/// The first 20 bytes of an ELF shared library: [bits] 32 or 64, machine
/// [machine] (`e_machine`: 3 = i386, 62 = x86_64).
Uint8List _elfHeader(int bits, int machine) => Uint8List(64)
  ..setAll(0, [0x7f, 0x45, 0x4c, 0x46, bits == 64 ? 2 : 1, 1, 1])
  ..[16] = 3 // ET_DYN
  ..[18] = machine & 0xff
  ..[19] = machine >> 8;

/// What loading [path] in a fresh isolate (whose library is not loaded yet)
/// throws, as text; 'loaded' when it loads.
Future<String> _loadInFreshIsolate(String path) => Isolate.run(() {
      try {
        loadTransportLibrary(path: path);
        return 'loaded';
      } on TransportLibraryException catch (error) {
        return error.toString();
      }
    });

void main() {
  setUpTransport();

  test('the default search tries the build for this VM before the host build',
      () {
    final fromEnvironment = Platform.environment[libraryEnvironmentVariable];
    if (fromEnvironment != null && fromEnvironment.isNotEmpty) {
      expect(libraryCandidates(), [fromEnvironment]);
      return;
    }
    final candidates = libraryCandidates();
    final triple = switch (Abi.current()) {
      Abi.linuxIA32 => 'i686-unknown-linux-gnu',
      Abi.linuxX64 => 'x86_64-unknown-linux-gnu',
      Abi.linuxArm64 => 'aarch64-unknown-linux-gnu',
      _ => null,
    };
    if (triple == null) {
      markTestSkipped('no known Rust target for ${Abi.current()}');
      return;
    }
    final forVm = candidates
        .indexWhere((c) => c.endsWith('/target/$triple/release/$libraryFileName'));
    final host =
        candidates.indexWhere((c) => c.endsWith('/target/release/$libraryFileName'));
    expect(forVm, greaterThanOrEqualTo(0), reason: '$candidates');
    expect(host, forVm + 1, reason: '$candidates');
  });

  test('the loaded library is the one for this VM, found without a variable',
      () {
    final loaded = loadTransportLibrary();
    if ((Platform.environment[libraryEnvironmentVariable] ?? '').isEmpty) {
      expect(libraryCandidates(), contains(loaded));
    }
    expect(File(loaded).existsSync(), isTrue);
  });

  group('a library for another architecture', () {
    late Directory dir;
    setUp(() => dir = Directory.systemTemp.createTempSync('iot_lib_'));
    tearDown(() => dir.deleteSync(recursive: true));

    test('is refused naming both architectures', () async {
      // The other word size of this VM's x86 family.
      final is32 = sizeOf<Pointer<Void>>() == 4;
      final file = File('${dir.path}/$libraryFileName')
        ..writeAsBytesSync(is32 ? _elfHeader(64, 62) : _elfHeader(32, 3));
      final message = await _loadInFreshIsolate(file.path).bounded;
      expect(message, contains(file.path));
      expect(
          message,
          is32
              ? allOf(contains('built for x86_64-unknown-linux-gnu'),
                  contains('needs i686-unknown-linux-gnu'))
              : allOf(contains('built for i686-unknown-linux-gnu'),
                  contains('needs x86_64-unknown-linux-gnu')));
      expect(message, contains('--target'));
    }, skip: switch (Abi.current()) {
      Abi.linuxIA32 || Abi.linuxX64 => false,
      _ => 'an x86 check',
    });

    test('a file that is not ELF is refused as such', () async {
      final file = File('${dir.path}/$libraryFileName')
        ..writeAsStringSync('not a library');
      final message = await _loadInFreshIsolate(file.path).bounded;
      expect(message, contains('not an ELF shared library'));
    });

    test('a missing file is named as not found', () async {
      final message =
          await _loadInFreshIsolate('${dir.path}/missing.so').bounded;
      expect(message, contains('${dir.path}/missing.so: not found'));
      expect(message, contains(libraryEnvironmentVariable));
    });
  });
}
