// Benchmark server, not a test: the floor for ipamd's RPC bench. It accepts on a Unix socket and
// answers every frame with one canned AddNetwork reply, doing nothing else (no JSON, no lookup,
// no log), on as many epoll threads as given. What rpc-load measures against it is what this
// machine's kernel, scheduler and client allow; ipamd's figures are read against it.
//
//   rpc-floor SOCKET THREADS
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int listener;
static char reply[256];
static size_t reply_len;

static void *serve(void *unused) {
    (void)unused;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = listener};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) != 0) {
        perror("epoll");
        exit(1);
    }
    struct epoll_event ready[64];
    char buf[4096];
    for (;;) {
        int n = epoll_wait(ep, ready, 64, -1);
        for (int i = 0; i < n; i++) {
            int fd = ready[i].data.fd;
            if (fd == listener) {
                int c = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (c < 0) continue;
                struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                continue;
            }
            // rpc-load writes its whole frame at once; EOF or an error ends the connection.
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) {
                close(fd);
                continue;
            }
            if (write(fd, reply, reply_len) < 0) close(fd);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: rpc-floor SOCKET THREADS\n");
        return 2;
    }
    const char *payload = "{\"network\":{\"branch\":true,\"vlanID\":1},\"success\":true}";
    uint32_t len = htonl((uint32_t)strlen(payload));
    memcpy(reply, "SGPD\x00\x01\x00\x00", 8);
    memcpy(reply + 8, &len, 4);
    memcpy(reply + 12, payload, strlen(payload));
    reply_len = 12 + strlen(payload);

    unlink(argv[1]);
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
    if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 512) != 0) {
        perror("listen");
        return 1;
    }
    int threads = atoi(argv[2]);
    if (threads < 1 || threads > 64) return 2;
    pthread_t t[64];
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, serve, NULL);
    printf("ready\n");
    fflush(stdout);
    pthread_join(t[0], NULL);
    return 0;
}
