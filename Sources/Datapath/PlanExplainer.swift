import EnforcingMode
import NetModel
import Netlink

/// One object of a planned datapath as the kernel has it: the unit `ipamd explain` prints.
public struct ExplainedObject: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case link, address, route, rule, neighbor, sysctl
    }

    public enum Status: String, Sendable, Codable {
        /// In the kernel and as planned.
        case present
        /// Not in the kernel. For an object inside a link (address, route, neighbour), also when
        /// the link is gone: the kernel removes them with it; `detail` says so.
        case missing
        /// In the kernel but not as planned; `detail` lists what differs, live value first.
        case different
        /// Not compared; `detail` says why: the pod's namespace is not open, or a sysctl
        /// cannot be read (no IPv6 in the kernel, which the plan tolerates, or an I/O error).
        case unchecked
    }

    public var kind: Kind
    public var side: Side
    /// The object as planned, e.g. "vlan.eth.7 VLAN 7 on trunk #4 MAC 0a:00:00:00:00:07".
    public var what: String
    public var status: Status
    public var detail: String?
    /// A shell command that shows the live object (run as root on the node).
    public var command: String

    public init(kind: Kind, side: Side, what: String, status: Status, detail: String? = nil, command: String) {
        self.kind = kind; self.side = side; self.what = what; self.status = status; self.detail = detail; self.command = command
    }
}

/// Compares a setup plan with the live kernel, object by object (for `ipamd explain`). Where
/// PlanVerifier answers "does it match" for CHECK, this says what each object is, where it
/// stands and how to look at it. Reads only; one dump of each kind per namespace.
public struct PlanExplainer {
    public var context: DatapathContext

    public init(context: DatapathContext) { self.context = context }

    /// One entry per planned link, address, route, rule, neighbour and sysctl, in plan order. A
    /// link's later steps (up, owner tag) are folded into its entry. Teardown steps are skipped:
    /// they plan an absence, not an object. Pod-side entries are `.unchecked` when the context
    /// has no pod namespace. `family` is the one dumped (a node without IPv6 refuses IPv6 dumps),
    /// so it must be the plan's; `podNetnsPath` is only used to write the commands.
    public func explain(_ steps: [PlanStep], family: AddressFamily = .ipv4, podNetnsPath: String? = nil) throws(NetlinkError) -> [ExplainedObject] {
        let host = Namespace(side: .host, snapshot: try PlanVerifier.Snapshot(context.host, family: family), unavailable: "", enter: "")
        var podSnapshot: PlanVerifier.Snapshot?
        if let c = context.pod { podSnapshot = try PlanVerifier.Snapshot(c, family: family) }
        let pod = Namespace(side: .pod, snapshot: podSnapshot,
                            unavailable: podNetnsPath.map { "pod network namespace \($0) is not open" } ?? "the pod has no network namespace",
                            enter: "nsenter --net=\(podNetnsPath ?? "<pod netns>") ")
        func view(_ side: Side) -> Namespace { side == .host ? host : pod }

        let links = LinkExpectations(steps)
        var linksDone: Set<LinkKey> = []
        var out: [ExplainedObject] = []
        // A link is reported where the plan first mentions it, with everything the plan says of it.
        func link(_ side: Side, _ name: String) {
            let key = LinkKey(side: side, name: name)
            guard linksDone.insert(key).inserted, let e = links.byKey[key] else { return }
            out.append(view(side).explainLink(name, e))
        }
        for step in steps {
            switch step {
            case .createVeth(let h, let c, _, _, _):
                link(.host, h)
                link(.pod, c)
            case .createVLAN(let name, _, _, _): link(.host, name)
            case .linkUp(let side, let name): link(side, name)
            case .tagOwner(let name, _): link(.host, name)
            case .sysctl(let side, let key, let value): out.append(explainSysctl(view(side), key: key, value: value))
            case .address(let side, let name, let prefix): out.append(view(side).explainAddress(prefix, on: name))
            case .route(let side, let r): out.append(view(side).explainRoute(r))
            case .rule(let r): out.append(host.explainRule(r))
            case .neighbor(let side, let name, let address, let mac): out.append(view(side).explainNeighbor(address, mac: mac, on: name))
            case .deleteLink, .deleteRule: continue
            }
        }
        return out
    }

