import EnforcingMode
import NetModel
import Netlink

/// Finds what a branch pod left in the host namespace from its host veth name alone. DEL uses it
/// when it has neither prevResult nor ipamd, so an outage never leaks rules or VLAN links.
public enum LiveDiscovery {
    public static func branchPod(hostVeth: String, host: any NetlinkClient) throws(NetlinkError) -> BranchPodIdentity? {
        let rules = try host.rules(family: .ipv4)
        // Strict: `iif <hostVeth> lookup N+100 prio 10`.
        if let r = rules.first(where: { $0.priority == Priority.strictIIF && $0.inputInterface == hostVeth }),
           let vlan = Naming.vlanID(forTable: r.table) {
            let podIP = try podRoute(hostVeth: hostVeth, host: host, table: r.table)
            return BranchPodIdentity(vlanID: vlan, podIP: podIP, hostVeth: hostVeth)
        }
        // Standard: `<podIP>/32 dev <hostVeth>` in main, `from <podIP> lookup N+100 prio 1536`.
        if let ip = try podRoute(hostVeth: hostVeth, host: host, table: RouteTable.main),
           let r = rules.first(where: { $0.priority == Priority.standardFromPod && $0.source == IPPrefix(host: ip) }),
           let vlan = Naming.vlanID(forTable: r.table) {
            return BranchPodIdentity(vlanID: vlan, podIP: ip, hostVeth: hostVeth)
        }
        return nil
    }

    static func podRoute(hostVeth: String, host: any NetlinkClient, table: UInt32) throws(NetlinkError) -> IPAddress? {
        guard let link = try host.link(named: hostVeth) else { return nil }
        return try host.routes(family: .ipv4).first {
            $0.table == table && $0.outputIndex == link.index && $0.destination.length == 32 && $0.gateway == nil
        }?.destination.address
    }
}
