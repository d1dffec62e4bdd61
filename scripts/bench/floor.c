// Bench floor (not part of the product): one process doing, with libnl, the netlink requests
// and sysctl writes that `aws-cni` strict ADD/DEL need for one branch pod (SPEC section 3),
// with nothing else: no ipamd RPC, no config decoding, no logging, no checks for leftovers.
// It shows what the kernel work alone costs, so the plugin's figures can be read against it.
//
//   floor add NETNS VLAN MAC POD_IP GATEWAY TRUNK HOST_VETH [OWNER]
//   floor del VLAN HOST_VETH
//   floor add-regular NETNS POD_IP HOST_VETH DEVICE_NUMBER [OWNER]
//   floor del-regular POD_IP HOST_VETH DEVICE_NUMBER
//   floor noop          (exec + libnl load only: the process start cost)
//
// add: 17 netlink requests (veth, 4 link lookups/changes, pod address/routes/neighbour, VLAN link,
// 3 table routes, 2 rules) + 6 IPv6 sysctl writes. del: 4 requests (veth, VLAN link, 2 rules;
// routes and addresses go with the links). add-regular (a regular pod, SPEC section 3a): the
// same pod side, then the host route in main, the 512 rule and, for an address of a secondary
// ENI (device number > 0), the 1536 rule to its table (device number + 1). del-regular: the veth
// and the rules. FLOOR_TIMING=1 prints the in-process time to stderr.
// Build: gcc -O2 floor.c $(pkg-config --cflags --libs libnl-route-3.0)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/fib_rules.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/vlan.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>

#define POD_IF "eth0"
#define POD_MTU 9001
#define POD_GW "169.254.1.1"

static const char *step = "start";

static void die(const char *what) {
    fprintf(stderr, "floor: %s: %s\n", step, what);
    exit(1);
}
static void nlcheck(int err) {
    if (err < 0) die(nl_geterror(err));
}
// DEL is idempotent like aws-cni's: a missing object is not an error.
static void nlcheck_absent_ok(int err) {
    if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV) die(nl_geterror(err));
}

static struct nl_sock *sock_here(void) {
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk) die("out of memory");
    nlcheck(nl_connect(sk, NETLINK_ROUTE));
    return sk;
}

// A netlink socket stays in the namespace it was created in: enter the pod netns only for that.
static struct nl_sock *sock_in(int target_fd, int home_fd) {
    if (setns(target_fd, CLONE_NEWNET) < 0) die(strerror(errno));
    struct nl_sock *sk = sock_here();
    if (setns(home_fd, CLONE_NEWNET) < 0) die(strerror(errno));
    return sk;
}

static struct nl_addr *addr(const char *text, int family) {
    struct nl_addr *a;
    nlcheck(nl_addr_parse(text, family, &a));
    return a;
}

static int link_index(struct nl_sock *sk, const char *name, struct nl_addr **mac) {
    struct rtnl_link *l;
    nlcheck(rtnl_link_get_kernel(sk, 0, name, &l));
    int idx = rtnl_link_get_ifindex(l);
    if (mac) *mac = nl_addr_clone(rtnl_link_get_addr(l));
    rtnl_link_put(l);
    return idx;
}

// RTM_NEWLINK on an existing link: up and/or alias in one request.
static void link_change(struct nl_sock *sk, int index, int up, const char *alias) {
    struct rtnl_link *orig = rtnl_link_alloc(), *chg = rtnl_link_alloc();
    rtnl_link_set_ifindex(orig, index);
    if (up) rtnl_link_set_flags(chg, IFF_UP);
    if (alias) rtnl_link_set_ifalias(chg, alias);
    nlcheck(rtnl_link_change(sk, orig, chg, 0));
    rtnl_link_put(orig);
    rtnl_link_put(chg);
}

