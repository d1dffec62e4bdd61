/// Runs `body`, cancelling it and throwing `onTimeout` when `limit` passes first. The client's own
/// timeout ends at the answer's head; this one also covers the body, so a server that stalls
/// mid-answer cannot hold a call forever. A cancelled caller gets `.transport(reason: "cancelled")`.
func withCloudDeadline<T: Sendable>(_ limit: Duration, onTimeout: @escaping @Sendable () -> CloudError, url: String,
                                    _ body: @escaping @Sendable () async throws(CloudError) -> T) async throws(CloudError) -> T {
    let result: Result<T, CloudError>? = await withTaskGroup(of: Result<T, CloudError>?.self) { group in
        group.addTask {
            do throws(CloudError) { return .success(try await body()) } catch { return .failure(error) }
        }
        group.addTask {
            // A cancelled sleep means the body finished first (or we were cancelled): no verdict.
            do { try await Task.sleep(for: limit) } catch { return nil }
            return .failure(onTimeout())
        }
        defer { group.cancelAll() }
        while let r = await group.next() {
            if let r { return r }
        }
        return nil
    }
    switch result {
    case .success(let v): return v
    case .failure(let e): throw e
    case nil: throw .transport(url: url, reason: "cancelled")
    }
}
