import Foundation
import SystemIO
import IPAMDProtocol
import Logging
import Synchronization

/// Branch details from a JSON file, for running without a cluster:
/// `{"pods": {"<namespace>/<name>": [<pod-eni element>], "<container id>": [...]}}`.
/// The file is checked (one stat) on every lookup and re-read when it changed, so editing it
/// takes effect for the next pod without a restart. A file that fails to parse keeps the
/// previous good content, and the error is logged.
public final class StaticFileSource: PodENISource {
    struct FileStamp: Equatable {
        var inode: UInt64
        var size: Int64
        var mtimeSec: Int
        var mtimeNsec: Int
    }

    struct State {
        var stamp: FileStamp?
        /// Validated once per load, not on every lookup.
        var pods: [String: PodENILookup] = [:]
    }

    struct FileShape: Decodable {
        var pods: [String: [PodENIAnnotation]]
    }

    public typealias FileReader = @Sendable (String) throws(Errno) -> [UInt8]

    public let path: String
    private let logger: Logger
    private let readFile: FileReader
    /// Stamp and content change together, and a lookup answers from the state it checked:
    /// a slow reader can never store an older file over a newer one, nor answer from one.
    private let state = Mutex(State())

    public init(path: String, logger: Logger, readFile: @escaping FileReader = { (p) throws(Errno) in try FileIO.read(path: p) }) {
        self.path = path
        self.logger = logger
        self.readFile = readFile
        state.withLock { reloadIfChanged(&$0) }
    }

    public func lookup(key: String, containerID: String) -> PodENILookup {
        state.withLock { s in
            reloadIfChanged(&s)
            return s.pods[key] ?? (containerID.isEmpty ? nil : s.pods[containerID])
        } ?? .notFound
    }

    /// The file's branch pods: "namespace/name" keys as pods, other keys as container ids. Not
    /// in `/v1/pods` (a file entry is not a pod that exists), only for rebuilding a lost checkpoint.
    public func rebuildCandidates() -> [PodView] {
        let pods = state.withLock { s in
            reloadIfChanged(&s)
            return s.pods
        }
        return pods.sorted { $0.key < $1.key }.compactMap { key, lookup in
            guard case .branch(let e) = lookup else { return nil }
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            var v = parts.count == 2 ? PodView(namespace: parts[0], name: parts[1], podUID: "", branch: true, state: .ready)
                                     : PodView(namespace: "", name: "", podUID: "", branch: true, state: .ready)
            if parts.count != 2 { v.containerID = key }
            v.vlanID = e.vlanID; v.eniID = e.eniID; v.ipv4 = e.ipv4?.description; v.mac = e.mac.description
            return v
        }
    }

    static func validate(_ list: [PodENIAnnotation]) -> PodENILookup {
        guard let first = list.first else { return .invalid(AnnotationError(field: "annotation", reason: "empty array")) }
        do { return .branch(try BranchENI.validate(first)) } catch { return .invalid(error) }
    }

    /// Number of pods in the file as last loaded.
    public var count: Int { state.withLock { $0.pods.count } }

    func stamp() -> FileStamp? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileStamp(inode: UInt64(st.st_ino), size: Int64(st.st_size), mtimeSec: st.st_mtim.tv_sec, mtimeNsec: st.st_mtim.tv_nsec)
    }

    /// Called with the state locked: one stat per lookup; a read and parse only when it changed.
    func reloadIfChanged(_ s: inout State) {
        let now = stamp()
        guard s.stamp != now else { return }
        guard now != nil else {
            logger.warning("pod-eni file is missing; keeping the last content", metadata: ["path": "\(path)"])
            s.stamp = nil
            return
        }
        // Remember the stamp even for a broken file, so it is reported once, not on every request.
        s.stamp = now
        do {
            let bytes = try readFile(path)
            let shape = try JSONDecoder().decode(FileShape.self, from: Data(bytes))
            s.pods = shape.pods.mapValues(Self.validate)
            logger.info("loaded pod-eni file", metadata: ["path": "\(path)", "pods": "\(shape.pods.count)"])
        } catch {
            logger.error("cannot read pod-eni file; keeping the last good content", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}
