#!/usr/bin/env bash
# Creates .venv/ in the repo root with the pinned parsers that tool/dart_syntax_check.py
# and tool/check_bindings.py use. Idempotent and quiet on success; needs python3 (>= 3.10)
# with pip, and PyPI.
#
# Pins: tree-sitter-dart 0.1.0 (the only release) ships a grammar of language ABI 15,
# which py-tree-sitter loads from 0.25 on (0.23/0.24 refuse it: "Incompatible Language
# version 15. Must be between 13 and 14"); 0.26.1 is the newest such release.
# tree-sitter-c 0.24.2 is the newest C grammar, also ABI 15.
set -euo pipefail
cd "$(dirname "$0")/.."

PINS=(tree-sitter==0.26.1 tree-sitter-dart==0.1.0 tree-sitter-c==0.24.2)
PY=.venv/bin/python

pins_installed() {
    [ -x "$PY" ] && "$PY" - "${PINS[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    ok = all(version(name) == want for name, want in (p.split("==") for p in sys.argv[1:]))
except PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
EOF
}

pins_installed && exit 0

# A venv left half-made by an interrupted run is rebuilt.
[ -x "$PY" ] || rm -rf .venv
if [ ! -x "$PY" ] && ! python3 -m venv .venv >/dev/null 2>&1; then
    # Debian's python3 lacks ensurepip unless python3-venv is installed: make the venv
    # without pip and fill it with the system pip below.
    rm -rf .venv
    python3 -m venv --without-pip .venv
fi
if "$PY" -m pip --version >/dev/null 2>&1; then
    PIP=("$PY" -m pip)
else
    PIP=(python3 -m pip --python "$PY")  # --python needs pip >= 22.3
fi

"${PIP[@]}" install --quiet --disable-pip-version-check --no-input "${PINS[@]}"
pins_installed
