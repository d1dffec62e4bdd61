import Foundation
import Testing

/// Runs each test of a suite on a thread of its own (`@Suite(.ownThread)`), for tests that block:
/// running processes, waiting on semaphores, sleeping through ipamd's retries. On Linux the
/// cooperative pool has one thread per core (two on CI) and swift-testing runs tests as tasks on
/// it, so two such tests blocking at once stalled every async test of the run for seconds, until
/// their bounded waits ran out (a clean-clone CI run failed 19 expectations that way).
public struct OwnThreadTrait: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard testCase != nil else { return try await function() }
        let executor = ThreadTaskExecutor()
        defer { executor.finish() }
        // The test's task (and its task-locals, where swift-testing keeps which test is running)
        // stays the same; only its jobs run on the dedicated thread.
        try await withTaskExecutorPreference(executor) { try await function() }
    }
}

extension Trait where Self == OwnThreadTrait {
    public static var ownThread: Self { OwnThreadTrait() }
}

/// A task executor with one thread, which ends once `finish` was called and no job is left.
public final class ThreadTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` and `finished` are only touched under `cond`.
    private let cond = NSCondition()
    private var jobs: [UnownedJob] = []
    private var finished = false

    public init() {
        let thread = Thread { [self] in drain() }
        thread.name = "test-own-thread"
        thread.start()
    }

    public func enqueue(_ job: UnownedJob) {
        cond.lock()
        jobs.append(job)
        cond.signal()
        cond.unlock()
    }

    public func finish() {
        cond.lock()
        finished = true
        cond.signal()
        cond.unlock()
    }

    private func drain() {
        while true {
            cond.lock()
            while jobs.isEmpty && !finished { cond.wait() }
            if jobs.isEmpty {
                cond.unlock()
                return
            }
            let job = jobs.removeFirst()
            cond.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
