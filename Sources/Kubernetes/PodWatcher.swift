import Foundation
import Logging
import Synchronization

/// Receives the pods of the watch. Called from the watcher's task, one call at a time.
public protocol PodEventSink: Sendable {
    /// The complete set after a (re)list: pods not in `pods` are gone.
    func replaceAll(_ pods: [Pod])
    /// `type` is added, modified or deleted.
    func apply(_ type: WatchEventType, _ pod: Pod)
    /// A watch request is being sent (the first, or a resume after its timeout or an error).
    func watchStarted()
}

extension PodEventSink {
    public func watchStarted() {}
}

/// List + watch of the pods on one node (`fieldSelector=spec.nodeName=<node>`), the informer
/// pattern: list (paged) to get the full set and a resourceVersion, then watch from it with
/// bookmarks, following every event's resourceVersion. A stream that ends or drops is resumed
/// from the last resourceVersion seen, so nothing in between is missed; 410 Gone (HTTP status or
/// an ERROR event) means the server no longer has those events, and a fresh list replaces the
/// whole set. That list is never older than what was already applied (see `ListVersion`).
/// Errors back off (capped, jittered) and retry forever; only cancellation stops it.
/// The backoff is reset only by progress (a watch that delivered events or bookmarks), so
/// repeated 410s or failing lists slow down instead of looping.
public final class PodWatcher: Sendable {
    public struct Options: Sendable {
        public var nodeName: String
        /// The server ends each watch after a random time in this range (seconds), as client-go does.
        public var watchTimeout: ClosedRange<Int> = 300...600
        public var pageSize = 500
        public var backoff = Backoff()
        /// The longest silence allowed on an open watch. A real API server sends a bookmark about
        /// every minute; a stream silent for much longer is a vanished peer (half-open TCP).
        public var idleLimit: Duration = .seconds(150)
        /// One list request, its body included.
        public var listTimeout: Duration = .seconds(60)
        /// Waits between retries (tests record them instead of waiting).
        public var sleep: Sleeper = realSleep

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

    /// Which state a list asks for: the API's resourceVersion semantics for list, as client-go's
    /// reflector uses them.
    enum ListVersion: Equatable {
        /// resourceVersion=0: any state, from the API server's watch cache, cheap but possibly
        /// older than events already applied (a lagging cache, another API server). Only for the
        /// first list, when nothing has been applied yet.
        case any
        /// resourceVersion=R&resourceVersionMatch=NotOlderThan, R the last version seen: a relist
        /// that cannot go back in time. The match says so explicitly: a bare R means exactly R
        /// once a limit comes with it (410 when compacted).
        case notOlderThan(String)
        /// No resourceVersion: the most recent state, a quorum read. After the server refused the
        /// version we had (410 Expired, or too large for a server whose cache is behind it).
        case mostRecent

        var query: String {
            switch self {
            case .any: "&resourceVersion=0"
            case .notOlderThan(let rv): "&resourceVersion=\(queryEscape(rv))&resourceVersionMatch=NotOlderThan"
            case .mostRecent: ""
            }
        }
    }

    /// What one watch connection achieved, readable after it failed.
    final class WatchProgress: Sendable {
        private let state = Mutex((last: ContinuousClock.now, events: false))
        /// Bytes arrived: the idle watchdog starts over.
        func touch() { state.withLock { $0.last = .now } }
        func delivered() { state.withLock { $0.events = true } }
        var lastActivity: ContinuousClock.Instant { state.withLock { $0.last } }
        /// Events or bookmarks arrived: the watch was working.
        var made: Bool { state.withLock { $0.events } }
    }

    /// Runs until the task is cancelled.
    public func run() async {
        var backoff = options.backoff
        var needList = true
        // The server refused to list at our version: the next list is a quorum read, until one works.
        var versionUnavailable = false
        while !Task.isCancelled {
            let progress = WatchProgress()
            var delay: Duration?
            do throws(KubeError) {
                if needList {
                    let seen = stats.resourceVersion
                    do throws(KubeError) {
                        try await list(versionUnavailable ? .mostRecent : seen.isEmpty ? .any : .notOlderThan(seen))
                    } catch {
                        if error.isGone || error.isTooLargeResourceVersion { versionUnavailable = true }
                        throw error
                    }
                    needList = false
                    versionUnavailable = false
                }
                let started = ContinuousClock.now
                try await watchOnce(progress)
                if progress.made {
                    backoff.reset()
                } else if ContinuousClock.now - started < .seconds(1) {
                    // Ended at once without any event: a misbehaving server; do not spin.
                    delay = backoff.next()
                }
            } catch {
                if Task.isCancelled { break }
                state.withLock { $0.lastError = error.description }
                // A stream that delivered events before failing was working: short delays again.
                if progress.made { backoff.reset() }
                let d = backoff.next()
                delay = d
                let meta: Logger.Metadata = ["error": "\(error)", "retry_in": "\(d)"]
                if error.isGone {
                    needList = true
                    logger.info("pod watch: resourceVersion expired (410 Gone); listing again", metadata: meta)
                } else if error.isTLS {
                    logger.error("pod watch: TLS to the API server failed; check the cluster CA; retrying", metadata: meta)
                } else {
                    logger.warning("pod watch failed; retrying", metadata: meta)
                }
            }
            if let delay {
                do { try await options.sleep(delay) } catch { break }
            }
        }
    }

