/// Which native build a Dart VM can load: the Rust target triple for its ABI,
/// and a check of a library file's ELF header against that ABI (a 32-bit VM
/// cannot load an x86_64 build, and `dlopen` says so only vaguely).
library;

import 'dart:ffi';
import 'dart:io';

/// The Rust target triple whose build a VM of [abi] loads, or null for an ABI
/// this package is not built for (only Linux runs io_uring).
String? rustTargetTriple(Abi abi) => _targets[abi]?.triple;

/// Why the library at [path] cannot be loaded by a VM of [abi]: it is not an
/// ELF file, or it is built for another architecture or word size. Null when
/// it matches (or [abi] is one this check does not know).
String? nativeTargetMismatch(String path, Abi abi) {
  final target = _targets[abi];
  if (target == null) return null;
  final List<int> header;
  try {
    final file = File(path).openSync();
    try {
      header = file.readSync(20);
    } finally {
      file.closeSync();
    }
  } on FileSystemException catch (error) {
    return 'cannot read it (${error.osError?.message ?? error.message})';
  }
  if (header.length < 20 ||
      header[0] != 0x7f ||
      header[1] != 0x45 || // E
      header[2] != 0x4c || // L
      header[3] != 0x46) {
    // F
    return 'it is not an ELF shared library';
  }
  final bits = header[4] == 2 ? 64 : 32; // EI_CLASS: 1 = 32-bit, 2 = 64-bit
  final bigEndian = header[5] == 2; // EI_DATA
  final machine =
      bigEndian ? header[18] << 8 | header[19] : header[18] | header[19] << 8;
  if (machine == target.elfMachine && bits == target.bits) return null;
  final built = _targets.values
          .where((t) => t.elfMachine == machine && t.bits == bits)
          .map((t) => t.triple)
          .firstOrNull ??
      'ELF machine $machine, $bits-bit';
  return 'it is built for $built, but this Dart VM ($abi) needs '
      '${target.triple}';
}

final class _Target {
  const _Target(this.triple, this.elfMachine, this.bits);

  final String triple;

  /// The ELF header's `e_machine` (EM_386, EM_X86_64, ...).
  final int elfMachine;
  final int bits;
}

const Map<Abi, _Target> _targets = {
  Abi.linuxX64: _Target('x86_64-unknown-linux-gnu', 62, 64),
  Abi.linuxIA32: _Target('i686-unknown-linux-gnu', 3, 32),
  Abi.linuxArm64: _Target('aarch64-unknown-linux-gnu', 183, 64),
  Abi.linuxArm: _Target('armv7-unknown-linux-gnueabihf', 40, 32),
  Abi.linuxRiscv64: _Target('riscv64gc-unknown-linux-gnu', 243, 64),
};
