// The plugin's datapath code against the real kernel through libnl, in throwaway namespaces:
// a "node" namespace plays the host (never the test machine's own), a "pod" namespace the pod.
// Everything that needs no 802.1Q runs here; the VLAN parts run in the VM (scripts/tests).
#if canImport(Glibc)
import TestSupport
import Glibc
#endif
import CNI
import CNIPlugin
import Datapath
import EnforcingMode
import Foundation
import IPAMDProtocol
import Logging
import NetModel
import Netlink
import Testing

private let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Sysctl writes land in a dictionary: /proc/sys of the test process is the host's.
private final class RecordingSysctl: SysctlWriter, @unchecked Sendable {
    var written: [String: String] = [:]
    func write(_ key: String, _ value: String) throws(SysctlError) { written[key] = value }
    func read(_ key: String) throws(SysctlError) -> String { written[key] ?? "" }
}

/// Opens `node` as the host side, so the plugin never touches the machine's own namespace.
private final class NamespacedProvider: DatapathProvider {
    let nodePath: String
    let sysctl = RecordingSysctl()
    var handles: [NetworkNamespaceHandle] = []

    init(nodePath: String) { self.nodePath = nodePath }

    func hostContext() throws(NetlinkError) -> DatapathContext {
        DatapathContext(host: try LibNLClient(namespacePath: nodePath), pod: nil, podNamespaceFD: -1, sysctl: sysctl)
    }

    func podContext(netnsPath: String) throws(NetlinkError) -> DatapathContext {
        let h = try NetworkNamespaceHandle(path: netnsPath)
        handles.append(h)
        return DatapathContext(host: try LibNLClient(namespacePath: nodePath), pod: try LibNLClient(namespacePath: netnsPath),
                               podNamespaceFD: h.fd, sysctl: sysctl)
    }
}

private final class StubIPAMD: IPAMDClient, @unchecked Sendable {
    var network: PodNetwork?
    var down = false
    func call(_ request: RPCRequest, timeoutSeconds: Int) throws(IPAMDClientError) -> RPCReply {
        if down { throw .unreachable(path: "/none", SocketError("connect", errno: ENOENT)) }
        return RPCReply(network: network)
    }
}

/// node + pod namespaces, a trunk veth in node (its peer in a third "vpc" namespace).
private final class Fabric {
    let node: TestNamespace
    let pod: TestNamespace
    let vpc: TestNamespace
    let nodeNL: LibNLClient
    let trunkIndex: Int32

    init() throws {
        node = try TestNamespace.create("dpn")
        pod = try TestNamespace.create("dpp")
        vpc = try TestNamespace.create("dpv")
        _ = try node.ip("link", "add", "eth1", "mtu", "9001", "type", "veth", "peer", "name", "trunk", "netns", vpc.name)
        _ = try node.ip("link", "set", "eth1", "up")
        nodeNL = try LibNLClient(namespacePath: node.path)
        trunkIndex = try #require(try nodeNL.link(named: "eth1")).index
    }

    func destroy() { node.destroy(); pod.destroy(); vpc.destroy() }

    /// Everything observable in the node namespace, as iproute2 shows it.
    func nodeState() throws -> String {
        try node.ip("-o", "link", "show") + node.ip("rule", "show") + node.ip("route", "show", "table", "all")
    }

    func pod(_ mode: PodSGEnforcingMode, vlan: UInt16 = 7) -> BranchPod {
        BranchPod(mode: mode, vlanID: vlan, podIP: IPAddress("10.0.40.12")!, subnetGateway: IPAddress("10.0.32.1")!,
                  branchMAC: MACAddress("0a:1b:2c:3d:4e:5f")!, trunkIndex: trunkIndex,
                  hostVeth: Naming.hostVethName(prefix: mode == .strict ? "vlan" : "eni", podNamespace: "default", podName: "nginx"),
                  containerInterface: "eth0", mtu: 9001, owner: "c1",
                  hostVethMAC: MACAddress("02:00:00:00:00:01")!, containerMAC: MACAddress("02:00:00:00:00:02")!)
    }

    /// ipamd answering with branch details for VLAN 7 on the trunk at `parentIfIndex`.
    func ipamd(parentIfIndex: Int32) -> StubIPAMD {
        let i = StubIPAMD()
        i.network = PodNetwork(branch: true, podIPv4: "10.0.40.12", vlanID: 7, branchMAC: "0a:1b:2c:3d:4e:5f",
                               subnetGatewayV4: "10.0.32.1", parentIfIndex: parentIfIndex)
        return i
    }

    func dispatcher(_ ipamd: StubIPAMD, _ provider: NamespacedProvider) -> Dispatcher {
        Dispatcher(makeIPAMD: { _ in ipamd }, datapath: provider, makeLogger: { _, _ in quiet })
    }

