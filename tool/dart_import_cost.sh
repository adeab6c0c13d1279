#!/usr/bin/env bash
# What importing a package costs a JIT Dart VM before the program uses any of it: the
# peak resident size (VmHWM) of a program that only names one type of the package,
# against the same program naming a dart:io type instead, each compiled to a kernel and
# run ROUNDS times alternating. Compares iouring_transport with package:shelf, which a
# dart:io server commonly imports. A diagnosis, not a benchmark: medians and ranges,
# no pass or fail.
#
#   tool/dart_import_cost.sh [ROUNDS]    (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."

. tool/dart_platform.sh
rounds="${1:-5}"
target="${CARGO_TARGET_DIR:-target}"
dart pub get >/dev/null
out="$target/bench-dart/import-cost"
mkdir -p "$out"

# name, import line, a type it names.
programs=(
    "bare|import 'dart:io';|ServerSocket"
    "iouring_transport|import 'package:iouring_transport/iouring_transport.dart';|Worker"
    "shelf|import 'package:shelf/shelf.dart';|Request"
)
for entry in "${programs[@]}"; do
    IFS='|' read -r name import type <<<"$entry"
    source_file="$out/$name.dart"
    cat >"$source_file" <<EOF
import 'dart:io';
$import

void main() {
  final named = <Object>[$type];
  final peak = File('/proc/self/status')
      .readAsLinesSync()
      .firstWhere((line) => line.startsWith('VmHWM:'));
  stdout.writeln('\${named.length} \$peak');
}
EOF
    dart compile kernel "$source_file" -o "$out/$name.dill" >/dev/null
done

declare -A peaks
for _ in $(seq "$rounds"); do
    for entry in "${programs[@]}"; do
        name="${entry%%|*}"
        kib=$(dart --packages="$PWD/.dart_tool/package_config.json" "$out/$name.dill" |
            awk '{print $3}')
        peaks[$name]+="$kib "
    done
done

# median [min-max] of a list of numbers
stats() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {
    m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    printf "%.1f [%.1f-%.1f]", m/1024, v[1]/1024, v[NR]/1024 }'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {
    print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'; }

bare=$(median <<<"${peaks[bare]}")
echo "peak resident size (VmHWM) of a program that names one type, MiB, median [min-max] of $rounds runs"
for entry in "${programs[@]}"; do
    name="${entry%%|*}"
    kernel=$(stat -c %s "$out/$name.dill")
    cost=$(awk -v a="$(median <<<"${peaks[$name]}")" -v b="$bare" \
        'BEGIN { printf "%+.1f", (a - b) / 1024 }')
    printf "  %-18s kernel %5d KiB  peak %s  import cost %s MiB\n" \
        "$name" $((kernel / 1024)) "$(stats <<<"${peaks[$name]}")" "$cost"
done
