import CNI
import CNIPlugin
import Datapath
import EnforcingMode
import Glibc
import IPAMDProtocol
import Logging
import NetModel
import Testing

/// Runs the whole CNI contract against the in-memory kernel and a fake ipamd.
struct Harness {
    let dp = FakeDatapath()
    let ipamd: FakeIPAMD

    init(vlan: UInt16 = 7) {
        ipamd = FakeIPAMD(network: PodNetwork(branch: true, podIPv4: "10.0.40.12", vlanID: vlan, branchMAC: "0a:1b:2c:3d:4e:5f",
                                              branchENIID: "eni-1", subnetCIDR: "10.0.32.0/19", subnetGatewayV4: "10.0.32.1",
                                              parentIfIndex: 0))
        ipamd.network!.parentIfIndex = dp.trunk.index
    }

    func run(_ command: String, conf: String, netns: String = "/var/run/netns/pod1", args: String = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx;K8S_POD_UID=u1",
             containerID: String = "c1") -> Outcome {
        let d = Dispatcher(makeIPAMD: { _ in ipamd }, datapath: dp, makeLogger: { _, _ in Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }) })
        return d.run(environment: ["CNI_COMMAND": command, "CNI_CONTAINERID": containerID, "CNI_NETNS": netns, "CNI_IFNAME": "eth0",
                                   "CNI_PATH": "/opt/cni/bin", "CNI_ARGS": args], stdin: Array(conf.utf8))
    }

    static func conf(_ mode: String = "strict", version: String = "1.1.0", prevResult: String? = nil) -> String {
        #"{"cniVersion":"\#(version)","name":"aws-cni","type":"aws-cni","vethPrefix":"eni","mtu":"9001","podSGEnforcingMode":"\#(mode)""#
            + (prevResult.map { #","prevResult":\#($0)"# } ?? "") + "}"
    }
}

func code(_ o: Outcome) -> UInt32? {
    (try? CNIJSON.decode(CNIErrorJSON.self, from: Array(o.stdout.utf8)))?.code
}

@Suite struct PluginTests {
    @Test(arguments: ["strict", "standard"])
    func addCheckDelDel(_ mode: String) throws {
        let h = Harness()
        let hostBefore = h.dp.host.state
        let add = h.run("ADD", conf: Harness.conf(mode))
        #expect(add.exitCode == 0, "\(add.stdout)")
        let result = try CNIJSON.decode(CNIResult.self, from: Array(add.stdout.utf8))
        let veth = mode == "strict" ? "vlanc440f455693" : "enic440f455693"
        #expect(result.interfaces?.map(\.name) == [veth, "eth0", "dummyc440f455693"])
        #expect(result.interfaces?[2].mac == "7")
        #expect(result.interfaces?[1].sandbox == "/var/run/netns/pod1")
        #expect(result.ips == [.init(address: "10.0.40.12/32", gateway: "10.0.32.1", interface: 1)])
        #expect(h.dp.host.linkTable["vlan.eth.7"]?.isUp == true)
        #expect(h.dp.host.linkTable["vlan.eth.7"]?.mac == MACAddress("0a:1b:2c:3d:4e:5f"))
        #expect(h.dp.pod.linkTable["eth0"]?.isUp == true)
        #expect(h.dp.pod.neighborList.first?.mac == h.dp.host.linkTable[veth]?.mac)

        let check = h.run("CHECK", conf: Harness.conf(mode, prevResult: add.stdout))
        #expect(check.exitCode == 0, "\(check.stdout)")

        h.ipamd.down = true
        #expect(h.run("DEL", conf: Harness.conf(mode, prevResult: add.stdout)).exitCode == 0)
        #expect(h.dp.host.state == hostBefore)
        #expect(h.dp.pod.state.isEmpty)
        #expect(h.run("DEL", conf: Harness.conf(mode, prevResult: add.stdout), netns: "").exitCode == 0)
        #expect(h.dp.host.state == hostBefore)
    }

    @Test(arguments: ["strict", "standard"])
    func delWithoutPrevResultOrIPAMDFindsLiveState(_ mode: String) {
        let h = Harness()
        let hostBefore = h.dp.host.state
        #expect(h.run("ADD", conf: Harness.conf(mode)).exitCode == 0)
        h.ipamd.down = true
        #expect(h.run("DEL", conf: Harness.conf(mode), netns: "").exitCode == 0)
        #expect(h.dp.host.state == hostBefore)
    }

    @Test func delAfterModeChangeRemovesEverything() {
        let h = Harness()
        let hostBefore = h.dp.host.state
        let add = h.run("ADD", conf: Harness.conf("strict"))
        #expect(h.run("DEL", conf: Harness.conf("standard", prevResult: add.stdout)).exitCode == 0)
        #expect(h.dp.host.state == hostBefore)
    }

    @Test func delAskingIPAMD() {
        let h = Harness()
        let hostBefore = h.dp.host.state
        #expect(h.run("ADD", conf: Harness.conf("standard")).exitCode == 0)
        #expect(h.run("DEL", conf: Harness.conf("standard")).exitCode == 0)
        #expect(h.dp.host.state == hostBefore)
        #expect(h.ipamd.requests.last?.method == .delNetwork)
    }

    @Test func failedAddLeavesNothing() {
        // Fail each mutating netlink call in turn: whatever ADD did must be undone.
        var k = 1
        while true {
            let h = Harness()
            let hostBefore = h.dp.host.state
            h.dp.host.failAt = (k, EPERM)
            let out = h.run("ADD", conf: Harness.conf("standard"))
            if out.exitCode == 0 { break }  // k is past the last call: every failure point was covered
            #expect(code(out) == 101, "call \(k): \(out.stdout)")
            h.dp.host.failAt = nil
            #expect(h.dp.host.state == hostBefore, "call \(k) (\(h.dp.host.calls.last ?? "")) left host state")
            #expect(h.dp.pod.state.isEmpty, "call \(k) left pod state")
            #expect(h.ipamd.requests.last?.method == .delNetwork)
            k += 1
        }
        // 9 mutating host calls in a standard ADD: each link's alias and IFF_UP go in one request.
        #expect(k == 10)
    }

    @Test func failedAddOnPodSideLeavesNothing() {
        var k = 1
        while k < 50 {
            let h = Harness()
            let hostBefore = h.dp.host.state
            h.dp.pod.failAt = (k, EPERM)
            let out = h.run("ADD", conf: Harness.conf("strict"))
            if out.exitCode == 0 { break }
            h.dp.pod.failAt = nil
            #expect(code(out) == 101)
            #expect(h.dp.host.state == hostBefore)
            #expect(h.dp.pod.state.isEmpty)
            #expect(h.ipamd.requests.last?.method == .delNetwork)
            k += 1
        }
        #expect(k == 6)  // 5 mutating pod-side calls: link up, address, two routes, neighbour
    }

    @Test func failedAddBeforeTheDatapathReleasesIPAMD() {
        let h = Harness()
        #expect(code(h.run("ADD", conf: Harness.conf(), netns: "/var/run/netns/missing")) == 101)
        #expect(h.ipamd.requests.map(\.method) == [.addNetwork, .delNetwork])
    }

    @Test(arguments: ["strict", "standard"])
    func lateDelOfOldSandboxLeavesTheNewOne(_ mode: String) throws {
        // Sandbox c1 of default/nginx is replaced by c2 (same pod, same VLAN) before c1's DEL.
        let h = Harness()
        let hostBefore = h.dp.host.state
        let old = h.run("ADD", conf: Harness.conf(mode))
        #expect(old.exitCode == 0)
        h.dp.pod.linkTable.removeAll(); h.dp.pod.addressList.removeAll(); h.dp.pod.routeList.removeAll(); h.dp.pod.neighborList.removeAll()
        let new = h.run("ADD", conf: Harness.conf(mode), containerID: "c2")
        #expect(new.exitCode == 0)
        let withNew = h.dp.host.state
        // Late DEL of c1, from prevResult, then without prevResult (ipamd up, then down).
        #expect(h.run("DEL", conf: Harness.conf(mode, prevResult: old.stdout), netns: "").exitCode == 0)
        #expect(h.run("DEL", conf: Harness.conf(mode), netns: "").exitCode == 0)
        h.ipamd.down = true
        #expect(h.run("DEL", conf: Harness.conf(mode), netns: "").exitCode == 0)
        #expect(h.dp.host.state == withNew)
        #expect(h.run("CHECK", conf: Harness.conf(mode, prevResult: new.stdout), containerID: "c2").exitCode == 0)
        // c2's own DEL removes everything.
        #expect(h.run("DEL", conf: Harness.conf(mode, prevResult: new.stdout), netns: "", containerID: "c2").exitCode == 0)
        #expect(h.dp.host.state == hostBefore)
    }

    @Test func standardDelAfterNetnsGoneWithoutPrevResultOrIPAMD() {
        // The pod netns (and so the veth and the main route) is gone; VLAN, table and rules remain.
        let h = Harness()
        let hostBefore = h.dp.host.state
        #expect(h.run("ADD", conf: Harness.conf("standard")).exitCode == 0)
        let veth = h.dp.host.linkTable["enic440f455693"]!
        h.dp.host.removeLink(veth)
        h.dp.pod.linkTable.removeAll()
        h.ipamd.down = true
        #expect(h.run("DEL", conf: Harness.conf("standard"), netns: "").exitCode == 0)
        #expect(h.dp.host.state == hostBefore)
    }

    @Test func addReplacesLeftoversOfSameNamePod() {
        let h = Harness()
        #expect(h.run("ADD", conf: Harness.conf("strict")).exitCode == 0)
        // The old sandbox's netns is gone; a stale iif rule and VLAN remain in the host.
        h.dp.pod.linkTable.removeAll(); h.dp.pod.addressList.removeAll(); h.dp.pod.routeList.removeAll(); h.dp.pod.neighborList.removeAll()
        let second = h.run("ADD", conf: Harness.conf("strict"))
        #expect(second.exitCode == 0, "\(second.stdout)")
        #expect(h.dp.host.ruleList.filter { $0.priority == 10 }.count == 2)
    }

    @Test(arguments: ["strict", "standard"])
    func gcRemovesOnlyAttachmentsNoLongerValid(_ mode: String) {
        let h = Harness()
        let hostBefore = h.dp.host.state
        let gone = h.run("ADD", conf: Harness.conf(mode), args: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=gone", containerID: "c-gone")
        #expect(gone.exitCode == 0)
        // Its sandbox is gone (the fake's single pod namespace is reused for the next pod).
        h.dp.pod.linkTable.removeAll(); h.dp.pod.addressList.removeAll(); h.dp.pod.routeList.removeAll(); h.dp.pod.neighborList.removeAll()
        h.dp.host.vethPeers.removeAll()
        let goneVeth = Naming.hostVethName(prefix: mode == "strict" ? "vlan" : "eni", podNamespace: "default", podName: "gone")
        h.ipamd.network!.vlanID = 9
        h.ipamd.network!.podIPv4 = "10.0.40.19"
        let kept = h.run("ADD", conf: Harness.conf(mode), args: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=kept", containerID: "c-kept")
        #expect(kept.exitCode == 0)
        let keptOnly = h.dp.host.state.filter { !$0.contains("vlan.eth.7") && !$0.contains("107") && !$0.contains("10.0.40.12") && !$0.contains(goneVeth) }
        // Not ours to judge: an untagged VLAN link from another tool stays.
        h.dp.host.addLink("vlan.eth.30", kind: "vlan", parent: h.dp.trunk.index, vlan: 30)
        let gcConf = #"{"cniVersion":"1.1.0","name":"aws-cni","type":"aws-cni","podSGEnforcingMode":"\#(mode)","cni.dev/valid-attachments":[{"containerID":"c-kept","ifname":"eth0"}]}"#
        let gc = h.run("GC", conf: gcConf)
        #expect(gc.exitCode == 0, "\(gc.stdout)")
        #expect(h.dp.host.linkTable["vlan.eth.7"] == nil)
        #expect(h.dp.host.linkTable["vlan.eth.30"] != nil)
        #expect(h.dp.host.state.filter { !$0.contains("vlan.eth.30") } == keptOnly)
        #expect(h.run("CHECK", conf: Harness.conf(mode, prevResult: kept.stdout), args: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=kept", containerID: "c-kept").exitCode == 0)
        // Nothing valid: everything of ours goes.
        h.dp.host.removeLink(h.dp.host.linkTable["vlan.eth.30"]!)
        let none = #"{"cniVersion":"1.1.0","name":"aws-cni","type":"aws-cni","podSGEnforcingMode":"\#(mode)","cni.dev/valid-attachments":[]}"#
        #expect(h.run("GC", conf: none).exitCode == 0)
        #expect(h.dp.host.state == hostBefore)
        #expect(code(h.run("GC", conf: Harness.conf(mode))) == 7)
    }

    @Test func checkReportsMissingRule() {
        let h = Harness()
        let add = h.run("ADD", conf: Harness.conf("strict"))
        h.dp.host.ruleList.removeAll { $0.inputInterface == "vlan.eth.7" }
        let check = h.run("CHECK", conf: Harness.conf("strict", prevResult: add.stdout))
        #expect(check.exitCode != 0)
        #expect(code(check) == 102)
        #expect(check.stdout.contains("iif vlan.eth.7"))
    }

    @Test func checkDetectsModeMismatch() {
        let h = Harness()
        let add = h.run("ADD", conf: Harness.conf("strict"))
        #expect(code(h.run("CHECK", conf: Harness.conf("standard", prevResult: add.stdout))) == 102)
    }

    @Test func containerIDNamesWhenNoPodIdentity() throws {
        let h = Harness()
        let add = h.run("ADD", conf: Harness.conf("strict"), args: "")
        let r = try CNIJSON.decode(CNIResult.self, from: Array(add.stdout.utf8))
        #expect(r.interfaces?.first?.name == Naming.hostVethName(prefix: "vlan", containerID: "c1"))
        #expect(h.ipamd.requests.first?.pod?.key == "c1")
    }

    @Test func errorCodes() {
        let h = Harness()
        #expect(code(h.run("ADD", conf: "{not json")) == 6)
        #expect(code(h.run("ADD", conf: "")) == 6)
        #expect(code(h.run("ADD", conf: #"{"cniVersion":"9.9.9"}"#)) == 1)
        #expect(code(h.run("ADD", conf: #"{"cniVersion":"1.0.0","mtu":"x"}"#)) == 7)
        #expect(code(h.run("BOGUS", conf: Harness.conf())) == 4)
        #expect(code(h.run("ADD", conf: Harness.conf(), netns: "")) == 4)
        #expect(code(h.run("ADD", conf: Harness.conf(), netns: "/var/run/netns/missing")) == 101)
        h.ipamd.down = true
        #expect(code(h.run("ADD", conf: Harness.conf())) == 11)
        h.ipamd.down = false
        h.ipamd.failure = RPCFailure(.pending, "not yet")
        #expect(code(h.run("ADD", conf: Harness.conf())) == 11)
        h.ipamd.failure = RPCFailure(.podNotFound, "no entry")
        #expect(code(h.run("ADD", conf: Harness.conf())) == 103)
        h.ipamd.failure = RPCFailure(.invalidAnnotation, "invalid pod-eni annotation: vlanId: 0 is outside 1...4094")
        let bad = h.run("ADD", conf: Harness.conf())
        #expect(code(bad) == 100 && bad.stdout.contains("vlanId"))
    }

    @Test func errorAnswersInRequestedVersion() {
        let out = Harness().run("ADD", conf: #"{"cniVersion":"0.3.1","mtu":"x"}"#)
        #expect(out.stdout.contains(#""cniVersion":"0.3.1""#))
        #expect(out.exitCode == 1)
        // Also when the environment is what is wrong.
        let envError = Harness().run("BOGUS", conf: #"{"cniVersion":"0.4.0"}"#)
        #expect(envError.stdout.contains(#""cniVersion":"0.4.0""#) && code(envError) == 4)
    }

    @Test func versionAndStatus() {
        let h = Harness()
        let v = h.run("VERSION", conf: #"{"cniVersion":"0.4.0"}"#)
        #expect(v.stdout == #"{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#)
        #expect(h.run("VERSION", conf: "").exitCode == 0)
        #expect(h.run("STATUS", conf: Harness.conf()).exitCode == 0)
        h.ipamd.down = true
        #expect(code(h.run("STATUS", conf: Harness.conf())) == 50)
    }

    @Test(arguments: CNIVersion.supported)
    func addInEveryVersion(_ v: String) throws {
        let h = Harness()
        let add = h.run("ADD", conf: Harness.conf(version: v))
        #expect(add.exitCode == 0)
        #expect(add.stdout.contains(#""cniVersion":"\#(v)""#))
        #expect(add.stdout.contains(#""version":"4""#) == v.hasPrefix("0."))
        #expect(h.run("DEL", conf: Harness.conf(version: v, prevResult: add.stdout)).exitCode == 0)
    }

    /// Every verb at every version: a verb newer than the configuration's version gets the
    /// spec's error (code 1), never a silent success (CHECK from 0.4.0, STATUS and GC from 1.1.0).
    @Test(arguments: CNIVersion.supported)
    func everyVerbAtEveryVersion(_ v: String) throws {
        let h = Harness()
        let add = h.run("ADD", conf: Harness.conf(version: v))
        #expect(add.exitCode == 0, "ADD \(v): \(add.stdout)")
        let gc = #"{"cniVersion":"\#(v)","name":"aws-cni","type":"aws-cni","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}"#
        let outcomes: [(verb: String, introduced: String?, outcome: Outcome)] = [
            ("VERSION", nil, h.run("VERSION", conf: Harness.conf(version: v))),
            ("CHECK", "0.4.0", h.run("CHECK", conf: Harness.conf(version: v, prevResult: add.stdout))),
            ("STATUS", "1.1.0", h.run("STATUS", conf: Harness.conf(version: v))),
            ("GC", "1.1.0", h.run("GC", conf: gc)),
            ("DEL", nil, h.run("DEL", conf: Harness.conf(version: v, prevResult: add.stdout))),
        ]
        for (verb, introduced, out) in outcomes {
            if let first = introduced, CNIVersion.isOlder(v, than: first) {
                let e = try CNIJSON.decode(CNIErrorJSON.self, from: Array(out.stdout.utf8))
                #expect(out.exitCode != 0 && e.code == 1, "\(verb) at \(v): \(out.stdout)")
                #expect(e.msg == "config version does not allow \(verb)" && e.cniVersion == v)
            } else {
                #expect(out.exitCode == 0, "\(verb) at \(v): \(out.stdout)")
            }
        }
        // GC at 1.1.0 kept the valid attachment: DEL still had something to remove.
        #expect(h.dp.host.linkTable["vlan.eth.7"] == nil)
    }
}
