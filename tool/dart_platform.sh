# Sourced by the Dart benchmark scripts, from the repository's root: puts the VM kit
# at ../shared/dart on PATH when no Dart SDK is there, and sets `triple` to the Rust
# target of the Dart VM's platform (the native library it loads is built for it).
# Exits with a message naming the calling script when the platform is unknown.
if ! command -v dart >/dev/null 2>&1 && [ -x ../shared/dart/bin/dart ]; then
    PATH="$(cd ../shared/dart/bin && pwd):$PATH"
fi
case "$(dart --version 2>&1)" in
*'"linux_x64"'*) triple=x86_64-unknown-linux-gnu ;;
*'"linux_ia32"'*) triple=i686-unknown-linux-gnu ;;
*'"linux_arm64"'*) triple=aarch64-unknown-linux-gnu ;;
*) echo "$(basename "$0" .sh): unknown Dart platform: $(dart --version 2>&1)" >&2; exit 1 ;;
esac
