import NetModel

/// Who an object on the node belongs to, as far as the node itself can tell. Links carry their
/// owner's CNI container id in their alias; rules are attributed through the links they need.
public enum Holder: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Tagged with this container id, or attributed to a link that is.
    case container(String)
    /// A link without a tag (the reference plugin, an older build, another tool): nothing says whose.
    case untagged
    /// Nobody: the link it needs is gone, or it points at another pod's table (a leftover).
    case nobody

    public var description: String {
        switch self {
        case .container(let c): "container \(c)"
        case .untagged: "untagged"
        case .nobody: "nobody"
        }
    }

    public var containerID: String? { if case .container(let c) = self { c } else { nil } }
}

/// The host namespace as one run read it: the links it looked at (absent ones simply missing),
/// every IPv4 rule, and, when it had to know who routes an address, every IPv4 route with all links.
public struct HostState: Sendable {
    public private(set) var links: [String: LinkInfo]
    public private(set) var rules: [Rule]
    /// nil: not read (only needed when another container may hold an address).
    public private(set) var routes: [Route]?
    private var byIndex: [Int32: LinkInfo]

    public init(links: [LinkInfo], rules: [Rule], routes: [Route]? = nil) {
        self.links = Dictionary(links.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.rules = rules
        self.routes = routes
        byIndex = Dictionary(links.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Adds the route table and the complete link list.
    public mutating func addRoutes(_ routes: [Route], allLinks: [LinkInfo]) {
        self.routes = routes
        for l in allLinks { links[l.name] = l; byIndex[l.index] = l }
    }

    public func holder(ofLink name: String) -> Holder {
        guard let l = links[name] else { return .nobody }
        return l.alias.isEmpty ? .untagged : .container(l.alias)
    }

    /// Who routes `ip` as a host route (/32 or /128) through a link, in any table: the pod that
    /// uses the address (standard: main; strict: its VLAN's table). Needs `routes`.
    func ipHolders(_ ip: IPAddress) -> Set<Holder> {
        let host = IPPrefix(host: ip)
        var out = Set<Holder>()
        for r in routes ?? [] where r.destination == host && r.gateway == nil {
            guard let oif = r.outputIndex, let l = byIndex[oif] else { continue }
            out.insert(l.alias.isEmpty ? .untagged : .container(l.alias))
        }
        return out
    }

    /// Whether container `c` routes any host address through its links (a pod with a datapath).
    func holdsAnAddress(_ c: String) -> Bool {
        (routes ?? []).contains { r in
            r.gateway == nil && r.destination.isHost && r.outputIndex.flatMap { byIndex[$0] }?.alias == c
        }
    }
}

/// The rules this plugin creates, recognised by their exact shape (SPEC section 3). Other rules at
/// the same priorities (someone else's) are never taken for ours.
public enum PodRule: Hashable, Sendable {
    /// `iif <link> lookup N+100 prio 10` (strict).
    case strictIIF(link: String, vlanID: UInt16)
    /// `to <ip> lookup main prio 512` (standard).
    case toPod(IPAddress)
    /// `from <ip> lookup N+100 prio 1536` (standard).
    case fromPod(IPAddress, vlanID: UInt16)
    /// `from <ip> lookup <device number + 1> prio 1536` (a regular pod on a secondary ENI).
    case fromRegularPod(IPAddress, table: UInt32)

    public init?(_ r: Rule) {
        guard r.fwmark == nil, r.fwmask == nil, r.ipProtocol == nil else { return nil }
        switch r.priority {
        case Priority.strictIIF:
            guard let iif = r.inputInterface, r.source == nil, r.destination == nil, let v = Naming.vlanID(forTable: r.table) else { return nil }
            self = .strictIIF(link: iif, vlanID: v)
        case Priority.standardToPod:
            guard r.inputInterface == nil, r.source == nil, r.table == RouteTable.main, let d = r.destination, d.isHost else { return nil }
            self = .toPod(d.address)
        case Priority.standardFromPod:
            guard r.inputInterface == nil, r.destination == nil, let s = r.source, s.isHost else { return nil }
            if let v = Naming.vlanID(forTable: r.table) {
                self = .fromPod(s.address, vlanID: v)
            } else if Naming.isENIRouteTable(r.table) {
                self = .fromRegularPod(s.address, table: r.table)
            } else {
                return nil
            }
        default:
            return nil
        }
    }
}

extension PodRule {
    /// The pod address the rule is about (nil for `iif` rules).
    public var address: IPAddress? {
        switch self {
        case .strictIIF: nil
        case .toPod(let ip), .fromPod(let ip, _), .fromRegularPod(let ip, _): ip
        }
    }
}

extension HostState {
    /// Who the rule belongs to. A claim by a container means that pod needs the rule.
    public func claims(_ rule: PodRule) -> Set<Holder> {
        switch rule {
        case .strictIIF(let link, let vlan):
            // Belongs to the VLAN's owner when it names the VLAN, or a veth of the same owner.
            let vlanHolder = holder(ofLink: Naming.vlanLinkName(vlanID: vlan))
            if link == Naming.vlanLinkName(vlanID: vlan) || vlanHolder == .untagged { return [vlanHolder] }
            switch holder(ofLink: link) {
            case .nobody: return [vlanHolder]  // the veth is gone; its pod's VLAN owner answers for it
            case .untagged: return [.untagged]
            case .container(let c):
                // A veth of one pod pointing at another pod's VLAN: an earlier pod's leftover.
                if case .container(let d) = vlanHolder, d != c { return [.nobody] }
                return [.container(c)]
            }
        case .fromPod(let ip, let vlan):
            let vlanHolder = holder(ofLink: Naming.vlanLinkName(vlanID: vlan))
            switch vlanHolder {
            case .untagged: return [.untagged]
            case .nobody:
                // The VLAN is gone: whoever still routes the address answers for its rules.
                let h = routes == nil ? [] : ipHolders(ip)
                return h.isEmpty ? [.nobody] : h
            case .container(let c):
                guard routes != nil else { return [vlanHolder] }
                if ipHolders(ip).contains(vlanHolder) { return [vlanHolder] }
                // The VLAN's owner uses another address: this rule is a leftover of an earlier pod
                // on that VLAN (it would send that address's traffic through someone else's ENI).
                // An owner without any address (its pod netns is gone) keeps its claim.
                return holdsAnAddress(c) ? [.nobody] : [vlanHolder]
            }
        case .fromRegularPod(let ip, _):
            // No VLAN to answer for it: whoever routes the address (read whenever the scope has
            // such a rule, see needsRoutes).
            let h = routes == nil ? [] : ipHolders(ip)
            return h.isEmpty ? [.nobody] : h
        case .toPod(let ip):
            var out = routes == nil ? [] : ipHolders(ip)
            // A standard pod whose veth is gone still claims its 512 rule through its 1536 rule.
            for r in rules {
                if case .fromPod(let a, let vlan)? = PodRule(r), a == ip { out.formUnion(claims(.fromPod(a, vlanID: vlan)).filter { $0 != .nobody }) }
            }
            return out.isEmpty ? [.nobody] : out
        }
    }
}

/// Which objects one pod's teardown looks at: its VLAN (the link, and every rule that uses the
/// VLAN's table), its address (512 and 1536 rules), the host veth names it may have had (links,
/// `iif` rules), and the 512 rules of other addresses whose 1536 rules use the VLAN's table
/// (an earlier pod's on that VLAN), which go only when nobody else needs them.
public struct TeardownScope: Hashable, Sendable {
    public var vlanID: UInt16?
    public var podIP: IPAddress?
    public var hostVeths: [String]

    public init(vlanID: UInt16?, podIP: IPAddress?, hostVeths: [String]) {
        self.vlanID = vlanID; self.podIP = podIP; self.hostVeths = hostVeths
    }

    public init(_ id: BranchPodIdentity, alsoVeths: [String] = []) {
        var veths = id.hostVeth.map { [$0] } ?? []
        for v in alsoVeths where !veths.contains(v) { veths.append(v) }
        self.init(vlanID: id.vlanID == 0 ? nil : id.vlanID, podIP: id.podIP, hostVeths: veths)
    }

    var vlanLink: String? { vlanID.map(Naming.vlanLinkName(vlanID:)) }

    /// The pod's own objects.
    func directlyContains(_ rule: PodRule) -> Bool {
        switch rule {
        case .strictIIF(let link, let vlan): vlan == vlanID || hostVeths.contains(link)
        case .toPod(let ip): ip == podIP
        case .fromPod(let ip, let vlan): ip == podIP || vlan == vlanID
        case .fromRegularPod(let ip, _): ip == podIP
        }
    }

    /// Addresses other than the pod's whose 1536 rules use the pod's VLAN table.
    func otherAddressesOnVLAN(_ rules: [Rule]) -> Set<IPAddress> {
        guard let vlanID else { return [] }
        var out = Set<IPAddress>()
        for r in rules { if case .fromPod(let ip, vlanID)? = PodRule(r), ip != podIP { out.insert(ip) } }
        return out
    }

    /// Every rule the teardown judges, split into the pod's own and the derived 512 rules.
    func rules(_ all: [Rule]) -> (direct: [Rule], derived: [Rule]) {
        let others = otherAddressesOnVLAN(all)
        var direct: [Rule] = [], derived: [Rule] = []
        for r in all {
            guard let p = PodRule(r) else { continue }
            if directlyContains(p) { direct.append(r) } else if case .toPod(let ip) = p, others.contains(ip) { derived.append(r) }
        }
        return (direct, derived)
    }

    /// The addresses whose holders matter: the pod's and the others on its VLAN.
    func addresses(_ rules: [Rule]) -> Set<IPAddress> {
        otherAddressesOnVLAN(rules).union(podIP.map { [$0] } ?? [])
    }

    /// The links to look up before planning: the scope's own, the veths its `iif` rules name and
    /// the VLANs its addresses' 1536 rules point at.
    public func linkNames(rules: [Rule]) -> [String] {
        var names = hostVeths + (vlanLink.map { [$0] } ?? [])
        let ips = addresses(rules)
        for r in rules {
            guard let p = PodRule(r) else { continue }
            switch p {
            case .strictIIF(let link, _) where directlyContains(p): names.append(link)
            case .fromPod(let ip, let vlan) where ips.contains(ip): names.append(Naming.vlanLinkName(vlanID: vlan))
            default: break
            }
        }
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}

/// Teardown plans computed from what the node holds, so that no run ever removes an object
/// another live pod needs (SPEC section 3; the late-DEL leak of SPEC section 8).
public enum TeardownPlanner {
    /// Whether `owner`'s plan depends on who routes an address: a 1536 rule for one of the
    /// scope's addresses points at a VLAN that is gone or that another container owns (a newer
    /// pod on that VLAN, or the address reused). The usual DEL, of a pod whose VLAN is its own,
    /// reads no routes.
    public static func needsRoutes(_ scope: TeardownScope, owner: String, state: HostState) -> Bool {
        let ips = scope.addresses(state.rules)
        // A regular pod's rules have no VLAN whose owner answers for them: only the routes tell
        // whether a newer pod uses the address now.
        if scope.vlanID == nil, let ip = scope.podIP, state.rules.contains(where: { PodRule($0)?.address == ip }) { return true }
        return state.rules.contains { r in
            guard case .fromPod(let ip, let vlan)? = PodRule(r), ips.contains(ip) else { return false }
            switch state.holder(ofLink: Naming.vlanLinkName(vlanID: vlan)) {
            case .container(let c): return c != owner
            case .nobody: return true
            case .untagged: return false
            }
        }
    }

    /// DEL by `owner`: everything in scope that is `owner`'s, untagged (pods of an older plugin)
    /// or nobody's; nothing another container claims.
    public static func delete(_ scope: TeardownScope, owner: String, state: HostState) -> [PlanStep] {
        let mine: (Set<Holder>) -> Bool = { claims in
            claims.allSatisfy { h in if case .container(let c) = h { c == owner } else { true } }
        }
        return plan(scope, state: state, direct: mine, derived: mine)
    }

    /// ADD's clean-up before building, once ipamd has confirmed that no live pod holds the VLAN or
    /// the address: everything of the pod's own scope goes (an earlier sandbox of the pod, a leaked
    /// pod's leftovers), and the 512 rules of other addresses on the VLAN unless a pod outside
    /// what is evicted still needs them.
    public static func evict(_ scope: TeardownScope, state: HostState) -> [PlanStep] {
        let evicted = foreignHolders(scope, owner: "", state: state)
        return plan(scope, state: state, direct: { _ in true }) { claims in
            claims.allSatisfy { h in if case .container(let c) = h { evicted.contains(c) } else { true } }
        }
    }

    /// Who owns what `evict` removes of the pod's own scope, other than `owner` (for the log).
    public static func foreignHolders(_ scope: TeardownScope, owner: String, state: HostState) -> Set<String> {
        var out = Set<String>()
        for l in scope.hostVeths + (scope.vlanLink.map { [$0] } ?? []) {
            if let c = state.holder(ofLink: l).containerID { out.insert(c) }
        }
        for r in scope.rules(state.rules).direct {
            for h in state.claims(PodRule(r)!) { if let c = h.containerID { out.insert(c) } }
        }
        out.remove(owner)
        return out
    }

    /// GC: every tagged link of a container the runtime no longer has, and every pod rule no
    /// valid attachment (or untagged link) claims. Untagged links stay: nothing says whose they are.
    public static func collect(valid: Set<String>, vethPrefixes: [String], state: HostState) -> [PlanStep] {
        var steps: [PlanStep] = []
        for r in state.rules {
            guard let p = PodRule(r) else { continue }
            let keep = state.claims(p).contains { h in
                switch h {
                case .container(let c): valid.contains(c)
                case .untagged: true
                case .nobody: false
                }
            }
            if !keep { steps.append(.deleteRule(r)) }
        }
        for l in state.links.values.sorted(by: { $0.name < $1.name }) where !l.alias.isEmpty && !valid.contains(l.alias) {
            let ours = (l.kind == "vlan" && l.name.hasPrefix("vlan.eth.")) || (l.kind == "veth" && vethPrefixes.contains { l.name.hasPrefix($0) })
            if ours { steps.append(.deleteLink(.host, l.name)) }
        }
        return steps
    }

    /// Rules first (they outlive links), then the VLAN, then the veths.
    static func plan(_ scope: TeardownScope, state: HostState, direct: (Set<Holder>) -> Bool, derived: (Set<Holder>) -> Bool) -> [PlanStep] {
        var steps: [PlanStep] = []
        let (own, others) = scope.rules(state.rules)
        for r in own where direct(state.claims(PodRule(r)!)) { steps.append(.deleteRule(r)) }
        for r in others where derived(state.claims(PodRule(r)!)) { steps.append(.deleteRule(r)) }
        for link in (scope.vlanLink.map { [$0] } ?? []) + scope.hostVeths where state.links[link] != nil {
            if direct([state.holder(ofLink: link)]) { steps.append(.deleteLink(.host, link)) }
        }
        return steps
    }
}
