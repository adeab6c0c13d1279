"""Tests for tool/check_dart_imports.py, run as a command the way CI runs it."""
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent


def run(lib, *args):
    return subprocess.run([sys.executable, str(TOOL / "check_dart_imports.py"), str(lib),
                           "--package", "pkg", *args],
                          capture_output=True, text=True)


class CheckDartImportsTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.lib = Path(tmp.name) / "lib"
        self.lib.mkdir()

    def write(self, name, text):
        path = self.lib / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def test_a_tree_without_loops_passes(self):
        self.write("pkg.dart", "export 'src/a.dart' show A;\nexport 'src/b.dart';\n")
        self.write("src/a.dart", "import 'dart:io';\nimport 'b.dart';\nclass A {}\n")
        self.write("src/b.dart", "import 'package:other/x.dart';\nimport 'ffi/c.dart';\n")
        self.write("src/ffi/c.dart", "import '../../src/d.dart';\n")
        self.write("src/d.dart", "import 'package:pkg/src/ffi/e.dart';\n")
        self.write("src/ffi/e.dart", "library;\n")
        result = run(self.lib)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(result.stdout, "dart imports: 6 libraries, no import cycle\n")

    def test_a_relative_loop_is_named(self):
        self.write("src/a.dart", "import 'b.dart';\n")
        self.write("src/b.dart", "import 'sub/c.dart';\n")
        self.write("src/sub/c.dart", "import '../a.dart';\n")
        result = run(self.lib)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("import cycle: src/a.dart -> src/b.dart -> src/sub/c.dart -> src/a.dart",
                      result.stdout)

    def test_package_uris_and_exports_count(self):
        self.write("src/a.dart", "export 'package:pkg/src/b.dart' show B;\n")
        self.write("src/b.dart", "import \"package:pkg/src/a.dart\" as a;\n")
        result = run(self.lib)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("src/a.dart -> src/b.dart -> src/a.dart", result.stdout)

    def test_other_packages_and_comments_are_not_edges(self):
        self.write("src/a.dart", "import 'package:other/src/b.dart';\n// import 'b.dart';\n")
        self.write("src/b.dart", "/* import 'a.dart'; */\nimport 'a.dart';\n")
        result = run(self.lib)
        self.assertEqual(result.returncode, 0, result.stdout)

    def test_parts_belong_to_their_library(self):
        # A library and its part name each other (`part` / `part of`): no loop.
        self.write("src/a.dart", "import 'b.dart';\npart 'a_part.dart';\n")
        self.write("src/a_part.dart", "part of 'a.dart';\n")
        self.write("src/b.dart", "library;\n")
        self.assertEqual(run(self.lib).returncode, 0)
        # But a part's imports are its library's: a.dart's part importing c.dart
        # which imports a.dart is a loop.
        self.write("src/a_part.dart", "part of 'a.dart';\n")
        self.write("src/a.dart", "import 'c.dart';\npart 'a_part.dart';\n")
        self.write("src/c.dart", "import 'a_part.dart';\n")
        result = run(self.lib)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("src/a.dart -> src/c.dart -> src/a.dart", result.stdout)

    def test_two_separate_loops_are_both_reported(self):
        self.write("a.dart", "import 'b.dart';\n")
        self.write("b.dart", "import 'a.dart';\n")
        self.write("c.dart", "import 'd.dart';\n")
        self.write("d.dart", "import 'c.dart';\n")
        result = run(self.lib)
        self.assertEqual(result.returncode, 1)
        self.assertIn("a.dart -> b.dart -> a.dart", result.stdout)
        self.assertIn("c.dart -> d.dart -> c.dart", result.stdout)
        self.assertIn("2 import cycle(s)", result.stdout)


if __name__ == "__main__":
    unittest.main()
