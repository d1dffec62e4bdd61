// Links: list/get, veth and VLAN creation, up, MTU, delete.
//
// Messages are built by hand rather than through rtnl_link objects so each request carries
// exactly the attributes named here (for example: no IFF_UP in the veth creation message, which
// the kernel rejects with ENOTCONN when the peer goes to another namespace).
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include "internal.h"

static int parse_link(struct nlmsghdr *hdr, nlshim_link *out) {
    if (hdr->nlmsg_type != RTM_NEWLINK) return -1;
    struct nlattr *tb[IFLA_MAX + 1];
    if (nlmsg_parse(hdr, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0) return -1;
    const struct ifinfomsg *ifi = nlmsg_data(hdr);

    memset(out, 0, sizeof(*out));
    out->index = ifi->ifi_index;
    out->is_up = (ifi->ifi_flags & IFF_UP) ? 1 : 0;
    if (tb[IFLA_IFNAME]) nla_strlcpy(out->name, tb[IFLA_IFNAME], sizeof(out->name));
    if (tb[IFLA_IFALIAS]) nla_strlcpy(out->alias, tb[IFLA_IFALIAS], sizeof(out->alias));
    if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) == ETH_ALEN) {
        memcpy(out->mac, nla_data(tb[IFLA_ADDRESS]), ETH_ALEN);
        out->has_mac = 1;
    }
    (void)nlshim_get_u32(tb[IFLA_MTU], &out->mtu);
    uint32_t parent = 0;
    if (nlshim_get_u32(tb[IFLA_LINK], &parent) == 0) out->parent_index = (int32_t)parent;

    if (tb[IFLA_LINKINFO]) {
        struct nlattr *li[IFLA_INFO_MAX + 1];
        if (nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) == 0) {
            if (li[IFLA_INFO_KIND]) nla_strlcpy(out->kind, li[IFLA_INFO_KIND], sizeof(out->kind));
            if (strcmp(out->kind, "vlan") == 0 && li[IFLA_INFO_DATA]) {
                struct nlattr *vd[IFLA_VLAN_MAX + 1];
                if (nla_parse_nested(vd, IFLA_VLAN_MAX, li[IFLA_INFO_DATA], NULL) == 0
                    && vd[IFLA_VLAN_ID] && nla_len(vd[IFLA_VLAN_ID]) >= 2)
                    out->vlan_id = nla_get_u16(vd[IFLA_VLAN_ID]);
            }
        }
    }
    return 0;
}

struct list_ctx { nlshim_link_fn fn; void *ctx; };

static void on_link(struct nlmsghdr *hdr, void *arg) {
    struct list_ctx *c = arg;
    nlshim_link link;
    if (parse_link(hdr, &link) == 0) c->fn(&link, c->ctx);
}

struct get_ctx { nlshim_link *out; int found; };

static void on_one_link(struct nlmsghdr *hdr, void *arg) {
    struct get_ctx *c = arg;
    if (!c->found && parse_link(hdr, c->out) == 0) c->found = 1;
}

/// A RTM_*LINK message with its ifinfomsg filled in; NULL when out of memory.
static struct nl_msg *link_msg(int type, int flags, int32_t index, uint32_t ifflags, uint32_t change) {
    struct nl_msg *msg = nlmsg_alloc_simple(type, flags);
    if (!msg) return NULL;
    struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index,
                             .ifi_flags = ifflags, .ifi_change = change };
    if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) { nlmsg_free(msg); return NULL; }
    return msg;
}

int nlshim_link_list(nlshim_sock *s, nlshim_link_fn fn, void *ctx) {
    nlshim_begin(s);
    struct nl_msg *msg = link_msg(RTM_GETLINK, NLM_F_DUMP, 0, 0, 0);
    if (!msg) return -ENOMEM;
    struct list_ctx c = { fn, ctx };
    return nlshim_transact(s, msg, on_link, &c);
}

static int get_link(nlshim_sock *s, struct nl_msg *msg, nlshim_link *out) {
    struct get_ctx c = { out, 0 };
    int err = nlshim_transact(s, msg, on_one_link, &c);
    if (err < 0) return err;
    return c.found ? 0 : -ENODEV;
}

int nlshim_link_get_by_name(nlshim_sock *s, const char *name, nlshim_link *out) {
    nlshim_begin(s);
    if (!out) return -EINVAL;
    if (!nlshim_valid_name(name)) return nlshim_reject(s, -EINVAL, NLSHIM_BAD_NAME);
    struct nl_msg *msg = link_msg(RTM_GETLINK, 0, 0, 0, 0);
    if (!msg) return -ENOMEM;
    if (nla_put_string(msg, IFLA_IFNAME, name) < 0) { nlmsg_free(msg); return -EMSGSIZE; }
    return get_link(s, msg, out);
}

int nlshim_link_get_by_index(nlshim_sock *s, int32_t index, nlshim_link *out) {
    nlshim_begin(s);
    if (!out) return -EINVAL;
    if (index <= 0) return -ENODEV;
    struct nl_msg *msg = link_msg(RTM_GETLINK, 0, index, 0, 0);
    if (!msg) return -ENOMEM;
    return get_link(s, msg, out);
}

