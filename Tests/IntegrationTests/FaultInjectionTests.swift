import Foundation
import Glibc
import IPAMDCore
import TestSupport
import Testing

/// Every netlink request of an ADD and of a DEL, in both modes, on the real kernel (VM): made
/// to fail, and separately the plugin SIGKILLed right after it; then what the runtime does
/// (DEL, or ADD again then DEL). After each case the node's full state (links, addresses, routes
/// of every table, rules, neighbours, the nft ruleset, ipamd's /v1/pods) must be the state
/// before the pod, or exactly the pod's datapath.
@Suite(.serialized, .ownThread) struct FaultInjectionTests {
    /// Everything observable about the node.
    struct FullState: Equatable {
        var kernel: NodeSnapshot
        var nft: [JSONValue]
        var served: [String: String]
    }

    final class Bench {
        let sim: SimNode
        let ipamd: IpamdProcess
        let plugin: PluginRunner
        let podNS: TestNamespace
        var containers = 0
        /// A regular pod's node: the cloud simulator and the ENI mirror to stop.
        private var cloud: (node: CloudNode, mirror: ENIMirror)?

        /// Pod f is a branch pod (VLAN 7) in `mode`.
        init(mode: String) throws {
            sim = try SimNode()
            ipamd = IpamdProcess(sim, mode: mode)
            plugin = PluginRunner(sim: sim, ipamd: ipamd, mode: mode)
            ipamd.setPods(["default/f": annotation(vlan: 7, ip: "10.0.40.12", mac: "0a:00:00:00:00:07")])
            guard try ipamd.start() else { throw Failure("ipamd did not start: \(ipamd.log.suffix(10))") }
            podNS = try sim.newPodNamespace()
        }

        /// Pod f is a regular pod with an address of the primary ENI, or (`secondaryENI`) of the
        /// ENI at device 1, every other address of the primary held by pods without a datapath.
        /// No cool-down, and no ENI comes or goes: every ADD of f gets the same address, so the
        /// node's state after a retried ADD is exactly the first one's.
        init(regularOnSecondaryENI secondaryENI: Bool) throws {
            let n = try CloudNode(trunkAttached: false, ["ENABLE_POD_ENI": "false", "IP_COOLDOWN_PERIOD": "0", "MAX_ENI": secondaryENI ? "2" : "1"])
            let mirror = ENIMirror(n)
            cloud = (n, mirror)
            sim = n.sim
            ipamd = n.ipamd
            plugin = PluginRunner(sim: sim, ipamd: ipamd, mode: "standard")
            podNS = try sim.newPodNamespace()
            guard try ipamd.start() else { throw Failure("ipamd did not start: \(ipamd.log.suffix(10))") }
            guard secondaryENI else { return }
            // The primary's 9 and one of the second ENI's addresses held, so f lands on device 1
            // and the second ENI is never surplus.
            for i in 0..<10 {
                let reply = try n.rpc(.addNetwork, pod: "filler\(i)", container: "c-filler\(i)")
                guard reply.success else { throw Failure("filler \(i): \(reply)") }
            }
            let deadline = Date().addingTimeInterval(30)
            while n.poolCounts().map({ $0 != (2, 18, 10) }) ?? true {
                guard Date() < deadline else { throw Failure("the pool did not settle: \(String(describing: n.poolCounts()))") }
                usleep(20_000)
            }
        }

        func destroy() {
            cloud?.mirror.stop()
            ipamd.stop()
            if let cloud { cloud.node.destroy() } else { sim.destroy() }
        }

        func state() throws -> FullState {
            FullState(kernel: try sim.snapshot(pods: [podNS.path]), nft: try sim.nftRuleset(), served: try ipamd.servedPods().mapValues(\.container))
        }

        func newContainer() -> String {
            containers += 1
            return "fault-\(containers)"
        }

        func cni(_ command: String, _ container: String, prevResult: String? = nil, fault: String? = nil) throws -> Completed {
            try plugin.run(command, container: container, pod: "f", netns: podNS.path, prevResult: prevResult, fault: fault)
        }

        /// How many netlink requests a clean run of `command` makes (the hook counts them).
        func requests(_ c: Completed) throws -> Int {
            guard let line = c.err.split(separator: "\n").first(where: { $0.hasPrefix("aws-cni-test: netlink requests ") }),
                  let n = Int(line.split(separator: " ").last ?? "") else { throw Failure("no request count in: \(c)") }
            return n
        }
    }

    struct Failure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    func expectState(_ actual: FullState, _ expected: FullState, _ what: String) {
        let diff = actual.kernel.difference(from: expected.kernel)
        #expect(diff.isEmpty, "\(what): kernel differs:\n\(diff.joined(separator: "\n"))")
        #expect(actual.nft == expected.nft, "\(what): nft ruleset differs")
        #expect(actual.served == expected.served, "\(what): ipamd serves \(actual.served), expected \(expected.served)")
    }