    /// Sysctls go through the context's reader, which sees the host's /proc/sys only.
    func explainSysctl(_ v: Namespace, key: String, value: String) -> ExplainedObject {
        let what = "\(key) = \(value)"
        let command = "\(v.enter)cat /proc/sys/\(key)"
        func object(_ status: ExplainedObject.Status, _ detail: String? = nil) -> ExplainedObject {
            ExplainedObject(kind: .sysctl, side: v.side, what: what, status: status, detail: detail, command: command)
        }
        guard v.snapshot != nil else { return object(.unchecked, v.unavailable) }
        guard v.side == .host else { return object(.unchecked, "pod-side sysctls are not read: the reader sees the host's /proc/sys") }
        do {
            let live = try context.sysctl.read(key)
            return live == value ? object(.present) : object(.different, "is \(live), expected \(value)")
        } catch where error.isNotFound {
            return object(.unchecked, "no such key: the kernel has no IPv6 or the link is gone (setup skips it then)")
        } catch {
            return object(.unchecked, "cannot read: \(error)")
        }
    }
}

extension PlanExplainer {
    struct LinkKey: Hashable {
        var side: Side
        var name: String
    }

    /// What a plan says about one link, gathered from every step that names it.
    struct LinkExpectation {
        var what: String
        var kind: String?
        var mac: MACAddress?
        var mtu: UInt32?
        var vlanID: UInt16?
        /// Only checked when known (> 0): CHECK may run without ipamd's trunk index.
        var parentIndex: Int32?
        var up = false
        var owner: String?
    }

    struct LinkExpectations {
        var byKey: [LinkKey: LinkExpectation] = [:]

        init(_ steps: [PlanStep]) {
            func update(_ side: Side, _ name: String, _ body: (inout LinkExpectation) -> Void) {
                body(&byKey[LinkKey(side: side, name: name), default: LinkExpectation(what: name)])
            }
            for step in steps {
                switch step {
                case .createVeth(let h, let c, let mtu, let hostMAC, let containerMAC):
                    // addVeth gives both ends the MTU.
                    update(.host, h) { $0.what = "\(h) veth to pod \(c), MAC \(hostMAC), MTU \(mtu)"; $0.kind = "veth"; $0.mac = hostMAC; $0.mtu = mtu }
                    update(.pod, c) { $0.what = "\(c) veth to host \(h), MAC \(containerMAC), MTU \(mtu)"; $0.kind = "veth"; $0.mac = containerMAC; $0.mtu = mtu }
                case .createVLAN(let name, let parent, let id, let mac):
                    update(.host, name) {
                        $0.what = "\(name) VLAN \(id) on trunk \(parent > 0 ? "#\(parent)" : "(index unknown)"), MAC \(mac)"
                        $0.kind = "vlan"; $0.vlanID = id; $0.mac = mac; $0.parentIndex = parent > 0 ? parent : nil
                    }
                case .linkUp(let side, let name): update(side, name) { $0.up = true }
                case .tagOwner(let name, let owner): update(.host, name) { $0.owner = owner }
                case .sysctl, .address, .route, .rule, .neighbor, .deleteLink, .deleteRule: continue
                }
            }
        }
    }

    /// One namespace as the explainer sees it: its dumps (nil when it is not open) and how to run
    /// a command there.
    struct Namespace {
        typealias Verdict = (status: ExplainedObject.Status, detail: String?)

        var side: Side
        var snapshot: PlanVerifier.Snapshot?
        /// Why `snapshot` is nil.
        var unavailable: String
        /// Prefix that runs a command in this namespace: empty for the host.
        var enter: String
        var ip: String { enter + "ip" }

        func object(_ kind: ExplainedObject.Kind, _ what: String, _ command: String,
                    _ judge: (PlanVerifier.Snapshot) -> Verdict) -> ExplainedObject {
            guard let s = snapshot else { return ExplainedObject(kind: kind, side: side, what: what, status: .unchecked, detail: unavailable, command: command) }
            let v = judge(s)
            return ExplainedObject(kind: kind, side: side, what: what, status: v.status, detail: v.detail, command: command)
        }

        static func different(_ diffs: [String]) -> Verdict {
            diffs.isEmpty ? (.present, nil) : (.different, diffs.joined(separator: "; "))
        }

        static func flag(_ f: AddressFamily) -> String { f == .ipv4 ? "-4" : "-6" }

        static func table(_ t: UInt32) -> String {
            t == RouteTable.main ? "main" : t == RouteTable.local ? "local" : String(t)
        }

