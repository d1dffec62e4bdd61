#!/usr/bin/env python3
"""The simulated VPC's security groups, from one JSON file (scripts/vpc/demo-vpc.json).

  vpc.py nft FILE                         nftables ruleset enforcing the groups in the "vpc" namespace
  vpc.py pods FILE                        the pod-ENI file for ipamd's static source (what the VPC
                                          resource controller would annotate on each branch pod)
  vpc.py branches FILE                    one line per branch interface: vlanId mac ip pod
  vpc.py regulars FILE                    one line per regular pod: link ip pod (its address is a
                                          secondary address of the interface with that link)
  vpc.py check FILE SRC DST PROTO PORT    "allowed", or "blocked CHAIN: why" (CHAIN: the nft chain
                                          that drops it), for a new connection from SRC to DST
                                          entering the VPC through SRC's interface
  vpc.py describe FILE                    the groups and interfaces, for people

Security groups behave as in EC2: stateful (replies always pass), allow-only rules, a connection
must pass the egress rules of the interface it leaves and the ingress rules of the interface it
reaches; a rule's peer is a CIDR or a group (every address of an interface carrying that group).
Addresses outside every interface (the "internet") have no groups of their own. An interface's
"secondaryIps" (the addresses regular pods get from a node's ENI) carry that interface's groups,
as in EC2; "regularPods" ({"namespace/name": address}) names the pods that hold some of them (those
addresses count as secondary addresses too).
"""
import ipaddress
import json
import re
import sys

PROTOCOLS = {"all", "tcp", "udp", "icmp"}


class ConfigError(Exception):
    pass


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path}: {e}")
    groups = doc.get("securityGroups") or {}
    interfaces = doc.get("interfaces") or {}
    for name, g in groups.items():
        for direction in ("ingress", "egress"):
            for i, rule in enumerate(g.get(direction, [])):
                where = f"securityGroups.{name}.{direction}[{i}]"
                if rule.get("protocol") not in PROTOCOLS:
                    raise ConfigError(f"{where}.protocol: {rule.get('protocol')!r} is not one of {sorted(PROTOCOLS)}")
                if ("cidr" in rule) == ("group" in rule):
                    raise ConfigError(f"{where}: give exactly one of cidr or group")
                if "group" in rule and rule["group"] not in groups:
                    raise ConfigError(f"{where}.group: no security group {rule['group']!r}")
                if "cidr" in rule:
                    try:
                        ipaddress.IPv4Network(rule["cidr"])
                    except ValueError as e:
                        raise ConfigError(f"{where}.cidr: {e}")
                rule["_ports"] = parse_ports(rule, where)
    for name, eni in interfaces.items():
        for g in eni.get("groups", []):
            if g not in groups:
                raise ConfigError(f"interfaces.{name}.groups: no security group {g!r}")
        try:
            ipaddress.IPv4Address(eni["ip"])
        except (KeyError, ValueError) as e:
            raise ConfigError(f"interfaces.{name}.ip: {e}")
        for i, ip in enumerate(eni.get("secondaryIps", [])):
            try:
                ipaddress.IPv4Address(ip)
            except ValueError as e:
                raise ConfigError(f"interfaces.{name}.secondaryIps[{i}]: {e}")
        for pod, ip in eni.get("regularPods", {}).items():
            check_pod_name(f"interfaces.{name}.regularPods", pod)
            try:
                ipaddress.IPv4Address(ip)
            except ValueError as e:
                raise ConfigError(f"interfaces.{name}.regularPods.{pod}: {e}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", eni.get("link", "")):
            raise ConfigError(f"interfaces.{name}.link: an interface name in the vpc namespace is required")
        if "branch" in eni:
            check_branch(f"interfaces.{name}.branch", eni["branch"], eni["ip"])
    return doc


def check_pod_name(where, pod):
    if not re.fullmatch(r"[a-z0-9-]+/[a-z0-9.-]+", str(pod)):
        raise ConfigError(f"{where}: {pod!r} is not namespace/name")


