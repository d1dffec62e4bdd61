import Foundation

/// Requests sent per API action (retries included: each one counts against the account's rate
/// limits). Thread-safe; read by ipamd's debug endpoint and, later, its metrics.
public final class CallCounter: @unchecked Sendable {
    // @unchecked: `counts` is only touched under `lock`.
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    public init() {}

    public func record(_ action: String) {
        lock.lock(); defer { lock.unlock() }
        counts[action, default: 0] += 1
    }

    public func count(_ action: String) -> Int {
        lock.lock(); defer { lock.unlock() }
        return counts[action] ?? 0
    }

    public func snapshot() -> [String: Int] {
        lock.lock(); defer { lock.unlock() }
        return counts
    }
}
