import NetModel
import Netlink

/// One network namespace as names and values: no ifindexes, no veth MACs (random per run), so
/// a real kernel's state and the in-memory model's compare line by line. Read through our
/// Netlink module (the same code path for both), never from `ip` output.
public struct NamespaceSnapshot: Hashable, Sendable {
    public var lines: Set<String>

    public init(lines: Set<String>) { self.lines = lines }

    /// `macNames`: MACs to show by the name of the link that has them (a pod's neighbour entry
    /// points at the host veth); `permanentNeighborsOnly`: leave out what traffic taught the kernel.
    /// `podSide`: leave out what every namespace has from birth (loopback, the three default
    /// rules), so a pod namespace shows what the plugin put there and nothing else.
    public init(_ c: any NetlinkClient, macNames: [MACAddress: String] = [:], permanentNeighborsOnly: Bool = true,
                podSide: Bool = false) throws(NetlinkError) {
        let links = try c.links()
        let names = Dictionary(links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        func dev(_ i: Int32?) -> String { i.flatMap { names[$0] } ?? "#\(i.map(String.init) ?? "-")" }
        let lo = links.first { $0.name == "lo" }?.index
        var out = Set<String>()
        for l in links where l.name != "lo" {
            var line = "link \(l.name) kind=\(l.kind) up=\(l.isUp) mtu=\(l.mtu) alias=\(l.alias)"
            if l.kind == "vlan" { line += " vlan=\(l.vlanID) parent=\(dev(l.parentIndex)) mac=\(l.mac?.description ?? "-")" }
            out.insert(line)
        }
        for a in try c.addresses(family: .ipv4) where a.linkIndex != lo { out.insert("addr \(a.prefix) dev \(dev(a.linkIndex))") }
        for r in try c.routes(family: .ipv4) where r.outputIndex == nil || r.outputIndex != lo {
            out.insert("route \(r.destination) via \(r.gateway?.description ?? "-") dev \(dev(r.outputIndex)) table \(r.table) scope \(r.scope)")
        }
        let defaults: Set<Rule> = [Rule(priority: 0, table: RouteTable.local), Rule(priority: 32766, table: RouteTable.main), Rule(priority: 32767, table: 253)]
        for r in try c.rules(family: .ipv4) where !(podSide && defaults.contains(r)) { out.insert("rule \(r)") }
        for n in try c.neighbors(family: .ipv4) where n.permanent || !permanentNeighborsOnly {
            out.insert("neigh \(n.address) dev \(dev(n.linkIndex)) lladdr \(macNames[n.mac] ?? n.mac.description)")
        }
        lines = out
    }
}

/// The node's host namespace and the pod namespaces that hold anything.
public struct NodeSnapshot: Hashable, Sendable, CustomStringConvertible {
    public var host: NamespaceSnapshot
    /// By netns path; namespaces with nothing in them (after normalisation) are left out.
    public var pods: [String: NamespaceSnapshot]

    public init(host: NamespaceSnapshot, pods: [String: NamespaceSnapshot]) {
        self.host = host
        self.pods = pods.filter { !$0.value.lines.isEmpty }
    }

    /// Reads `host` and each pod namespace; the pods' neighbour MACs are named after host links.
    public init(host: any NetlinkClient, pods: [String: any NetlinkClient], permanentNeighborsOnly: Bool = true) throws(NetlinkError) {
        let macNames = Dictionary(try host.links().compactMap { l in l.mac.map { ($0, "<mac of \(l.name)>") } }, uniquingKeysWith: { a, _ in a })
        var p: [String: NamespaceSnapshot] = [:]
        for (path, c) in pods { p[path] = try NamespaceSnapshot(c, macNames: macNames, permanentNeighborsOnly: permanentNeighborsOnly, podSide: true) }
        self.init(host: try NamespaceSnapshot(host, permanentNeighborsOnly: permanentNeighborsOnly), pods: p)
    }

    /// `self` with what `model` has beyond `modelBaseline` added: the expected state of a real
    /// node whose baseline is `self`, from a model run on another baseline.
    public func adding(_ model: NodeSnapshot, over modelBaseline: NodeSnapshot) -> NodeSnapshot {
        var host = self.host
        host.lines.formUnion(model.host.lines.subtracting(modelBaseline.host.lines))
        host.lines.subtract(modelBaseline.host.lines.subtracting(model.host.lines))
        return NodeSnapshot(host: host, pods: model.pods)
    }

    /// What differs, one line each ("+" only here, "-" only in `expected`), for failure messages.
    public func difference(from expected: NodeSnapshot) -> [String] {
        var out: [String] = []
        func diff(_ label: String, _ a: Set<String>, _ e: Set<String>) {
            out += a.subtracting(e).sorted().map { "+ \(label): \($0)" }
            out += e.subtracting(a).sorted().map { "- \(label): \($0)" }
        }
        diff("host", host.lines, expected.host.lines)
        for ns in Set(pods.keys).union(expected.pods.keys).sorted() {
            diff(ns, pods[ns]?.lines ?? [], expected.pods[ns]?.lines ?? [])
        }
        return out
    }

    public var description: String {
        (host.lines.sorted().map { "host: \($0)" } + pods.keys.sorted().flatMap { k in pods[k]!.lines.sorted().map { "\(k): \($0)" } })
            .joined(separator: "\n")
    }
}