    @Test(.enabled(if: kernelHasVLAN, "needs 802.1Q: runs in the test VM"), arguments: ["strict", "standard"])
    func everyRequestFailingOrKilled(_ mode: String) throws {
        let b = try Bench(mode: mode)
        defer { b.destroy() }
        try everyRequestFailingOrKilled(b, "\(mode) branch pod")
    }

    /// The same for a regular pod (no VLAN: on the host too), on the primary ENI and on a
    /// secondary one (its 1536 rule).
    @Test(.enabled(if: isRoot), arguments: [false, true])
    func everyRequestFailingOrKilledForARegularPod(onSecondaryENI: Bool) throws {
        let b = try Bench(regularOnSecondaryENI: onSecondaryENI)
        defer { b.destroy() }
        try everyRequestFailingOrKilled(b, "regular pod on the \(onSecondaryENI ? "secondary" : "primary") ENI")
    }

    func everyRequestFailingOrKilled(_ b: Bench, _ what: String) throws {
        let before = try b.state()

        // The pod's exact datapath, and how many requests ADD and DEL make.
        let c0 = b.newContainer()
        let add = try b.cni("ADD", c0, fault: "count")
        #expect(add.exitCode == 0, "\(add)")
        let addRequests = try b.requests(add)
        let planned = try b.state()
        #expect(planned.served["default/f"] == c0 && planned.served.count == before.served.count + 1)
        /// The pod's datapath as container `c` owns it (links carry their owner's id).
        func plannedState(for c: String) -> FullState {
            var p = planned
            p.kernel.host.lines = Set(p.kernel.host.lines.map { $0.replacingOccurrences(of: "alias=\(c0)", with: "alias=\(c)") })
            p.served["default/f"] = c
            return p
        }
        let del = try b.cni("DEL", c0, prevResult: add.out, fault: "count")
        #expect(del.exitCode == 0, "\(del)")
        let delRequests = try b.requests(del)
        expectState(try b.state(), before, "clean DEL")
        var cases = 0

        for k in 1...addRequests {
            // Request k fails: the ADD fails cleanly (code 101), leaving nothing; the runtime's DEL too.
            let c = b.newContainer()
            let failed = try b.cni("ADD", c, fault: "fail:\(k):\(EPERM)")
            #expect(failed.exitCode != 0 && failed.cniCode == 101, "ADD with request \(k) failing: \(failed)")
            expectState(try b.state(), before, "ADD with request \(k) failing")
            #expect(try b.cni("DEL", c).exitCode == 0)
            expectState(try b.state(), before, "DEL after ADD with request \(k) failing")
            cases += 1

            // Killed right after request k: the runtime DELs (even k) or retries the ADD (odd k).
            let d = b.newContainer()
            let killed = try b.cni("ADD", d, fault: "kill:\(k)")
            #expect(killed.signal == SIGKILL, "ADD killed after request \(k): \(killed)")
            if k % 2 == 1 {
                let again = try b.cni("ADD", d)
                #expect(again.exitCode == 0, "ADD again after a kill at request \(k): \(again)")
                expectState(try b.state(), plannedState(for: d), "ADD again after a kill at request \(k)")
                #expect(try b.cni("DEL", d, prevResult: again.out).exitCode == 0)
            } else {
                #expect(try b.cni("DEL", d).exitCode == 0)
            }
            expectState(try b.state(), before, "after an ADD killed at request \(k)")
            cases += 1
        }

        for k in 1...delRequests {
            for kill in [false, true] {
                let c = b.newContainer()
                let add = try b.cni("ADD", c)
                #expect(add.exitCode == 0, "\(add)")
                let withPrev = k % 2 == 0
                let failed = try b.cni("DEL", c, prevResult: withPrev ? add.out : nil, fault: kill ? "kill:\(k)" : "fail:\(k):\(EPERM)")
                if kill {
                    #expect(failed.signal == SIGKILL, "DEL killed after request \(k): \(failed)")
                } else {
                    // A failed DEL says so (the runtime retries it); it never reports success.
                    #expect(failed.exitCode != 0 && failed.cniCode == 101, "DEL with request \(k) failing: \(failed)")
                }
                let again = try b.cni("DEL", c, prevResult: withPrev ? add.out : nil)
                #expect(again.exitCode == 0, "DEL again: \(again)")
                expectState(try b.state(), before, "DEL \(kill ? "killed after" : "failing at") request \(k), then DEL again")
                cases += 1
            }
        }
        print("fault injection, \(what): ADD makes \(addRequests) netlink requests, DEL \(delRequests); \(cases) cases")
    }
}
