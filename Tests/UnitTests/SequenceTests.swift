import EnforcingMode
import Foundation
import Synchronization
import TestSupport
import Testing

/// Model-based random sequences on the in-memory kernel: 10,000 sequences of 12 steps, both
/// modes. The base seed is random per run (printed); SEQUENCE_SEED=<seed> replays one sequence.
@Suite struct SequenceTests {
    static let sequences = 10_000
    static let stepsPerSequence = 12

    static func mode(_ seed: UInt64) -> PodSGEnforcingMode { seed % 2 == 0 ? .strict : .standard }

    static func run(_ seed: UInt64) -> (steps: Int, runs: Int, failure: String?) {
        let runner = SequenceRunner(node: FakeSequenceNode(mode: mode(seed)), seed: seed)
        do { try runner.run(steps: stepsPerSequence) } catch {
            return (runner.steps, runner.pluginRuns, "\(error)\n(replay: SEQUENCE_SEED=\(seed) swift test --filter SequenceTests)")
        }
        return (runner.steps, runner.pluginRuns, nil)
    }

    @Test func randomSequencesMatchTheModel() async throws {
        let env = ProcessInfo.processInfo.environment
        if let replay = env["SEQUENCE_SEED"].flatMap({ UInt64($0) }) {
            if let failure = Self.run(replay).failure { Issue.record(Comment(rawValue: failure)) }
            return
        }
        let base = env["SEQUENCE_BASE"].flatMap { UInt64($0) } ?? UInt64.random(in: 0..<(1 << 40))
        // Off the cooperative pool: 10,000 synchronous sequences must not starve the async tests.
        let (steps, runs, failures) = await withCheckedContinuation { (done: CheckedContinuation<(Int, Int, [String]), Never>) in
            Thread.detachNewThread {
                let batches = 40, per = Self.sequences / batches
                let totals = Mutex((steps: 0, runs: 0, failures: [String]()))
                DispatchQueue.concurrentPerform(iterations: batches) { b in
                    for i in 0..<per {
                        let r = Self.run(base &+ UInt64(b * per + i))
                        let stop = totals.withLock { t -> Bool in
                            t.steps += r.steps; t.runs += r.runs
                            if let f = r.failure { t.failures.append(f) }
                            return t.failures.count >= 3
                        }
                        if stop { return }
                    }
                }
                done.resume(returning: totals.withLock { ($0.steps, $0.runs, $0.failures) })
            }
        }
        print("sequences: base seed \(base), \(Self.sequences) sequences, \(steps) steps, \(runs) plugin runs on the in-memory kernel, \(failures.count) failed")
        for f in failures { Issue.record(Comment(rawValue: f)) }
    }
}
