import EnforcingMode
import Foundation
import Synchronization
import TestSupport
import Testing

/// Model-based random sequences on the in-memory kernel: 10,000 sequences of 12 steps, both
/// modes, half of them on a node whose ipamd has an address pool (regular pods r and s beside
/// the branch pods). The base seed is random per run (printed); SEQUENCE_SEED=<seed> replays one
/// sequence.
@Suite struct SequenceTests {
    static let sequences = 10_000
    static let stepsPerSequence = 12

    static func mode(_ seed: UInt64) -> PodSGEnforcingMode { seed % 2 == 0 ? .strict : .standard }
    static func regularPods(_ seed: UInt64) -> Bool { seed % 4 >= 2 }

    static func run(_ seed: UInt64) -> SequenceProgress.Result {
        let runner = SequenceRunner(node: FakeSequenceNode(mode: mode(seed), regularPods: regularPods(seed)), seed: seed)
        var failure: String?
        do { try runner.run(steps: stepsPerSequence) } catch {
            failure = "\(error)\n(replay: SEQUENCE_SEED=\(seed) swift test --filter SequenceTests)"
        }
        return .init(steps: runner.steps, runs: runner.pluginRuns, regular: runner.regularPodsStarted.all,
                     regularOnSecondaryENI: runner.regularPodsStarted.onSecondaryENI, failure: failure)
    }

    @Test func randomSequencesMatchTheModel() async throws {
        let env = ProcessInfo.processInfo.environment
        if let replay = env["SEQUENCE_SEED"].flatMap({ UInt64($0) }) {
            if let failure = Self.run(replay).failure { Issue.record(Comment(rawValue: failure)) }
            return
        }
        let base = env["SEQUENCE_BASE"].flatMap { UInt64($0) } ?? UInt64.random(in: 0..<(1 << 40))
        // On threads of their own: 10,000 synchronous sequences must not starve the async tests.
        // (Not DispatchQueue.concurrentPerform: on Linux it runs on the global queues' threads,
        // which are the cooperative pool's too, and held both of them for a minute.)
        let progress = SequenceProgress(batches: 40)
        let per = Self.sequences / progress.batches
        let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    await offPool {
                        while let b = progress.nextBatch() {
                            for i in 0..<per {
                                guard progress.record(Self.run(base &+ UInt64(b * per + i))) else { break }
                            }
                        }
                    }
                }
            }
        }
        let t = progress.totals
        print("sequences: base seed \(base), \(Self.sequences) sequences, \(t.steps) steps, \(t.runs) plugin runs on the in-memory kernel, " +
              "\(t.regular) regular pods started (\(t.regularOnSecondaryENI) on a secondary ENI), \(t.failures.count) failed")
        let failures = t.failures
        for f in failures { Issue.record(Comment(rawValue: f)) }
    }
}

/// The sequence workers' shared state: the next batch to take, and the totals.
final class SequenceProgress: Sendable {
    let batches: Int
    struct Result {
        var steps = 0
        var runs = 0
        var regular = 0
        var regularOnSecondaryENI = 0
        var failure: String?
    }

    private let state = Mutex((next: 0, totals: Result(), failures: [String]()))

    init(batches: Int) { self.batches = batches }

    /// nil once every batch is taken or three sequences failed.
    func nextBatch() -> Int? {
        state.withLock { s in
            guard s.next < batches, s.failures.count < 3 else { return nil }
            defer { s.next += 1 }
            return s.next
        }
    }

    /// false when the run should stop (three failures).
    func record(_ r: Result) -> Bool {
        state.withLock { s in
            s.totals.steps += r.steps; s.totals.runs += r.runs
            s.totals.regular += r.regular; s.totals.regularOnSecondaryENI += r.regularOnSecondaryENI
            if let f = r.failure { s.failures.append(f) }
            return s.failures.count < 3
        }
    }

    var totals: (steps: Int, runs: Int, regular: Int, regularOnSecondaryENI: Int, failures: [String]) {
        state.withLock { ($0.totals.steps, $0.totals.runs, $0.totals.regular, $0.totals.regularOnSecondaryENI, $0.failures) }
    }
}
