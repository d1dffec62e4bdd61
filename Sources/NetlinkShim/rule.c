// Policy routing rules: add, delete, list.
//
// Built by hand instead of through rtnl_rule: libnl's getters cannot say whether priority, mark
// or mask were present, and a delete must carry every field so the kernel removes exactly the
// rule we mean (it matches only the attributes present in the request).
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include "internal.h"

// Whether an optional selector attribute is present with a value other than its "unset" one.
static int set_u32(const struct nlattr *a, uint32_t unset) {
    uint32_t v;
    return nlshim_get_u32(a, &v) == 0 && v != unset;
}
static int set_u8(const struct nlattr *a) {
    return a && nla_len(a) >= 1 && nla_get_u8((struct nlattr *)a) != 0;
}
static int set_u64(const struct nlattr *a) {
    return a && nla_len(a) >= 8 && nla_get_u64((struct nlattr *)a) != 0;
}
static int set_ports(const struct nlattr *a) {
    struct fib_rule_port_range r;
    if (!a || nla_len(a) < (int)sizeof(r)) return 0;
    memcpy(&r, nla_data(a), sizeof(r));
    return r.start != 0 || r.end != 0;
}
static int set_uid_range(const struct nlattr *a) {
    struct fib_rule_uid_range r;
    if (!a || nla_len(a) < (int)sizeof(r)) return 0;
    memcpy(&r, nla_data(a), sizeof(r));
    return r.start != 0 || r.end != UINT32_MAX;
}

static int rule_msg(nlshim_sock *s, const nlshim_rule *r, int type, int flags, struct nl_msg **out) {
    int len = nlshim_addr_len(r->family);
    if (len == 0) return nlshim_reject(s, -EAFNOSUPPORT, "address family must be AF_INET or AF_INET6");
    if ((r->has_src && r->src_len > len * 8) || (r->has_dst && r->dst_len > len * 8))
        return nlshim_reject(s, -EINVAL, "prefix length too long");
    if (strnlen(r->iif, NLSHIM_IFNAMSIZ) >= NLSHIM_IFNAMSIZ)
        return nlshim_reject(s, -EINVAL, "iif name not NUL-terminated within 16 bytes");
    struct fib_rule_hdr frh = {
        .family = r->family,
        .dst_len = r->has_dst ? r->dst_len : 0,
        .src_len = r->has_src ? r->src_len : 0,
        // As for routes, the 8-bit field cannot hold tables > 255; FRA_TABLE carries the full id.
        .table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC,
        .action = FR_ACT_TO_TBL,
    };
    struct nl_msg *msg = nlmsg_alloc_simple(type, flags);
    if (!msg) return -ENOMEM;
    if (nlmsg_append(msg, &frh, sizeof(frh), NLMSG_ALIGNTO) < 0) goto fail;
    if (nla_put_u32(msg, FRA_TABLE, r->table) < 0) goto fail;
    if (nla_put_u32(msg, FRA_PRIORITY, r->priority) < 0) goto fail;
    if (r->has_src && nla_put(msg, FRA_SRC, len, r->src) < 0) goto fail;
    if (r->has_dst && nla_put(msg, FRA_DST, len, r->dst) < 0) goto fail;
    if (r->iif[0] && nla_put_string(msg, FRA_IIFNAME, r->iif) < 0) goto fail;
    if (r->has_fwmark && nla_put_u32(msg, FRA_FWMARK, r->fwmark) < 0) goto fail;
    if (r->has_fwmask && nla_put_u32(msg, FRA_FWMASK, r->fwmask) < 0) goto fail;
    if (r->ip_proto && nla_put_u8(msg, FRA_IP_PROTO, r->ip_proto) < 0) goto fail;
    *out = msg;
    return 0;
fail:
    nlmsg_free(msg);
    return -EMSGSIZE;
}

int nlshim_rule_add(nlshim_sock *s, const nlshim_rule *r) {
    nlshim_begin(s);
    if (!r) return -EINVAL;
    struct nl_msg *msg;
    // NLM_F_EXCL makes an identical rule an EEXIST error rather than a silent duplicate.
    int err = rule_msg(s, r, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, &msg);
    return err < 0 ? err : nlshim_transact(s, msg, NULL, NULL);
}

