import EnforcingMode
import NetModel
import Testing

func sampleVeth(_ hostVeth: String) -> PodVeth {
    PodVeth(podIP: IPAddress("10.0.40.12")!, hostVeth: hostVeth, containerInterface: "eth0", mtu: 9001, owner: "c1",
            hostVethMAC: MACAddress("02:00:00:00:00:01")!, containerMAC: MACAddress("02:00:00:00:00:02")!)
}

func sampleRegularPod(deviceNumber: Int) -> RegularPod {
    RegularPod(veth: sampleVeth("eni0123456789a"), deviceNumber: deviceNumber)
}

/// SPEC section 3a: the pod side as for a branch pod, no VLAN, the pod's traffic through its ENI.
@Suite struct RegularPlanTests {
    /// The pod side exactly as a branch pod's (the same steps in the same order).
    static let podSide = commonPodSide("eni0123456789a").prefix(11).map { $0 }

    @Test func primaryENIAddressUsesMainAndNo1536Rule() {
        let plan = RegularPodPlanner.setup(sampleRegularPod(deviceNumber: 0)).map(\.description)
        #expect(plan == Self.podSide + [
            "host: route replace 10.0.40.12/32 dev eni0123456789a table main scope link",
            "host: rule add 512: from all to 10.0.40.12 lookup main",
        ])
    }

    @Test func secondaryENIAddressLeavesThroughTableDevicePlusOne() {
        let plan = RegularPodPlanner.setup(sampleRegularPod(deviceNumber: 2)).map(\.description)
        #expect(plan == Self.podSide + [
            "host: route replace 10.0.40.12/32 dev eni0123456789a table main scope link",
            "host: rule add 512: from all to 10.0.40.12 lookup main",
            "host: rule add 1536: from 10.0.40.12 lookup 3",
        ])
    }

    @Test func podSideIsTheBranchPodsPodSide() {
        let branch = BranchPodPlanner.setup(samplePod(.standard)).map(\.description)
        let veth = branch[0].split(separator: " ")[3]
        let regular = RegularPodPlanner.setup(RegularPod(veth: sampleVeth(String(veth)), deviceNumber: 1)).map(\.description)
        #expect(Array(regular.prefix(11)) == Array(branch.prefix(11)))
    }

    @Test func secondaryENITable() {
        let eni = SecondaryENI(deviceNumber: 1, link: "ens6", primaryIP: IPAddress("10.0.33.7")!, subnet: IPPrefix("10.0.32.0/19")!)
        #expect(ENITablePlanner.setup(eni)?.map(\.description) == [
            "host: sysctl net/ipv4/conf/ens6/rp_filter=2",
            "host: link set ens6 up",
            "host: addr add 10.0.33.7/32 dev ens6",
            "host: route replace 10.0.32.1/32 dev ens6 table 2 scope link",
            "host: route replace default via 10.0.32.1 dev ens6 table 2",
            "host: rule add 32765: from 10.0.33.7 lookup 2",
        ])
        #expect(ENITablePlanner.teardown(eni).map(\.description) == ["host: rule del 32765: from 10.0.33.7 lookup 2"])
    }

    /// Tables 2...100: the ENI tables never meet the VLAN tables (101 and up) nor main/local.
    @Test func eniTablesStayBelowTheVLANTables() {
        #expect(Naming.eniRouteTable(deviceNumber: 0) == nil)
        #expect(Naming.eniRouteTable(deviceNumber: -1) == nil)
        #expect(Naming.eniRouteTable(deviceNumber: 1) == 2)
        #expect(Naming.eniRouteTable(deviceNumber: 99) == 100)
        #expect(Naming.eniRouteTable(deviceNumber: 100) == nil)
        let vlanTables = Naming.validVLANIDs.map(Naming.routeTable(vlanID:))
        for d in 1...99 { #expect(!vlanTables.contains(Naming.eniRouteTable(deviceNumber: d)!)) }
        #expect(ENITablePlanner.setup(SecondaryENI(deviceNumber: 0, link: "ens5", primaryIP: IPAddress("10.0.33.7")!,
                                                   subnet: IPPrefix("10.0.32.0/19")!)) == nil)
    }
}
