import NetModel

/// Everything the planner needs to know about one branch pod. Family-generic: an IPv6 pod uses
/// IPv6 addresses here and gets the IPv6 variants of the same steps.
public struct BranchPod: Hashable, Sendable {
    public var mode: PodSGEnforcingMode
    public var vlanID: UInt16
    public var podIP: IPAddress
    /// The branch ENI's subnet router (IPv4: network + 1; IPv6: fe80:ec2::1).
    public var subnetGateway: IPAddress
    public var branchMAC: MACAddress
    /// Trunk ifindex in the host namespace. Only setup needs it; teardown ignores it.
    public var trunkIndex: Int32
    public var hostVeth: String
    public var containerInterface: String
    public var mtu: UInt32
    /// The CNI container id; recorded on the links the pod owns.
    public var owner: String
    /// The veth ends' MACs, chosen by the caller (random, locally administered; see VethMAC).
    public var hostVethMAC: MACAddress
    public var containerMAC: MACAddress

    public init(mode: PodSGEnforcingMode, vlanID: UInt16, podIP: IPAddress, subnetGateway: IPAddress,
                branchMAC: MACAddress, trunkIndex: Int32, hostVeth: String, containerInterface: String, mtu: UInt32,
                owner: String, hostVethMAC: MACAddress, containerMAC: MACAddress) {
        self.mode = mode; self.vlanID = vlanID; self.podIP = podIP; self.subnetGateway = subnetGateway
        self.branchMAC = branchMAC; self.trunkIndex = trunkIndex; self.hostVeth = hostVeth
        self.containerInterface = containerInterface; self.mtu = mtu; self.owner = owner
        self.hostVethMAC = hostVethMAC; self.containerMAC = containerMAC
    }

    public var vlanLink: String { Naming.vlanLinkName(vlanID: vlanID) }
    public var table: UInt32 { Naming.routeTable(vlanID: vlanID) }
    public var family: AddressFamily { podIP.family }
    var podHost: IPPrefix { IPPrefix(host: podIP) }
    var defaultDestination: IPPrefix { Naming.defaultDestination(family) }
    var veth: PodVeth {
        PodVeth(podIP: podIP, hostVeth: hostVeth, containerInterface: containerInterface, mtu: mtu, owner: owner,
                hostVethMAC: hostVethMAC, containerMAC: containerMAC)
    }
}

/// What a teardown needs: identity only, so DEL can run from prevResult or from live state.
public struct BranchPodIdentity: Hashable, Sendable {
    public var vlanID: UInt16
    public var podIP: IPAddress?
    public var hostVeth: String?

    public init(vlanID: UInt16, podIP: IPAddress?, hostVeth: String?) {
        self.vlanID = vlanID; self.podIP = podIP; self.hostVeth = hostVeth
    }
}

public enum BranchPodPlanner {
    /// The ordered steps that build a branch pod's datapath (SPEC section 3).
    public static func setup(_ p: BranchPod) -> [PlanStep] {
        // Pod side first: the veth and the pod's view of the world (link-local gateway).
        var steps = p.veth.steps
        // Then the branch ENI: VLAN sub-interface on the trunk with the branch MAC, and its table.
        // IPv6 settings before the link goes up (no router advertisement is taken in between);
        // tag and up adjacent, so the applier sends them as one request. A run that dies before
        // the tag leaves an untagged link, which the next ADD for this VLAN evicts.
        steps.append(.createVLAN(name: p.vlanLink, parentIndex: p.trunkIndex, vlanID: p.vlanID, mac: p.branchMAC))
        steps += ipv6LinkSysctls(p.vlanLink)
        steps.append(.tagOwner(link: p.vlanLink, owner: p.owner))
        steps.append(.linkUp(.host, p.vlanLink))
        steps.append(.route(.host, PlannedRoute(destination: IPPrefix(host: p.subnetGateway), device: p.vlanLink, table: p.table, scope: .link)))
        steps.append(.route(.host, PlannedRoute(destination: p.defaultDestination, gateway: p.subnetGateway, device: p.vlanLink, table: p.table)))
        steps += modeSteps(p)
        return steps
    }

    /// Routes and rules that differ by mode.
    static func modeSteps(_ p: BranchPod) -> [PlanStep] {
        switch p.mode {
        case .strict:
            // All traffic to and from the pod goes through the branch ENI's table.
            return [
                .route(.host, PlannedRoute(destination: p.podHost, device: p.hostVeth, table: p.table, scope: .link)),
                .rule(Rule(family: p.family, priority: Priority.strictIIF, table: p.table, inputInterface: p.vlanLink)),
                .rule(Rule(family: p.family, priority: Priority.strictIIF, table: p.table, inputInterface: p.hostVeth)),
            ]
        case .standard:
            // Traffic to the pod uses main (node and other pods reach it directly); traffic from
            // the pod that main does not route locally leaves through the branch ENI.
            return p.veth.mainTableRouting(leavingThrough: p.table)
        }
    }