def check_branch(where, b, ip):
    check_pod_name(f"{where}.pod", b.get("pod", ""))
    if not isinstance(b.get("vlanId"), int) or not 1 <= b["vlanId"] <= 4094:
        raise ConfigError(f"{where}.vlanId: {b.get('vlanId')!r} is not within 1-4094")
    if not re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", str(b.get("mac", ""))):
        raise ConfigError(f"{where}.mac: {b.get('mac')!r} is not a MAC address (lower-case hex)")
    try:
        subnet = ipaddress.IPv4Network(b.get("subnetCidr", ""))
    except ValueError as e:
        raise ConfigError(f"{where}.subnetCidr: {e}")
    if ipaddress.IPv4Address(ip) not in subnet:
        raise ConfigError(f"{where}.subnetCidr: {subnet} does not contain the interface's address {ip}")


def parse_ports(rule, where):
    ports = rule.get("ports")
    if rule["protocol"] in ("all", "icmp"):
        if ports is not None:
            raise ConfigError(f"{where}.ports: not allowed with protocol {rule['protocol']}")
        return None
    if ports is None:
        return (0, 65535)
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", str(ports))
    lo, hi = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else (1, 0)
    if not (0 <= lo <= hi <= 65535):
        raise ConfigError(f"{where}.ports: {ports!r} is not a port or range within 0-65535")
    return (lo, hi)


