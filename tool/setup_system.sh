#!/usr/bin/env bash
# System packages the tests use beyond the Rust toolchain: a C compiler (the C header
# test), socat (an independent peer for the Unix socket tests) and openssl (a TLS peer,
# tests/tls_interop.rs). Installs only what is missing, with apt-get (Debian/Ubuntu; root
# or sudo).
set -euo pipefail

missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
