#!/usr/bin/env bash
# Runs cargo for one Rust target triple with a toolchain that can build it:
#   tool/cargo_for.sh TRIPLE build --release -p iouring_transport
# rustup's cargo when the triple is the host or an installed rustup target;
# else, for i686-unknown-linux-gnu, Debian's rustc/cargo with the i386 standard
# library (rustup cannot add that target on our machines), installed with
# apt-get when missing. Any other triple without a toolchain is a clear error.
set -euo pipefail
cd "$(dirname "$0")/.."

triple=${1:?usage: tool/cargo_for.sh TRIPLE CARGO-ARGS...}
shift

# `--target` goes right after the subcommand, before any `--` of the caller's.
subcommand=${1:?usage: tool/cargo_for.sh TRIPLE CARGO-ARGS...}
shift

host=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p' || true)
if [ "$triple" = "$host" ] || { command -v rustup >/dev/null 2>&1 &&
    rustup target list --installed 2>/dev/null | grep -qx "$triple"; }; then
    exec cargo "$subcommand" --target "$triple" "$@"
fi
if [ "$triple" != i686-unknown-linux-gnu ]; then
    echo "no Rust toolchain for $triple: run \`rustup target add $triple\`" >&2
    exit 1
fi

debian_toolchain_ready() {
    [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] &&
        [ -d /usr/lib/rustlib/i686-unknown-linux-gnu/lib ] &&
        [ -e /usr/lib32/crt1.o ] && [ -e /lib/ld-linux.so.2 ]
}
if ! debian_toolchain_ready; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "no Rust toolchain for $triple: install rustc and cargo with the" \
            "i686 standard library and a multilib C toolchain" >&2
        exit 1
    fi
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing the i686 Rust toolchain (Debian: rustc-web, cargo-web, libstd-rust-web-dev:i386, gcc-multilib)"
    $sudo dpkg --add-architecture i386
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        rustc-web cargo-web libstd-rust-web-dev:i386 gcc-multilib libc6:i386 >/dev/null
fi
# .cargo/config.toml adds the io-uring crate's arch-check flag for this target; rustup's
# rustdoc (doc tests) has no i686 standard library, Debian's has.
RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc exec /usr/bin/cargo "$subcommand" --target "$triple" "$@"