def ident(name):
    """nft identifiers: letters, digits and underscores."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def addresses(eni):
    return [eni["ip"]] + eni.get("secondaryIps", []) + list(eni.get("regularPods", {}).values())


def members(doc, group):
    return sorted((ip for e in doc["interfaces"].values() if group in e.get("groups", []) for ip in addresses(e)),
                  key=ipaddress.IPv4Address)


def rule_match(rule, peer_field):
    parts = []
    if "cidr" in rule:
        if rule["cidr"] != "0.0.0.0/0":
            parts.append(f"ip {peer_field} {rule['cidr']}")
    else:
        parts.append(f"ip {peer_field} @{ident(rule['group'])}")
    proto, ports = rule["protocol"], rule["_ports"]
    if proto == "icmp":
        parts.append("ip protocol icmp")
    elif proto in ("tcp", "udp"):
        lo, hi = ports
        parts.append(f"{proto} dport {lo}" if lo == hi else f"{proto} dport {lo}-{hi}")
    return " ".join(parts)


def render_nft(doc):
    groups, interfaces = doc["securityGroups"], doc["interfaces"]
    out = ["table ip vpc-sg", "delete table ip vpc-sg", "table ip vpc-sg {"]
    for g in groups:
        ips = members(doc, g)
        elements = f" elements = {{ {', '.join(ips)} }};" if ips else ""
        out.append(f"    set {ident(g)} {{ type ipv4_addr;{elements} }}")
    out += ["    chain forward {",
            "        type filter hook forward priority filter; policy drop;",
            "        ct state established,related accept",
            "        ct state invalid drop"]
    for name, eni in interfaces.items():
        out.append(f'        iifname "{eni["link"]}" jump egress_{ident(name)}')
    for name, eni in interfaces.items():
        out.append(f'        oifname "{eni["link"]}" jump ingress_{ident(name)}')
    out += ["        accept", "    }"]
    for name, eni in interfaces.items():
        for direction, peer in (("egress", "daddr"), ("ingress", "saddr")):
            out.append(f"    chain {direction}_{ident(name)} {{")
            for g in eni.get("groups", []):
                for rule in groups[g].get(direction, []):
                    match = rule_match(rule, peer)
                    out.append(f"        {match} return" if match else "        return")
            # Counted, so a user can see where a connection was refused.
            out.append("        counter drop")
            out.append("    }")
    out.append("}")
    return "\n".join(out) + "\n"


def rule_allows(doc, rule, peer_ip, proto, port):
    if rule["protocol"] != "all" and rule["protocol"] != proto:
        return False
    if rule["_ports"] is not None and proto in ("tcp", "udp"):
        lo, hi = rule["_ports"]
        if not lo <= port <= hi:
            return False
    if "cidr" in rule:
        return ipaddress.IPv4Address(peer_ip) in ipaddress.IPv4Network(rule["cidr"])
    return peer_ip in members(doc, rule["group"])


def interface_of(doc, ip):
    for name, eni in doc["interfaces"].items():
        if ip in addresses(eni):
            return name, eni
    return None, None


def check(doc, src, dst, proto, port):
    what = f"{proto}/{port}" if proto in ("tcp", "udp") else proto
    for ip, peer, direction, word in ((src, dst, "egress", "to"), (dst, src, "ingress", "from")):
        name, eni = interface_of(doc, ip)
        if eni is None:
            continue
        groups = eni.get("groups", [])
        if not any(rule_allows(doc, r, peer, proto, port) for g in groups for r in doc["securityGroups"][g].get(direction, [])):
            return (f"blocked {direction}_{ident(name)}: "
                    f"{'+'.join(groups) or 'no group'} {direction} has no rule for {what} {word} {peer}")
    return "allowed"


def describe_rule(rule):
    peer = rule.get("cidr") or rule["group"]
    ports = rule.get("ports")
    what = rule["protocol"] if ports is None else f"{rule['protocol']}/{ports}"
    why = f"  ({rule['why']})" if "why" in rule else ""
    return f"{what} {peer}{why}"


def describe(doc):
    lines = []
    for name, g in doc["securityGroups"].items():
        lines.append(f"{name}: {g.get('description', '')}")
        for direction, word in (("ingress", "from"), ("egress", "to")):
            rules = g.get(direction, [])
            text = "; ".join(describe_rule(r) for r in rules) if rules else "nothing"
            lines.append(f"    {direction:7} {word} {text}")
    lines.append("")
    lines.append(f"{'interface':22} {'vpc link':9} {'address':11} {'groups':14} pod")
    for name, eni in doc["interfaces"].items():
        pod = eni.get("branch", {}).get("pod", "")
        vlan = f" (VLAN {eni['branch']['vlanId']})" if "branch" in eni else ""
        lines.append(f"{name:22} {eni['link']:9} {eni['ip']:11} {','.join(eni.get('groups', [])):14} {pod}{vlan}")
        for pod, ip in eni.get("regularPods", {}).items():
            lines.append(f"{'':22} {'':9} {ip:11} {'(the same)':14} {pod} (regular pod: a secondary address)")
    return "\n".join(lines) + "\n"


def pods_file(doc):
    pods = {}
    for name, eni in doc["interfaces"].items():
        b = eni.get("branch")
        if b:
            pods[b["pod"]] = [{"eniId": name, "ifAddress": b["mac"], "privateIp": eni["ip"], "vlanId": b["vlanId"],
                               "subnetCidr": b["subnetCidr"], "ipv6Addr": "", "subnetV6Cidr": "",
                               "associationID": f"trunk-assoc-{b['vlanId']:04d}"}]
    return json.dumps({"pods": pods}, indent=2) + "\n"


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    cmd, doc = argv[1], load(argv[2])
    if cmd == "nft":
        sys.stdout.write(render_nft(doc))
    elif cmd == "pods":
        sys.stdout.write(pods_file(doc))
    elif cmd == "branches":
        for eni in doc["interfaces"].values():
            if "branch" in eni:
                b = eni["branch"]
                print(b["vlanId"], b["mac"], eni["ip"], b["pod"])
    elif cmd == "regulars":
        for eni in doc["interfaces"].values():
            for pod, ip in eni.get("regularPods", {}).items():
                print(eni["link"], ip, pod)
    elif cmd == "check" and len(argv) == 7:
        print(check(doc, argv[3], argv[4], argv[5], int(argv[6])))
    elif cmd == "describe":
        sys.stdout.write(describe(doc))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except ConfigError as e:
        sys.stderr.write(f"vpc.py: {e}\n")
        sys.exit(1)
