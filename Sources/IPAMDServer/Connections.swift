import IPAMDCore
import NIOCore
import Synchronization

/// One accepted connection's state as the graceful shutdown and the idle timer see it.
final class ConnectionState: Sendable {
    let channel: any Channel
    /// `serving`: a request is being answered (an AddNetwork may wait seconds for its pod's
    /// details). `arriving`: bytes of a request came in since the last reply.
    private let activity = Mutex((serving: false, arriving: false))
    /// The server is shutting down: close after the answer being prepared.
    private let drainingFlag = Atomic(false)

    init(channel: any Channel) { self.channel = channel }

    var draining: Bool { drainingFlag.load(ordering: .acquiring) }
    func drain() {
        drainingFlag.store(true, ordering: .releasing)
        closeIfIdle()
    }

    func requestArriving() { activity.withLock { $0.arriving = true } }
    func serving() { activity.withLock { $0.serving = true } }
    func answered() { activity.withLock { $0 = (false, false) } }

    /// The idle timer: closes unless a request is being answered (a client that sent part of a
    /// frame and stalled is closed).
    func closeIfNotServing() {
        if !activity.withLock({ $0.serving }) { channel.close(promise: nil) }
    }

    /// Shutdown: closes unless a request is being answered or on its way (a client that connected
    /// before the socket file went gets its answer).
    func closeIfIdle() {
        if !activity.withLock({ $0.serving || $0.arriving }) { channel.close(promise: nil) }
    }
}

/// The live connections of a server: at shutdown the idle ones close at once, the busy ones after
/// their reply; shutdown waits for the last one.
final class ConnectionSet: Sendable {
    private let state = Mutex<(draining: Bool, live: [ObjectIdentifier: ConnectionState])>((false, [:]))
    private let changed = ChangeSignal()

    /// false when the server is draining: the connection is closed instead of served.
    func add(_ c: ConnectionState) -> Bool {
        state.withLock { s in
            guard !s.draining else { return false }
            s.live[ObjectIdentifier(c)] = c
            return true
        }
    }

    func remove(_ c: ConnectionState) {
        _ = state.withLock { $0.live.removeValue(forKey: ObjectIdentifier(c)) }
        changed.broadcast()
    }

    var count: Int { state.withLock { $0.live.count } }

    func drain() {
        let live = state.withLock { s in
            s.draining = true
            return Array(s.live.values)
        }
        for c in live { c.drain() }
    }

    /// Returns when no connection is left (or the task is cancelled: the group's shutdown limit).
    func waitUntilEmpty() async {
        _ = await changed.wait(until: .now + .seconds(3600)) { count == 0 }
    }
}
