"""Tests for tool/dart_syntax_check.py, run as a command the way CI runs it."""
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

TOOL = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run(*paths):
    return subprocess.run([sys.executable, str(TOOL / "dart_syntax_check.py"), *map(str, paths)],
                          capture_output=True, text=True)


class DartSyntaxCheckTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)

    def write(self, name, text):
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def test_valid_dart3_files_pass(self):
        result = run(FIXTURES)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(result.stdout, "dart syntax: 2 files OK\n")

    def test_syntax_error_is_reported_with_position_and_snippet(self):
        path = self.write("lib/bad.dart", """\
            void main() {
              final x = 1
              print(x);
            }
            """)
        result = run(self.dir)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"{path}:2:", result.stdout)
        self.assertIn("final x = 1", result.stdout)
        self.assertIn("dart syntax: 1 errors in 1 files", result.stdout)

    def test_missing_token_is_reported(self):
        self.write("a.dart", "final class A { final int x final int y; }\n")
        result = run(self.dir)
        self.assertEqual(result.returncode, 1)
        self.assertIn("missing ';'", result.stdout)

    def test_reserved_word_as_name_is_reported(self):
        # The grammar parses these without an ERROR node.
        self.write("a.dart", "var class = 1;\nvoid f() { final var x = 1; }\n")
        result = run(self.dir)
        self.assertEqual(result.returncode, 1)
        self.assertIn("a.dart:1:5: reserved word 'class' used as a name", result.stdout)
        self.assertIn("a.dart:2:18: reserved word 'var' used as a name", result.stdout)

    def test_constructor_tear_off_new_is_allowed(self):
        self.write("a.dart", "class A {}\nfinal make = A.new;\n")
        self.assertEqual(run(self.dir).returncode, 0)

    def test_dart_tool_is_skipped(self):
        self.write("ok.dart", "void main() {}\n")
        self.write(".dart_tool/gen.dart", "void main( {\n")
        result = run(self.dir)
        self.assertEqual(result.stdout, "dart syntax: 1 files OK\n")

    def test_missing_path_is_an_error(self):
        result = run(self.dir / "nope")
        self.assertEqual(result.returncode, 2)
        self.assertIn("no such path", result.stderr)

    def test_documented_grammar_gaps_still_fail(self):
        # Valid Dart that tree-sitter-dart 0.1.0 rejects (see the script's
        # docstring). If this fails after a grammar upgrade, update the docstring.
        self.write("a.dart", "class A { external int a, b; }\n")
        self.write("b.dart", "void f(Object o) { if (o case const (1, 2)) {} }\n")
        result = run(self.dir)
        self.assertEqual(result.returncode, 1)
        self.assertIn("a.dart:1:", result.stdout)
        self.assertIn("b.dart:1:", result.stdout)


if __name__ == "__main__":
    unittest.main()