int nlshim_rule_delete(nlshim_sock *s, const nlshim_rule *r) {
    nlshim_begin(s);
    if (!r) return -EINVAL;
    struct nl_msg *msg;
    int err = rule_msg(s, r, RTM_DELRULE, 0, &msg);
    return err < 0 ? err : nlshim_transact(s, msg, NULL, NULL);
}

struct list_ctx { nlshim_rule_fn fn; void *ctx; uint8_t family; };

static void on_rule(struct nlmsghdr *hdr, void *arg) {
    struct list_ctx *c = arg;
    if (hdr->nlmsg_type != RTM_NEWRULE) return;
    struct nlattr *tb[FRA_MAX + 1];
    if (nlmsg_parse(hdr, sizeof(struct fib_rule_hdr), tb, FRA_MAX, NULL) < 0) return;
    const struct fib_rule_hdr *frh = nlmsg_data(hdr);
    if (frh->family != c->family) return;

    nlshim_rule out = { .family = frh->family, .action = frh->action, .table = frh->table };
    (void)nlshim_get_u32(tb[FRA_TABLE], &out.table);
    (void)nlshim_get_u32(tb[FRA_PRIORITY], &out.priority);  // absent means priority 0
    if (tb[FRA_IIFNAME]) nla_strlcpy(out.iif, tb[FRA_IIFNAME], sizeof(out.iif));
    if (nlshim_get_addr(tb[FRA_SRC], frh->family, out.src) == 0) {
        out.has_src = 1;
        out.src_len = frh->src_len;
    }
    if (nlshim_get_addr(tb[FRA_DST], frh->family, out.dst) == 0) {
        out.has_dst = 1;
        out.dst_len = frh->dst_len;
    }
    if (nlshim_get_u32(tb[FRA_FWMARK], &out.fwmark) == 0) out.has_fwmark = 1;
    if (nlshim_get_u32(tb[FRA_FWMASK], &out.fwmask) == 0) out.has_fwmask = 1;
    if (tb[FRA_IP_PROTO] && nla_len(tb[FRA_IP_PROTO]) >= 1) out.ip_proto = nla_get_u8(tb[FRA_IP_PROTO]);

    // Selectors the struct cannot carry: reporting such a rule without them would make it look
    // broader than it is, and deleting "it" could remove a different rule.
    if ((frh->flags & FIB_RULE_INVERT) || frh->tos || tb[FRA_OIFNAME] || tb[FRA_GOTO]
        || set_u32(tb[FRA_FLOW], 0) || set_u8(tb[FRA_L3MDEV]) || set_u64(tb[FRA_TUN_ID])
        || set_ports(tb[FRA_SPORT_RANGE]) || set_ports(tb[FRA_DPORT_RANGE])
        || set_uid_range(tb[FRA_UID_RANGE])
        // The kernel sends the suppress_* attributes even when unset, as -1.
        || set_u32(tb[FRA_SUPPRESS_PREFIXLEN], UINT32_MAX) || set_u32(tb[FRA_SUPPRESS_IFGROUP], UINT32_MAX))
        out.unsupported = 1;
    c->fn(&out, c->ctx);
}

int nlshim_rule_list(nlshim_sock *s, uint8_t family, nlshim_rule_fn fn, void *ctx) {
    nlshim_begin(s);
    if (nlshim_addr_len(family) == 0) return nlshim_reject(s, -EAFNOSUPPORT, "address family must be AF_INET or AF_INET6");
    struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETRULE, NLM_F_DUMP);
    if (!msg) return -ENOMEM;
    struct fib_rule_hdr frh = { .family = family };
    if (nlmsg_append(msg, &frh, sizeof(frh), NLMSG_ALIGNTO) < 0) { nlmsg_free(msg); return -EMSGSIZE; }
    struct list_ctx c = { fn, ctx, family };
    return nlshim_transact(s, msg, on_rule, &c);
}
