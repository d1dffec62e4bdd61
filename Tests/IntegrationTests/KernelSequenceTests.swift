import EnforcingMode
import Foundation
import TestSupport
import Testing

/// The model-based sequences on the real kernel (VM: needs 802.1Q) with the real binaries:
/// 160 steps per run, both modes with branch pods, and strict mode with regular pods (the pool)
/// beside them. SEQUENCE_SEED replays; KERNEL_SEQUENCE_STEPS sets the steps per run.
@Suite(.serialized, .ownThread) struct KernelSequenceTests {
    @Test(.enabled(if: kernelHasVLAN, "needs 802.1Q: runs in the test VM"),
          arguments: [(PodSGEnforcingMode.strict, false), (.standard, false), (.strict, true)])
    func randomSequencesOnTheRealKernel(_ mode: PodSGEnforcingMode, regularPods: Bool) throws {
        let env = ProcessInfo.processInfo.environment
        let steps = env["KERNEL_SEQUENCE_STEPS"].flatMap { Int($0) } ?? 160
        let seed = env["SEQUENCE_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0..<(1 << 40))
        let node = try KernelSequenceNode(mode: mode, regularPods: regularPods)
        defer { node.destroy() }
        let runner = SequenceRunner(node: node, seed: seed)
        let started = Date()
        do {
            try runner.run(steps: steps)
        } catch {
            Issue.record(Comment(rawValue: "\(error)\n(replay: SEQUENCE_SEED=\(seed), mode \(mode), regular pods \(regularPods))\nipamd log tail:\n"
                                 + node.ipamd.log.suffix(15).joined(separator: "\n")))
        }
        let regular = regularPods ? ", \(runner.regularPodsStarted.all) regular pods started" : ""
        print("kernel sequence \(mode.rawValue)\(regularPods ? " with regular pods" : ""): seed \(seed), \(runner.steps) steps, \(runner.pluginRuns) plugin runs\(regular), \(String(format: "%.0f", Date().timeIntervalSince(started))) s")
    }
}
