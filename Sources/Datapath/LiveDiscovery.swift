import EnforcingMode
import NetModel
import Netlink

/// Reads the host namespace to find what a branch pod left behind and who owns it. DEL uses it
/// when it has neither prevResult nor ipamd, so an outage never leaks rules or VLAN links, and
/// to make sure a late DEL of an old sandbox never removes the links of a newer one.
public enum LiveDiscovery {
    /// The pod's VLAN and IP, found from (in order) a `vlan.eth.N` tagged with `owner`, the
    /// strict `iif <hostVeth>` rule, or the standard main route through the host veth.
    public static func branchPod(owner: String, hostVeth: String, host: any NetlinkClient) throws(NetlinkError) -> BranchPodIdentity? {
        let links = try host.links()
        let veth = links.first { $0.name == hostVeth }
        let rules = try host.rules(family: .ipv4)
        let routes = try host.routes(family: .ipv4)

        var vlan: UInt16?
        if !owner.isEmpty, let tagged = links.first(where: { $0.kind == "vlan" && $0.alias == owner && $0.name.hasPrefix("vlan.eth.") }) {
            vlan = tagged.vlanID
        } else if let r = rules.first(where: { $0.priority == Priority.strictIIF && $0.inputInterface == hostVeth }) {
            vlan = Naming.vlanID(forTable: r.table)
        }
        var ip: IPAddress?
        if let vlan {
            let table = Naming.routeTable(vlanID: vlan)
            // Standard: `from <ip> lookup N+100 prio 1536`; strict: `<ip> dev <veth> table N+100`.
            ip = rules.first { $0.priority == Priority.standardFromPod && $0.table == table && $0.source?.length == 32 }?.source?.address
                ?? veth.flatMap { v in hostRoute(routes, table: table, via: v.index) }
        } else if let v = veth, let found = hostRoute(routes, table: RouteTable.main, via: v.index),
                  let r = rules.first(where: { $0.priority == Priority.standardFromPod && $0.source == IPPrefix(host: found) }) {
            vlan = Naming.vlanID(forTable: r.table)
            ip = found
        }
        guard let vlan else { return nil }
        return BranchPodIdentity(vlanID: vlan, podIP: ip, hostVeth: veth != nil ? hostVeth : nil)
    }

    static func hostRoute(_ routes: [Route], table: UInt32, via index: Int32) -> IPAddress? {
        routes.first { $0.table == table && $0.outputIndex == index && $0.destination.length == 32 && $0.gateway == nil }?.destination.address
    }

    /// Whether a DEL by `owner` may remove `link`: it is gone, untagged (made by an older plugin),
    /// or tagged with `owner`. A link tagged by another container belongs to a newer sandbox.
    public static func mayRemove(_ link: String, owner: String, host: any NetlinkClient) -> Bool {
        guard let l = try? host.link(named: link) else { return true }
        return l.alias.isEmpty || owner.isEmpty || l.alias == owner
    }

    /// The teardown `owner` may run: parts whose links now belong to another container are left.
    public static func ownedTeardown(_ id: BranchPodIdentity, owner: String, host: any NetlinkClient) -> [PlanStep] {
        var id = id
        if let veth = id.hostVeth, !mayRemove(veth, owner: owner, host: host) { id.hostVeth = nil }
        guard mayRemove(Naming.vlanLinkName(vlanID: id.vlanID), owner: owner, host: host) else {
            // The VLAN, its table and the pod IP's rules were rebuilt by a newer sandbox.
            return id.hostVeth.map { [.deleteLink(.host, $0)] } ?? []
        }
        return BranchPodPlanner.teardown(id)
    }
}
