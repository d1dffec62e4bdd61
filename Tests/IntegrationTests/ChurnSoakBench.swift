import Foundation
import Glibc
import Synchronization
import TestSupport
import Testing

/// A soak, not a test: only with CHURN_SOAK_SECONDS set (`make soak`, in the VM). 100 branch
/// pods, 8 at a time, ADD then DEL over and over, while ipamd is SIGKILLed and restarted every
/// CHURN_KILL_EVERY seconds (20). Every DEL must succeed, every ADD must succeed or fail with a
/// clean CNI error (and its DEL leave nothing), and at the end nothing of any pod is left.
@Suite(.ownThread) struct ChurnSoakBench {
    static let seconds = ProcessInfo.processInfo.environment["CHURN_SOAK_SECONDS"].flatMap { Double($0) }

    struct Counts {
        var adds = 0, addsOK = 0, delsOK = 0, delsFailed = 0, kills = 0
        var addErrors: [Int: Int] = [:]
        var unclean: [String] = []
    }

    @Test(.enabled(if: seconds != nil && kernelHasVLAN, "a soak: set CHURN_SOAK_SECONDS and run it in the VM (make soak)"))
    func churnWhileIpamdIsKilled() throws {
        let duration = Self.seconds ?? 0
        let killEvery = ProcessInfo.processInfo.environment["CHURN_KILL_EVERY"].flatMap { Double($0) } ?? 20
        let pods = 100, workers = 8
        let sim = try SimNode()
        defer { sim.destroy() }
        let ipamd = IpamdProcess(sim, mode: "strict")
        var annotations: [String: String] = [:]
        for i in 1...pods {
            annotations["default/p\(i)"] = annotation(vlan: UInt16(i), ip: "10.0.33.\(i)", mac: String(format: "0a:00:00:00:01:%02x", i))
        }
        ipamd.setPods(annotations)
        guard try ipamd.start() else { Issue.record("ipamd did not start"); return }
        let plugin = PluginRunner(sim: sim, ipamd: ipamd)
        let namespaces = try (1...pods).map { _ in try sim.newPodNamespace().path }
        let baseline = try sim.snapshot(pods: namespaces)

        let counts = Mutex(Counts())
        let free = Mutex(Array(1...pods))
        let deadline = Date().addingTimeInterval(duration)
        let started = Date()
        var threads: [Thread] = []
        let done = DispatchGroup()
        for w in 0..<workers {
            done.enter()
            let t = Thread {
                var n = 0
                while Date() < deadline {
                    guard let i = free.withLock({ $0.isEmpty ? nil : $0.remove(at: Int.random(in: 0..<$0.count)) }) else { continue }
                    n += 1
                    let container = "w\(w)-\(n)-p\(i)"
                    let add = try? plugin.run("ADD", container: container, pod: "p\(i)", netns: namespaces[i - 1])
                    var prev: String?
                    counts.withLock { c in
                        c.adds += 1
                        if let add, add.exitCode == 0 { c.addsOK += 1; prev = add.out } else if let code = add?.cniCode {
                            c.addErrors[code, default: 0] += 1
                        } else {
                            c.unclean.append("ADD \(container): \(add.map(\.description) ?? "did not run")")
                        }
                    }
                    // DEL as kubelet does, from prevResult when it has one; it must always succeed.
                    let del = try? plugin.run("DEL", container: container, pod: "p\(i)", netns: namespaces[i - 1],
                                              prevResult: Bool.random() ? prev : nil)
                    counts.withLock { c in
                        if del?.exitCode == 0 { c.delsOK += 1 } else { c.delsFailed += 1; c.unclean.append("DEL \(container): \(del.map(\.description) ?? "did not run")") }
                    }
                    free.withLock { $0.append(i) }
                }
                done.leave()
            }
            threads.append(t)
            t.start()
        }
        // The killer: SIGKILL and restart every `killEvery` seconds until the deadline.
        while Date().addingTimeInterval(killEvery) < deadline {
            Thread.sleep(forTimeInterval: killEvery)  // the soak's own pacing, not a synchronisation
            ipamd.stop(SIGKILL)
            let up = (try? ipamd.start()) ?? false
            counts.withLock { $0.kills += 1 }
            if !up { Issue.record("ipamd did not come back after a SIGKILL"); break }
        }
        done.wait()
        let elapsed = Date().timeIntervalSince(started)
        let leaked = try sim.snapshot(pods: namespaces).difference(from: baseline)
        // A restart drops what the checkpoint holds of pods whose VLAN is gone.
        ipamd.stop(SIGTERM)
        _ = try ipamd.start()
        let served = try ipamd.servedPods()
        let c = counts.withLock { $0 }
        print("""
            churn soak: \(String(format: "%.0f", elapsed)) s, \(pods) pods, \(workers) at a time, ipamd SIGKILLed \(c.kills) times
              ADD \(c.adds): \(c.addsOK) succeeded, failed with CNI codes \(c.addErrors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))
              DEL \(c.delsOK + c.delsFailed): \(c.delsOK) succeeded, \(c.delsFailed) failed
              leaked kernel objects: \(leaked.count); ipamd still serving: \(served.count); unclean runs: \(c.unclean.count)
            """)
        #expect(c.delsFailed == 0)
        #expect(c.unclean.isEmpty, "\(c.unclean.prefix(5))")
        #expect(leaked.isEmpty, "\(leaked.prefix(20).joined(separator: "\n"))")
        #expect(served.isEmpty, "\(served)")
        _ = threads
    }
}
