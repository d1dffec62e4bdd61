// Benchmark client, not a test: N requests to ipamd's RPC socket from C concurrent clients, one
// connection per request as aws-cni does. Prints one JSON line with nearest-rank percentiles.
// Written in C so the client's own overhead stays in microseconds (a Python client holding
// the GIL across 16 threads would measure itself, not ipamd).
//
//   rpc-load SOCKET REQUESTS CLIENTS POD_COUNT
// Request i is an AddNetwork for pod bench/pod-<(i % POD_COUNT) + 1>, a pod ipamd knows.
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *sock_path;
static int total, clients, pods;
static double *latency_ms;
static int next_request, errors;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int read_full(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

// One AddNetwork on a fresh connection; 0 when ipamd answered with a network.
static int one_request(int i) {
    char payload[512], frame[600], header[12];
    int n = snprintf(payload, sizeof payload,
                     "{\"method\":\"AddNetwork\",\"pod\":{\"podName\":\"pod-%d\",\"podNamespace\":\"bench\",\"podUID\":\"\","
                     "\"containerID\":\"cid-%d\",\"netns\":\"/proc/1/ns/net\",\"ifName\":\"eth0\",\"networkName\":\"aws-cni\"}}",
                     i % pods + 1, i % pods + 1);
    memcpy(frame, "SGPD\x00\x01\x00\x00", 8);
    uint32_t len = htonl((uint32_t)n);
    memcpy(frame + 8, &len, 4);
    memcpy(frame + 12, payload, (size_t)n);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, sock_path, sizeof a.sun_path - 1);
    int rc = -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, frame, 12 + (size_t)n) == 12 + n &&
        read_full(fd, header, 12) == 0) {
        uint32_t rlen;
        memcpy(&rlen, header + 8, 4);
        rlen = ntohl(rlen);
        char *reply = malloc(rlen + 1);
        if (reply && read_full(fd, reply, rlen) == 0) {
            reply[rlen] = 0;
            rc = strstr(reply, "\"network\"") && !strstr(reply, "\"error\"") ? 0 : -1;
        }
        free(reply);
    }
    close(fd);
    return rc;
}

static void *client(void *unused) {
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&lock);
        int i = next_request < total ? next_request++ : -1;
        pthread_mutex_unlock(&lock);
        if (i < 0) return NULL;
        double t0 = now_ms();
        int rc = one_request(i);
        latency_ms[i] = now_ms() - t0;
        if (rc != 0) __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
    }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Nearest rank: the smallest sample with at least p% of the samples at or below it.
static double rank(double p) {
    int k = (int)((p / 100.0) * total + 0.999999);
    return latency_ms[(k < 1 ? 1 : k) - 1];
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: rpc-load SOCKET REQUESTS CLIENTS POD_COUNT\n");
        return 2;
    }
    sock_path = argv[1];
    total = atoi(argv[2]);
    clients = atoi(argv[3]);
    pods = atoi(argv[4]);
    if (total < 1 || clients < 1 || pods < 1) return 2;
    latency_ms = calloc((size_t)total, sizeof *latency_ms);
    pthread_t t[clients];
    double t0 = now_ms();
    for (int c = 0; c < clients; c++) pthread_create(&t[c], NULL, client, NULL);
    for (int c = 0; c < clients; c++) pthread_join(t[c], NULL);
    double wall = now_ms() - t0;
    qsort(latency_ms, (size_t)total, sizeof *latency_ms, cmp);
    printf("{\"requests\":%d,\"clients\":%d,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
           "\"errors\":%d,\"wall_s\":%.3f,\"per_second\":%.0f}\n",
           total, clients, rank(50), rank(90), rank(99), latency_ms[total - 1], errors, wall / 1e3, total / (wall / 1e3));
    return errors ? 1 : 0;
}
