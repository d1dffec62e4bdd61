import CNI
import Datapath
import EnforcingMode
import Foundation
import NetModel
import Netlink

// Model-based random sequences: a seeded random walk over what happens to pods on a node (ADD,
// DEL in every flavour, late DELs of replaced sandboxes, crashed and failing ADDs, ipamd
// restarts and SIGKILLs, VLAN and address reuse after a leak, duplicated annotations, GC, pod
// netns deleted), driven through a `SequenceNode` (in-memory or the real kernel). After every
// step the node must hold exactly the datapaths of the pods the model says are live.

/// What the control plane gave a branch pod, or (VLAN 0) what ipamd's pool gave a regular pod.
public struct Assignment: Hashable, Sendable, CustomStringConvertible {
    public var vlan: UInt16
    public var ip: String
    /// A regular pod's ENI.
    public var deviceNumber = 0
    public init(vlan: UInt16, ip: String) { self.vlan = vlan; self.ip = ip }
    public var isRegular: Bool { vlan == 0 }
    public var description: String { isRegular ? "\(ip) on device \(deviceNumber)" : "VLAN \(vlan) \(ip)" }

    /// A regular pod's, from its ADD result.
    public init?(regularResult stdout: String) {
        guard let r = RegularPodResult(stdout) else { return nil }
        self.init(vlan: 0, ip: r.ip.description)
        deviceNumber = r.deviceNumber
    }

    /// The branch ENI's MAC, derived from the VLAN so every ENI has its own.
    public var mac: String { String(format: "0a:00:00:00:%02x:%02x", vlan >> 8, vlan & 0xff) }
}

/// What a regular pod's ADD result says: its address, and the ENI's device number the dummy
/// interface records (as the reference's result does).
public struct RegularPodResult: Sendable {
    public var ip: IPAddress
    public var deviceNumber: Int

    public init?(_ stdout: String) {
        guard let r = try? CNIJSON.decode(CNIResult.self, from: Array(stdout.utf8)),
              let ip = r.ips?.first.flatMap({ IPPrefix($0.address)?.address }),
              let device = r.interfaces?.last(where: { $0.name.hasPrefix("dummy") })?.sandbox.flatMap({ Int($0) }) else { return nil }
        self.ip = ip
        deviceNumber = device
    }
}

/// One pod sandbox as the runtime knows it.
public struct Sandbox: Hashable, Sendable {
    public var pod: String
    public var container: String
    public var netns: String
    /// The ADD result, when the runtime has one.
    public var prevResult: String?
}

/// What one plugin run did.
public struct CNIRun: Sendable, CustomStringConvertible {
    public var exitCode: Int32
    public var stdout: String
    /// Stopped dead by the fault hook (SIGKILL) instead of finishing.
    public var killed: Bool
    public init(exitCode: Int32, stdout: String, killed: Bool) { self.exitCode = exitCode; self.stdout = stdout; self.killed = killed }

    public var code: UInt32? { (try? CNIJSON.decode(CNIErrorJSON.self, from: Array(stdout.utf8)))?.code }
    public var description: String { killed ? "killed" : "exit \(exitCode) \(stdout)" }
}

/// A node a sequence drives: its control plane (annotations), runtime (netns, plugin runs) and ipamd.
public protocol SequenceNode: AnyObject {
    /// strict or standard, for the whole sequence.
    var mode: PodSGEnforcingMode { get }
    /// Whether ipamd has an address pool: pods without an annotation are regular pods.
    var servesRegularPods: Bool { get }
    func annotate(pod: String, _ a: Assignment)
    func forget(pod: String)
    /// A new pod network namespace; returns its path.
    func newNetns() throws -> String
    func deleteNetns(_ path: String) throws
    /// ADD, DEL or CHECK for `sandbox`, as kubelet runs it (pod identity in CNI_ARGS).
    /// `ipamdReachable` false: the plugin finds nobody on ipamd's socket (ipamd down, as it sees it).
    func cni(_ command: String, _ sandbox: Sandbox, prevResult: String?, netns: String, fault: FaultInjector.Plan?, ipamdReachable: Bool) throws -> CNIRun
    func gc(valid: [String]) throws -> CNIRun
    func stopIpamd(kill: Bool) throws
    func startIpamd() throws
    /// The node as it is: the host and these pod namespaces.
    func snapshot(podNamespaces: [String]) throws -> NodeSnapshot
    /// ipamd's served pods, key -> container id.
    func servedPods() throws -> [String: String]
}

