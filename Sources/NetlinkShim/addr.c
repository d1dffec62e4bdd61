// Interface addresses: add and list.
#include <errno.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include "internal.h"

int nlshim_addr_add(nlshim_sock *s, const nlshim_addr *a) {
    nlshim_begin(s);
    if (!a) return -EINVAL;
    int len = nlshim_addr_len(a->family);
    if (len == 0) return nlshim_reject(s, -EAFNOSUPPORT, "address family must be AF_INET or AF_INET6");
    if (a->prefixlen > len * 8) return nlshim_reject(s, -EINVAL, "prefix length too long");
    if (a->ifindex <= 0) return -ENODEV;
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    if (!msg) return -ENOMEM;
    struct ifaddrmsg ifa = { .ifa_family = a->family, .ifa_prefixlen = a->prefixlen,
                             .ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = (uint32_t)a->ifindex };
    if (nlmsg_append(msg, &ifa, sizeof(ifa), NLMSG_ALIGNTO) < 0) goto fail;
    // IFA_LOCAL and IFA_ADDRESS equal means "no peer", exactly what `ip addr add` sends; no
    // IFA_BROADCAST, so a /32 gets none (libnl's rtnl_addr would derive one for short prefixes).
    if (nla_put(msg, IFA_LOCAL, len, a->addr) < 0) goto fail;
    if (nla_put(msg, IFA_ADDRESS, len, a->addr) < 0) goto fail;
    return nlshim_transact(s, msg, NULL, NULL);
fail:
    nlmsg_free(msg);
    return -EMSGSIZE;
}

struct list_ctx { nlshim_addr_fn fn; void *ctx; uint8_t family; };

static void on_addr(struct nlmsghdr *hdr, void *arg) {
    struct list_ctx *c = arg;
    if (hdr->nlmsg_type != RTM_NEWADDR) return;
    struct nlattr *tb[IFA_MAX + 1];
    if (nlmsg_parse(hdr, sizeof(struct ifaddrmsg), tb, IFA_MAX, NULL) < 0) return;
    const struct ifaddrmsg *ifa = nlmsg_data(hdr);
    if (ifa->ifa_family != c->family) return;
    nlshim_addr out = { .ifindex = (int32_t)ifa->ifa_index, .family = ifa->ifa_family,
                        .prefixlen = ifa->ifa_prefixlen };
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point
    // links and the only one present for IPv6.
    struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
    if (nlshim_get_addr(a, ifa->ifa_family, out.addr) < 0) return;
    c->fn(&out, c->ctx);
}

int nlshim_addr_list(nlshim_sock *s, uint8_t family, nlshim_addr_fn fn, void *ctx) {
    nlshim_begin(s);
    if (nlshim_addr_len(family) == 0) return nlshim_reject(s, -EAFNOSUPPORT, "address family must be AF_INET or AF_INET6");
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETADDR, NLM_F_DUMP);
    if (!msg) return -ENOMEM;
    struct ifaddrmsg ifa = { .ifa_family = family };
    if (nlmsg_append(msg, &ifa, sizeof(ifa), NLMSG_ALIGNTO) < 0) { nlmsg_free(msg); return -EMSGSIZE; }
    struct list_ctx c = { fn, ctx, family };
    return nlshim_transact(s, msg, on_addr, &c);
}
