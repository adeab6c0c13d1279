#!/usr/bin/env bash
# Echo from Dart: the package's payload API (example/echo_server.dart, "transport"), the
# dart:io Socket API over io_uring (bench/dart/iouring_echo_server.dart, "socket") and the
# same Socket code over dart:io's own sockets (bench/dart/dartio_echo_server.dart, which
# imports nothing of the package: "dartio"), on the same Dart VM, one isolate each,
# driven by iot_bench's one-thread epoll client; each is compared against dartio. Tables: round trips per second, server CPU per round trip, resident bytes per
# idle connection and peak resident size, medians with [min-max] over the rounds.
#
#   tool/bench_dart.sh [--connections 50,500,2000] [--sizes 64,4096] [--rounds 3] ...
#   tool/bench_dart.sh --connections 8,64 --sizes 64,4096,65536,262144,1048576   # bulk
#   tool/bench_dart.sh tls [--connections 50,500] ...   # TLS echo and handshakes per
#       second: example/tls_echo.dart, the Socket code over IoUringSecureServerSocket
#       and over dart:io's SecureServerSocket, driven by iot_bench's rustls client
#
# Further arguments go to `iot_bench echo` (see `iot_bench --help`). Uses the Dart SDK on
# PATH, else the VM kit at ../shared/dart. This is a benchmark, not a test: it exits
# non-zero only if a build or a server run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

. tool/dart_platform.sh

mode=echo
if [ "${1:-}" = tls ]; then
    mode=tls
    shift
fi
target="${CARGO_TARGET_DIR:-target}"
bash tool/cargo_for.sh "$triple" build --release -p iouring_transport
cargo build --release -p iot_bench
dart pub get >/dev/null
out="$target/bench-dart"
mkdir -p "$out"
# Kernels, so that no server compiles its source while it is measured.
dart compile kernel example/echo_server.dart -o "$out/transport_echo.dill" >/dev/null
dart compile kernel bench/dart/iouring_echo_server.dart -o "$out/socket_echo.dill" >/dev/null
dart compile kernel bench/dart/dartio_echo_server.dart -o "$out/dartio_echo.dill" >/dev/null
vm="dart --packages=$PWD/.dart_tool/package_config.json"
# The servers load the library from this path, as a deployed program does (a packed one
# finds it next to its executable), not through the repository lookup, which resolves
# the package's URI and costs a JIT VM about 1 MiB of peak memory once.
IOURING_TRANSPORT_LIB="$(cd "$target/$triple/release" && pwd)/libiouring_transport.so"
export IOURING_TRANSPORT_LIB

if [ "$mode" = tls ]; then
    dart compile kernel example/tls_echo.dart -o "$out/transport_tls.dill" >/dev/null
    dart compile kernel bench/dart/iouring_tls_echo_server.dart -o "$out/socket_tls.dill" >/dev/null
    dart compile kernel bench/dart/dartio_tls_echo_server.dart -o "$out/dartio_tls.dill" >/dev/null
    # iot_bench gives each named server --cert/--key of the certificate it made.
    exec "$target/release/iot_bench" tls \
        --connections 50,500 --rounds 3 \
        --servers transport,socket,dartio --baseline dartio \
        --server "transport=$vm $out/transport_tls.dill --host 127.0.0.1 --port 0" \
        --server "socket=$vm $out/socket_tls.dill --port 0" \
        --server "dartio=$vm $out/dartio_tls.dill --port 0" \
        --timeout 10 "$@"
fi

exec "$target/release/iot_bench" echo \
    --connections 50,500,2000 --rounds 3 \
    --servers transport,socket,dartio --baseline dartio \
    --server "transport=$vm $out/transport_echo.dill --host 127.0.0.1 --port 0 --isolates 1" \
    --server "socket=$vm $out/socket_echo.dill --port 0" \
    --server "dartio=$vm $out/dartio_echo.dill --port 0" \
    --timeout 10 "$@"
