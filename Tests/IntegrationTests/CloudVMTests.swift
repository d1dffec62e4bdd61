import Foundation
import Glibc
import NetModel
import Netlink
import TestSupport
import Testing

/// The VM scenario in one boot of the cloud simulator (moto starts slowly under
/// emulation): ipamd with no overrides, a trunk attached after start serving the branch ADD
/// that waited for it, a VPC CIDR added while running, ten live pods across a SIGKILL and
/// restart (none touched, the one deleted meanwhile torn down), then a corrupt checkpoint.
@Suite(.serialized, .ownThread) struct CloudVMTests {
    static let pods = (0..<10).map { i in (name: "web\(i)", vlan: UInt16(20 + i), ip: "10.0.40.\(20 + i)", mac: String(format: "0a:00:00:00:01:%02x", 20 + i)) }

    @Test(.enabled(if: kernelHasVLAN, "needs 802.1Q: runs in the test VM"))
    func discoveryLateTrunkAndRestartWithTenPods() throws {
        let n = try CloudNode(trunkAttached: false, ["POD_ENI_WAIT_TIMEOUT": "25", "VPC_CIDR_REFRESH_INTERVAL": "5"])
        defer { n.destroy() }
        n.ipamd.setPods(Dictionary(uniqueKeysWithValues: Self.pods.map { ("default/\($0.name)", annotation(vlan: $0.vlan, ip: $0.ip, mac: $0.mac)) }))
        let started = ContinuousClock.now
        #expect(try n.ipamd.start(), "ipamd ready: \(n.ipamd.log.suffix(20))")
        print("cloud VM: ipamd start to ready with discovery: \(ContinuousClock.now - started)")
        #expect(try n.exemptSet() == ["10.0.0.0/16"])

        // The first branch ADD arrives before the trunk: it waits, and is served once the trunk is attached.
        let plugin = PluginRunner(sim: n.sim, ipamd: n.ipamd, mode: "strict")
        let first = try n.sim.newPodNamespace()
        let firstPath = first.path
        let waiting = OffThread { Result { try plugin.run("ADD", container: "c-web0", pod: "web0", netns: firstPath) } }
        #expect(n.ipamd.process?.waitForLine(containing: "waiting for the trunk", timeout: 120) == true, "\(n.ipamd.log.suffix(10))")
        try n.attachTrunk()
        let add0 = try #require(waiting.value(timeout: 120)).get()
        #expect(add0.exitCode == 0, "\(add0) \(n.ipamd.log.suffix(10))")
        let trunk = try #require(try n.link(named: "eth1"))
        #expect(trunk.isUp && trunk.mtu == 9001)
        try n.sim.branch(vlan: Self.pods[0].vlan, mac: Self.pods[0].mac, ip: Self.pods[0].ip)
        #expect(try first.exec(["ping", "-c", "1", "-W", "10", "10.0.32.1"]).status == 0, "the pod reaches its gateway over the trunk")

        // A CIDR associated with the VPC joins the SNAT-exempt set.
        n.cloud.addVPCCIDR("100.64.0.0/16")
        #expect(n.ipamd.process?.waitForLine(containing: "VPC CIDRs changed", timeout: 120) == true)
        #expect(try n.exemptSet() == ["10.0.0.0/16", "100.64.0.0/16"])

        var namespaces = [Self.pods[0].name: first]
        for p in Self.pods.dropFirst() {
            let ns = try n.sim.newPodNamespace()
            namespaces[p.name] = ns
            if p.name == "web9" { break }
            let add = try plugin.run("ADD", container: "c-\(p.name)", pod: p.name, netns: ns.path)
            #expect(add.exitCode == 0, "\(p.name): \(add)")
        }
        // The node with nine pods: what it must be again after the restart.
        let paths = Self.pods.map { namespaces[$0.name]!.path }
        let nine = try n.sim.snapshot(pods: paths)
        let add9 = try plugin.run("ADD", container: "c-web9", pod: "web9", netns: namespaces["web9"]!.path)
        #expect(add9.exitCode == 0)
        let indexes = try vlanIndexes(n)
        #expect(indexes.count == 10)

        // SIGKILL; web9 is deleted while ipamd is down (its DEL never reached the node).
        n.ipamd.stop(SIGKILL)
        n.ipamd.setPods(Dictionary(uniqueKeysWithValues: Self.pods.dropLast().map { ("default/\($0.name)", annotation(vlan: $0.vlan, ip: $0.ip, mac: $0.mac)) }))
        n.cloud.resetCounts()
        let restart = ContinuousClock.now
        #expect(try n.ipamd.start(), "restart: \(n.ipamd.log.suffix(20))")
        print("cloud VM: restart with 10 pods to serving: \(ContinuousClock.now - restart); cloud calls: \(n.cloud.requests().ec2) + IMDS \(n.cloud.requests().imdsGETs) GETs")
        #expect(try n.sim.snapshot(pods: paths).difference(from: nine).isEmpty, "nine pods as they were, web9 gone")
        var kept = try vlanIndexes(n)
        #expect(kept == indexes.filter { $0.key != Self.pods[9].vlan }, "the nine VLAN links were not re-created")
        #expect(Set(try n.ipamd.servedPods().keys) == Set(Self.pods.dropLast().map { "default/\($0.name)" }))

        // A corrupt checkpoint: moved aside, the pods rebuilt from the kernel and the source.
        n.ipamd.stop(SIGKILL)
        writeAtomically("{\"version\":", to: n.ipamd.env["AWS_VPC_K8S_CNI_BACKING_STORE"]!)
        #expect(try n.ipamd.start(), "corrupt checkpoint: \(n.ipamd.log.suffix(20))")
        #expect(n.ipamd.log.contains { $0.contains("moved aside") })
        #expect(try n.sim.snapshot(pods: paths).difference(from: nine).isEmpty)
        kept = try vlanIndexes(n)
        #expect(kept == indexes.filter { $0.key != Self.pods[9].vlan })
        let served = try n.ipamd.servedPods()
        #expect(Set(served.keys) == Set(Self.pods.dropLast().map { "default/\($0.name)" }))
        #expect(served["default/web3"]?.container == "c-web3")
    }

