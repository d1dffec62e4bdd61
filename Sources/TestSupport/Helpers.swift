import Foundation
import IPAMDCore
import Logging
import Netlink

// Small helpers every test target shares. This target is linked only into tests.

/// A logger that drops everything (libraries take a Logger; tests rarely want the output).
public let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// The trunk at a fixed ifindex (or none), for ipamd logic without netlink.
public struct FixedTrunk: TrunkLocator {
    public var index: Int32?
    public init(index: Int32?) { self.index = index }
    public func trunkIndex() throws(NetlinkError) -> Int32? { index }
}

/// One parent for every `tempDir()` of this test process, removed when the process exits: test
/// runs left tens of thousands of directories in /tmp otherwise. Short, for Unix socket paths.
private let testRoot: String = {
    let d = NSTemporaryDirectory() + "ipamd-t\(getpid())"
    try? FileManager.default.removeItem(atPath: d)  // a crashed run of a recycled pid
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    atexit { removeTestRoot() }
    return d
}()

private func removeTestRoot() { try? FileManager.default.removeItem(atPath: testRoot) }

/// A fresh directory under this process's test root (see `testRoot`).
public func tempDir() -> String {
    let d = testRoot + "/" + UUID().uuidString.prefix(8)
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// Writes via rename, as editors and config management do; readers see a new file.
public func writeAtomically(_ text: String, to path: String) {
    let tmp = path + ".tmp"
    try! text.write(toFile: tmp, atomically: false, encoding: .utf8)
    rename(tmp, path)
}

/// Blocking work started at once on a thread of its own, not as a task: a test that goes on to
/// block (waiting for a log line) must not need a free cooperative thread to get the work going.
public final class OffThread<T: Sendable>: @unchecked Sendable {
    // @unchecked: `result` is only touched under `cond`.
    private let cond = NSCondition()
    private var result: T?

    public init(_ body: @escaping @Sendable () -> T) {
        Thread.detachNewThread { [self] in
            let r = body()
            cond.lock()
            result = r
            cond.broadcast()
            cond.unlock()
        }
    }

    /// The value, or nil when the work has not finished within `timeout` seconds.
    public func value(timeout: Double) -> T? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        cond.lock()
        defer { cond.unlock() }
        while result == nil, cond.wait(until: deadline) {}
        return result
    }
}

extension Duration {
    /// In milliseconds, for benchmarks' figures.
    public var inMilliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}

/// Runs blocking work on a thread of its own, so it never holds one of the few cooperative-pool
/// threads the code under test needs.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { c in Thread.detachNewThread { c.resume(returning: body()) } }
}

/// Waits for a condition, up to a deadline (no fixed sleeps). `every`: how often it is checked
/// (longer for checks that cost a process, like a query to a test server).
public func eventually(_ timeout: Duration = .seconds(15), every interval: Duration = .milliseconds(20), _ what: () async -> Bool) async -> Bool {
    let end = ContinuousClock.now + timeout
    while ContinuousClock.now < end {
        if await what() { return true }
        try? await Task.sleep(for: interval)
    }
    return await what()
}
