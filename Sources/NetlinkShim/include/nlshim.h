// nlshim: a flat C API over libnl-3 for the rtnetlink operations the CNI plugin needs.
//
// Why a shim: libnl's types (nl_sock, nl_msg, nlattr, callbacks) import into Swift as opaque
// pointers and C function pointers, and libnl reports errors as lossy NLE_* codes. Here every
// function takes plain ints, byte arrays and small structs, and returns 0 or -errno, where errno
// is the kernel's own answer whenever the kernel gave one. No libnl type appears in this header.
//
// Threading: one nlshim_sock must be used by one thread at a time (it holds a receive state).
// Creating a socket for another namespace switches only the calling thread, and only inside
// nlshim_open; the socket then stays bound to that namespace for its whole life.
#ifndef NLSHIM_H
#define NLSHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Sizes of the fixed text fields below (kernel IFNAMSIZ; link kinds are short words).
#define NLSHIM_IFNAMSIZ 16
#define NLSHIM_KINDSIZ 16
/// IFALIASZ: the kernel keeps at most 255 bytes of alias.
#define NLSHIM_ALIASSIZ 256

// ----- Socket -------------------------------------------------------------------------------

/// A NETLINK_ROUTE socket plus the kernel errno of its last failed request.
typedef struct nlshim_sock nlshim_sock;

/// Opens a socket in the network namespace at `netns_path` (/run/netns/<n>, /proc/<pid>/ns/net),
/// or in the calling thread's namespace when it is NULL or "". Returns 0 or -errno.
int nlshim_open(const char *netns_path, nlshim_sock **out);

void nlshim_close(nlshim_sock *sock);

/// The kernel's extended-ack text for the last failed request ("" when it sent none).
/// Valid until the next request on this socket.
const char *nlshim_last_error_message(const nlshim_sock *sock);

/// Opens a namespace file for use as a veth peer's namespace: fd (O_RDONLY|O_CLOEXEC) or -errno.
int nlshim_netns_open(const char *path);

// ----- Links --------------------------------------------------------------------------------

typedef struct nlshim_link {
    int32_t index;
    char name[NLSHIM_IFNAMSIZ];
    uint8_t mac[6];
    uint8_t has_mac;           // 1 when IFLA_ADDRESS is a 6-byte Ethernet address
    uint8_t is_up;             // administrative IFF_UP
    uint32_t mtu;
    char kind[NLSHIM_KINDSIZ]; // IFLA_INFO_KIND: "veth", "vlan", "dummy", ... or ""
    int32_t parent_index;      // IFLA_LINK (VLAN parent, veth peer), 0 when absent
    uint16_t vlan_id;          // IFLA_VLAN_ID for kind "vlan", else 0
    char alias[NLSHIM_ALIASSIZ]; // IFLA_IFALIAS, "" when unset
} nlshim_link;

typedef void (*nlshim_link_fn)(const nlshim_link *link, void *ctx);

int nlshim_link_list(nlshim_sock *sock, nlshim_link_fn fn, void *ctx);
/// -ENODEV when there is no such link.
int nlshim_link_get_by_name(nlshim_sock *sock, const char *name, nlshim_link *out);
int nlshim_link_get_by_index(nlshim_sock *sock, int32_t index, nlshim_link *out);

/// Creates a veth pair `name` (here) / `peer_name` (in `peer_netns_fd`, or here when -1).
/// `mtu` applies to both ends; 0 keeps the kernel default. `mac` / `peer_mac` set each end's
/// address (NULL: the kernel picks a random one). Neither end is brought up.
int nlshim_link_add_veth(nlshim_sock *sock, const char *name, const char *peer_name,
                         int peer_netns_fd, uint32_t mtu, const uint8_t *mac, const uint8_t *peer_mac);
/// Creates an 802.1Q link on `parent_index` with the given MAC.
int nlshim_link_add_vlan(nlshim_sock *sock, const char *name, int32_t parent_index,
                         uint16_t vlan_id, const uint8_t mac[6]);
int nlshim_link_set_up(nlshim_sock *sock, int32_t index);
int nlshim_link_set_mtu(nlshim_sock *sock, int32_t index, uint32_t mtu);
/// Sets IFLA_IFALIAS (the `ip link ... alias` text); "" clears it. We tag links with their owner.
/// `up` non-zero also sets IFF_UP in the same request.
int nlshim_link_set_alias(nlshim_sock *sock, int32_t index, const char *alias, int up);
int nlshim_link_delete(nlshim_sock *sock, int32_t index);

