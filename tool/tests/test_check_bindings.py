"""Tests for tool/check_bindings.py: a matching header/bindings pair passes, and
each kind of drift, made by editing one line of the pair, fails with a message
naming the item."""
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOOD_H = (FIXTURES / "good.h").read_text()
GOOD_DART = (FIXTURES / "good_bindings.dart").read_text()


def edit(text, old, new):
    """text with `old` (which must occur exactly once) replaced by `new`."""
    assert text.count(old) == 1, f"fixture changed? {old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


class CheckBindingsTest(unittest.TestCase):
    def check(self, header=GOOD_H, dart=GOOD_DART):
        with tempfile.TemporaryDirectory() as tmp:
            h, d = Path(tmp, "iouring_transport.h"), Path(tmp, "bindings.dart")
            h.write_text(header)
            d.write_text(dart)
            return subprocess.run(
                [sys.executable, str(TOOL / "check_bindings.py"), "--header", str(h), "--bindings", str(d)],
                capture_output=True, text=True)

    def assertDrift(self, result, *messages):
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        for message in messages:
            self.assertIn(message, result.stdout)
        self.assertRegex(result.stdout, r"bindings: \d+ mismatches between iouring_transport.h and bindings.dart\n$")

    def test_matching_pair_passes(self):
        result = self.check()
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(result.stdout, "bindings: 6 functions, 2 structs, 8 constants match\n")

    def test_formatting_and_comment_style_do_not_matter(self):
        # The whole file on one line, with a block comment after every comma.
        dart = " ".join(re.sub(r"//[^\n]*", "", GOOD_DART).split()).replace(",", ", /* c */")
        header = edit(GOOD_H, "/*\n Creates a worker.\n */", "/** Creates a worker. */")
        result = self.check(header, dart)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_symbol_list_must_name_every_header_function_once(self):
        names = ["iot_worker_new", "iot_worker_wait", "iot_worker_drain", "iot_error_message",
                 "iot_version", "iot_worker_set_notify"]
        def with_list(listed):
            quoted = ", ".join(f"'{name}'" for name in listed)
            return edit(GOOD_DART, "final class Bindings {",
                        f"final class Bindings {{\n  static const List<String> _symbols = [{quoted}];")
        result = self.check(dart=with_list(names))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertDrift(self.check(dart=with_list(names[1:] + ["iot_versions", "iot_version"])),
                         "_symbols: the header's function iot_worker_new is missing",
                         "_symbols: iot_versions is not a header function",
                         "_symbols: iot_version listed 2 times")

    def test_function_missing_from_bindings(self):
        header = edit(GOOD_H, "const char *iot_version(void);",
                      "const char *iot_version(void);\n\nint32_t iot_socket_close(uint64_t worker, uint64_t socket);")
        self.assertDrift(self.check(header=header),
                         "function iot_socket_close: no lookupFunction('iot_socket_close') in the bindings")

    def test_binding_naming_no_header_function(self):
        dart = edit(GOOD_DART, '"iot_version"', '"iot_versions"')
        self.assertDrift(self.check(dart=dart),
                         "lookupFunction('iot_versions') at bindings.dart:75: the header has no function iot_versions",
                         "function iot_version: no lookupFunction('iot_version') in the bindings")

    def test_function_bound_twice(self):
        dart = edit(GOOD_DART, "('iot_worker_set_notify')", "('iot_worker_wait')")
        self.assertDrift(self.check(dart=dart),
                         "function iot_worker_wait: bound 2 times (bindings.dart lines 52, 77)")

    def test_wrong_param_type(self):
        dart = edit(GOOD_DART, "Int32 Function(Uint64, Uint32)", "Int32 Function(Uint64, Uint64)")
        self.assertDrift(self.check(dart=dart),
                         "function iot_worker_wait (bindings.dart:52): native parameter 2 "
                         "(uint32_t timeout_ms): expected Uint32, found Uint64")

    def test_wrong_pointer_depth(self):
        dart = edit(GOOD_DART, "              Pointer<Pointer<Uint8>> out_base,", "              Pointer<Uint8> out_base,")
        self.assertDrift(self.check(dart=dart),
                         "function iot_worker_drain (bindings.dart:54): native parameter 4 "
                         "(const uint8_t **out_base): expected Pointer<Pointer<Uint8>>, found Pointer<Uint8>")

    def test_wrong_param_count(self):
        dart = edit(GOOD_DART, "Size Function(Int32, Pointer<Char>, Size)", "Size Function(Int32, Pointer<Char>)")
        self.assertDrift(self.check(dart=dart),
                         "function iot_error_message (bindings.dart:71): native parameter count: expected 3 "
                         "(int32_t code, char *buf, size_t len), found 2 (Int32, Pointer<Char>)")

    def test_wrong_return_type(self):
        dart = edit(GOOD_DART, "Size Function(Int32, Pointer<Char>, Size)", "Int32 Function(Int32, Pointer<Char>, Size)")
        self.assertDrift(self.check(dart=dart),
                         "function iot_error_message (bindings.dart:71): native return type: "
                         "expected Size (C size_t), found Int32")

    def test_dart_type_inconsistent_with_native_type(self):
        dart = edit(GOOD_DART, "int Function(int, int)>('iot_worker_wait')", "double Function(int, bool)>('iot_worker_wait')")
        self.assertDrift(self.check(dart=dart),
                         "function iot_worker_wait (bindings.dart:52): Dart return type: expected int (for Int32), found double",
                         "function iot_worker_wait (bindings.dart:52): Dart parameter 2: expected int (for Uint32), found bool")

    def test_blocking_function_bound_as_leaf(self):
        dart = edit(GOOD_DART, "int Function(int, int)>('iot_worker_wait')", "int Function(int, int)>('iot_worker_wait', isLeaf: true)")
        self.assertDrift(self.check(dart=dart),
                         "function iot_worker_wait (bindings.dart:52): bound with isLeaf: true, "
                         'but the header says it is "Not a leaf call"')

    def test_not_a_leaf_call_in_line_comment_docs(self):
        header = edit(GOOD_H, "// Drains up to `len` completions into `out`.",
                      "// Drains up to `len` completions into `out`.\n// Not a leaf call.")
        self.assertDrift(self.check(header=header),
                         "function iot_worker_drain (bindings.dart:54): bound with isLeaf: true")

    def test_struct_field_type_mismatch(self):
        dart = edit(GOOD_DART, "  @Int32()\n  external int result;", "  @Int64()\n  external int result;")
        self.assertDrift(self.check(dart=dart),
                         "struct iot_completion (bindings.dart:35): field result: expected @Int32() int, found @Int64() int")

    def test_struct_pointer_field_with_annotation(self):
        dart = edit(GOOD_DART, "  external Pointer<Uint8> scratch;", "  @Uint64()\n  external int scratch;")
        self.assertDrift(self.check(dart=dart),
                         "field scratch: expected Pointer<Uint8>, no annotation, found @Uint64() int")

    def test_struct_field_order_mismatch(self):
        dart = edit(GOOD_DART, "  @Uint64()\n  external int tag;\n  @Int32()\n  external int result;",
                    "  @Int32()\n  external int result;\n  @Uint64()\n  external int tag;")
        self.assertDrift(self.check(dart=dart),
                         "struct iot_completion (bindings.dart:35): field order: expected tag, result, kind; "
                         "found result, tag, kind")

    def test_struct_missing_and_extra_fields(self):
        dart = edit(GOOD_DART, "  @Uint32()\n  external int kind;", "  @Uint32()\n  external int flags;")
        self.assertDrift(self.check(dart=dart),
                         "struct iot_completion (bindings.dart:35): missing field kind (@Uint32() int)",
                         "struct iot_completion (bindings.dart:35): extra field flags (not in the header)")

    def test_struct_array_size_mismatch(self):
        dart = edit(GOOD_DART, "@Array(IOT_NAME_LEN)", "@Array(8)")
        self.assertDrift(self.check(dart=dart),
                         "field name: expected @Array(16) Array<Char>, found @Array(8) Array<Char>")

    def test_struct_class_missing_or_not_final(self):
        self.assertDrift(self.check(dart=edit(GOOD_DART, "final class iot_completion", "final class Completion")),
                         "struct iot_completion: no Dart `final class iot_completion extends Struct`",
                         "Dart class Completion (bindings.dart:35) extends Struct, but the header has no struct Completion")
        self.assertDrift(self.check(dart=edit(GOOD_DART, "final class iot_completion", "class iot_completion")),
                         "struct iot_completion (bindings.dart:35): expected a `final class`")

    def test_wrong_constant_value(self):
        dart = edit(GOOD_DART, "IOT_E_BAD_HANDLE = -5001", "IOT_E_BAD_HANDLE = -5002")
        self.assertDrift(self.check(dart=dart),
                         "constant IOT_E_BAD_HANDLE (bindings.dart:7): expected -5001, found -5002")

    def test_wrong_enum_variant_value(self):
        dart = edit(GOOD_DART, "IOT_KIND_RECV = 2", "IOT_KIND_RECV = 1 << 2")
        self.assertDrift(self.check(dart=dart),
                         "constant IOT_KIND_RECV (bindings.dart:13): expected 2, found 4 (1 << 2)")

    def test_constant_missing_extra_or_not_int(self):
        dart = edit(GOOD_DART, "const int IOT_SHUTDOWN_WRITE = 1;", "const int IOT_SHUTDOWN_BOTH = 2;")
        dart = edit(dart, "const int IOT_NAME_LEN = 16;", "const IOT_NAME_LEN = 16;")
        self.assertDrift(self.check(dart=dart),
                         "constant IOT_SHUTDOWN_WRITE: no Dart `const int IOT_SHUTDOWN_WRITE = 1;`",
                         "constant IOT_SHUTDOWN_BOTH (bindings.dart:6): not in the header",
                         "constant IOT_NAME_LEN (bindings.dart:10): expected `const int`, found `const <untyped>`")

    def test_callback_typedef_mismatch(self):
        dart = edit(GOOD_DART, "Void Function(Uint64 worker, Pointer<Void> context)", "Void Function(Uint32 worker, Pointer<Void> context)")
        self.assertDrift(self.check(dart=dart),
                         "typedef iot_notify_fn (bindings.dart:16): expected "
                         "Pointer<NativeFunction<Void Function(Uint64, Pointer<Void>)>>, "
                         "found Pointer<NativeFunction<Void Function(Uint32, Pointer<Void>)>>")

    def test_header_change_is_drift_too(self):
        header = edit(GOOD_H, "int32_t iot_worker_wait(uint64_t worker, uint32_t timeout_ms);",
                      "int64_t iot_worker_wait(uint64_t worker, uint32_t timeout_ms, bool spin);")
        self.assertDrift(self.check(header=header),
                         "function iot_worker_wait (bindings.dart:52): native return type: expected Int64 (C int64_t), found Int32",
                         "function iot_worker_wait (bindings.dart:52): native parameter count: expected 3")

    def test_dart_syntax_error_is_reported(self):
        dart = edit(GOOD_DART, "const int IOT_NAME_LEN = 16;", "const int IOT_NAME_LEN = 16")
        self.assertDrift(self.check(dart=dart), "bindings.dart:10: syntax error")


if __name__ == "__main__":
    unittest.main()
