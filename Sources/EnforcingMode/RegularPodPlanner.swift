import NetModel

/// Everything the planner needs to know about one regular pod: an address from one of the node's
/// ENIs (SPEC section 3a). No VLAN: traffic leaves through the ENI that holds the address.
public struct RegularPod: Hashable, Sendable {
    public var veth: PodVeth
    /// The ENI's device number: 0 is the primary ENI (table main); another one has table d+1.
    public var deviceNumber: Int

    public init(veth: PodVeth, deviceNumber: Int) { self.veth = veth; self.deviceNumber = deviceNumber }

    /// nil for an address of the primary ENI, which routes through main.
    public var table: UInt32? { Naming.eniRouteTable(deviceNumber: deviceNumber) }
}

public enum RegularPodPlanner {
    /// The ordered steps that build a regular pod's datapath: the pod side as for a branch pod,
    /// then the host side as for a standard-mode branch pod, leaving through the ENI's table.
    public static func setup(_ p: RegularPod) -> [PlanStep] {
        p.veth.steps + p.veth.mainTableRouting(leavingThrough: p.table)
    }
}

/// A secondary ENI as the node sees it once attached: what its route table needs.
public struct SecondaryENI: Hashable, Sendable {
    public var deviceNumber: Int
    /// The kernel's name for it (found by its MAC).
    public var link: String
    public var primaryIP: IPAddress
    /// The ENI's subnet; its router (base + 1) is the table's gateway.
    public var subnet: IPPrefix

    public init(deviceNumber: Int, link: String, primaryIP: IPAddress, subnet: IPPrefix) {
        self.deviceNumber = deviceNumber; self.link = link; self.primaryIP = primaryIP; self.subnet = subnet
    }
}

public enum ENITablePlanner {
    /// A secondary ENI brought into use: loose reverse-path filtering (its replies may arrive on
    /// another interface than the one the kernel would route them out of), its own address as a
    /// /32 (a subnet prefix would add the ENI's subnet to main), table d+1 (its gateway on the
    /// link, the default route via it) and the rule that sends what leaves from the ENI's own
    /// address through it. nil: no table for this device number (the primary ENI, or one beyond
    /// the tables below the VLAN tables).
    public static func setup(_ eni: SecondaryENI) -> [PlanStep]? {
        guard let table = Naming.eniRouteTable(deviceNumber: eni.deviceNumber),
              let gateway = Naming.subnetGatewayV4(subnet: eni.subnet) else { return nil }
        let family = eni.primaryIP.family
        let anywhere = Naming.defaultDestination(family)
        return [
            .sysctl(.host, key: "net/ipv4/conf/\(eni.link)/rp_filter", value: "2"),
            .linkUp(.host, eni.link),
            .address(.host, link: eni.link, IPPrefix(host: eni.primaryIP)),
            .route(.host, PlannedRoute(destination: IPPrefix(host: gateway), device: eni.link, table: table, scope: .link)),
            .route(.host, PlannedRoute(destination: anywhere, gateway: gateway, device: eni.link, table: table)),
            .rule(rule(eni, table: table)),
        ]
    }

    /// Before the ENI is detached: its rule (the table's routes go with the link).
    public static func teardown(_ eni: SecondaryENI) -> [PlanStep] {
        guard let table = Naming.eniRouteTable(deviceNumber: eni.deviceNumber) else { return [] }
        return [.deleteRule(rule(eni, table: table))]
    }

    static func rule(_ eni: SecondaryENI, table: UInt32) -> Rule {
        Rule(family: eni.primaryIP.family, priority: Priority.eniPrimaryAddress, table: table, source: IPPrefix(host: eni.primaryIP))
    }
}