extension SequenceNode {
    public var servesRegularPods: Bool { false }
}

/// A small seeded generator (SplitMix64): the same seed replays the same sequence.
public struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

public struct SequenceFailure: Error, CustomStringConvertible {
    public var seed: UInt64
    public var step: Int
    public var log: [String]
    public var problem: String
    public var description: String {
        "sequence seed \(seed) failed at step \(step): \(problem)\nreplay with this seed; steps so far:\n" + log.suffix(12).joined(separator: "\n")
    }
}

/// The model and the random walk.
public final class SequenceRunner {
    public static let pods = ["a", "b", "c", "d"]
    /// Pods nobody annotates: regular pods, on a node whose ipamd has a pool.
    public static let regularPods = ["r", "s"]
    public static let vlans: [UInt16] = [7, 8, 9]
    public static let ips = ["10.0.40.11", "10.0.40.12", "10.0.40.13", "10.0.40.14"]

    let node: any SequenceNode
    let seed: UInt64
    var rng: SeededGenerator
    /// The model: live pods by name, their current sandbox and assignment.
    var live: [String: (sandbox: Sandbox, assignment: Assignment)] = [:]
    /// Sandboxes that were replaced or deleted: a late DEL may still come for them.
    var oldSandboxes: [Sandbox] = []
    /// Namespaces that exist (live pods' and pinned ones of leaked pods).
    var namespaces: Set<String> = []
    var containerCounter = 0
    var baseline: NodeSnapshot?
    var modelBaseline: NodeSnapshot?
    public private(set) var log: [String] = []
    public private(set) var steps = 0
    /// Plugin runs made (for the report).
    public private(set) var pluginRuns = 0
    /// Regular pods that became live, and those of them on a secondary ENI (for the report).
    public private(set) var regularPodsStarted = (all: 0, onSecondaryENI: 0)

    public init(node: any SequenceNode, seed: UInt64) {
        self.node = node
        self.seed = seed
        rng = SeededGenerator(seed: seed)
    }

    /// Runs `count` steps, checking the node against the model after each.
    public func run(steps count: Int) throws {
        baseline = try node.snapshot(podNamespaces: [])
        modelBaseline = try Self.oracle(mode: node.mode, pods: [])
        for _ in 0..<count {
            steps += 1
            try step()
            try check()
        }
    }

    func fail(_ problem: String) -> SequenceFailure { SequenceFailure(seed: seed, step: steps, log: log, problem: problem) }

    func note(_ s: String) { log.append("\(steps): \(s)") }

    func newSandbox(_ pod: String) throws -> Sandbox {
        containerCounter += 1
        let ns = try node.newNetns()
        namespaces.insert(ns)
        return Sandbox(pod: pod, container: "s\(seed % 100_000)-\(containerCounter)-\(pod)", netns: ns, prevResult: nil)
    }

    func cni(_ command: String, _ s: Sandbox, prevResult: String? = nil, netns: String? = nil, fault: FaultInjector.Plan? = nil,
             ipamdReachable: Bool = true) throws -> CNIRun {
        pluginRuns += 1
        return try node.cni(command, s, prevResult: prevResult, netns: netns ?? s.netns, fault: fault, ipamdReachable: ipamdReachable)
    }

    func dropNetns(_ path: String) throws {
        guard namespaces.remove(path) != nil else { return }
        try node.deleteNetns(path)
    }

    /// A VLAN and address no live pod (and no other annotated pod) has.
    func freeAssignment(reuseFrom: Assignment? = nil, reuseVLAN: Bool = false, reuseIP: Bool = false) -> Assignment? {
        let branches = live.values.filter { !$0.assignment.isRegular }
        let usedV = Set(branches.map(\.assignment.vlan)), usedI = Set(branches.map(\.assignment.ip))
        let v = reuseVLAN ? reuseFrom?.vlan : Self.vlans.filter { !usedV.contains($0) && $0 != reuseFrom?.vlan }.randomElement(using: &rng)
        let i = reuseIP ? reuseFrom?.ip : Self.ips.filter { !usedI.contains($0) && $0 != reuseFrom?.ip }.randomElement(using: &rng)
        guard let v, let i else { return nil }
        return Assignment(vlan: v, ip: i)
    }

    func expect(_ run: CNIRun, ok: Bool, _ what: String) throws {
        if ok && (run.exitCode != 0 || run.killed) { throw fail("\(what) should succeed: \(run)") }
    }

    // MARK: steps

    func isRegular(_ pod: String) -> Bool { Self.regularPods.contains(pod) }

