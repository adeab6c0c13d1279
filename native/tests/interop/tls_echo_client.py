"""A TLS echo client on Python's ssl module (OpenSSL underneath), as an independent
peer for native/tests/tls_interop.rs.

    python3 tls_echo_client.py PORT CAFILE VERSION SIZE SEED

Connects to 127.0.0.1:PORT checking the server's certificate against CAFILE for the name
localhost, with exactly TLS VERSION ("1.2" or "1.3"); sends SIZE bytes (random from
SEED) in 64 KiB chunks, each read back and compared before the next; then sends
close_notify and expects the server's close_notify (a clean end). Prints
`ok VERSION CIPHER ALPN` and exits 0, or exits 1 with the reason on stderr.
"""

import random
import socket
import ssl
import sys

CHUNK = 64 * 1024


def main():
    port, cafile, version, size, seed = sys.argv[1:6]
    size, seed = int(size), int(seed)
    pinned = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[version]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    ctx.minimum_version = ctx.maximum_version = pinned
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    payload = random.Random(seed).randbytes(size)
    with socket.create_connection(("127.0.0.1", int(port)), timeout=20) as raw:
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
        for start in range(0, size, CHUNK):
            chunk = payload[start : start + CHUNK]
            tls.sendall(chunk)
            back = bytearray()
            while len(back) < len(chunk):
                got = tls.recv(len(chunk) - len(back))
                if not got:
                    sys.exit(f"the stream ended after {start + len(back)} of {size} bytes")
                back += got
            if back != chunk:
                sys.exit(f"the echo differs in the chunk at {start}")
        details = (tls.version(), tls.cipher()[0], tls.selected_alpn_protocol())
        # close_notify both ways: unwrap() sends ours and reads the server's.
        tls.unwrap()
        print("ok", *details, flush=True)


if __name__ == "__main__":
    main()
