import EnforcingMode
import NetModel
import Testing

func samplePod(_ mode: PodSGEnforcingMode) -> BranchPod {
    let veth = Naming.hostVethName(prefix: Naming.vethPrefix(mode: mode, configuredPrefix: "eni"), podNamespace: "default", podName: "nginx")
    return BranchPod(mode: mode, vlanID: 7, podIP: IPAddress("10.0.40.12")!, subnetGateway: IPAddress("10.0.32.1")!,
                     branchMAC: MACAddress("0a:1b:2c:3d:4e:5f")!, trunkIndex: 3, hostVeth: veth, containerInterface: "eth0", mtu: 9001,
                     owner: "c1", hostVethMAC: MACAddress("02:00:00:00:00:01")!, containerMAC: MACAddress("02:00:00:00:00:02")!)
}

func commonPodSide(_ veth: String) -> [String] { [
    "host: link add \(veth) address 02:00:00:00:00:01 type veth peer eth0 address 02:00:00:00:00:02 netns pod mtu 9001",
    "host: link set \(veth) alias c1",
    "host: link set \(veth) up",
    "host: sysctl net/ipv6/conf/\(veth)/accept_ra=0",
    "host: sysctl net/ipv6/conf/\(veth)/accept_redirects=1",
    "host: sysctl net/ipv6/conf/\(veth)/forwarding=0",
    "pod: link set eth0 up",
    "pod: addr add 10.0.40.12/32 dev eth0",
    "pod: route replace 169.254.1.1/32 dev eth0 table main scope link",
    "pod: route replace default via 169.254.1.1 dev eth0 table main",
    "pod: neigh replace 169.254.1.1 lladdr 02:00:00:00:00:01 dev eth0 nud permanent",
    "host: link add vlan.eth.7 link #3 type vlan id 7 address 0a:1b:2c:3d:4e:5f",
    "host: sysctl net/ipv6/conf/vlan.eth.7/accept_ra=0",
    "host: sysctl net/ipv6/conf/vlan.eth.7/accept_redirects=1",
    "host: sysctl net/ipv6/conf/vlan.eth.7/forwarding=0",
    "host: link set vlan.eth.7 alias c1",
    "host: link set vlan.eth.7 up",
    "host: route replace 10.0.32.1/32 dev vlan.eth.7 table 107 scope link",
    "host: route replace default via 10.0.32.1 dev vlan.eth.7 table 107",
] }

@Suite struct PlanTests {
    @Test func strictSetupGolden() {
        let plan = BranchPodPlanner.setup(samplePod(.strict)).map(\.description)
        #expect(plan == commonPodSide("vlanc440f455693") + [
            "host: route replace 10.0.40.12/32 dev vlanc440f455693 table 107 scope link",
            "host: rule add 10: from all iif vlan.eth.7 lookup 107",
            "host: rule add 10: from all iif vlanc440f455693 lookup 107",
        ])
    }

    @Test func standardSetupGolden() {
        let plan = BranchPodPlanner.setup(samplePod(.standard)).map(\.description)
        #expect(plan == commonPodSide("enic440f455693") + [
            "host: route replace 10.0.40.12/32 dev enic440f455693 table main scope link",
            "host: rule add 512: from all to 10.0.40.12 lookup main",
            "host: rule add 1536: from 10.0.40.12 lookup 107",
        ])
    }

    @Test func vethMACsAreLocallyAdministeredUnicast() {
        var g = SystemRandomNumberGenerator()
        var seen = Set<MACAddress>()
        for _ in 0..<100 {
            let m = VethMAC.random(using: &g)
            #expect(m.bytes[0] & 0x02 == 0x02 && m.isUnicast)
            seen.insert(m)
        }
        // 46 random bits each: a repeat among 100 would mean the bytes are not all drawn.
        #expect(seen.count == 100)
    }
}

@Suite struct NamingTests {
    @Test func hostVethNameMatchesReferenceHash() {
        // sha1("default.nginx") = c440f455693...
        #expect(Naming.hostVethName(prefix: "eni", podNamespace: "default", podName: "nginx") == "enic440f455693")
        #expect(Naming.hostVethName(prefix: "vlan", podNamespace: "prod", podName: "web-0") == "vlanaa960f0d82e")
        #expect(Naming.hostVethName(prefix: "vlan", containerID: "default-abcdef0123") == "vland2444fa6c63")
        #expect(Naming.hostVethName(prefix: "vlan", podNamespace: "prod", podName: "web-0").count == 15)
    }

    @Test func tablesAndNames() {
        #expect(Naming.vlanLinkName(vlanID: 7) == "vlan.eth.7")
        #expect(Naming.routeTable(vlanID: 7) == 107)
        #expect(Naming.vlanID(forTable: 107) == 7)
        #expect(Naming.vlanID(forTable: 100) == nil)
        #expect(Naming.vlanID(forTable: 254) == nil)
        #expect(Naming.vlanID(forTable: 4194) == 4094)
        #expect(Naming.subnetGatewayV4(subnet: IPPrefix("10.0.32.0/19")!) == IPAddress("10.0.32.1"))
        #expect(Naming.subnetGatewayV4(subnet: IPPrefix("10.0.40.77/19")!) == IPAddress("10.0.32.1"))
    }
}

@Suite struct VLANRangeTests {
    @Test(arguments: [0, 153, 154, 155, 4095, -1])
    func refused(_ id: Int) { #expect(Naming.vlanIDProblem(id) != nil) }

    @Test(arguments: [1, 7, 120, 152, 156, 4094])
    func accepted(_ id: Int) { #expect(Naming.vlanIDProblem(id) == nil) }

    @Test func reservedTableIsNamed() {
        #expect(Naming.vlanIDProblem(154) == "154 would use route table 254, which the kernel reserves (main)")
    }
}

@Suite struct AddressTests {
    @Test func ipv4() {
        #expect(IPv4Address("10.0.40.12")?.description == "10.0.40.12")
        #expect(IPv4Address("10.0.40") == nil)
        #expect(IPv4Address("10.0.40.256") == nil)
        #expect(IPv4Address("10.0.040.1") == nil)
        #expect(IPPrefix("10.0.32.0/19")!.contains(IPAddress("10.0.63.255")!))
        #expect(!IPPrefix("10.0.32.0/19")!.contains(IPAddress("10.0.64.0")!))
        #expect(IPPrefix("10.0.32.0/33") == nil)
    }

    @Test func ipv6() {
        #expect(IPv6Address("fe80:ec2::1")?.description == "fe80:ec2::1")
        #expect(IPv6Address("2001:db8:0:0:1:0:0:1")?.description == "2001:db8::1:0:0:1")
        #expect(IPv6Address("::")?.description == "::")
        #expect(IPv6Address("::ffff:10.0.0.1")?.description == "::ffff:a00:1")
        #expect(IPv6Address("1::2::3") == nil)
        #expect(IPPrefix("2001:db8::/64")!.contains(IPAddress("2001:db8::5")!))
    }

    @Test func mac() {
        #expect(MACAddress("0A:1b:2c:3d:4e:5f")?.description == "0a:1b:2c:3d:4e:5f")
        #expect(MACAddress("0a:1b:2c:3d:4e") == nil)
        #expect(MACAddress("01:00:5e:00:00:01")?.isUnicast == false)
        #expect(MACAddress("00:00:00:00:00:00")?.isUnicast == false)
        #expect(MACAddress("0a:1b:2c:3d:4e:5f")?.isUnicast == true)
    }
}