    /// What a real node gives ipamd: pod ENI on, the mode, the node's name, and where the cloud
    /// and the API server are; nothing about the node's interfaces or the VPC. ipamd signals the
    /// feature on the CNINode and serves a branch pod from the pod watch.
    @Test(.enabled(if: kernelHasVLAN, "needs 802.1Q: runs in the test VM"))
    func onlyPodENIModeNodeNameAndEndpoints() throws {
        let n = try CloudNode(mode: "standard")
        defer { n.destroy() }
        let api = try FakeAPIServer(netns: n.sim.node.name)
        defer { api.close() }
        api.control(["op": "put_pod", "pod": pod("shop", uid: "uid-shop", branch: true, annotation: podENI(vlan: 9, ip: "10.0.40.9"))])
        api.control(["op": "put_object", "path": "/apis/vpcresources.k8s.aws/v1alpha1/cninodes/node-1",
                     "object": ["kind": "CNINode", "metadata": ["name": "node-1"], "spec": [:] as [String: Any]]])
        let files = ["IPAMD_SOCKET", "IPAMD_DEBUG_SOCKET", "AWS_VPC_K8S_CNI_BACKING_STORE", "AWS_VPC_K8S_CNI_LOG_FILE",
                     "CNI_BIN_DIR", "CNI_CONF_DIR", "CNI_PLUGIN_SOURCE", "PATH"]
        n.ipamd.env = n.ipamd.env.filter { files.contains($0.key) }.merging([
            "ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "standard", "MY_NODE_NAME": "node-1",
            "KUBECONFIG": api.kubeconfigPath, "AWS_EC2_METADATA_SERVICE_ENDPOINT": n.cloud.imdsURL,
            "AWS_ENDPOINT_URL_EC2": n.cloud.ec2URL, "AWS_ENDPOINT_URL_STS": n.cloud.ec2URL,
        ]) { _, b in b }
        #expect(try n.ipamd.start(), "\(n.ipamd.log.suffix(20))")
        try n.sim.branch(vlan: 9, mac: "0a:00:00:00:00:09", ip: "10.0.40.9")
        let ns = try n.sim.newPodNamespace()
        let plugin = PluginRunner(sim: n.sim, ipamd: n.ipamd, mode: "standard")
        let add = try plugin.run("ADD", container: "c-shop", pod: "shop", netns: ns.path)
        #expect(add.exitCode == 0, "\(add) \(n.ipamd.log.suffix(10))")
        #expect(try ns.exec(["ping", "-c", "1", "-W", "10", "10.0.32.1"]).status == 0)
        let cniNode = api.control(["op": "get_object", "path": "/apis/vpcresources.k8s.aws/v1alpha1/cninodes/node-1"])["object"] as? [String: Any]
        let features = (cniNode?["spec"] as? [String: Any])?["features"] as? [[String: Any]] ?? []
        #expect(features.contains { $0["name"] as? String == "SecurityGroupsForPods" })
        #expect(try plugin.run("DEL", container: "c-shop", pod: "shop", netns: ns.path, prevResult: add.out).exitCode == 0)
    }

    /// vlan.eth.N -> ifindex on the node.
    func vlanIndexes(_ n: CloudNode) throws -> [UInt16: Int32] {
        Dictionary(uniqueKeysWithValues: try LibNLClient(namespacePath: n.sim.node.path).links()
            .filter { $0.kind == "vlan" && $0.name.hasPrefix("vlan.eth.") }.map { ($0.vlanID, $0.index) })
    }
}
