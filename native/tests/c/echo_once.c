/* Proves the generated header is usable from C the way Dart's FFI uses it: one worker
 * connects to its own listener, sends a message, echoes it back and checks it. */
#include "iouring_transport.h"

#include <stdio.h>
#include <string.h>

enum { ACCEPT = 1, CONNECT, SERVER_RECV, CLIENT_SEND, ECHO_SEND, CLIENT_RECV };

static const char MESSAGE[] = "hello from C";

static int fail(const char *what, int code) {
    char text[256];
    iot_error_message(code, text, sizeof text);
    fprintf(stderr, "%s: %s (%d)\n", what, text, code);
    return 1;
}

int main(void) {
    uint64_t worker, listener, server = 0, client = 0;
    uint8_t *base;
    uint32_t size, count, id;
    uint16_t port;
    int rc;
    if ((rc = iot_worker_new(NULL, &worker)) < 0) return fail("worker", rc);
    if ((rc = iot_worker_buffers(worker, &base, &size, &count)) < 0) return fail("buffers", rc);
    if ((rc = iot_tcp_listen(worker, "127.0.0.1", 0, 0, 0, &listener)) < 0) return fail("listen", rc);
    if ((rc = iot_socket_address(worker, listener, IOT_ADDRESS_LOCAL, NULL, 0, &port)) < 0) return fail("address", rc);
    if ((rc = iot_tcp_accept(worker, listener, ACCEPT, 0, 5000)) < 0) return fail("accept", rc);
    if ((rc = iot_tcp_connect(worker, "127.0.0.1", port, CONNECT, 5000)) < 0) return fail("connect", rc);

    iot_completion batch[16];
    for (int round = 0; round < 200; round++) { /* each wait is at most 100 ms */
        if ((rc = iot_worker_flush(worker)) < 0) return fail("flush", rc);
        int n = iot_worker_drain(worker, batch, 16);
        if (n < 0) return fail("drain", n);
        for (int i = 0; i < n; i++) {
            const iot_completion *c = &batch[i];
            if (c->result < 0) return fail("completion", c->result);
            switch (c->tag) {
            case ACCEPT:
                server = c->handle;
                if ((rc = iot_recv(worker, server, SERVER_RECV, 0, 5000)) < 0) return fail("recv", rc);
                break;
            case CONNECT:
                client = c->handle;
                if ((rc = iot_buffer_acquire(worker, &id)) < 0) return fail("acquire", rc);
                memcpy(base + (size_t)id * size, MESSAGE, sizeof MESSAGE);
                if ((rc = iot_send(worker, client, id, 0, sizeof MESSAGE, CLIENT_SEND, 5000)) < 0) return fail("send", rc);
                if ((rc = iot_recv(worker, client, CLIENT_RECV, 0, 5000)) < 0) return fail("recv", rc);
                break;
            case SERVER_RECV: /* echo straight from the receive buffer */
                rc = iot_send(worker, server, c->buffer_id, c->offset, (uint32_t)c->result, ECHO_SEND, 5000);
                if (rc < 0) return fail("echo", rc);
                break;
            case CLIENT_RECV:
                if (c->result != (int32_t)sizeof MESSAGE ||
                    memcmp(base + (size_t)c->buffer_id * size + c->offset, MESSAGE, sizeof MESSAGE) != 0) {
                    fprintf(stderr, "echo mismatch\n");
                    return 1;
                }
                iot_buffer_release(worker, c->buffer_id, c->offset);
                if ((rc = iot_worker_free(worker)) != 0) return fail("free", rc);
                printf("echoed: %s\n", MESSAGE);
                return 0;
            }
        }
        if (n == 0 && (rc = iot_worker_wait(worker, 100)) < 0) return fail("wait", rc);
    }
    fprintf(stderr, "no echo within 20 s\n");
    return 1;
}
