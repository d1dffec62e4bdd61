// Neighbour (ARP/NDP) entries: permanent add, list.
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include "internal.h"

int nlshim_neigh_add_permanent(nlshim_sock *s, const nlshim_neigh *n) {
    nlshim_begin(s);
    if (!n) return -EINVAL;
    int len = nlshim_addr_len(n->family);
    if (len == 0) return nlshim_reject(s, -EAFNOSUPPORT, "address family must be AF_INET or AF_INET6");
    if (n->ifindex <= 0) return -ENODEV;
    // Replace as well as create: a stale or failed entry for the same address must not block us.
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
    if (!msg) return -ENOMEM;
    struct ndmsg ndm = { .ndm_family = n->family, .ndm_ifindex = n->ifindex,
                         .ndm_state = NUD_PERMANENT };
    if (nlmsg_append(msg, &ndm, sizeof(ndm), NLMSG_ALIGNTO) < 0) goto fail;
    if (nla_put(msg, NDA_DST, len, n->addr) < 0) goto fail;
    if (nla_put(msg, NDA_LLADDR, ETH_ALEN, n->mac) < 0) goto fail;
    return nlshim_transact(s, msg, NULL, NULL);
fail:
    nlmsg_free(msg);
    return -EMSGSIZE;
}

struct list_ctx { nlshim_neigh_fn fn; void *ctx; uint8_t family; };

static void on_neigh(struct nlmsghdr *hdr, void *arg) {
    struct list_ctx *c = arg;
    if (hdr->nlmsg_type != RTM_NEWNEIGH) return;
    struct nlattr *tb[NDA_MAX + 1];
    if (nlmsg_parse(hdr, sizeof(struct ndmsg), tb, NDA_MAX, NULL) < 0) return;
    const struct ndmsg *ndm = nlmsg_data(hdr);
    if (ndm->ndm_family != c->family) return;
    nlshim_neigh out = { .ifindex = ndm->ndm_ifindex, .family = ndm->ndm_family,
                         .state = ndm->ndm_state };
    if (nlshim_get_addr(tb[NDA_DST], ndm->ndm_family, out.addr) < 0) return;
    // Incomplete/failed entries have no link-layer address yet; nothing useful to report.
    if (!tb[NDA_LLADDR] || nla_len(tb[NDA_LLADDR]) != ETH_ALEN) return;
    memcpy(out.mac, nla_data(tb[NDA_LLADDR]), ETH_ALEN);
    c->fn(&out, c->ctx);
}

int nlshim_neigh_list(nlshim_sock *s, uint8_t family, nlshim_neigh_fn fn, void *ctx) {
    nlshim_begin(s);
    if (nlshim_addr_len(family) == 0) return nlshim_reject(s, -EAFNOSUPPORT, "address family must be AF_INET or AF_INET6");
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETNEIGH, NLM_F_DUMP);
    if (!msg) return -ENOMEM;
    struct ndmsg ndm = { .ndm_family = family };
    if (nlmsg_append(msg, &ndm, sizeof(ndm), NLMSG_ALIGNTO) < 0) { nlmsg_free(msg); return -EMSGSIZE; }
    struct list_ctx c = { fn, ctx, family };
    return nlshim_transact(s, msg, on_neigh, &c);
}