    func step() throws {
        let notLive = Self.pods.filter { live[$0] == nil }
        let liveNames = live.keys.filter { !isRegular($0) }.sorted()
        var choices: [() throws -> Void] = []
        // Regular pods: ADD in its flavours, DEL in its flavours (their address is the pool's,
        // so no annotation reuse or duplicate).
        if node.servesRegularPods {
            if let p = Self.regularPods.filter({ live[$0] == nil }).randomElement(using: &rng) {
                choices += [{ try self.add(p) }, { try self.crashedAdd(p) }, { try self.failedAdd(p) }]
            }
            if let p = live.keys.filter({ isRegular($0) }).sorted().randomElement(using: &rng) {
                choices += [{ try self.del(p) }, { try self.del(p) }]
            }
        }
        if let p = notLive.randomElement(using: &rng), freeAssignment() != nil {
            choices += [{ try self.add(p) }, { try self.add(p) }, { try self.crashedAdd(p) }, { try self.failedAdd(p) }]
        }
        if let p = liveNames.randomElement(using: &rng) {
            choices += [{ try self.del(p) }, { try self.del(p) }, { try self.replaceSandbox(p) }]
            if let q = notLive.randomElement(using: &rng) {
                choices += [{ try self.reuse(p, by: q) }, { try self.reuse(p, by: q) }, { try self.duplicate(p, by: q) }]
            }
        }
        if !oldSandboxes.isEmpty { choices.append { try self.lateDel() } }
        choices += [{ try self.restartIpamd() }, { try self.gc() }]
        try choices.randomElement(using: &rng)!()
    }

    /// A branch pod's assignment (annotated now), or nil for a regular pod (the pool's).
    func annotated(_ p: String) -> Assignment?? {
        if isRegular(p) { return .some(nil) }
        guard let a = freeAssignment() else { return nil }
        node.annotate(pod: p, a)
        return .some(a)
    }

    /// What a successful ADD gave the pod: its annotation, or the address in the result.
    func assignment(_ p: String, _ annotated: Assignment?, _ r: CNIRun) throws -> Assignment {
        if let annotated { return annotated }
        guard let a = Assignment(regularResult: r.stdout) else { throw fail("ADD \(p): no regular pod in the result \(r.stdout)") }
        regularPodsStarted.all += 1
        if a.deviceNumber > 0 { regularPodsStarted.onSecondaryENI += 1 }
        return a
    }

    func add(_ p: String) throws {
        guard let a = annotated(p) else { return }
        var s = try newSandbox(p)
        note("ADD \(p) \(s.container) \(a.map(\.description) ?? "regular")")
        let r = try cni("ADD", s)
        try expect(r, ok: true, "ADD \(p)")
        s.prevResult = r.stdout
        live[p] = (s, try assignment(p, a, r))
    }

    /// DEL in one of its flavours, then the pod is gone from the cluster.
    func del(_ p: String) throws {
        guard let (s, _) = live[p] else { return }
        // A regular pod DELeted with neither prevResult nor ipamd, its netns gone (flavour 4),
        // has nothing left that names its address: its rules wait for ipamd's next start or
        // the runtime's GC (README). Runtimes pass prevResult; that case stays out.
        let flavour = Int.random(in: 0..<(isRegular(p) ? 4 : 5), using: &rng)
        note("DEL \(p) \(s.container) flavour \(flavour)")
        var netns = s.netns
        if flavour >= 3 {  // the pod's netns is already gone (force delete)
            try dropNetns(s.netns)
            netns = ""
        }
        let down = flavour == 2 || flavour == 4
        let r = try cni("DEL", s, prevResult: flavour == 0 || flavour == 3 ? s.prevResult : nil, netns: netns, ipamdReachable: !down)
        try expect(r, ok: true, "DEL \(p)")
        live[p] = nil
        node.forget(pod: p)
        oldSandboxes.append(s)
        if Bool.random(using: &rng) { try dropNetns(s.netns) }
    }

    /// A DEL for a sandbox that is long gone or replaced: must change nothing.
    func lateDel() throws {
        let s = oldSandboxes.randomElement(using: &rng)!
        let withPrev = Bool.random(using: &rng)
        note("late DEL \(s.pod) \(s.container) prevResult=\(withPrev)")
        let r = try cni("DEL", s, prevResult: withPrev ? s.prevResult : nil, netns: namespaces.contains(s.netns) ? s.netns : "")
        try expect(r, ok: true, "late DEL \(s.pod)")
    }

