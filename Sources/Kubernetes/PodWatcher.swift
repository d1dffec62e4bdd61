import Foundation
import Logging
import Synchronization

/// Receives the pods of the watch. Called from the watcher's task, one call at a time.
public protocol PodEventSink: Sendable {
    /// The complete set after a (re)list: pods not in `pods` are gone.
    func replaceAll(_ pods: [Pod])
    /// `type` is added, modified or deleted.
    func apply(_ type: WatchEventType, _ pod: Pod)
}

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
        return base * Double.random(in: (1 - jitter)...(1 + jitter))
    }

    public mutating func reset() { current = nil }
}

/// List + watch of the pods on one node (`fieldSelector=spec.nodeName=<node>`), the informer
/// pattern: list (paged) to get the full set and a resourceVersion, then watch from it with
/// bookmarks, following every event's resourceVersion. A stream that ends or drops is resumed
/// from the last resourceVersion seen, so nothing in between is missed; 410 Gone (HTTP status or
/// an ERROR event) means the server no longer has those events, and a fresh list replaces the
/// whole set. Errors back off (capped, jittered) and retry forever; only cancellation stops it.
public final class PodWatcher: Sendable {
    public struct Options: Sendable {
        public var nodeName: String
        /// The server ends each watch after a random time in this range (seconds), as client-go does.
        public var watchTimeout: ClosedRange<Int> = 300...600
        public var pageSize = 500
        public var backoff = Backoff()
        /// How long past its timeout a silent stream is given before it is abandoned.
        public var watchGrace: Duration = .seconds(60)

        public init(nodeName: String) { self.nodeName = nodeName }
    }

    public struct Stats: Sendable, Equatable {
        /// Empty until the first list finished.
        public var resourceVersion = ""
        public var lists = 0
        public var watches = 0
        public var events = 0
        public var lastError: String?
    }

    let client: KubeClient
    let sink: any PodEventSink
    let options: Options
    let logger: Logger
    private let state = Mutex(Stats())

    public init(client: KubeClient, sink: any PodEventSink, options: Options, logger: Logger) {
        self.client = client; self.sink = sink; self.options = options; self.logger = logger
    }

    public var stats: Stats { state.withLock { $0 } }

    var selector: String { "fieldSelector=" + queryEscape("spec.nodeName=\(options.nodeName)") }

    /// Runs until the task is cancelled.
    public func run() async {
        var backoff = options.backoff
        var needList = true
        while !Task.isCancelled {
            do {
                if needList {
                    try await list()
                    needList = false
                    backoff.reset()
                }
                let started = ContinuousClock.now
                let progressed = try await watchOnce()
                if progressed { backoff.reset() }
                // A stream the server ends at its timeout is normal: resume at once. One that ends
                // immediately without any event is a misbehaving server: do not spin.
                if !progressed && ContinuousClock.now - started < .seconds(1) { try await Task.sleep(for: backoff.next()) }
            } catch is CancellationError {
                break
            } catch let e as KubeError {
                if Task.isCancelled { break }
                state.withLock { $0.lastError = e.description }
                if e.isGone {
                    logger.info("pod watch: resourceVersion expired (410 Gone); listing again", metadata: ["error": "\(e)"])
                    needList = true
                    continue
                }
                let delay = backoff.next()
                logger.warning("pod watch failed; retrying", metadata: ["error": "\(e)", "retry_in": "\(delay)"])
                try? await Task.sleep(for: delay)
            } catch {
                if Task.isCancelled { break }
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    /// Lists all pages, hands the set to the sink and remembers its resourceVersion.
    func list() async throws(KubeError) {
        var pods: [Pod] = []
        var cont: String?
        var rv = ""
        repeat {
            var path = "/api/v1/pods?\(selector)&limit=\(options.pageSize)"
            if let c = cont { path += "&continue=" + queryEscape(c) }
            let page = try await client.get(PodList.self, path: path, timeout: .seconds(60))
            pods += page.items
            if rv.isEmpty || cont == nil { rv = page.metadata.resourceVersion ?? "" }
            cont = page.metadata.continue.flatMap { $0.isEmpty ? nil : $0 }
        } while cont != nil
        guard !rv.isEmpty else { throw KubeError.decode("pod list without metadata.resourceVersion") }
        sink.replaceAll(pods)
        state.withLock { $0.resourceVersion = rv; $0.lists += 1; $0.lastError = nil }
        logger.info("pod list", metadata: ["pods": "\(pods.count)", "resource_version": "\(rv)", "node": "\(options.nodeName)"])
    }

    /// One watch connection from the current resourceVersion. Returns whether any event arrived.
    /// A watchdog ends a stream that outlives the timeout the server was asked for by
    /// `watchGrace`: a peer that vanished without closing (half-open TCP) must not stall the
    /// watch forever.
    func watchOnce() async throws -> Bool {
        let rv = stats.resourceVersion
        let timeout = Int.random(in: options.watchTimeout)
        let path = "/api/v1/pods?\(selector)&watch=true&allowWatchBookmarks=true&resourceVersion=\(queryEscape(rv))&timeoutSeconds=\(timeout)"
        state.withLock { $0.watches += 1 }
        logger.debug("pod watch", metadata: ["resource_version": "\(rv)"])
        let limit = Duration.seconds(timeout) + options.watchGrace
        return try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await self.stream(path: path, timeout: timeout) }
            group.addTask {
                try await Task.sleep(for: limit)
                throw KubeError.transport("watch stream silent past its timeout (\(limit)); reconnecting")
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
    }

    func stream(path: String, timeout: Int) async throws(KubeError) -> Bool {
        var progressed = false
        try await client.watch(KubeRequest(path: path, timeout: .seconds(30))) { (line) throws(KubeError) in
            let event = try WatchEvent<Pod>.decode(line: line)
            progressed = true
            let newRV: String?
            switch event {
            case .added(let p): sink.apply(.added, p); newRV = p.metadata.resourceVersion
            case .modified(let p): sink.apply(.modified, p); newRV = p.metadata.resourceVersion
            case .deleted(let p): sink.apply(.deleted, p); newRV = p.metadata.resourceVersion
            case .bookmark(let r): newRV = r
            case .error(let s):
                throw KubeError.status(code: s.code ?? 500, reason: s.reason ?? "", message: s.message ?? "watch ERROR event")
            }
            // Kept per event, not per stream: a stream that drops resumes after its last event.
            state.withLock { st in
                if let r = newRV, !r.isEmpty { st.resourceVersion = r }
                st.events += 1
            }
        }
        return progressed
    }
}
