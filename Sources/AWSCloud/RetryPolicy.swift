import Logging

/// How often and how patiently a client repeats a call that failed in a retryable way
/// (`CloudError.isRetryable`): a bounded number of attempts with capped exponential backoff.
public struct RetryPolicy: Sendable, Hashable {
    public enum Jitter: Sendable, Hashable {
        /// The exact exponential delay: IMDS is local to the instance, nobody to spread out from.
        case none
        /// A uniform random delay in 0...exponential ("full jitter"), so that many nodes throttled
        /// by the same EC2 account limit do not retry in lock-step.
        case full
    }

    /// Attempts in all, the first included (1 = no retries).
    public var maxAttempts: Int
    public var initialDelay: Duration
    public var maxDelay: Duration
    public var jitter: Jitter

    public init(maxAttempts: Int, initialDelay: Duration, maxDelay: Duration, jitter: Jitter) {
        self.maxAttempts = max(1, maxAttempts); self.initialDelay = initialDelay; self.maxDelay = maxDelay; self.jitter = jitter
    }

    /// IMDS: 5 attempts, 100 ms doubling up to 1 s (about 1.5 s of waiting at most).
    public static let imds = RetryPolicy(maxAttempts: 5, initialDelay: .milliseconds(100), maxDelay: .seconds(1), jitter: .none)
    /// EC2 and STS: throttling is account-wide and lasts seconds, so wait longer, with jitter.
    public static let awsAPI = RetryPolicy(maxAttempts: 6, initialDelay: .milliseconds(200), maxDelay: .seconds(8), jitter: .full)
    /// The container credentials agent is local: a few quick attempts.
    public static let containerCredentials = RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(100), maxDelay: .milliseconds(500), jitter: .none)

    /// The wait after failed attempt number `attempt` (1-based).
    public func delay(afterAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let scaled = initialDelay * (1 << exponent)
        let capped = min(scaled, maxDelay)
        switch jitter {
        case .none: return capped
        case .full: return capped * Double.random(in: 0...1)
        }
    }
}

/// Runs `attempt` until it succeeds, fails in a non-retryable way, or `policy.maxAttempts` is used
/// up; the last error is what the caller sees. `what` names the call in logs (never secrets).
func withRetries<T>(_ policy: RetryPolicy, what: String, url: String, logger: Logger,
                    _ attempt: (Int) async throws(CloudError) -> T) async throws(CloudError) -> T {
    var number = 1
    while true {
        do throws(CloudError) {
            return try await attempt(number)
        } catch {
            guard error.isRetryable, number < policy.maxAttempts else {
                if number > 1 { logger.debug("\(what) failed after \(number) attempts: \(error)") }
                throw error
            }
            let wait = policy.delay(afterAttempt: number)
            logger.debug("\(what) attempt \(number) failed, retrying in \(wait): \(error)")
            do { try await Task.sleep(for: wait) } catch { throw .transport(url: url, reason: "cancelled") }
            number += 1
        }
    }
}
