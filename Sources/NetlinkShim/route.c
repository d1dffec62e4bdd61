// Routes: replace, delete, list across all tables.
#include <errno.h>
#include <linux/rtnetlink.h>
#include "internal.h"

/// Builds RTM_NEWROUTE/RTM_DELROUTE for `r`. Deletion leaves scope, protocol and type open
/// (RT_SCOPE_NOWHERE, 0, 0) like `ip route del`, so it matches whatever installed the route.
static int route_msg(nlshim_sock *s, const nlshim_route *r, int type, int flags, struct nl_msg **out) {
    int len = nlshim_addr_len(r->family);
    if (len == 0) return nlshim_reject(s, -EAFNOSUPPORT, "address family must be AF_INET or AF_INET6");
    if (r->dst_len > len * 8) return nlshim_reject(s, -EINVAL, "prefix length too long");
    int del = type == RTM_DELROUTE;
    struct rtmsg rtm = {
        .rtm_family = r->family,
        .rtm_dst_len = r->dst_len,
        // The 8-bit field cannot hold tables > 255; RTA_TABLE below always carries the full id.
        .rtm_table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC,
        .rtm_protocol = del ? 0 : RTPROT_BOOT,
        .rtm_scope = del ? RT_SCOPE_NOWHERE : r->scope,
        .rtm_type = del ? RTN_UNSPEC : RTN_UNICAST,
    };
    struct nl_msg *msg = nlmsg_alloc_simple(type, flags);
    if (!msg) return -ENOMEM;
    if (nlmsg_append(msg, &rtm, sizeof(rtm), NLMSG_ALIGNTO) < 0) goto fail;
    if (nla_put_u32(msg, RTA_TABLE, r->table) < 0) goto fail;
    if (r->dst_len > 0 && nla_put(msg, RTA_DST, len, r->dst) < 0) goto fail;
    if (r->has_gateway && nla_put(msg, RTA_GATEWAY, len, r->gateway) < 0) goto fail;
    if (r->oif > 0 && nla_put_u32(msg, RTA_OIF, (uint32_t)r->oif) < 0) goto fail;
    *out = msg;
    return 0;
fail:
    nlmsg_free(msg);
    return -EMSGSIZE;
}

int nlshim_route_replace(nlshim_sock *s, const nlshim_route *r) {
    nlshim_begin(s);
    if (!r) return -EINVAL;
    struct nl_msg *msg;
    int err = route_msg(s, r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &msg);
    return err < 0 ? err : nlshim_transact(s, msg, NULL, NULL);
}

int nlshim_route_delete(nlshim_sock *s, const nlshim_route *r) {
    nlshim_begin(s);
    if (!r) return -EINVAL;
    struct nl_msg *msg;
    int err = route_msg(s, r, RTM_DELROUTE, 0, &msg);
    return err < 0 ? err : nlshim_transact(s, msg, NULL, NULL);
}

struct list_ctx { nlshim_route_fn fn; void *ctx; uint8_t family; };

static void on_route(struct nlmsghdr *hdr, void *arg) {
    struct list_ctx *c = arg;
    if (hdr->nlmsg_type != RTM_NEWROUTE) return;
    struct nlattr *tb[RTA_MAX + 1];
    if (nlmsg_parse(hdr, sizeof(struct rtmsg), tb, RTA_MAX, NULL) < 0) return;
    const struct rtmsg *rtm = nlmsg_data(hdr);
    // Only configured unicast routes: no local/broadcast/multicast entries, no cache clones.
    if (rtm->rtm_family != c->family || rtm->rtm_type != RTN_UNICAST) return;
    if (rtm->rtm_flags & RTM_F_CLONED) return;

    nlshim_route out = { .family = rtm->rtm_family, .dst_len = rtm->rtm_dst_len,
                         .table = rtm->rtm_table, .scope = rtm->rtm_scope };
    (void)nlshim_get_u32(tb[RTA_TABLE], &out.table);
    if (rtm->rtm_dst_len > 0 && nlshim_get_addr(tb[RTA_DST], rtm->rtm_family, out.dst) < 0) return;
    if (nlshim_get_addr(tb[RTA_GATEWAY], rtm->rtm_family, out.gateway) == 0) out.has_gateway = 1;
    uint32_t oif = 0;
    if (nlshim_get_u32(tb[RTA_OIF], &oif) == 0) out.oif = (int32_t)oif;

    // Multipath: take the first nexthop's gateway and device.
    if (!out.has_gateway && out.oif == 0 && tb[RTA_MULTIPATH]
        && nla_len(tb[RTA_MULTIPATH]) >= (int)sizeof(struct rtnexthop)) {
        struct rtnexthop *nh = nla_data(tb[RTA_MULTIPATH]);
        if (nh->rtnh_len >= sizeof(*nh) && nh->rtnh_len <= (unsigned)nla_len(tb[RTA_MULTIPATH])) {
            out.oif = nh->rtnh_ifindex;
            struct nlattr *nht[RTA_MAX + 1];
            int alen = nh->rtnh_len - (int)RTNH_ALIGN(sizeof(*nh));
            if (alen > 0 && nla_parse(nht, RTA_MAX, (struct nlattr *)RTNH_DATA(nh), alen, NULL) == 0
                && nlshim_get_addr(nht[RTA_GATEWAY], rtm->rtm_family, out.gateway) == 0)
                out.has_gateway = 1;
        }
    }
    c->fn(&out, c->ctx);
}

int nlshim_route_list(nlshim_sock *s, uint8_t family, nlshim_route_fn fn, void *ctx) {
    nlshim_begin(s);
    if (nlshim_addr_len(family) == 0) return nlshim_reject(s, -EAFNOSUPPORT, "address family must be AF_INET or AF_INET6");
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETROUTE, NLM_F_DUMP);
    if (!msg) return -ENOMEM;
    struct rtmsg rtm = { .rtm_family = family };
    if (nlmsg_append(msg, &rtm, sizeof(rtm), NLMSG_ALIGNTO) < 0) { nlmsg_free(msg); return -EMSGSIZE; }
    struct list_ctx c = { fn, ctx, family };
    return nlshim_transact(s, msg, on_route, &c);
}
