import Foundation
import Glibc
import IPAMDProtocol
import NetModel
import Netlink
import TestSupport
import Testing

/// A simulated node whose cloud is moto (EC2, STS) plus the IMDS test server, both run inside
/// the node's namespace (scripts/tests/cloud-sim.py), and an ipamd that is given none of the
/// overrides: it finds the primary interface, the VPC CIDRs and the trunk itself.
final class CloudNode {
    let sim: SimNode
    let cloud: CloudSimulator
    let ipamd: IpamdProcess

    /// `trunkAttached`: a trunk ENI attached in EC2 with the node's eth1 carrying its MAC;
    /// false: no trunk yet (eth1 is removed; `attachTrunk` brings one later).
    /// `instanceType`: the node's (moto's limits for it).
    init(trunkAttached: Bool = true, mode: String = "strict", instanceType: String = "m5.large", _ extra: [String: String] = [:]) throws {
        sim = try SimNode()
        do {
            cloud = try CloudSimulator(netns: sim.node.name, instanceType: instanceType)
        } catch {
            sim.destroy()
            throw error
        }
        // The node's primary interface is the ENI at device 0: same MAC and address, in the
        // simulator's subnet (10.0.0.0/19) whose gateway is the VPC's 10.0.0.1.
        let primary = cloud.initial.primaryENI
        try sim.node.ip("link", "set", "eth0", "address", primary.mac)
        try sim.node.ip("addr", "flush", "dev", "eth0")
        try sim.node.ip("addr", "add", "\(primary.ip)/19", "dev", "eth0")
        try sim.node.ip("route", "replace", "default", "via", "10.0.0.1", "dev", "eth0")
        try sim.vpc.ip("addr", "flush", "dev", "primary0")
        try sim.vpc.ip("addr", "add", "10.0.0.1/19", "dev", "primary0")
        if trunkAttached {
            guard let trunk = cloud.createENI(type: "trunk", attach: true) else { throw CloudNodeError.simulator("create_eni") }
            try sim.node.ip("link", "set", "eth1", "address", trunk.mac)
        } else {
            try sim.node.ip("link", "del", "eth1")
        }
        ipamd = IpamdProcess(sim, mode: mode, [
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": cloud.imdsURL, "AWS_ENDPOINT_URL_EC2": cloud.ec2URL,
            "AWS_ENDPOINT_URL_STS": cloud.ec2URL,
        ].merging(extra) { _, b in b })
        ipamd.env["TRUNK_INTERFACE"] = nil
        ipamd.env["VPC_CIDRS"] = nil
    }

    /// What the VPC resource controller and the kernel do when the trunk is attached: EC2 lists
    /// it, then a link with its MAC appears (down, default MTU).
    @discardableResult
    func attachTrunk() throws -> SimENI {
        guard let trunk = cloud.createENI(type: "trunk", attach: true) else { throw CloudNodeError.simulator("create_eni") }
        try sim.node.ip("link", "add", "eth1", "address", trunk.mac, "mtu", "1500", "type", "veth", "peer", "name", "trunk", "netns", sim.vpc.name,
                        "mtu", "9001")
        // The VPC's end is up; the node's end is ipamd's to bring up.
        try sim.vpc.ip("link", "set", "trunk", "up")
        return trunk
    }

    func link(named name: String) throws -> LinkInfo? { try LibNLClient(namespacePath: sim.node.path).link(named: name) }

    /// The elements of the SNAT-exempt set, from `nft -j` (parsed).
    func exemptSet() throws -> [String] {
        let set = try sim.nftRuleset().first { $0["set"]?["name"]?.stringValue == "snat-exempt" }
        return (set?["set"]?["elem"]?.arrayValue ?? []).compactMap { e in
            guard let p = e["prefix"] else { return e.stringValue }
            return "\(p["addr"]?.stringValue ?? "")/\(p["len"]?.intValue ?? -1)"
        }
    }

    func rpc(_ method: RPCMethod, pod: String, container: String, timeout: Int = 30) throws -> RPCReply {
        try SocketIPAMDClient(path: ipamd.rpcSocket).call(
            RPCRequest(method: method, pod: PodRequest(podName: pod, podNamespace: "default", podUID: "uid-\(pod)", containerID: container, ifName: "eth0")),
            timeoutSeconds: timeout)
    }

    func destroy() {
        ipamd.stop()
        cloud.stop()
        sim.destroy()
    }
}

enum CloudNodeError: Error { case simulator(String) }

