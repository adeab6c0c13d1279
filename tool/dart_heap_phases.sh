#!/usr/bin/env bash
# Where an echo server's Dart heap grows, ours against dart:io's: runs
# bench/dart/heap_phases.dart (server and a dart:io client in one isolate, 8
# connections, phases of round trips) under --verbose_gc for each, and prints the
# old and new generation (used and capacity, MB) after each phase. A diagnosis,
# not a benchmark: one run each, no ratios.
#
#   tool/dart_heap_phases.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. tool/dart_platform.sh
target="${CARGO_TARGET_DIR:-target}"
bash tool/cargo_for.sh "$triple" build --release -p iouring_transport
dart pub get >/dev/null
out="$target/bench-dart"
mkdir -p "$out"
dart compile kernel bench/dart/heap_phases.dart -o "$out/heap_phases.dill" >/dev/null
IOURING_TRANSPORT_LIB="$(cd "$target/$triple/release" && pwd)/libiouring_transport.so"
export IOURING_TRANSPORT_LIB

for impl in transport dartio; do
    echo "== $impl: after each phase, MB (from the last GC before it)"
    dart --packages="$PWD/.dart_tool/package_config.json" --verbose_gc \
        "$out/heap_phases.dill" "$impl" 2>&1 >/dev/null | awk -F, '
        # A GC line of the main isolate: [ main, Kind(reason), #, start, ms,
        # new used before, after, new capacity before, after, new external
        # before, after, old used before, after, old capacity before, after, ...
        /^\[ main/ { old = $13 + 0; oldcap = $15 + 0; newcap = $9 + 0; seen = 1 }
        /^PHASE/ {
            sub(/^PHASE /, "")
            if (seen) printf "  %-14s old used %5.1f  old capacity %5.1f  new capacity %5.1f\n", $0, old, oldcap, newcap
            else printf "  %-14s (no GC yet)\n", $0
        }'
done
