#!/usr/bin/env bash
# The fault cases of issue 14 at full size, run by hand (CI runs the same tests at
# sizes that fit its time budget, through `cargo test` and tool/test.sh):
#   1 GiB byte-exact echo, half-close with 64 MiB in flight, 1,000 connect+RST,
#   500 slowloris clients, the ABI fuzzer for 10 minutes (seed: IOT_FUZZ_SEED),
#   plus the fairness, accept (EMFILE), handle, buffer-ownership and limit tests.
# Release build, so the large echoes take seconds, not minutes. Any variable below can
# be set before the call to change a size.
set -euo pipefail
cd "$(dirname "$0")/.."

export IOT_FAULT_INTEGRITY_BYTES=${IOT_FAULT_INTEGRITY_BYTES:-1073741824}
export IOT_FAULT_HALF_CLOSE_BYTES=${IOT_FAULT_HALF_CLOSE_BYTES:-67108864}
export IOT_FAULT_RESETS=${IOT_FAULT_RESETS:-1000}
export IOT_FAULT_SLOW_CLIENTS=${IOT_FAULT_SLOW_CLIENTS:-500}
export IOT_FAULT_SLOW_ROUNDS=${IOT_FAULT_SLOW_ROUNDS:-20}
export IOT_FUZZ_SECS=${IOT_FUZZ_SECS:-600}

# `--test` alone builds no examples, and some fault tests run them.
cargo build --release -p iouring_transport --examples
exec cargo test --release -p iouring_transport --test 'faults_*' -- --nocapture "$@"
