#!/usr/bin/env python3
"""Syntax check for Dart sources without a Dart SDK, using tree-sitter-dart.

Usage: dart_syntax_check.py [PATH ...]   (default: dart/ test/ example/ in the repo root)

Parses every *.dart file under the paths (skipping .dart_tool), reports each
syntax error with file:line:col and the offending source line, and exits 1 if
there is any; otherwise prints "dart syntax: N files OK".

What counts as an error:
  * every ERROR node (outermost only: its inner nodes are the same mistake),
  * every MISSING node (a token the parser had to invent, e.g. a ';'),
  * a reserved word used as a name (`var class = 1;`, `final var x = 1;`,
    `return return;`): the grammar accepts these without any ERROR node, so
    they are checked here (`.new`, the constructor tear-off, is allowed).

Grammar gaps of tree-sitter-dart 0.1.0 (with tree-sitter 0.26.1), found by
parsing Dart 3.0 - 3.10 constructs: records, every pattern kind, switch
expressions, sealed/final/base/interface/mixin class modifiers, extension
types, enhanced enums, dot shorthands, null-aware elements, digit separators,
wildcards and dart:ffi code all parse cleanly, except:

  1. Valid Dart reported as an error:
     * several names in one external field declaration in a class body,
           class A { external int a, b; }        // also `external static int a, b;`
                                                  // and `external var a, b;`
       (top-level `external int a, b;` and `external final int a, b;` parse).
       Workaround: one name per declaration, as FFI structs do anyway.
     * a record literal as a const pattern,
           if (o case const (1, 2)) ...            // `case const (1):` parses
       Workaround: the record pattern `case (1, 2)` matches the same values.
  2. Invalid Dart that still passes: only syntax is checked, not names, types
     or the semantic rules of the Dart analyzer (e.g. `@Uint32 external int x;`
     without the parentheses is well-formed syntax).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATHS = ("dart", "test", "example")

try:
    import tree_sitter
    import tree_sitter_dart
except ImportError:
    # Not running in the tool venv: re-run the calling script there. This also
    # covers check_bindings.py, which imports this module first.
    _venv = ROOT / ".venv"
    if Path(sys.prefix).resolve() != _venv.resolve() and (_venv / "bin" / "python").exists():
        os.execv(_venv / "bin" / "python", [str(_venv / "bin" / "python"), *sys.argv])
    sys.exit("tree-sitter is not installed: run `bash tool/setup_python.sh` first")

# Dart's reserved words: never valid as a name (built-in identifiers such as
# `type`, `sealed` or `required`, and contextual keywords such as `when`, are).
RESERVED = frozenset(
    "assert break case catch class const continue default do else enum extends "
    "false final finally for if in is new null rethrow return super switch this "
    "throw true try var void while with".split()
)
NAME_NODES = ("identifier", "type_identifier")

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_dart.language()))


def parse(source: bytes) -> tree_sitter.Tree:
    return _PARSER.parse(source)


def syntax_problems(tree: tree_sitter.Tree) -> list[tuple[tree_sitter.Node, str]]:
    """(node, description) for each syntax error in the tree, in source order."""
    problems = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            problems.append((node, f"missing {node.type!r}"))
        elif node.is_error:
            problems.append((node, f"unexpected {snippet(node)!r}"))
            continue
        elif node.type in NAME_NODES and node.text.decode() in RESERVED:
            after_dot = node.prev_sibling is not None and node.prev_sibling.type == "."
            if not (node.text == b"new" and after_dot):
                problems.append((node, f"reserved word {node.text.decode()!r} used as a name"))
        stack.extend(reversed(node.children))
    return sorted(problems, key=lambda p: p[0].start_byte)


def snippet(node: tree_sitter.Node, limit: int = 60) -> str:
    text = " ".join(node.text.decode(errors="replace").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_problem(path: str, source: bytes, node: tree_sitter.Node, what: str) -> str:
    """`path:line:col: what`, then the source line with a caret under the column."""
    row, byte_col = node.start_point
    line = source.split(b"\n")[row] if source else b""
    col = len(line[:byte_col].decode(errors="replace"))  # characters, not bytes
    text = line.decode(errors="replace").rstrip()
    return f"{path}:{row + 1}:{col + 1}: {what}\n    {text}\n    {' ' * col}^"


def dart_files(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_file():
            files.append(path)
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d != ".dart_tool")
            files += [Path(dirpath, f) for f in sorted(filenames) if f.endswith(".dart")]
    return files


def main(argv: list[str]) -> int:
    if argv:
        paths = [Path(a) for a in argv]
        absent = [str(p) for p in paths if not p.exists()]
        if absent:
            print(f"dart syntax: no such path: {', '.join(absent)}", file=sys.stderr)
            return 2
    else:  # the defaults may not all exist yet
        paths = [ROOT / p for p in DEFAULT_PATHS if (ROOT / p).exists()]

    files = dart_files(paths)
    reports = []
    for path in files:
        source = path.read_bytes()
        # Relative to where we run when inside it, else as given: never "../".
        absolute = Path(path).resolve()
        shown = str(absolute.relative_to(Path.cwd())) if absolute.is_relative_to(Path.cwd()) else str(path)
        for node, what in syntax_problems(parse(source)):
            reports.append(format_problem(shown, source, node, what))
    if reports:
        print("\n".join(reports))
        print(f"dart syntax: {len(reports)} errors in {len(files)} files")
        return 1
    print(f"dart syntax: {len(files)} files OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