    /// Lists all pages, hands the set to the sink and remembers its resourceVersion. With
    /// resourceVersion=0 the server may ignore `limit` and answer in one piece, which is fine.
    func list(_ at: ListVersion) async throws(KubeError) {
        let base = "/api/v1/pods?\(selector)"
        let version = at.query
        // A relist at a version is not paged, as client-go's reflector does: many API servers
        // send a limited list at a non-zero version to etcd, while the watch cache can answer it
        // whole (one node's pods are few). Nodes relisting together then spare etcd.
        let limit: String
        if case .notOlderThan = at { limit = "" } else { limit = "&limit=\(options.pageSize)" }
        var pods: [Pod] = []
        var cont: String?
        var rv = ""
        do throws(KubeError) {
            repeat {
                // The server refuses resourceVersion (and its match) together with continue: the
                // token carries it.
                let path = base + limit + (cont.map { "&continue=" + queryEscape($0) } ?? version)
                let page = try await client.get(PodList.self, path: path, timeout: options.listTimeout)
                pods += page.items
                if cont == nil { rv = page.metadata.resourceVersion ?? "" }
                cont = page.metadata.continue.flatMap { $0.isEmpty ? nil : $0 }
            } while cont != nil
        } catch {
            // The continue token expired between pages (compaction). As client-go's pager does,
            // list again once, whole and unpaged; a second 410 goes to the caller's backoff.
            guard error.isGone, cont != nil else { throw error }
            logger.info("pod list: continue token expired; listing again unpaged", metadata: ["error": "\(error)"])
            let all = try await client.get(PodList.self, path: base + version, timeout: options.listTimeout)
            pods = all.items
            rv = all.metadata.resourceVersion ?? ""
        }
        guard !rv.isEmpty else { throw KubeError.decode("pod list without metadata.resourceVersion") }
        sink.replaceAll(pods)
        state.withLock { $0.resourceVersion = rv; $0.lists += 1; $0.lastError = nil }
        logger.info("pod list", metadata: ["pods": "\(pods.count)", "resource_version": "\(rv)", "node": "\(options.nodeName)"])
    }

    /// One watch connection from the current resourceVersion. An idle watchdog, restarted by
    /// every piece of the stream, ends it after `idleLimit` of silence: a peer that vanished
    /// without closing (half-open TCP) must not stall the watch until its timeout.
    func watchOnce(_ progress: WatchProgress) async throws(KubeError) {
        let rv = stats.resourceVersion
        let timeout = Int.random(in: options.watchTimeout)
        let path = "/api/v1/pods?\(selector)&watch=true&allowWatchBookmarks=true&resourceVersion=\(queryEscape(rv))&timeoutSeconds=\(timeout)"
        state.withLock { $0.watches += 1 }
        sink.watchStarted()
        logger.debug("pod watch", metadata: ["resource_version": "\(rv)"])
        let idle = options.idleLimit
        progress.touch()  // the idle limit counts from the connection, not from a slow list before it
        let outcome: KubeError? = await withTaskGroup(of: KubeError??.self) { group in
            group.addTask {
                do throws(KubeError) { try await self.stream(path: path, progress) } catch { return .some(error) }
                return .some(nil)
            }
            group.addTask {
                while true {
                    let due = progress.lastActivity + idle
                    if ContinuousClock.now >= due { return .some(.transport("watch stream silent for \(idle); reconnecting")) }
                    // Cancelled: the stream finished first; no verdict.
                    do { try await Task.sleep(until: due, clock: .continuous) } catch { return nil }
                }
            }
            defer { group.cancelAll() }
            while let r = await group.next() {
                if let r { return r }
            }
            return .transport("watch cancelled")
        }
        if let outcome { throw outcome }
    }

    func stream(path: String, _ progress: WatchProgress) async throws(KubeError) {
        try await client.watch(KubeRequest(path: path, timeout: .seconds(30)), onActivity: { progress.touch() }) { (line) throws(KubeError) in
            let event = try WatchEvent<Pod>.decode(line: line)
            let newRV: String?
            switch event {
            case .added(let p): sink.apply(.added, p); newRV = p.metadata.resourceVersion
            case .modified(let p): sink.apply(.modified, p); newRV = p.metadata.resourceVersion
            case .deleted(let p): sink.apply(.deleted, p); newRV = p.metadata.resourceVersion
            case .bookmark(let r): newRV = r
            case .error(let s):
                throw KubeError.status(code: s.code ?? 500, reason: s.reason ?? "", message: s.message ?? "watch ERROR event")
            }
            progress.delivered()
            // Kept per event, not per stream: a stream that drops resumes after its last event.
            state.withLock { st in
                if let r = newRV, !r.isEmpty { st.resourceVersion = r }
                st.events += 1
            }
        }
    }
}

extension KubeError {
    /// The server does not have the requested version yet (504 "Too large resource version",
    /// after waiting for its watch cache to reach it): like 410, retry with a quorum read.
    var isTooLargeResourceVersion: Bool {
        if case .status(504, _, let message) = self { message.contains("Too large resource version") } else { false }
    }
}
