#!/usr/bin/env bash
# Echo throughput benchmark: our io_uring example server (native/examples/echo_server)
# against single-thread tokio and epoll echo servers, same load client, same run.
# Three tables: round trips per second (with each server's CPU share), server CPU time
# per round trip (which still separates the servers when the client is the limit), and
# resident memory per idle connection with the peak.
#
#   tool/bench.sh [--connections 50,500,2000,10000] [--sizes 64,4096] [--rounds 3] ...
#   tool/bench.sh tls [--connections 50,500] [--sizes 64,4096] [--rounds 3] ...
#
# Arguments go to `iot_bench echo` (see `iot_bench --help`). The defaults (50, 500, 2,000
# and 10,000 connections x 64 and 4096 bytes, 3 s each, one round) take about 2 minutes.
# With `tls` first: `iot_bench tls`, our TLS example server (native/examples/
# tls_echo_server) against a tokio + tokio-rustls one, the same tables over TLS and a
# table of new connections (full handshakes) per second.
# This is a benchmark, not a test: it exits non-zero only if a build or a server run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p iouring_transport --examples
cargo build --release -p iot_bench
if [ "${1:-}" = tls ]; then
  shift
  exec "$target/release/iot_bench" tls --ours "$target/release/examples/tls_echo_server" "$@"
fi
exec "$target/release/iot_bench" echo --ours "$target/release/examples/echo_server" "$@"