@Suite(.serialized, .ownThread, .enabled(if: isRoot)) struct CloudDiscoveryTests {
    /// No TRUNK_INTERFACE, VPC_CIDRS or NODE_PRIMARY_INTERFACE: ipamd reads them from the cloud,
    /// with one DescribeNetworkInterfaces at start and no cloud call per AddNetwork/DelNetwork.
    @Test func discoversTheNodeWithoutOverrides() throws {
        let n = try CloudNode()
        defer { n.destroy() }
        n.ipamd.setPods(["default/web": annotation(vlan: 5, ip: "10.0.40.5", mac: "0a:00:00:00:05:05")])
        #expect(try n.ipamd.start(), "ipamd ready: \(n.ipamd.log.suffix(20))")
        let atStart = n.cloud.requests()
        #expect(atStart.ec2["DescribeNetworkInterfaces"] == 1, "\(atStart.ec2)")
        #expect(atStart.tokenPUTs >= 1 && atStart.imdsGETs > 0)
        #expect(try n.exemptSet() == ["10.0.0.0/16"])

        let trunk = try #require(try n.link(named: "eth1"))
        n.cloud.resetCounts()
        let add = try n.rpc(.addNetwork, pod: "web", container: "c-web")
        #expect(add.success, "\(String(describing: add.error))")
        #expect(add.network?.parentIfIndex == trunk.index)
        #expect(add.network?.vpcCIDRs == ["10.0.0.0/16"])
        let del = try n.rpc(.delNetwork, pod: "web", container: "c-web")
        #expect(del.success)
        let perPod = n.cloud.requests()
        #expect(perPod.ec2.values.reduce(0, +) == 0 && perPod.imdsGETs == 0, "cloud calls for one ADD and DEL: \(perPod.ec2) \(perPod.imds)")
        print("cloud calls at start: EC2 \(atStart.ec2), IMDS \(atStart.imdsGETs) GETs + \(atStart.tokenPUTs) token PUTs; per ADD+DEL: 0")
    }

    /// The trunk arrives after ipamd started: an AddNetwork waiting for it is served once the
    /// link appears and EC2 confirms it (one call); the trunk is brought up with the ENI MTU.
    @Test func lateTrunkServesAWaitingAdd() throws {
        let n = try CloudNode(trunkAttached: false, ["POD_ENI_WAIT_TIMEOUT": "20"])
        defer { n.destroy() }
        n.ipamd.setPods(["default/web": annotation(vlan: 5, ip: "10.0.40.5", mac: "0a:00:00:00:05:05")])
        #expect(try n.ipamd.start(), "ipamd ready: \(n.ipamd.log.suffix(20))")
        let describesAtStart = n.cloud.requests().ec2["DescribeNetworkInterfaces"] ?? 0
        let rpcSocket = n.ipamd.rpcSocket
        let reply = OffThread {
            Result { try SocketIPAMDClient(path: rpcSocket).call(
                RPCRequest(method: .addNetwork, pod: PodRequest(podName: "web", podNamespace: "default", podUID: "uid-web", containerID: "c-web")),
                timeoutSeconds: 30) }
        }
        #expect(n.ipamd.process?.waitForLine(containing: "waiting for the trunk", timeout: 30) == true)
        try n.attachTrunk()
        let r = try #require(reply.value(timeout: 60)).get()
        #expect(r.success, "\(String(describing: r.error)) \(n.ipamd.log.suffix(10))")
        let trunk = try #require(try n.link(named: "eth1"))
        #expect(r.network?.parentIfIndex == trunk.index)
        #expect(trunk.isUp && trunk.mtu == 9001)
        let describes = (n.cloud.requests().ec2["DescribeNetworkInterfaces"] ?? 0) - describesAtStart
        #expect(describes >= 1 && describes <= 2, "EC2 calls while waiting: \(describes)")
        print("late trunk: EC2 DescribeNetworkInterfaces while waiting: \(describes)")
    }

    /// No trunk within the wait bound: the AddNetwork is answered "pending" (the plugin's CNI
    /// code 11, try again later), not an internal error.
    @Test func noTrunkWithinTheBoundIsTryAgainLater() throws {
        let n = try CloudNode(trunkAttached: false, ["POD_ENI_WAIT_TIMEOUT": "1"])
        defer { n.destroy() }
        n.ipamd.setPods(["default/web": annotation(vlan: 5, ip: "10.0.40.5", mac: "0a:00:00:00:05:05")])
        #expect(try n.ipamd.start())
        let r = try n.rpc(.addNetwork, pod: "web", container: "c-web")
        #expect(r.error?.code == .pending, "\(String(describing: r.error))")
    }

    /// A CIDR associated with the VPC later joins the SNAT-exempt set at the next refresh.
    @Test func newVPCCIDRJoinsTheExemptSet() throws {
        let n = try CloudNode(["VPC_CIDR_REFRESH_INTERVAL": "5"])
        defer { n.destroy() }
        #expect(try n.ipamd.start())
        #expect(try n.exemptSet() == ["10.0.0.0/16"])
        n.cloud.addVPCCIDR("100.64.0.0/16")
        #expect(n.ipamd.process?.waitForLine(containing: "VPC CIDRs changed", timeout: 60) == true, "\(n.ipamd.log.suffix(10))")
        #expect(try n.exemptSet() == ["10.0.0.0/16", "100.64.0.0/16"])
    }

    /// Metadata unreachable and no VPC_CIDRS: ipamd does not serve (fail closed: it would SNAT
    /// VPC traffic), and says which variables would let it run without the cloud.
    @Test func noMetadataNoVPCCIDRsDoesNotServe() throws {
        let sim = try SimNode()
        defer { sim.destroy() }
        let p = IpamdProcess(sim, ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9"])
        p.env["VPC_CIDRS"] = nil
        #expect(try p.start() == false)
        let log = p.log
        let end = p.stop()
        #expect(end?.exitCode == 1)
        #expect(log.contains { $0.contains("node discovery failed") && $0.contains("VPC_CIDRS") }, "\(log.suffix(5))")
        #expect(!FileManager.default.fileExists(atPath: p.rpcSocket))
    }

    /// A checkpoint that is not JSON is moved aside with the reason logged; ipamd serves.
    @Test func corruptCheckpointIsMovedAside() throws {
        let sim = try SimNode()
        defer { sim.destroy() }
        let p = IpamdProcess(sim)
        let path = p.env["AWS_VPC_K8S_CNI_BACKING_STORE"]!
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        writeAtomically("{not json", to: path)
        #expect(try p.start(), "\(p.log.suffix(10))")
        defer { p.stop() }
        let dir = (path as NSString).deletingLastPathComponent
        let aside = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("ipam.json.corrupt-") }
        #expect(aside.count == 1)
        #expect(try String(contentsOfFile: dir + "/" + aside[0], encoding: .utf8) == "{not json")
        #expect(p.log.contains { $0.contains("moved aside") })
    }
}
