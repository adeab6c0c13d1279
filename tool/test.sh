#!/usr/bin/env bash
# The one test command (CI runs exactly this via .ci/run): formatting and lints, the
# native tests through the C ABI (for the host, and again for the Dart VM's target when
# that differs, e.g. i686 for a 32-bit VM), the Dart binding checks, and every Dart
# test, compiled and run on a real Dart VM. The Dart tests always run: with the Dart SDK
# on PATH, or else with the VM kit beside this checkout (../shared/dart); with neither,
# this fails. Every step runs even after one fails; the last line counts every runner's
# passed and failed tests.
set -uo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '\n==> %s (at %d s)\n' "$*" $((SECONDS - started)); }

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed_steps=()

# run NAME CMD...: runs CMD, its output shown and kept in $logs/NAME.
run() {
    local name=$1
    shift
    "$@" 2>&1 | tee "$logs/$name"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || failed_steps+=("$name (exit $rc)")
    return "$rc"
}

step "system packages (C compiler, socat, python3)"
run setup bash tool/setup_system.sh

step "Dart"
if ! command -v dart >/dev/null 2>&1 && [ -x ../shared/dart/bin/dart ]; then
    PATH="$(cd ../shared/dart/bin && pwd):$PATH"
    export PATH
fi
dart_triple=""
dart_version=""
if command -v dart >/dev/null 2>&1; then
    # The kit installs the 32-bit loader on its first run (apt-get), which can fail
    # for a moment: say why, and try once more.
    if ! dart_version=$(dart --version 2>&1); then
        printf 'dart --version failed:\n%s\ntrying again\n' "$dart_version"
        dart_version=$(dart --version 2>&1) || dart_version=""
    fi
fi
if [ -n "$dart_version" ]; then
    echo "$dart_version"
    case "$dart_version" in
    *'"linux_x64"'*) dart_triple=x86_64-unknown-linux-gnu ;;
    *'"linux_ia32"'*) dart_triple=i686-unknown-linux-gnu ;;
    *'"linux_arm64"'*) dart_triple=aarch64-unknown-linux-gnu ;;
    *'"linux_arm"'*) dart_triple=armv7-unknown-linux-gnueabihf ;;
    *'"linux_riscv64"'*) dart_triple=riscv64gc-unknown-linux-gnu ;;
    *) failed_steps+=("dart: unknown platform in: $dart_version") ;;
    esac
elif command -v dart >/dev/null 2>&1; then
    failed_steps+=("dart: 'dart --version' failed")
    echo "FAILED: 'dart --version' failed twice (output above): the Dart tests cannot run."
else
    failed_steps+=("dart: no Dart SDK on PATH and no VM kit at ../shared/dart")
    echo "FAILED: no 'dart' on PATH and no kit at ../shared/dart/bin: the Dart tests cannot run."
fi
host_triple=$(rustc -vV | sed -n 's/^host: //p')

step "rustfmt"
run rustfmt cargo fmt --all --check

step "clippy (warnings are errors)"
run clippy cargo clippy --workspace --all-targets -q -- -D warnings

step "native tests for $host_triple (C ABI, header, C program, examples)"
run native-host cargo test -p iouring_transport

# ---- faults (issue 14): the seeded ABI fuzzer for a bounded time (IOT_FUZZ_SECS, default
# 45; it also runs for 3 s inside the suite above), and the native suite under
# AddressSanitizer with nightly Rust in its own target dir. tool/faults.sh runs the fault
# cases at full size by hand.
step "ABI fuzzer for ${IOT_FUZZ_SECS:-45} s (seeded, two workers, ownership model)"
run native-fuzz env IOT_FUZZ_SECS="${IOT_FUZZ_SECS:-45}" \
    cargo test -p iouring_transport --test faults_fuzz -- --nocapture
if cargo +nightly --version >/dev/null 2>&1; then
    step "native tests under AddressSanitizer (nightly, $host_triple)"
    run native-asan env RUSTFLAGS=-Zsanitizer=address CARGO_TARGET_DIR=target/asan \
        cargo +nightly test -p iouring_transport --target "$host_triple"
else
    echo "SKIPPED: no nightly Rust (\`rustup toolchain install nightly\`): no AddressSanitizer run"
fi
# ---- end of faults

