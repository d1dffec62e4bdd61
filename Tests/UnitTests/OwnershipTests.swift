import CNI
import CNIPlugin
import Datapath
import EnforcingMode
import Glibc
import IPAMDCore
import IPAMDProtocol
import NetModel
import Testing

// Regression tests for the review's defects 2, 3, 4 and 11 (issue 10): a CNI plugin must never
// tear down another pod's datapath, never leak, and only take "not found" for absent.

private let a = SimPod(name: "a", container: "c-a", netns: "/var/run/netns/pod1", vlan: 7, ip: "10.0.40.12")
private let b = SimPod(name: "b", container: "c-b", netns: "/var/run/netns/pod2", vlan: 7, ip: "10.0.40.20")

/// What the host looks like with only `pods` added, on a fresh node.
private func alone(_ pods: [SimPod], mode: String) -> [String] {
    let n = SimulatedNode()
    for p in pods {
        if n.dp.namespaces[p.netns] == nil { n.dp.addNamespace(p.netns) }
        n.ipamd.annotate(p)
        #expect(n.run("ADD", p, mode: mode).exitCode == 0)
    }
    return n.hostState
}

@Suite struct OwnershipTests {
    /// A leaks (its netns stays, DEL never comes); the controller gives VLAN 7 to B.
    func leakThenReuse(_ mode: String) -> (SimulatedNode, addA: Outcome, addB: Outcome) {
        let n = SimulatedNode()
        n.dp.addNamespace(b.netns)
        n.ipamd.annotate(a)
        let addA = n.run("ADD", a, mode: mode)
        #expect(addA.exitCode == 0, "\(addA.stdout)")
        n.ipamd.forget(a)
        n.ipamd.annotate(b)
        let addB = n.run("ADD", b, mode: mode)
        #expect(addB.exitCode == 0, "\(addB.stdout)")
        return (n, addA, addB)
    }

    // Defect 2: GC with valid = {B} must remove A's leftovers and nothing of B's.
    @Test(arguments: ["strict", "standard"])
    func gcNeverTakesTheVLANOfALivePod(_ mode: String) {
        let (n, _, addB) = leakThenReuse(mode)
        #expect(n.gc(valid: [b.container], mode: mode).exitCode == 0)
        #expect(n.hostState == alone([b], mode: mode))
        #expect(n.dp.host.linkTable["vlan.eth.7"]?.alias == b.container)
        #expect(n.run("CHECK", b, mode: mode, prevResult: addB.stdout).exitCode == 0)
    }

    // Defect 3: A's late DEL (with or without prevResult, ipamd up or down) removes A's rules
    // even though B now owns VLAN 7, and leaves B whole; B's own DEL then leaves nothing.
    @Test(arguments: [("strict", "prevResult"), ("standard", "prevResult"), ("strict", "ipamd"), ("standard", "ipamd"),
                      ("strict", "live state"), ("standard", "live state")])
    func lateDelAfterVLANReuseLeaksNothing(_ mode: String, _ from: String) {
        let baseline = SimulatedNode().hostState
        let (n, addA, addB) = leakThenReuse(mode)
        if from == "live state" { n.ipamd.down = true }
        let del = n.run("DEL", a, mode: mode, prevResult: from == "prevResult" ? addA.stdout : nil)
        #expect(del.exitCode == 0, "\(del.stdout)")
        #expect(n.hostState == alone([b], mode: mode), "A's late DEL from \(from)")
        #expect(n.run("CHECK", b, mode: mode, prevResult: addB.stdout).exitCode == 0)
        #expect(n.run("DEL", b, mode: mode, prevResult: addB.stdout).exitCode == 0)
        #expect(n.hostState == baseline)
    }

    // Defect 3, the pod's netns gone too: the late DEL has only rules to find.
    @Test(arguments: ["strict", "standard"])
    func lateDelAfterReuseWithTheNetnsGone(_ mode: String) {
        let baseline = SimulatedNode().hostState
        let (n, _, addB) = leakThenReuse(mode)
        n.dp.deleteNamespace(a.netns)
        n.ipamd.down = true
        #expect(n.run("DEL", a, mode: mode, netns: "").exitCode == 0)
        #expect(n.hostState == alone([b], mode: mode))
        #expect(n.run("DEL", b, mode: mode, prevResult: addB.stdout).exitCode == 0)
        #expect(n.hostState == baseline)
    }

