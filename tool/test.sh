#!/usr/bin/env bash
# The one test command (CI runs exactly this via .ci/run): formatting and lints, the
# native tests through the C ABI (including the header-is-current check and a C
# program built against the header), the SDK-free Dart checks, and the Dart tests
# whenever a Dart SDK is on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Runner output is kept to print one summary line at the end.
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "system packages (C compiler, socat)"
bash tool/setup_system.sh

step "rustfmt"
cargo fmt --all --check

step "clippy (warnings are errors)"
cargo clippy --workspace --all-targets -q -- -D warnings

step "native tests (C ABI, header, C program, examples)"
cargo test -p iouring_transport 2>&1 | tee -a "$log"

step "Dart checks without an SDK (tree-sitter syntax check, FFI bindings vs header)"
bash tool/setup_python.sh
.venv/bin/python -m unittest discover -s tool/tests 2>&1 | tee -a "$log"
.venv/bin/python tool/dart_syntax_check.py
.venv/bin/python tool/check_bindings.py

step "Dart tests"
if command -v dart >/dev/null 2>&1; then
    cargo build --release -p iouring_transport
    dart pub get
    dart test
else
    echo "SKIPPED: Dart tests (package:test) -- no 'dart' on PATH."
    echo "         Install a Dart SDK >= 3.6 and rerun tool/test.sh to run them."
fi

passed=$(awk '/^test result:/ {n += $4} /^Ran [0-9]+ tests?/ {n += $2} END {print n + 0}' "$log")
echo
echo "summary: $passed passed, 0 failed"
