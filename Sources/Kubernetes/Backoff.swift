/// Capped exponential backoff with jitter, so that many nodes reconnecting after an API server
/// restart spread out instead of arriving together.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    /// Each delay is scaled by a random factor in 1-jitter ... 1+jitter.
    public var jitter: Double
    private var current: Duration?

    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(30), jitter: Double = 0.2) {
        self.initial = initial; self.maximum = maximum; self.jitter = jitter
    }

    public mutating func next() -> Duration {
        let base = current.map { min($0 * 2, maximum) } ?? initial
        current = base
        return jitter > 0 ? base * Double.random(in: (1 - jitter)...(1 + jitter)) : base
    }

    public mutating func reset() { current = nil }
}

/// How the retry loops wait; injectable so tests check delays without real time passing.
public typealias Sleeper = @Sendable (Duration) async throws -> Void

public let realSleep: Sleeper = { try await Task.sleep(for: $0) }