    // Defect 4: a duplicated annotation (A still runs with VLAN 7) is refused, naming both
    // pods, and A's datapath is untouched; also after an ipamd restart (the checkpoint).
    @Test(arguments: ["strict", "standard"])
    func duplicatedAnnotationIsRefusedNamingBothPods(_ mode: String) throws {
        let n = SimulatedNode()
        n.dp.addNamespace(b.netns)
        n.ipamd.annotate(a)
        let addA = n.run("ADD", a, mode: mode)
        let withA = n.hostState
        n.ipamd.annotate(b)  // same VLAN 7 as the running A
        for restart in [false, true] {
            if restart { n.ipamd.restart() }
            let addB = n.run("ADD", b, mode: mode)
            let e = try CNIJSON.decode(CNIErrorJSON.self, from: Array(addB.stdout.utf8))
            #expect(addB.exitCode != 0 && e.code == 104, "\(addB.stdout)")
            #expect(e.details?.contains("default/a") == true && e.details?.contains("default/b") == true && e.details?.contains("c-a") == true)
            #expect(n.hostState == withA)
            #expect(n.run("CHECK", a, mode: mode, prevResult: addA.stdout).exitCode == 0)
        }
        // The same IP on another VLAN is a conflict too.
        var c = b
        c.vlan = 9
        c.ip = a.ip
        n.ipamd.annotate(c)
        #expect(code(n.run("ADD", c, mode: mode)) == 104)
        #expect(n.hostState == withA)
    }

    // Defect 11: a read that fails for another reason than "not found" fails the DEL with the
    // cause, instead of being taken for an empty node (and leaking everything).
    @Test(arguments: ["strict", "standard"])
    func delFailsOnPermissionErrors(_ mode: String) throws {
        for prevResult in [true, false] {
            let n = SimulatedNode()
            n.ipamd.annotate(a)
            let add = n.run("ADD", a, mode: mode)
            let before = n.hostState
            n.ipamd.down = !prevResult
            n.dp.host.failReads = EPERM
            let del = n.run("DEL", a, mode: mode, prevResult: prevResult ? add.stdout : nil)
            let e = try CNIJSON.decode(CNIErrorJSON.self, from: Array(del.stdout.utf8))
            #expect(del.exitCode != 0 && e.code == 101, "\(del.stdout)")
            #expect(e.details?.contains("Operation not permitted") == true)
            n.dp.host.failReads = nil
            #expect(n.hostState == before)
            #expect(n.run("DEL", a, mode: mode, prevResult: prevResult ? add.stdout : nil).exitCode == 0)
        }
    }

    // A same-pod new sandbox (same name, same VLAN and address) is not a conflict, and the old
    // sandbox's late DEL leaves the new one whole.
    @Test(arguments: ["strict", "standard"])
    func newSandboxOfTheSamePod(_ mode: String) {
        let baseline = SimulatedNode().hostState
        let n = SimulatedNode()
        n.ipamd.annotate(a)
        let old = n.run("ADD", a, mode: mode)
        n.dp.deleteNamespace(a.netns)
        n.dp.addNamespace("/var/run/netns/pod1b")
        var a2 = a
        a2.container = "c-a2"
        a2.netns = "/var/run/netns/pod1b"
        let new = n.run("ADD", a2, mode: mode)
        #expect(new.exitCode == 0, "\(new.stdout)")
        let withNew = n.hostState
        #expect(n.run("DEL", a, mode: mode, prevResult: old.stdout, netns: "").exitCode == 0)
        #expect(n.run("DEL", a, mode: mode, netns: "").exitCode == 0)
        #expect(n.hostState == withNew)
        #expect(n.run("DEL", a2, mode: mode, prevResult: new.stdout).exitCode == 0)
        #expect(n.hostState == baseline)
    }
}