// Same shape as aws-cni's routes (proto boot, replace): dst [via gw] dev index [scope] table.
static void route(struct nl_sock *sk, uint32_t table, const char *dst, const char *gw, int index, uint8_t scope) {
    struct rtnl_route *r = rtnl_route_alloc();
    rtnl_route_set_family(r, AF_INET);
    rtnl_route_set_table(r, table);
    rtnl_route_set_protocol(r, RTPROT_BOOT);
    rtnl_route_set_scope(r, scope);
    rtnl_route_set_type(r, RTN_UNICAST);
    struct nl_addr *d = addr(dst, AF_INET);
    nlcheck(rtnl_route_set_dst(r, d));
    nl_addr_put(d);
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    rtnl_route_nh_set_ifindex(nh, index);
    if (gw) {
        struct nl_addr *g = addr(gw, AF_INET);
        rtnl_route_nh_set_gateway(nh, g);
        nl_addr_put(g);
    }
    rtnl_route_add_nexthop(r, nh);
    nlcheck(rtnl_route_add(sk, r, NLM_F_CREATE | NLM_F_REPLACE));
    rtnl_route_put(r);
}

static struct rtnl_rule *iif_rule(const char *iif, uint32_t table) {
    struct rtnl_rule *r = rtnl_rule_alloc();
    rtnl_rule_set_family(r, AF_INET);
    rtnl_rule_set_prio(r, 10);
    rtnl_rule_set_table(r, table);
    rtnl_rule_set_action(r, FR_ACT_TO_TBL);
    nlcheck(rtnl_rule_set_iif(r, iif));
    return r;
}

// IPv6 per-link sysctls (SPEC section 3); ENOENT when the kernel has no IPv6 is fine.
static void link_sysctls(const char *link) {
    static const char *keys[][2] = { { "accept_ra", "0" }, { "accept_redirects", "1" }, { "forwarding", "0" } };
    char path[128];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/%s", link, keys[i][0]);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT) continue;
            die(strerror(errno));
        }
        if (write(fd, keys[i][1], 1) != 1) die(strerror(errno));
        close(fd);
    }
}

// The pod side, shared by branch and regular pods: the veth (host end up, tagged, its IPv6
// sysctls), the pod's /32, its routes via 169.254.1.1 and the permanent neighbour for it.
// Returns the host veth's index.
static int pod_side(struct nl_sock *host, struct nl_sock *pod, int home_fd, const char *veth, const char *pod_ip, const char *owner) {
    char buf[64];
    // Created from the pod side with the peer placed in the host by fd, so the pod end can be
    // up in the creating message (the peer cannot: ENOTCONN until both ends exist).
    step = "create veth";
    struct rtnl_link *v = rtnl_link_veth_alloc();
    rtnl_link_set_name(v, POD_IF);
    rtnl_link_set_mtu(v, POD_MTU);
    rtnl_link_set_flags(v, IFF_UP);
    struct rtnl_link *peer = rtnl_link_veth_get_peer(v);
    rtnl_link_set_name(peer, veth);
    rtnl_link_set_mtu(peer, POD_MTU);
    rtnl_link_set_ns_fd(peer, home_fd);
    rtnl_link_put(peer);
    nlcheck(rtnl_link_add(pod, v, NLM_F_CREATE | NLM_F_EXCL));
    rtnl_link_put(v);

    step = "look up links";
    int pod_if = link_index(pod, POD_IF, NULL);
    struct nl_addr *veth_mac;
    int veth_if = link_index(host, veth, &veth_mac);
    step = "host veth up";
    link_change(host, veth_if, 1, owner);
    link_sysctls(veth);

    step = "pod address";
    struct rtnl_addr *ad = rtnl_addr_alloc();
    rtnl_addr_set_ifindex(ad, pod_if);
    snprintf(buf, sizeof(buf), "%s/32", pod_ip);
    struct nl_addr *local = addr(buf, AF_INET);
    nlcheck(rtnl_addr_set_local(ad, local));
    nlcheck(rtnl_addr_add(pod, ad, 0));
    step = "pod routes";
    route(pod, RT_TABLE_MAIN, POD_GW "/32", NULL, pod_if, RT_SCOPE_LINK);
    route(pod, RT_TABLE_MAIN, "0.0.0.0/0", POD_GW, pod_if, RT_SCOPE_UNIVERSE);
    step = "pod neighbour";
    struct rtnl_neigh *ne = rtnl_neigh_alloc();
    rtnl_neigh_set_family(ne, AF_INET);
    rtnl_neigh_set_ifindex(ne, pod_if);
    struct nl_addr *pgw = addr(POD_GW, AF_INET);
    nlcheck(rtnl_neigh_set_dst(ne, pgw));
    rtnl_neigh_set_lladdr(ne, veth_mac);
    rtnl_neigh_set_state(ne, NUD_PERMANENT);
    nlcheck(rtnl_neigh_add(pod, ne, NLM_F_CREATE | NLM_F_REPLACE));
    return veth_if;
}

