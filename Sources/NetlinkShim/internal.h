// Private to the shim: the socket struct, the one request/response loop, attribute helpers.
#ifndef NLSHIM_INTERNAL_H
#define NLSHIM_INTERNAL_H

#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <stdint.h>
#include <string.h>
#include "nlshim.h"

struct nlshim_sock {
    struct nl_sock *sk;
    int last_errno;          // kernel errno (positive) of the last request, 0 when none
    char last_message[128];  // kernel extended-ack text of the last request
};

/// Starts a public call: forget the previous request's error and message.
static inline void nlshim_begin(nlshim_sock *s) {
    s->last_errno = 0;
    s->last_message[0] = '\0';
}

/// Fails a call before it reaches the kernel, leaving the reason where the kernel's text goes.
static inline int nlshim_reject(nlshim_sock *s, int err, const char *why) {
    strncpy(s->last_message, why, sizeof(s->last_message) - 1);
    s->last_message[sizeof(s->last_message) - 1] = '\0';
    return err;
}

/// Called for every non-control message of a response.
typedef void (*nlshim_parse_fn)(struct nlmsghdr *hdr, void *arg);

/// Sends `msg` (always freed; the caller has called nlshim_begin) and reads until its ACK, NLMSG_DONE or error, passing each data
/// message to `parse` (may be NULL). Returns 0 or -errno.
int nlshim_transact(nlshim_sock *s, struct nl_msg *msg, nlshim_parse_fn parse, void *arg);

/// The socket's error callback: records the kernel's errno and extended-ack text.
int nlshim_on_kernel_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg);

/// -errno for a libnl return code: the kernel's errno when one was recorded, else a mapping.
int nlshim_errno(const nlshim_sock *s, int nlerr);

/// Address byte length for a family, 0 for anything else.
static inline int nlshim_addr_len(int family) {
    return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

/// Copies an address attribute of the expected length; 0 when it fits, -1 otherwise.
static inline int nlshim_get_addr(const struct nlattr *a, int family, uint8_t out[16]) {
    int len = nlshim_addr_len(family);
    if (!a || len == 0 || nla_len(a) != len) return -1;
    memset(out, 0, 16);
    memcpy(out, nla_data(a), (size_t)len);
    return 0;
}

static inline int nlshim_get_u32(const struct nlattr *a, uint32_t *out) {
    if (!a || nla_len(a) < (int)sizeof(uint32_t)) return -1;
    *out = nla_get_u32((struct nlattr *)a);
    return 0;
}

#define NLSHIM_BAD_NAME "interface name empty or longer than 15 bytes"

/// Interface names must leave room for the NUL the kernel expects.
static inline int nlshim_valid_name(const char *name) {
    return name && name[0] && strlen(name) < NLSHIM_IFNAMSIZ;
}

#endif // NLSHIM_INTERNAL_H