if [ -n "$dart_triple" ] && [ "$dart_triple" != "$host_triple" ]; then
    step "native tests for $dart_triple (the Dart VM's target)"
    run native-dart-target bash tool/cargo_for.sh "$dart_triple" test -p iouring_transport
fi

step "Dart FFI bindings against the C header"
if run python-setup bash tool/setup_python.sh; then
    run python-tests .venv/bin/python -m unittest discover -s tool/tests
    run dart-bindings .venv/bin/python tool/check_bindings.py
    run dart-imports .venv/bin/python tool/check_dart_imports.py
fi

if [ -n "$dart_triple" ]; then
    step "Dart tests on $dart_triple"
    if run native-release bash tool/cargo_for.sh "$dart_triple" build --release -p iouring_transport &&
        run pub-get dart pub get; then
        run dart-tests dart test -j 2
    fi
fi

# Counts: cargo's `test result:` lines, unittest's `Ran N tests` / `FAILED (...)`, the
# Dart runner's last `+passed ~skipped -failed` progress or the kit's `N passed, N failed`.
cat "$logs"/native-* 2>/dev/null | awk '/^test result:/ {p += $4; f += $6} END {print p + 0, f + 0}' >"$logs/count-native"
awk '/^Ran [0-9]+ tests?/ {n += $2}
     /^FAILED \(/ {while (match($0, /(failures|errors)=[0-9]+/)) {split(substr($0, RSTART, RLENGTH), kv, "="); f += kv[2]; $0 = substr($0, RSTART + RLENGTH)}}
     END {print n - f, f + 0}' "$logs/python-tests" 2>/dev/null >"$logs/count-python" || echo "0 0" >"$logs/count-python"
sed 's/\x1b\[[0-9;]*m//g' "$logs/dart-tests" 2>/dev/null | awk '
     /^[0-9]+ passed, [0-9]+ failed/ {kit = $1 " " $3; ks = ($5 == "" ? 0 : $5)}
     match($0, /[0-9]+:[0-9]+ \+[0-9]+( ~[0-9]+)?( -[0-9]+)?:/) {
         s = substr($0, RSTART, RLENGTH); p = s; sub(/^[^+]*\+/, "", p); sub(/[^0-9].*/, "", p)
         f = 0; if (s ~ / -[0-9]+/) {f = s; sub(/.* -/, "", f); sub(/[^0-9].*/, "", f)}
         sk = 0; if (s ~ / ~[0-9]+/) {sk = s; sub(/.* ~/, "", sk); sub(/[^0-9].*/, "", sk)}
         last = p " " f; lasts = sk}
     END {if (kit != "") print kit, ks; else if (last != "") print last, lasts; else print "0 0 0"}' >"$logs/count-dart"

read -r native_passed native_failed <"$logs/count-native"
read -r python_passed python_failed <"$logs/count-python"
read -r dart_passed dart_failed dart_skipped <"$logs/count-dart"
passed=$((native_passed + python_passed + dart_passed))
failed=$((native_failed + python_failed + dart_failed))

# The failures again, last, where a truncated log still shows them: each failing Dart
# test's name, error and first stack lines, and cargo's `failures:` blocks.
if [ "$failed" -ne 0 ] || [ ${#failed_steps[@]} -ne 0 ]; then
    echo
    echo "==> what failed"
    sed 's/\x1b\[[0-9;]*m//g' "$logs/dart-tests" 2>/dev/null | awk '
         / -[0-9]+: .*\[E\]$/ {show = 1; n = 0}
         show && /^[0-9]+:[0-9]+ \+/ && !/\[E\]$/ {show = 0}
         show && n++ < 40 && NF {print}'
    cat "$logs"/native-* 2>/dev/null | awk '
         /^failures:$/ {show = 1; n = 0}
         /^test result:/ {show = 0}
         show && n++ < 80 {print}'
fi

echo
for failure in "${failed_steps[@]}"; do
    echo "failed step: $failure"
done
echo "native: $native_passed passed, $native_failed failed; binding checks: $python_passed passed," \
    "$python_failed failed; Dart: $dart_passed passed, $dart_failed failed, $dart_skipped skipped"
echo "summary: $passed passed, $failed failed (in $((SECONDS - started)) s)"
[ ${#failed_steps[@]} -eq 0 ] && [ "$failed" -eq 0 ]