// The netlink sockets of one ADD: the host's, and one created in the pod netns.
static void open_sockets(const char *netns, struct nl_sock **host, struct nl_sock **pod, int *home_fd) {
    step = "open namespaces";
    int pod_fd = open(netns, O_RDONLY | O_CLOEXEC);
    *home_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (pod_fd < 0 || *home_fd < 0) die(strerror(errno));
    *host = sock_here();
    *pod = sock_in(pod_fd, *home_fd);
}

static int cmd_add(char **a, int n) {
    if (n < 7) return 2;
    const char *netns = a[0], *mac = a[2], *pod_ip = a[3], *gw = a[4], *trunk = a[5], *veth = a[6];
    const char *owner = n > 7 ? a[7] : NULL;
    int vlan = atoi(a[1]);
    uint32_t table = (uint32_t)vlan + 100;
    char vlan_name[IFNAMSIZ], buf[64];
    snprintf(vlan_name, sizeof(vlan_name), "vlan.eth.%d", vlan);

    struct nl_sock *host, *pod;
    int home_fd;
    open_sockets(netns, &host, &pod, &home_fd);
    int veth_if = pod_side(host, pod, home_fd, veth, pod_ip, owner);

    step = "VLAN link";
    int trunk_if = link_index(host, trunk, NULL);
    struct rtnl_link *vl = rtnl_link_vlan_alloc();
    rtnl_link_set_name(vl, vlan_name);
    rtnl_link_set_link(vl, trunk_if);
    struct nl_addr *lladdr = addr(mac, AF_LLC);
    rtnl_link_set_addr(vl, lladdr);
    nlcheck(rtnl_link_vlan_set_id(vl, (uint16_t)vlan));
    rtnl_link_set_flags(vl, IFF_UP);
    nlcheck(rtnl_link_add(host, vl, NLM_F_CREATE | NLM_F_EXCL));
    int vlan_if = link_index(host, vlan_name, NULL);
    // The kernel ignores IFLA_IFALIAS in a creating message: tag it separately, as aws-cni does.
    if (owner) link_change(host, vlan_if, 0, owner);
    link_sysctls(vlan_name);

    step = "table routes";
    snprintf(buf, sizeof(buf), "%s/32", gw);
    route(host, table, buf, NULL, vlan_if, RT_SCOPE_LINK);
    route(host, table, "0.0.0.0/0", gw, vlan_if, RT_SCOPE_UNIVERSE);
    snprintf(buf, sizeof(buf), "%s/32", pod_ip);
    route(host, table, buf, NULL, veth_if, RT_SCOPE_LINK);

    step = "rules";
    struct rtnl_rule *r1 = iif_rule(vlan_name, table), *r2 = iif_rule(veth, table);
    nlcheck(rtnl_rule_add(host, r1, NLM_F_CREATE | NLM_F_EXCL));
    nlcheck(rtnl_rule_add(host, r2, NLM_F_CREATE | NLM_F_EXCL));
    // Nothing is freed on purpose: the process exits now.
    return 0;
}

static int cmd_del(char **a, int n) {
    if (n < 2) return 2;
    int vlan = atoi(a[0]);
    const char *veth = a[1];
    uint32_t table = (uint32_t)vlan + 100;
    char vlan_name[IFNAMSIZ];
    snprintf(vlan_name, sizeof(vlan_name), "vlan.eth.%d", vlan);
    struct nl_sock *host = sock_here();

    // By name: the kernel resolves IFLA_IFNAME itself, no lookup request needed.
    const char *links[] = { veth, vlan_name };
    for (int i = 0; i < 2; i++) {
        step = i == 0 ? "delete veth" : "delete VLAN link";
        struct rtnl_link *l = rtnl_link_alloc();
        rtnl_link_set_name(l, links[i]);
        nlcheck_absent_ok(rtnl_link_delete(host, l));
    }
    step = "delete rules";
    nlcheck_absent_ok(rtnl_rule_delete(host, iif_rule(vlan_name, table), 0));
    nlcheck_absent_ok(rtnl_rule_delete(host, iif_rule(veth, table), 0));
    return 0;
}

