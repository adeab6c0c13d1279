#!/usr/bin/env bash
# Echo throughput benchmark: our io_uring example server (native/examples/echo_server)
# against single-thread tokio and epoll echo servers, same load client, same run.
# Two tables: round trips per second (with each server's CPU share), then server CPU
# time per round trip, which still separates the servers when the client is the limit.
#
#   tool/bench.sh [--connections 1,50] [--sizes 64,4096] [--seconds 4] [--ours PATH] ...
#
# Arguments go to `iot_bench echo` (see `iot_bench --help`). The defaults take about 55 s.
# This is a benchmark, not a test: it exits non-zero only if a build or a server run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p iouring_transport --examples
cargo build --release -p iot_bench
exec "$target/release/iot_bench" echo --ours "$target/release/examples/echo_server" "$@"