    /// Kubelet replaces a pod's sandbox (same pod, VLAN and address); the old one's DEL is late.
    func replaceSandbox(_ p: String) throws {
        guard let (old, a) = live[p] else { return }
        var s = try newSandbox(p)
        note("new sandbox \(p) \(s.container) replacing \(old.container)")
        if Bool.random(using: &rng) { try dropNetns(old.netns) }
        let r = try cni("ADD", s)
        try expect(r, ok: true, "ADD of \(p)'s new sandbox")
        s.prevResult = r.stdout
        live[p] = (s, a)
        oldSandboxes.append(old)
    }

    /// The plugin dies right after netlink request k; the runtime then DELs, or retries the ADD.
    func crashedAdd(_ p: String) throws {
        guard let a = annotated(p) else { return }
        var s = try newSandbox(p)
        let k = Int.random(in: 1...40, using: &rng)
        let retry = Bool.random(using: &rng)
        note("ADD \(p) \(s.container) \(a.map(\.description) ?? "regular") killed after request \(k), then \(retry ? "ADD again" : "DEL")")
        let r = try cni("ADD", s, fault: .stop(afterRequest: k))
        if !r.killed {
            try expect(r, ok: true, "ADD \(p) (request \(k) is past its end)")
            s.prevResult = r.stdout
            live[p] = (s, try assignment(p, a, r))
            return
        }
        if retry {
            let again = try cni("ADD", s)
            try expect(again, ok: true, "ADD again of \(p)")
            s.prevResult = again.stdout
            live[p] = (s, try assignment(p, a, again))
        } else {
            try expect(try cni("DEL", s), ok: true, "DEL after a killed ADD of \(p)")
            node.forget(pod: p)
            oldSandboxes.append(s)
            try dropNetns(s.netns)
        }
    }

    /// Netlink request k fails: the ADD must fail cleanly; the runtime DELs.
    func failedAdd(_ p: String) throws {
        guard let a = annotated(p) else { return }
        var s = try newSandbox(p)
        let k = Int.random(in: 1...40, using: &rng)
        note("ADD \(p) \(s.container) \(a.map(\.description) ?? "regular") with request \(k) failing")
        let r = try cni("ADD", s, fault: .fail(request: k, errno: [EPERM, ENOBUFS, EBUSY].randomElement(using: &rng)!))
        if r.exitCode == 0 {
            s.prevResult = r.stdout
            live[p] = (s, try assignment(p, a, r))
            return
        }
        if r.code != 101 { throw fail("a failing netlink request must be CNI code 101: \(r)") }
        try expect(try cni("DEL", s), ok: true, "DEL after a failed ADD of \(p)")
        node.forget(pod: p)
        oldSandboxes.append(s)
        try dropNetns(s.netns)
    }

    /// p leaks (deleted from the cluster, DEL not run, netns pinned or gone); the controller
    /// gives p's VLAN and/or address to q; q's ADD; then p's late DEL (or a GC) clears p.
    func reuse(_ p: String, by q: String) throws {
        guard let (s, a) = live[p] else { return }
        let what = Int.random(in: 0..<3, using: &rng)
        live[p] = nil
        guard let b = freeAssignment(reuseFrom: a, reuseVLAN: what != 1, reuseIP: what != 0) else { live[p] = (s, a); return }
        node.forget(pod: p)
        let pinned = Bool.random(using: &rng)
        if !pinned { try dropNetns(s.netns) }
        node.annotate(pod: q, b)
        var t = try newSandbox(q)
        let cleanup = Int.random(in: 0..<4, using: &rng)
        note("leak \(p) \(s.container) (\(a), netns \(pinned ? "pinned" : "gone")); \(q) \(t.container) gets \(b); then \(["late DEL with prevResult", "late DEL via ipamd", "late DEL with ipamd down", "GC"][cleanup])")
        let r = try cni("ADD", t)
        try expect(r, ok: true, "ADD \(q) reusing \(p)'s \(b)")
        t.prevResult = r.stdout
        live[q] = (t, b)
        let netns = pinned ? s.netns : ""
        switch cleanup {
        case 0: try expect(try cni("DEL", s, prevResult: s.prevResult, netns: netns), ok: true, "late DEL of leaked \(p)")
        case 1: try expect(try cni("DEL", s, netns: netns), ok: true, "late DEL of leaked \(p)")
        case 2: try expect(try cni("DEL", s, netns: netns, ipamdReachable: false), ok: true, "late DEL of leaked \(p), ipamd down")
        default:
            pluginRuns += 1
            try expect(try node.gc(valid: live.values.map(\.sandbox.container)), ok: true, "GC")
        }
        oldSandboxes.append(s)
        try dropNetns(s.netns)
    }