// Rules of a regular pod: to POD_IP/32 lookup main (512); from POD_IP/32 lookup TABLE (1536).
static struct rtnl_rule *pod_rule(const char *pod_ip, int to, uint32_t table, uint32_t prio) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%s/32", pod_ip);
    struct rtnl_rule *r = rtnl_rule_alloc();
    rtnl_rule_set_family(r, AF_INET);
    rtnl_rule_set_prio(r, prio);
    rtnl_rule_set_table(r, table);
    rtnl_rule_set_action(r, FR_ACT_TO_TBL);
    struct nl_addr *p = addr(buf, AF_INET);
    nlcheck(to ? rtnl_rule_set_dst(r, p) : rtnl_rule_set_src(r, p));
    return r;
}

static int cmd_add_regular(char **a, int n) {
    if (n < 4) return 2;
    const char *netns = a[0], *pod_ip = a[1], *veth = a[2];
    int device = atoi(a[3]);
    const char *owner = n > 4 ? a[4] : NULL;
    char buf[64];
    struct nl_sock *host, *pod;
    int home_fd;
    open_sockets(netns, &host, &pod, &home_fd);
    int veth_if = pod_side(host, pod, home_fd, veth, pod_ip, owner);
    step = "host route";
    snprintf(buf, sizeof(buf), "%s/32", pod_ip);
    route(host, RT_TABLE_MAIN, buf, NULL, veth_if, RT_SCOPE_LINK);
    step = "rules";
    nlcheck(rtnl_rule_add(host, pod_rule(pod_ip, 1, RT_TABLE_MAIN, 512), NLM_F_CREATE | NLM_F_EXCL));
    if (device > 0) nlcheck(rtnl_rule_add(host, pod_rule(pod_ip, 0, (uint32_t)device + 1, 1536), NLM_F_CREATE | NLM_F_EXCL));
    return 0;
}

static int cmd_del_regular(char **a, int n) {
    if (n < 3) return 2;
    const char *pod_ip = a[0], *veth = a[1];
    int device = atoi(a[2]);
    struct nl_sock *host = sock_here();
    step = "delete veth";
    struct rtnl_link *l = rtnl_link_alloc();
    rtnl_link_set_name(l, veth);
    nlcheck_absent_ok(rtnl_link_delete(host, l));
    step = "delete rules";
    nlcheck_absent_ok(rtnl_rule_delete(host, pod_rule(pod_ip, 1, RT_TABLE_MAIN, 512), 0));
    if (device > 0) nlcheck_absent_ok(rtnl_rule_delete(host, pod_rule(pod_ip, 0, (uint32_t)device + 1, 1536), 0));
    return 0;
}

int main(int argc, char **argv) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = 2;
    if (argc >= 2 && strcmp(argv[1], "add") == 0) rc = cmd_add(argv + 2, argc - 2);
    else if (argc >= 2 && strcmp(argv[1], "del") == 0) rc = cmd_del(argv + 2, argc - 2);
    else if (argc >= 2 && strcmp(argv[1], "add-regular") == 0) rc = cmd_add_regular(argv + 2, argc - 2);
    else if (argc >= 2 && strcmp(argv[1], "del-regular") == 0) rc = cmd_del_regular(argv + 2, argc - 2);
    else if (argc >= 2 && strcmp(argv[1], "noop") == 0) rc = 0;
    if (rc == 2) {
        fprintf(stderr, "usage: floor add NETNS VLAN MAC POD_IP GATEWAY TRUNK HOST_VETH [OWNER]\n"
                        "       floor del VLAN HOST_VETH\n"
                        "       floor add-regular NETNS POD_IP HOST_VETH DEVICE_NUMBER [OWNER]\n"
                        "       floor del-regular POD_IP HOST_VETH DEVICE_NUMBER\n       floor noop\n");
        return 2;
    }
    if (getenv("FLOOR_TIMING")) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        fprintf(stderr, "floor: in-process %ld us\n",
                (long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
    }
    return rc;
}
