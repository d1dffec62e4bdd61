#!/usr/bin/env python3
"""Benchmark helper, not a test: sums a `perf report --no-children --sort dso,sym -g none --stdio`
of aws-cni into the categories the README's profile uses, and prints the top symbols.

    perf report ... | scripts/bench/perf_categories.py [TOP]

Symbols are Swift-mangled ($s...) where they are ours or the standard library's; the module
name after $s (length-prefixed) decides the category.
"""
import re
import sys

OURS = {"CNI", "CNIPlugin", "Datapath", "Netlink", "EnforcingMode", "IPAMDProtocol", "SystemIO", "NetModel", "aws_cni", "Logging",
        "SystemPackage"}
KERNEL_MM = re.compile(r"fault|page|pte|pmd|folio|lru|memcg|mmap|unmap|vma|filemap|rmap|mm_|exec|elf|load_|copy_|clear_|exit|"
                       r"release_|free_|alloc_pages|__do_sys_brk|zap_|tlb")
KERNEL_NET = re.compile(r"rtnl|netlink|nlmsg|nla_|fib|neigh|veth|vlan|dev_|netdev|ipv6|addrconf|inet|ip6|sysctl|proc_sys|kobject|"
                        r"sysfs|kernfs|register_net|call_netdevice|rt_|route|qdisc|sock|skb|unix_|setns|nsproxy|net_")
LINE = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[([.k])\]\s+(.*)$")


def swift_module(sym):
    m = re.match(r"\$s(\d+)", sym)
    if m:
        n = int(m.group(1))
        return sym[2 + len(m.group(1)):2 + len(m.group(1)) + n]
    if sym.startswith(("$ss", "$sS")):
        return "Swift"
    return None


def category(dso, kind, sym):
    if kind == "k":
        if KERNEL_MM.search(sym):
            return "kernel: exec, page faults, memory, exit"
        if KERNEL_NET.search(sym):
            return "kernel: netlink, links, routes, rules, sysctl, namespaces"
        return "kernel: other (syscall entry, scheduling, files)"
    mod = swift_module(sym)
    if mod == "FoundationEssentials":
        return "JSON and other FoundationEssentials"
    if mod in OURS:
        return "our code (config, planning, netlink wrappers, logging)"
    if mod == "Swift" or (sym.startswith("$s") and mod is None):
        return "Swift standard library"
    if sym.startswith(("swift", "_swift", "__swift")) or "swift::" in sym or "Demangle" in sym or sym.startswith("(anonymous"):
        return "Swift runtime (metadata, conformance lookups, demangling)"
    if re.match(r"(nl_|nla_|nlmsg|nlshim|rtnl_|__nl)", sym):
        return "libnl and the C shim"
    if re.match(r"(handle_amd|handle_intel|intel_check_word|update_active|get_common_indices|get_extended_indices|init_cpu_features|"
                r"init_cacheinfo|__libc_start_main|__libc_setup_tls|_dl_)", sym):
        return "libc start-up (CPU feature probing with cpuid, TLS)"
    return "libc and other"


def main():
    top = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    totals, rows = {}, []
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
        c = category(dso, kind, sym)
        totals[c] = totals.get(c, 0) + pct
        rows.append((pct, kind, sym))
    # Shares of the selected samples (perf gives shares of all, other processes included).
    whole = sum(totals.values()) or 1
    for c, pct in sorted(totals.items(), key=lambda x: -x[1]):
        print(f"  {pct / whole * 100:5.1f}%  {c}")
    print(f"  top {top} symbols:")
    for pct, kind, sym in sorted(rows, reverse=True)[:top]:
        print(f"  {pct / whole * 100:5.1f}%  [{kind}] {sym[:110]}")


main()