int nlshim_link_add_veth(nlshim_sock *s, const char *name, const char *peer_name,
                         int peer_netns_fd, uint32_t mtu, const uint8_t *mac, const uint8_t *peer_mac) {
    nlshim_begin(s);
    if (!nlshim_valid_name(name) || !nlshim_valid_name(peer_name)) return nlshim_reject(s, -EINVAL, NLSHIM_BAD_NAME);
    struct nl_msg *msg = link_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, 0, 0);
    if (!msg) return -ENOMEM;
    struct nlattr *info, *data, *peer;
    struct ifinfomsg peer_ifi = { .ifi_family = AF_UNSPEC };
    if (nla_put_string(msg, IFLA_IFNAME, name) < 0) goto fail;
    if (mtu && nla_put_u32(msg, IFLA_MTU, mtu) < 0) goto fail;
    if (mac && nla_put(msg, IFLA_ADDRESS, ETH_ALEN, mac) < 0) goto fail;
    if (!(info = nla_nest_start(msg, IFLA_LINKINFO))) goto fail;
    if (nla_put_string(msg, IFLA_INFO_KIND, "veth") < 0) goto fail;
    if (!(data = nla_nest_start(msg, IFLA_INFO_DATA))) goto fail;
    // VETH_INFO_PEER holds a whole ifinfomsg followed by the peer's own IFLA_* attributes.
    if (!(peer = nla_nest_start(msg, VETH_INFO_PEER))) goto fail;
    if (nlmsg_append(msg, &peer_ifi, sizeof(peer_ifi), NLMSG_ALIGNTO) < 0) goto fail;
    if (nla_put_string(msg, IFLA_IFNAME, peer_name) < 0) goto fail;
    if (mtu && nla_put_u32(msg, IFLA_MTU, mtu) < 0) goto fail;
    if (peer_mac && nla_put(msg, IFLA_ADDRESS, ETH_ALEN, peer_mac) < 0) goto fail;
    if (peer_netns_fd >= 0 && nla_put_u32(msg, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd) < 0) goto fail;
    nla_nest_end(msg, peer);
    nla_nest_end(msg, data);
    nla_nest_end(msg, info);
    return nlshim_transact(s, msg, NULL, NULL);
fail:
    nlmsg_free(msg);
    return -EMSGSIZE;
}

int nlshim_link_add_vlan(nlshim_sock *s, const char *name, int32_t parent_index,
                         uint16_t vlan_id, const uint8_t mac[6]) {
    nlshim_begin(s);
    if (!mac) return -EINVAL;
    if (!nlshim_valid_name(name)) return nlshim_reject(s, -EINVAL, NLSHIM_BAD_NAME);
    if (parent_index <= 0) return -ENODEV;
    struct nl_msg *msg = link_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, 0, 0);
    if (!msg) return -ENOMEM;
    struct nlattr *info, *data;
    if (nla_put_string(msg, IFLA_IFNAME, name) < 0) goto fail;
    if (nla_put_u32(msg, IFLA_LINK, (uint32_t)parent_index) < 0) goto fail;
    if (nla_put(msg, IFLA_ADDRESS, ETH_ALEN, mac) < 0) goto fail;
    if (!(info = nla_nest_start(msg, IFLA_LINKINFO))) goto fail;
    if (nla_put_string(msg, IFLA_INFO_KIND, "vlan") < 0) goto fail;
    if (!(data = nla_nest_start(msg, IFLA_INFO_DATA))) goto fail;
    if (nla_put_u16(msg, IFLA_VLAN_ID, vlan_id) < 0) goto fail;
    // The protocol is a big-endian ethertype; 802.1Q, not 802.1ad.
    if (nla_put_u16(msg, IFLA_VLAN_PROTOCOL, htons(ETH_P_8021Q)) < 0) goto fail;
    nla_nest_end(msg, data);
    nla_nest_end(msg, info);
    return nlshim_transact(s, msg, NULL, NULL);
fail:
    nlmsg_free(msg);
    return -EMSGSIZE;
}

int nlshim_link_set_up(nlshim_sock *s, int32_t index) {
    nlshim_begin(s);
    if (index <= 0) return -ENODEV;
    struct nl_msg *msg = link_msg(RTM_NEWLINK, 0, index, IFF_UP, IFF_UP);
    if (!msg) return -ENOMEM;
    return nlshim_transact(s, msg, NULL, NULL);
}

int nlshim_link_set_mtu(nlshim_sock *s, int32_t index, uint32_t mtu) {
    nlshim_begin(s);
    if (index <= 0) return -ENODEV;
    struct nl_msg *msg = link_msg(RTM_NEWLINK, 0, index, 0, 0);
    if (!msg) return -ENOMEM;
    if (nla_put_u32(msg, IFLA_MTU, mtu) < 0) { nlmsg_free(msg); return -EMSGSIZE; }
    return nlshim_transact(s, msg, NULL, NULL);
}

int nlshim_link_set_alias(nlshim_sock *s, int32_t index, const char *alias, int up) {
    nlshim_begin(s);
    if (index <= 0) return -ENODEV;
    if (strlen(alias) >= NLSHIM_ALIASSIZ) return -EINVAL;
    struct nl_msg *msg = link_msg(RTM_NEWLINK, 0, index, up ? IFF_UP : 0, up ? IFF_UP : 0);
    if (!msg) return -ENOMEM;
    if (nla_put_string(msg, IFLA_IFALIAS, alias) < 0) { nlmsg_free(msg); return -EMSGSIZE; }
    return nlshim_transact(s, msg, NULL, NULL);
}

int nlshim_link_delete(nlshim_sock *s, int32_t index) {
    nlshim_begin(s);
    if (index <= 0) return -ENODEV;
    struct nl_msg *msg = link_msg(RTM_DELLINK, 0, index, 0, 0);
    if (!msg) return -ENOMEM;
    return nlshim_transact(s, msg, NULL, NULL);
}
