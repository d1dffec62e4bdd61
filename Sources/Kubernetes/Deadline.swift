/// Runs `body`, cancelling it and throwing `onTimeout` when `limit` passes first. The caller's
/// cancellation still wins: a cancelled caller gets CancellationError, not the timeout.
func withDeadline<T: Sendable>(_ limit: Duration, onTimeout: @escaping @Sendable () -> KubeError,
                               _ body: @escaping @Sendable () async throws(KubeError) -> T) async throws(KubeError) -> T {
    let result: Result<T, any Error> = await withTaskGroup(of: Result<T, any Error>?.self) { group in
        group.addTask {
            do { return .success(try await body()) } catch { return .failure(error) }
        }
        group.addTask {
            // A cancelled sleep means the body finished (or we were cancelled): no verdict.
            do { try await Task.sleep(for: limit) } catch { return nil }
            return .failure(onTimeout())
        }
        defer { group.cancelAll() }
        while let r = await group.next() {
            if let r { return r }
        }
        return .failure(CancellationError())
    }
    switch result {
    case .success(let v): return v
    case .failure(let e as KubeError): throw e
    case .failure: throw .transport("cancelled")
    }
}
