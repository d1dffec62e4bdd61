/// The IMDSv2 session token: fetched once, reused until shortly before its TTL ends, dropped
/// on a 401. Concurrent readers share one fetch instead of each sending a PUT.
actor IMDSTokenCache {
    private var current: (value: String, refreshAt: ContinuousClock.Instant)?
    private var fetching: Task<Result<String, CloudError>, Never>?

    /// Refresh this long before the TTL ends, so a token never expires between check and use.
    let margin: Duration
    let ttl: Duration

    init(ttl: Duration) {
        self.ttl = ttl
        // A minute before a 6-hour token ends; proportionally less for short test TTLs.
        margin = min(.seconds(60), ttl / 4)
    }

    func token(fetch: @escaping @Sendable () async throws(CloudError) -> String) async throws(CloudError) -> String {
        if let current, ContinuousClock.now < current.refreshAt { return current.value }
        let task: Task<Result<String, CloudError>, Never>
        if let fetching {
            task = fetching
        } else {
            let ttl = self.ttl, margin = self.margin
            task = Task {
                let started = ContinuousClock.now
                do throws(CloudError) {
                    let value = try await fetch()
                    self.store(value, refreshAt: started + ttl - margin)
                    return .success(value)
                } catch {
                    return .failure(error)
                }
            }
            fetching = task
        }
        let result = await task.value
        if fetching == task { fetching = nil }
        return try result.get()
    }

    private func store(_ value: String, refreshAt: ContinuousClock.Instant) {
        current = (value, refreshAt)
    }

    /// Forgets `token` if it is still the cached one (a concurrent reader may have replaced it already).
    func invalidate(_ token: String) {
        if current?.value == token { current = nil }
    }
}