    /// q's annotation names running p's VLAN or address: refused (104), nothing changes.
    func duplicate(_ p: String, by q: String) throws {
        guard let (_, a) = live[p] else { return }
        let sameVLAN = Bool.random(using: &rng)
        guard let b = freeAssignment(reuseFrom: a, reuseVLAN: sameVLAN, reuseIP: !sameVLAN) else { return }
        node.annotate(pod: q, b)
        let t = try newSandbox(q)
        note("duplicate: \(q) \(t.container) annotated with \(b), \(p) runs with \(a)")
        let r = try cni("ADD", t)
        if r.code != 104 { throw fail("ADD \(q) with \(p)'s \(sameVLAN ? "VLAN" : "address") must be refused with 104: \(r)") }
        node.forget(pod: q)
        try dropNetns(t.netns)
    }

    func restartIpamd() throws {
        let kill = Bool.random(using: &rng)
        note("ipamd \(kill ? "SIGKILL" : "SIGTERM") and start")
        try node.stopIpamd(kill: kill)
        try node.startIpamd()
    }

    func gc() throws {
        note("GC with the live sandboxes")
        pluginRuns += 1
        try expect(try node.gc(valid: live.values.map(\.sandbox.container)), ok: true, "GC")
    }

    // MARK: the check

    func check() throws {
        let actual = try node.snapshot(podNamespaces: namespaces.sorted())
        let model = try Self.oracle(mode: node.mode, pods: live.values.map { ($0.sandbox, $0.assignment) })
        let expected = baseline!.adding(model, over: modelBaseline!)
        let diff = actual.difference(from: expected)
        if !diff.isEmpty { throw fail("node differs from the model (+ only on the node, - missing):\n" + diff.joined(separator: "\n")) }
        let served = try node.servedPods()
        for (p, (s, _)) in live where served["default/\(p)"] != s.container {
            throw fail("ipamd does not list live pod \(p) (container \(s.container)): \(served)")
        }
    }

    /// The model's node: each live pod's plan applied on its own to an in-memory kernel.
    public static func oracle(mode: PodSGEnforcingMode, pods: [(Sandbox, Assignment)]) throws -> NodeSnapshot {
        let dp = FakeDatapath()
        var namespaces: [String: any NetlinkClient] = [:]
        for (i, (s, a)) in pods.sorted(by: { $0.0.pod < $1.0.pod }).enumerated() {
            let ns = dp.addNamespace(s.netns)
            namespaces[s.netns] = ns
            let hostVethMAC = MACAddress(bytes: [2, 0, 0, 0, UInt8(i), 1])!, containerMAC = MACAddress(bytes: [2, 0, 0, 0, UInt8(i), 2])!
            // A regular pod's veth has the standard-mode prefix whatever the mode.
            let hostVeth = Naming.hostVethName(prefix: Naming.vethPrefix(mode: a.isRegular ? .standard : mode, configuredPrefix: "eni"),
                                               podNamespace: "default", podName: s.pod)
            if a.isRegular {
                let veth = PodVeth(podIP: IPAddress(a.ip)!, hostVeth: hostVeth, containerInterface: "eth0", mtu: 9001, owner: s.container,
                                   hostVethMAC: hostVethMAC, containerMAC: containerMAC)
                try PlanApplier(context: try dp.podContext(netnsPath: s.netns), logger: quiet)
                    .setup(RegularPodPlanner.setup(RegularPod(veth: veth, deviceNumber: a.deviceNumber)))
                continue
            }
            let pod = BranchPod(mode: mode, vlanID: a.vlan, podIP: IPAddress(a.ip)!, subnetGateway: IPAddress("10.0.32.1")!,
                                branchMAC: MACAddress(a.mac)!, trunkIndex: dp.trunk.index,
                                hostVeth: hostVeth,
                                containerInterface: "eth0", mtu: 9001, owner: s.container, hostVethMAC: hostVethMAC, containerMAC: containerMAC)
            let ctx = try dp.podContext(netnsPath: s.netns)
            try PlanApplier(context: ctx, logger: quiet).setup(BranchPodPlanner.setup(pod))
        }
        return try NodeSnapshot(host: dp.host, pods: namespaces, permanentNeighborsOnly: false)
    }
}
