#!/usr/bin/env python3
"""Fails when Dart files under a library directory import each other in a loop.

Reads every `import`, `export` and `part` directive of every `.dart` file under the
directory (default: dart/lib of this checkout), following relative URIs and
`package:<package>/` URIs (the package's name is read from the pubspec next to the
directory; default iouring_transport). `dart:` and other packages' URIs are ignored.
A `part` file belongs to the library that names it, so `part` edges never form a
cycle on their own, but a part's imports count as its library's.

Prints one line per cycle found (its files in import order, the first repeated at
the end) and exits 1; exits 0 with a one-line summary when there is none.

Usage: check_dart_imports.py [LIB_DIR] [--package NAME]
"""
import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A directive at the start of a statement: import/export/part, then a quoted URI.
# `part of` names the owning library and is not an edge.
DIRECTIVE = re.compile(
    r"""^\s*(import|export|part)\s+(?!of\b)(?:r?)(['"])(?P<uri>[^'"]+)\2""",
    re.MULTILINE)


def strip_comments(text):
    """Removes // and /* */ comments (not inside strings) so commented-out
    directives are not read."""
    out = []
    i, n = 0, len(text)
    quote = None
    while i < n:
        c = text[i]
        if quote:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if text.startswith(quote, i):
                out.append(text[i + 1:i + len(quote)])
                i += len(quote)
                quote = None
                continue
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif c in "'\"":
            quote = text[i:i + 3] if text.startswith(c * 3, i) else c
            out.append(quote)
            i += len(quote)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def directives(path):
    """(kind, uri) of each directive of the file at [path]."""
    text = strip_comments(path.read_text(encoding="utf-8"))
    return [(m.group(1), m.group("uri")) for m in DIRECTIVE.finditer(text)]


def resolve(uri, source, lib, package):
    """The file [uri] names, seen from [source], or None when it is outside
    [lib] (dart:, another package, a file that does not exist)."""
    if uri.startswith("dart:"):
        return None
    prefix = f"package:{package}/"
    if uri.startswith(prefix):
        target = lib / uri[len(prefix):]
    elif ":" in uri.split("/", 1)[0]:
        return None
    else:
        target = source.parent / uri
    target = Path(*_normalize(target.parts))
    try:
        target.relative_to(lib)
    except ValueError:
        return None
    return target if target.is_file() else None


def _normalize(parts):
    out = []
    for part in parts:
        if part == "..":
            if out:
                out.pop()
        elif part != ".":
            out.append(part)
    return out


def graph(lib, package):
    """Library -> libraries it imports or exports, for every library under
    [lib]; part files are folded into the library that owns them."""
    lib = Path(*_normalize(lib.resolve().parts))
    files = sorted(Path(*_normalize(p.resolve().parts)) for p in lib.rglob("*.dart"))
    found = {f: directives(f) for f in files}
    owner = {}
    for f in files:
        for kind, uri in found[f]:
            if kind == "part":
                part = resolve(uri, f, lib, package)
                if part is not None:
                    owner[part] = f
    edges = {}
    for f in files:
        library = owner.get(f, f)
        targets = edges.setdefault(library, [])
        for kind, uri in found[f]:
            if kind == "part":
                continue
            target = resolve(uri, f, lib, package)
            if target is None:
                continue
            target = owner.get(target, target)
            if target != library and target not in targets:
                targets.append(target)
    return lib, edges


def cycles(edges):
    """The strongly connected components with more than one library, each as
    one cycle through it (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges.get(start, [])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, []))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(set(component))
    return [_cycle_through(component, edges) for component in components]


def _cycle_through(component, edges):
    """One loop inside [component] starting at its first file (by name)."""
    start = min(component)
    # Shortest path back to start, breadth first, staying in the component.
    previous = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in edges.get(node, []):
            if child not in component:
                continue
            if child == start:
                path = [node]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                path.reverse()
                return path + [start], component
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return [start, start], component


def package_name(lib):
    for pubspec in (lib.parent / "pubspec.yaml", ROOT / "dart" / "pubspec.yaml"):
        if pubspec.is_file():
            m = re.search(r"^name:\s*([A-Za-z0-9_]+)", pubspec.read_text(), re.MULTILINE)
            if m:
                return m.group(1)
    return "iouring_transport"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lib", nargs="?", default=str(ROOT / "dart" / "lib"))
    parser.add_argument("--package", default=None)
    args = parser.parse_args(argv)
    lib = Path(args.lib)
    if not lib.is_dir():
        print(f"dart imports: {lib} is not a directory")
        return 2
    package = args.package or package_name(lib)
    lib, edges = graph(lib, package)
    found = cycles(edges)

    def name(path):
        return path.relative_to(lib).as_posix()

    for path, component in found:
        print(f"import cycle: {' -> '.join(name(p) for p in path)}"
              f" ({len(component)} files in the loop: "
              f"{', '.join(sorted(name(p) for p in component))})")
    if found:
        print(f"dart imports: {len(found)} import cycle(s) among {len(edges)} libraries")
        return 1
    print(f"dart imports: {len(edges)} libraries, no import cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
