// The request/response loop every operation goes through, and how its errors become errno.
#include <errno.h>
#include <linux/netlink.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/socket.h>
#include "internal.h"

// libnl turns the kernel's errno into a lossy NLE_* code before returning it, so record the
// kernel's own errno (and its extended-ack text) here, then stop reading: the error is the
// final message of a request.
int nlshim_on_kernel_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg) {
    (void)who;
    nlshim_sock *s = arg;
    s->last_errno = -e->error;
    // libnl hands us only the payload; the header sits right before it in the receive buffer.
    struct nlmsghdr *hdr = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
    if (hdr->nlmsg_flags & NLM_F_ACK_TLVS) {
        size_t off = sizeof(*e);
        if (!(hdr->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
        off = NLMSG_ALIGN(off);
        if (hdr->nlmsg_len >= NLMSG_HDRLEN + off) {
            struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
            int len = (int)(hdr->nlmsg_len - NLMSG_HDRLEN - off);
            if (nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)e + off), len, NULL) == 0
                && tb[NLMSGERR_ATTR_MSG])
                nla_strlcpy(s->last_message, tb[NLMSGERR_ATTR_MSG], sizeof(s->last_message));
        }
    }
    return NL_STOP;
}

int nlshim_errno(const nlshim_sock *s, int nlerr) {
    if (s && s->last_errno > 0) return -s->last_errno;
    switch (nlerr < 0 ? -nlerr : nlerr) {
    case 0: return 0;
    case NLE_NOMEM: return -ENOMEM;
    case NLE_OBJ_NOTFOUND: return -ENOENT;
    case NLE_NODEV: return -ENODEV;
    case NLE_EXIST: return -EEXIST;
    case NLE_OPNOTSUPP: return -EOPNOTSUPP;
    case NLE_INVAL: return -EINVAL;
    case NLE_RANGE: return -ERANGE;
    case NLE_PERM: return -EPERM;
    case NLE_NOACCESS: return -EACCES;
    case NLE_BUSY: return -EBUSY;
    case NLE_AGAIN: return -EAGAIN;
    case NLE_INTR: return -EINTR;
    // A dump that raced a change: the caller retries the whole dump.
    case NLE_DUMP_INTR: return -EINTR;
    case NLE_BAD_SOCK: return -EBADF;
    case NLE_NOADDR: return -EADDRNOTAVAIL;
    case NLE_AF_NOSUPPORT: return -EAFNOSUPPORT;
    case NLE_PROTO_MISMATCH: return -EPROTONOSUPPORT;
    case NLE_MSGSIZE: case NLE_MSG_TRUNC: return -EMSGSIZE;
    case NLE_MSG_OVERFLOW: return -ENOBUFS;
    case NLE_SEQ_MISMATCH: case NLE_MSG_TOOSHORT: case NLE_PARSE_ERR: return -EPROTO;
    default: return -EIO;
    }
}

struct transact_state {
    nlshim_parse_fn parse;
    void *arg;
    uint32_t seq;    // sequence number of our request
    int done;
    int dump_errno;  // error carried in NLMSG_DONE when a dump fails midway
};

// Replaces libnl's strict in-order check, which fails every later request once one answer was
// left unread (after a receive error): answers to earlier requests are skipped instead.
static int check_seq(struct nl_msg *msg, void *arg) {
    struct transact_state *st = arg;
    return nlmsg_hdr(msg)->nlmsg_seq == st->seq ? NL_OK : NL_SKIP;
}

static int on_valid(struct nl_msg *msg, void *arg) {
    struct transact_state *st = arg;
    if (st->parse) st->parse(nlmsg_hdr(msg), st->arg);
    return NL_OK;
}

static int on_done(struct nl_msg *msg, void *arg) {
    struct transact_state *st = arg;
    struct nlmsghdr *hdr = nlmsg_hdr(msg);
    // libnl ignores NLMSG_DONE's payload, but a dump that failed midway puts -errno there.
    if (hdr->nlmsg_type == NLMSG_DONE && nlmsg_datalen(hdr) >= (int)sizeof(int)) {
        int e;
        memcpy(&e, nlmsg_data(hdr), sizeof(e));
        if (e < 0) st->dump_errno = -e;
    }
    st->done = 1;
    return NL_STOP;
}

int nlshim_transact(nlshim_sock *s, struct nl_msg *msg, nlshim_parse_fn parse, void *arg) {
    int err = nl_send_auto(s->sk, msg);  // adds NLM_F_REQUEST|NLM_F_ACK and the sequence number
    struct transact_state st = { .parse = parse, .arg = arg, .seq = nlmsg_hdr(msg)->nlmsg_seq };
    nlmsg_free(msg);
    if (err < 0) return nlshim_errno(s, err);

    // Clone the socket's callbacks so the error handler above stays in place.
    struct nl_cb *base = nl_socket_get_cb(s->sk);
    struct nl_cb *cb = nl_cb_clone(base);
    nl_cb_put(base);
    if (!cb) return -ENOMEM;
    nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, check_seq, &st);
    nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &st);
    nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_done, &st);
    nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, on_done, &st);

    // A GET's reply and its ACK may come in separate datagrams: read until the ACK, or the next
    // request would trip over the stale ACK's sequence number.
    err = 0;
    while (!st.done) {
        int n = nl_recvmsgs_report(s->sk, cb);
        if (n < 0) { err = n; break; }
        if (n == 0) { err = -NLE_FAILURE; break; }  // EOF: cannot happen on a live socket
    }
    nl_cb_put(cb);
    if (err < 0) return nlshim_errno(s, err);
    if (st.dump_errno) { s->last_errno = st.dump_errno; return -st.dump_errno; }
    return 0;
}
