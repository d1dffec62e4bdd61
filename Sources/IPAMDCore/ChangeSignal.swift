import Synchronization

/// How a wait on shared state ended.
public enum WaitOutcome: Sendable, Equatable {
    /// The awaited condition holds.
    case ready
    /// The deadline passed first.
    case timedOut
    /// The state's owner is stopping (ipamd's graceful shutdown).
    case closed
}

/// Wakes async waiters when state they watch changes, so a request can wait for a pod's details
/// or the trunk until a monotonic deadline without a thread of its own and without polling. The
/// owner changes its state under its own lock, then calls `broadcast()`; a waiter re-checks its
/// condition on every wake-up, so a spurious one costs a re-check only.
public final class ChangeSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var closed = false
        var nextID: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    /// Call after every change of the watched state.
    public func broadcast() {
        let woken = state.withLock { s in
            s.generation &+= 1
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        for c in woken { c.resume() }
    }

    /// Every wait (now and later) ends with `.closed` unless its condition already holds.
    public func close() {
        state.withLock { $0.closed = true }
        broadcast()
    }

    /// Waits parked right now (tests wait for this instead of sleeping).
    public var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Waits until `ready()` holds, the signal is closed, or `deadline` passes. `ready` reads the
    /// owner's state (under the owner's lock) and is evaluated again after every change.
    public func wait(until deadline: ContinuousClock.Instant, _ ready: () -> Bool) async -> WaitOutcome {
        while true {
            // The generation is read before the condition: a change between the two makes the
            // park below return at once instead of being missed.
            let (generation, closed) = state.withLock { ($0.generation, $0.closed) }
            if ready() { return .ready }
            if closed { return .closed }
            if ContinuousClock.now >= deadline || Task.isCancelled { return .timedOut }
            await changeOrDeadline(after: generation, deadline: deadline)
        }
    }

    /// Counts the changes: a waiter that must not miss one made while it was busy reads it
    /// first, then waits for a change after it.
    public var generation: UInt64 { state.withLock { $0.generation } }

    /// Waits for the next change, the close, or `deadline`, for an owner that looks at its
    /// state itself when woken (the change after this call, not one before it).
    public func waitForNextChange(until deadline: ContinuousClock.Instant) async {
        await waitForChange(after: generation, until: deadline)
    }

    /// Waits until a change after `generation` (at once if one came already), the close, or
    /// `deadline`.
    public func waitForChange(after generation: UInt64, until deadline: ContinuousClock.Instant) async {
        if state.withLock({ $0.closed }) || ContinuousClock.now >= deadline || Task.isCancelled { return }
        await changeOrDeadline(after: generation, deadline: deadline)
    }

    private func changeOrDeadline(after generation: UInt64, deadline: ContinuousClock.Instant) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.change(after: generation) }
            group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            await group.next()
            group.cancelAll()
        }
    }

    private func change(after generation: UInt64) async {
        let id = state.withLock { s in
            s.nextID &+= 1
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.generation != generation || Task.isCancelled { return true }
                    s.waiters[id] = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
