import Foundation

/// One request attempt as it ended.
public struct APICallRecord: Sendable {
    public var api: String
    public var duration: Duration
    /// nil when no HTTP answer came (timeout, connection refused).
    public var status: Int?
    /// The service's error code, the HTTP status, or the transport failure; nil on success.
    public var errorCode: String?
}

/// Requests sent per API action (retries included: each one counts against the account's rate
/// limits), and an observer that hears how each attempt ended (ipamd's metrics). Thread-safe.
public final class CallCounter: @unchecked Sendable {
    // @unchecked: `counts` is only touched under `lock`.
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    let observer: (@Sendable (APICallRecord) -> Void)?

    public init(observer: (@Sendable (APICallRecord) -> Void)? = nil) { self.observer = observer }

    func finished(_ record: APICallRecord) { observer?(record) }

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
