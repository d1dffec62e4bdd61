// Socket lifecycle and namespace switching.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <netlink/handlers.h>
#include <netlink/socket.h>
#include "internal.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

// Creates and connects the socket in the calling thread's current namespace.
static int make_socket(nlshim_sock **out) {
    nlshim_sock *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    s->sk = nl_socket_alloc();
    if (!s->sk) { free(s); return -ENOMEM; }
    int err = nl_connect(s->sk, NETLINK_ROUTE);
    if (err < 0) {
        int e = errno;  // nl_connect fails on socket()/bind(); errno still says why
        nl_socket_free(s->sk);
        free(s);
        return e ? -e : nlshim_errno(NULL, err);
    }
    // One read per reply: a buffer larger than any datagram the kernel builds for a dump (it
    // caps them at 32 KiB unless one message is bigger), instead of peeking at each datagram's
    // size first, which doubled the receive calls of every request.
    nl_socket_disable_msg_peek(s->sk);
    nl_socket_set_msg_buf_size(s->sk, 64 * 1024);
    nl_socket_modify_err_cb(s->sk, NL_CB_CUSTOM, nlshim_on_kernel_error, s);
    // Ask for the kernel's error text, without an echo of our request; older kernels ignore it.
    int one = 1;
    (void)setsockopt(nl_socket_get_fd(s->sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    (void)setsockopt(nl_socket_get_fd(s->sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    *out = s;
    return 0;
}

int nlshim_open(const char *netns_path, nlshim_sock **out) {
    if (!out) return -EINVAL;
    *out = NULL;
    if (!netns_path || !netns_path[0]) return make_socket(out);

    int target = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (target < 0) return -errno;
    // thread-self, not self: setns switches only this thread, so remember this thread's namespace.
    int original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original < 0) { int e = errno; close(target); return -e; }
    if (setns(target, CLONE_NEWNET) < 0) {
        int e = errno;
        close(target); close(original);
        return -e;
    }
    // A netlink socket stays bound to the namespace it was created in, so this is the only
    // moment we need to be inside it.
    int err = make_socket(out);
    if (setns(original, CLONE_NEWNET) < 0) {
        // Continuing would run the caller's later work in the wrong namespace.
        fprintf(stderr, "nlshim: cannot return to the original network namespace: errno %d\n", errno);
        abort();
    }
    close(target);
    close(original);
    return err;
}

void nlshim_close(nlshim_sock *s) {
    if (!s) return;
    nl_socket_free(s->sk);  // closes the fd
    free(s);
}

const char *nlshim_last_error_message(const nlshim_sock *s) {
    return s ? s->last_message : "";
}

int nlshim_netns_open(const char *path) {
    if (!path || !path[0]) return -EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}
