import EnforcingMode
import NetModel
import Netlink

/// Reads the host namespace so teardowns can be planned from what is there (TeardownPlanner),
/// and finds a branch pod's VLAN and IP when DEL has neither prevResult nor ipamd. Only "not
/// found" is absence here: any other netlink failure is thrown, never taken for an empty node.
public enum LiveDiscovery {
    /// What planning a teardown of `scope` needs: every IPv4 rule, the links the scope and its
    /// rules name, and (when `routesIfNeeded` and another container may hold the address) every
    /// route and link. Targeted link requests otherwise, so the cost does not grow with the pods.
    public static func hostState(for scope: TeardownScope, owner: String, host: any NetlinkClient,
                                 routesIfNeeded: Bool = true) throws(NetlinkError) -> HostState {
        let rules = try host.rules(family: .ipv4)
        var links: [LinkInfo] = []
        for name in scope.linkNames(rules: rules) {
            if let l = try host.link(named: name) { links.append(l) }
        }
        var state = HostState(links: links, rules: rules)
        if routesIfNeeded && TeardownPlanner.needsRoutes(scope, owner: owner, state: state) {
            state.addRoutes(try host.routes(family: .ipv4), allLinks: try host.links())
        }
        return state
    }

    /// Everything (GC): links, IPv4 rules and routes.
    public static func fullHostState(host: any NetlinkClient) throws(NetlinkError) -> HostState {
        var state = HostState(links: [], rules: try host.rules(family: .ipv4))
        state.addRoutes(try host.routes(family: .ipv4), allLinks: try host.links())
        return state
    }

    /// The pod's VLAN and IP, found from (in order) a `vlan.eth.N` tagged with `owner`, the strict
    /// `iif <hostVeth>` rule, or the main route through the host veth and its 1536 rule (VLAN 0:
    /// a regular pod).
    /// `hostVeths`: the names the pod's veth may have (both modes' prefixes).
    public static func branchPod(owner: String, hostVeths: [String], host: any NetlinkClient) throws(NetlinkError) -> BranchPodIdentity? {
        let links = try host.links()
        let rules = try host.rules(family: .ipv4)
        var routes: [Route]?
        for veth in hostVeths {
            let link = links.first { $0.name == veth }
            var vlan: UInt16?
            if !owner.isEmpty, let tagged = links.first(where: { $0.kind == "vlan" && $0.alias == owner && $0.name.hasPrefix("vlan.eth.") }) {
                vlan = tagged.vlanID
            } else if let r = rules.first(where: { $0.priority == Priority.strictIIF && $0.inputInterface == veth }) {
                vlan = Naming.vlanID(forTable: r.table)
            }
            var ip: IPAddress?
            if let vlan {
                // Standard: `from <ip> lookup N+100 prio 1536`; strict: `<ip> dev <veth> table N+100`.
                let table = Naming.routeTable(vlanID: vlan)
                ip = rules.first { $0.priority == Priority.standardFromPod && $0.table == table && $0.source?.isHost == true }?.source?.address
                if ip == nil, let link {
                    if routes == nil { routes = try host.routes(family: .ipv4) }
                    ip = hostRoute(routes!, table: table, via: link.index)
                }
            } else if let link {
                if routes == nil { routes = try host.routes(family: .ipv4) }
                if let found = hostRoute(routes!, table: RouteTable.main, via: link.index) {
                    let r = rules.first { $0.priority == Priority.standardFromPod && $0.source == IPPrefix(host: found) }
                    // A 1536 rule into a VLAN table: a standard-mode branch pod. Otherwise (an
                    // ENI's table, or none for the primary ENI's addresses) a regular pod: VLAN 0.
                    vlan = r.flatMap { Naming.vlanID(forTable: $0.table) } ?? 0
                    ip = found
                }
            }
            if let vlan { return BranchPodIdentity(vlanID: vlan, podIP: ip, hostVeth: link != nil ? veth : nil) }
        }
        return nil
    }

    static func hostRoute(_ routes: [Route], table: UInt32, via index: Int32) -> IPAddress? {
        routes.first { $0.table == table && $0.outputIndex == index && $0.destination.isHost && $0.gateway == nil }?.destination.address
    }
}
