"""A one-connection TLS echo server on Python's ssl module (OpenSSL underneath), as an
independent peer for native/tests/tls_interop.rs.

    python3 tls_echo_server.py CERTFILE KEYFILE VERSION

Listens on 127.0.0.1 (an ephemeral port, printed as `port N`), accepts one client with
exactly TLS VERSION ("1.2" or "1.3") and ALPN http/1.1, echoes every byte until the
client's close_notify, answers it with its own, and prints `done VERSION CIPHER ALPN
BYTES`. Every wait is bounded (20 s).
"""

import socket
import ssl
import sys


def main():
    certfile, keyfile, version = sys.argv[1:4]
    pinned = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[version]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    ctx.minimum_version = ctx.maximum_version = pinned
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(20)
        print("port", listener.getsockname()[1], flush=True)
        raw, _ = listener.accept()
        raw.settimeout(20)
        tls = ctx.wrap_socket(raw, server_side=True)
        echoed = 0
        while True:
            data = tls.recv(65536)
            if not data:  # the client's close_notify
                break
            tls.sendall(data)
            echoed += len(data)
        details = (tls.version(), tls.cipher()[0], tls.selected_alpn_protocol())
        tls.unwrap().close()
        print("done", *details, echoed, flush=True)


if __name__ == "__main__":
    main()