    static func ipv6LinkSysctls(_ link: String) -> [PlanStep] {
        [
            .sysctl(.host, key: "net/ipv6/conf/\(link)/accept_ra", value: "0"),
            .sysctl(.host, key: "net/ipv6/conf/\(link)/accept_redirects", value: "1"),
            .sysctl(.host, key: "net/ipv6/conf/\(link)/forwarding", value: "0"),
        ]
    }
}

/// The veth pair every pod gets, branch or regular, and the pod's view of the world: its
/// address as a /32 (or /128), a link-local gateway with a permanent neighbour entry pointing at
/// the host end, the default route through it.
public struct PodVeth: Hashable, Sendable {
    public var podIP: IPAddress
    public var hostVeth: String
    public var containerInterface: String
    public var mtu: UInt32
    /// The CNI container id; recorded on the host veth.
    public var owner: String
    /// The veth ends' MACs, chosen by the caller (random, locally administered; see VethMAC).
    public var hostVethMAC: MACAddress
    public var containerMAC: MACAddress

    public init(podIP: IPAddress, hostVeth: String, containerInterface: String, mtu: UInt32, owner: String,
                hostVethMAC: MACAddress, containerMAC: MACAddress) {
        self.podIP = podIP; self.hostVeth = hostVeth; self.containerInterface = containerInterface; self.mtu = mtu
        self.owner = owner; self.hostVethMAC = hostVethMAC; self.containerMAC = containerMAC
    }

    var podHost: IPPrefix { IPPrefix(host: podIP) }

    /// Host side of a pod that main routes to (standard mode, regular pods): the route to the
    /// veth, rule 512 so main is asked first, and rule 1536 sending what the pod sends, where
    /// main has no local route, out through `table` (nil: the pod's traffic stays in main).
    func mainTableRouting(leavingThrough table: UInt32?) -> [PlanStep] {
        var steps: [PlanStep] = [
            .route(.host, PlannedRoute(destination: podHost, device: hostVeth, table: RouteTable.main, scope: .link)),
            .rule(Rule(family: podIP.family, priority: Priority.standardToPod, table: RouteTable.main, destination: podHost)),
        ]
        if let table {
            steps.append(.rule(Rule(family: podIP.family, priority: Priority.standardFromPod, table: table, source: podHost)))
        }
        return steps
    }

    var steps: [PlanStep] {
        let gateway = Naming.podGateway(podIP.family)
        let anywhere = Naming.defaultDestination(podIP.family)
        var steps: [PlanStep] = [
            .createVeth(host: hostVeth, container: containerInterface, mtu: mtu, hostMAC: hostVethMAC, containerMAC: containerMAC),
            .tagOwner(link: hostVeth, owner: owner),
            .linkUp(.host, hostVeth),
        ]
        steps += BranchPodPlanner.ipv6LinkSysctls(hostVeth)
        steps += [
            .linkUp(.pod, containerInterface),
            .address(.pod, link: containerInterface, podHost),
            .route(.pod, PlannedRoute(destination: IPPrefix(host: gateway), device: containerInterface, scope: .link)),
            .route(.pod, PlannedRoute(destination: anywhere, gateway: gateway, device: containerInterface)),
            .neighbor(.pod, link: containerInterface, address: gateway, mac: hostVethMAC),
        ]
        return steps
    }
}

/// MACs for the veth ends: random, unicast, locally administered, like the reference's (and
/// unlike udev's "persistent" policy, which would derive them from the name after creation).
public enum VethMAC {
    public static func random<G: RandomNumberGenerator>(using g: inout G) -> MACAddress {
        // One draw of 64 bits for the 48: with the system generator, one getrandom(2), not six.
        let r = g.next()
        var bytes = (0..<6).map { UInt8(truncatingIfNeeded: r >> (8 * $0)) }
        bytes[0] = (bytes[0] & 0xfe) | 0x02
        return MACAddress(bytes: bytes)!
    }
}

/// Rule priorities (SPEC section 3 and 4).
public enum Priority {
    public static let strictIIF: UInt32 = 10
    public static let localMovedTo: UInt32 = 20
    public static let standardToPod: UInt32 = 512
    public static let connmark: UInt32 = 1024
    public static let standardFromPod: UInt32 = 1536
    /// What leaves from a secondary ENI's own address goes out through that ENI (SPEC section 3a).
    public static let eniPrimaryAddress: UInt32 = 32765
}