    func env(_ command: String, netns: String? = nil) -> [String: String] {
        ["CNI_COMMAND": command, "CNI_CONTAINERID": "c1", "CNI_NETNS": netns ?? pod.path, "CNI_IFNAME": "eth0",
         "CNI_PATH": "/opt/cni/bin", "CNI_ARGS": "K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx"]
    }
}

/// The setup steps that need no 802.1Q: veth, pod side, and the mode's rules and main route.
private func withoutVLAN(_ steps: [PlanStep], vlanLink: String) -> [PlanStep] {
    steps.filter { step in
        switch step {
        case .createVLAN: false
        case .linkUp(_, let n): n != vlanLink
        case .sysctl(_, let key, _): !key.contains(vlanLink)
        case .tagOwner(let n, _): n != vlanLink
        case .route(_, let r): r.device != vlanLink
        default: true
        }
    }
}

private func conf(_ mode: String, prev: String? = nil) -> [UInt8] {
    Array((#"{"cniVersion":"1.1.0","name":"aws-cni","type":"aws-cni","podSGEnforcingMode":"\#(mode)""# + (prev.map { #","prevResult":\#($0)"# } ?? "") + "}").utf8)
}

@Suite(.serialized, .ownThread) struct DatapathTests {
    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"), arguments: PodSGEnforcingMode.allCases)
    func planAppliesVerifiesAndTearsDown(_ mode: PodSGEnforcingMode) throws {
        let f = try Fabric()
        defer { f.destroy() }
        let baseline = try f.nodeState()
        let provider = NamespacedProvider(nodePath: f.node.path)
        let ctx = try provider.podContext(netnsPath: f.pod.path)
        let p = f.pod(mode)
        let steps = withoutVLAN(BranchPodPlanner.setup(p), vlanLink: p.vlanLink)
        try PlanApplier(context: ctx, logger: quiet).setup(steps)

        #expect(try PlanVerifier(context: ctx).differences(steps) == [])
        let rules = try f.node.ip("rule", "show")
        switch mode {
        case .strict:
            #expect(rules.contains("10:\tfrom all iif \(p.hostVeth) lookup 107"))
            #expect(try f.node.ip("route", "show", "table", "107") == "10.0.40.12 dev \(p.hostVeth) scope link \n")
        case .standard:
            #expect(rules.contains("512:\tfrom all to 10.0.40.12 lookup main"))
            #expect(rules.contains("1536:\tfrom 10.0.40.12 lookup 107"))
            #expect(try f.node.ip("route", "show", "10.0.40.12") == "10.0.40.12 dev \(p.hostVeth) scope link \n")
        }
        #expect(try f.pod.ip("route", "show") == "default via 169.254.1.1 dev eth0 \n169.254.1.1 dev eth0 scope link \n")
        let hostMAC = try #require(try f.nodeNL.link(named: p.hostVeth)?.mac)
        // Both ends carry the planned MACs, set at creation (NET_ADDR_SET = 3), so udev's
        // MACAddressPolicy=persistent leaves them alone; the kernel's own would be 1 (random).
        #expect(hostMAC == p.hostVethMAC)
        #expect(try f.node.exec(["cat", "/sys/class/net/\(p.hostVeth)/addr_assign_type"]).out == "3\n")
        #expect(try f.pod.exec(["cat", "/sys/class/net/eth0/addr_assign_type"]).out == "3\n")
        #expect(try f.pod.ip("neigh", "show").hasPrefix("169.254.1.1 dev eth0 lladdr \(hostMAC) PERMANENT"))
        #expect(provider.sysctl.written["net/ipv6/conf/\(p.hostVeth)/accept_ra"] == "0")

        // Break something: the verifier names it.
        _ = try f.pod.ip("route", "del", "default")
        #expect(try PlanVerifier(context: ctx).differences(steps) == ["pod route default via 169.254.1.1 dev eth0 table main is missing"])

        let scope = TeardownScope(vlanID: 7, podIP: p.podIP, hostVeths: [p.hostVeth])
        let state = try LiveDiscovery.hostState(for: scope, owner: "c1", host: ctx.host)
        let failures = PlanApplier(context: ctx, logger: quiet).teardown(TeardownPlanner.delete(scope, owner: "c1", state: state))
        #expect(failures.isEmpty)
        #expect(try f.nodeState() == baseline)
        #expect(try f.pod.ip("-o", "link", "show").contains("eth0") == false)
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"), arguments: PodSGEnforcingMode.allCases)
    func liveDiscoveryFindsWhatSetupBuilt(_ mode: PodSGEnforcingMode) throws {
        let f = try Fabric()
        defer { f.destroy() }
        let provider = NamespacedProvider(nodePath: f.node.path)
        let ctx = try provider.podContext(netnsPath: f.pod.path)
        let p = f.pod(mode)
        try PlanApplier(context: ctx, logger: quiet).setup(withoutVLAN(BranchPodPlanner.setup(p), vlanLink: p.vlanLink))
        #expect(try LiveDiscovery.branchPod(owner: "c1", hostVeths: [p.hostVeth], host: f.nodeNL) == BranchPodIdentity(vlanID: 7, podIP: p.podIP, hostVeth: p.hostVeth))
        #expect(try LiveDiscovery.branchPod(owner: "c1", hostVeths: ["vlan00000000000"], host: f.nodeNL) == nil)
        // The owner tag is readable back through libnl, and the planner leaves it to its owner.
        #expect(try f.nodeNL.link(named: p.hostVeth)?.alias == "c1")
        let scope = TeardownScope(vlanID: 7, podIP: p.podIP, hostVeths: [p.hostVeth])
        let state = try LiveDiscovery.hostState(for: scope, owner: "c2", host: f.nodeNL)
        #expect(state.holder(ofLink: p.hostVeth) == .container("c1"))
        // c2 may take only what nobody owns (here the strict rule naming the absent VLAN link).
        let byOther = TeardownPlanner.delete(scope, owner: "c2", state: state)
        #expect(!byOther.contains(.deleteLink(.host, p.hostVeth)))
        #expect(byOther.allSatisfy { if case .deleteRule(let r) = $0 { r.inputInterface == p.vlanLink } else { false } }, "\(byOther)")
        #expect(TeardownPlanner.delete(scope, owner: "c1", state: state).contains(.deleteLink(.host, p.hostVeth)))
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func failedAddThroughLibNLLeavesNothing() throws {
        let f = try Fabric()
        defer { f.destroy() }
        let baseline = try f.nodeState()
        // A trunk index that does not exist: the VLAN step fails after the veth and pod side exist.
        let ipamd = f.ipamd(parentIfIndex: 99_999)
        let out = f.dispatcher(ipamd, NamespacedProvider(nodePath: f.node.path)).run(environment: f.env("ADD"), stdin: conf("strict"))
        #expect(out.exitCode == 1)
        let err = try CNIJSON.decode(CNIErrorJSON.self, from: Array(out.stdout.utf8))
        #expect(err.code == 101)
        #expect(err.details?.contains("vlan.eth.7") == true)
        #expect(try f.nodeState() == baseline)
        #expect(try f.pod.ip("-o", "link", "show").contains("eth0") == false)
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func addCheckDelWhereTheKernelHasVLANs() throws {
        // Full ADD needs 802.1Q: where the kernel lacks it, ADD must fail cleanly instead.
        let f = try Fabric()
        defer { f.destroy() }
        let baseline = try f.nodeState()
        let ipamd = f.ipamd(parentIfIndex: f.trunkIndex)
        let provider = NamespacedProvider(nodePath: f.node.path)
        let d = f.dispatcher(ipamd, provider)
        let add = d.run(environment: f.env("ADD"), stdin: conf("standard"))
        if add.exitCode != 0 {
            let err = try CNIJSON.decode(CNIErrorJSON.self, from: Array(add.stdout.utf8))
            #expect(err.details?.contains("errno \(EOPNOTSUPP)") == true, "only a kernel without 802.1Q may fail this ADD: \(add.stdout)")
            #expect(try f.nodeState() == baseline)
            return
        }
        #expect(d.run(environment: f.env("CHECK"), stdin: conf("standard", prev: add.stdout)).exitCode == 0)
        ipamd.down = true
        #expect(d.run(environment: f.env("DEL", netns: ""), stdin: conf("standard")).exitCode == 0)
        #expect(try f.nodeState() == baseline)
    }

    @Test(.enabled(if: isRoot, "needs root: creates network namespaces"))
    func delWithoutPrevResultOrIPAMDRemovesLiveState() throws {
        let f = try Fabric()
        defer { f.destroy() }
        let baseline = try f.nodeState()
        let provider = NamespacedProvider(nodePath: f.node.path)
        let p = f.pod(.standard)
        try PlanApplier(context: try provider.podContext(netnsPath: f.pod.path), logger: quiet)
            .setup(withoutVLAN(BranchPodPlanner.setup(p), vlanLink: p.vlanLink))
        #expect(try f.nodeState() != baseline)
        let ipamd = StubIPAMD()
        ipamd.down = true
        let del = f.dispatcher(ipamd, provider).run(environment: f.env("DEL", netns: ""), stdin: conf("standard"))
        #expect(del.exitCode == 0, "\(del.stdout)")
        #expect(try f.nodeState() == baseline)
    }
}