// ----- Addresses ----------------------------------------------------------------------------

typedef struct nlshim_addr {
    int32_t ifindex;
    uint8_t family;     // AF_INET or AF_INET6
    uint8_t prefixlen;
    uint8_t addr[16];   // first 4 bytes for AF_INET
} nlshim_addr;

typedef void (*nlshim_addr_fn)(const nlshim_addr *addr, void *ctx);

/// Like `ip addr add A/len dev X`: no broadcast, no peer. -EEXIST when already there.
int nlshim_addr_add(nlshim_sock *sock, const nlshim_addr *addr);
int nlshim_addr_list(nlshim_sock *sock, uint8_t family, nlshim_addr_fn fn, void *ctx);

// ----- Routes -------------------------------------------------------------------------------

typedef struct nlshim_route {
    uint8_t family;
    uint8_t dst_len;      // 0 = default route
    uint8_t dst[16];
    uint8_t has_gateway;
    uint8_t gateway[16];
    int32_t oif;          // 0 = none
    uint32_t table;       // full 32-bit table id (RTA_TABLE)
    uint8_t scope;        // RT_SCOPE_*
} nlshim_route;

typedef void (*nlshim_route_fn)(const nlshim_route *route, void *ctx);

/// Creates or replaces (NLM_F_CREATE|NLM_F_REPLACE) a unicast route, protocol boot.
int nlshim_route_replace(nlshim_sock *sock, const nlshim_route *route);
/// Deletes the route with this table and destination (and gateway/oif when given); the scope is
/// not matched, like `ip route del`. -ESRCH when there is none.
int nlshim_route_delete(nlshim_sock *sock, const nlshim_route *route);
/// Unicast routes of `family` in every table; cloned/cache entries are skipped. For multipath
/// routes only the first nexthop is reported.
int nlshim_route_list(nlshim_sock *sock, uint8_t family, nlshim_route_fn fn, void *ctx);

// ----- Rules --------------------------------------------------------------------------------

typedef struct nlshim_rule {
    uint8_t family;
    uint8_t action;          // FR_ACT_*; requests always use FR_ACT_TO_TBL (lookup)
    uint8_t unsupported;     // listing only: uses a selector these fields cannot express
                             // (not, oif, tos, ports, uid range, l3mdev, tun_id, suppress_*)
    uint32_t priority;
    uint32_t table;
    char iif[NLSHIM_IFNAMSIZ];   // "" = any
    uint8_t has_src, src_len, src[16];
    uint8_t has_dst, dst_len, dst[16];
    uint8_t has_fwmark;
    uint32_t fwmark;
    uint8_t has_fwmask;
    uint32_t fwmask;
    uint8_t ip_proto;        // 0 = any
} nlshim_rule;

typedef void (*nlshim_rule_fn)(const nlshim_rule *rule, void *ctx);

/// Adds a lookup rule; -EEXIST when an identical rule exists (NLM_F_EXCL).
int nlshim_rule_add(nlshim_sock *sock, const nlshim_rule *rule);
/// Deletes the first rule matching every given field (priority and table always given).
int nlshim_rule_delete(nlshim_sock *sock, const nlshim_rule *rule);
int nlshim_rule_list(nlshim_sock *sock, uint8_t family, nlshim_rule_fn fn, void *ctx);

// ----- Neighbours ---------------------------------------------------------------------------

typedef struct nlshim_neigh {
    int32_t ifindex;
    uint8_t family;
    uint8_t addr[16];
    uint8_t mac[6];
    uint16_t state;     // NUD_* bits
} nlshim_neigh;

typedef void (*nlshim_neigh_fn)(const nlshim_neigh *neigh, void *ctx);

/// Adds or replaces a NUD_PERMANENT entry (`state` of the argument is ignored).
int nlshim_neigh_add_permanent(nlshim_sock *sock, const nlshim_neigh *neigh);
/// Entries of `family` that carry a 6-byte link-layer address.
int nlshim_neigh_list(nlshim_sock *sock, uint8_t family, nlshim_neigh_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif // NLSHIM_H