        func explainLink(_ name: String, _ e: LinkExpectation) -> ExplainedObject {
            object(.link, e.what + (e.up ? ", up" : "") + (e.owner.map { ", owner \($0)" } ?? ""), "\(ip) -d link show \(name)") { s in
                guard let l = s.link(name) else { return (.missing, nil) }
                var diffs: [String] = []
                if let k = e.kind, l.kind != k { diffs.append("kind \(l.kind.isEmpty ? "none" : l.kind), expected \(k)") }
                if let m = e.mac, l.mac != m { diffs.append("MAC \(l.mac?.description ?? "none"), expected \(m)") }
                if let m = e.mtu, l.mtu != m { diffs.append("MTU \(l.mtu), expected \(m)") }
                if let id = e.vlanID, l.vlanID != id { diffs.append("VLAN id \(l.vlanID), expected \(id)") }
                if let p = e.parentIndex, l.parentIndex != p { diffs.append("on link #\(l.parentIndex), expected the trunk #\(p)") }
                if e.up && !l.isUp { diffs.append("down, expected up") }
                if let o = e.owner, l.alias != o { diffs.append("owner (alias) \(l.alias.isEmpty ? "<none>" : l.alias), expected \(o)") }
                return Self.different(diffs)
            }
        }

        func explainAddress(_ prefix: IPPrefix, on name: String) -> ExplainedObject {
            object(.address, "\(prefix) on \(name)", "\(ip) \(Self.flag(prefix.family)) addr show dev \(name)") { s in
                guard let l = s.link(name) else { return (.missing, "link \(name) is missing") }
                if s.addresses.contains(InterfaceAddress(linkIndex: l.index, prefix: prefix)) { return (.present, nil) }
                guard let live = s.addresses.first(where: { $0.prefix.address == prefix.address }) else { return (.missing, nil) }
                if live.linkIndex != l.index { return (.different, "on \(s.name(live.linkIndex)), expected \(name)") }
                return (.different, "prefix length /\(live.prefix.length), expected /\(prefix.length)")
            }
        }

        func explainRoute(_ r: PlannedRoute) -> ExplainedObject {
            let dest = r.destination.length == 0 ? "default" : r.destination.description
            let command = "\(ip) \(Self.flag(r.destination.family)) route show table \(Self.table(r.table)) \(dest)"
            return object(.route, PlanStep.text(r), command) { s in
                let dev = s.link(r.device)
                if let dev, s.routes.contains(PlanApplier.route(r, index: dev.index)) { return (.present, nil) }
                // The kernel keys a route by table and destination: one there is this route, changed.
                guard let live = s.routes.first(where: { $0.table == r.table && $0.destination == r.destination }) else {
                    return (.missing, dev == nil ? "device \(r.device) is missing" : nil)
                }
                var diffs: [String] = []
                if live.gateway != r.gateway { diffs.append("\(live.gateway.map { "via \($0)" } ?? "no gateway"), expected \(r.gateway.map { "via \($0)" } ?? "none")") }
                if dev == nil || live.outputIndex != dev?.index {
                    diffs.append("dev \(live.outputIndex.map { s.name($0) } ?? "none"), expected \(r.device)\(dev == nil ? " (missing)" : "")")
                }
                if live.scope != r.scope { diffs.append("scope \(live.scope), expected \(r.scope)") }
                return Self.different(diffs)
            }
        }

        func explainRule(_ r: Rule) -> ExplainedObject {
            object(.rule, r.description, "\(ip) \(Self.flag(r.family)) rule show priority \(r.priority)") { s in
                if s.rules.contains(r) { return (.present, nil) }
                // Same selector, other priority or table: the rule was changed (or an old one is left).
                let same = s.rules.filter { var x = $0; x.priority = r.priority; x.table = r.table; return x == r }
                guard let live = same.first(where: { $0.priority == r.priority }) ?? same.first else { return (.missing, nil) }
                var diffs: [String] = []
                if live.priority != r.priority { diffs.append("priority \(live.priority), expected \(r.priority)") }
                if live.table != r.table { diffs.append("lookup \(Self.table(live.table)), expected \(Self.table(r.table))") }
                return Self.different(diffs)
            }
        }

        func explainNeighbor(_ address: IPAddress, mac: MACAddress, on name: String) -> ExplainedObject {
            let what = "\(address) lladdr \(mac) dev \(name) permanent"
            return object(.neighbor, what, "\(ip) \(Self.flag(address.family)) neigh show \(address) dev \(name)") { s in
                guard let l = s.link(name) else { return (.missing, "link \(name) is missing") }
                guard let live = s.neighbors.first(where: { $0.linkIndex == l.index && $0.address == address }) else { return (.missing, nil) }
                var diffs: [String] = []
                // The host veth's MAC is the pod's gateway: a stale one cuts the pod off.
                if live.mac != mac { diffs.append("lladdr \(live.mac), expected \(mac)") }
                if !live.permanent { diffs.append("not permanent (the kernel may expire it)") }
                return Self.different(diffs)
            }
        }
    }

}

extension PlanVerifier.Snapshot {
    /// A link's name by index, for details ("#12" when it is not in the dump).
    func name(_ index: Int32) -> String {
        links.values.first(where: { $0.index == index })?.name ?? "#\(index)"
    }
}
