import Foundation
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

    public let path: String
    private let logger: Logger
    private let state = Mutex(State())

    public init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
        reloadIfChanged()
    }

    public func lookup(key: String, containerID: String) -> PodENILookup {
        reloadIfChanged()
        return state.withLock { s in s.pods[key] ?? (containerID.isEmpty ? nil : s.pods[containerID]) } ?? .notFound
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

    func reloadIfChanged() {
        let now = stamp()
        guard state.withLock({ $0.stamp != now }) else { return }
        guard now != nil else {
            logger.warning("pod-eni file is missing; keeping the last content", metadata: ["path": "\(path)"])
            state.withLock { $0.stamp = nil }
            return
        }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let shape = try JSONDecoder().decode(FileShape.self, from: data)
            let pods = shape.pods.mapValues(Self.validate)
            state.withLock { $0.pods = pods; $0.stamp = now }
            logger.info("loaded pod-eni file", metadata: ["path": "\(path)", "pods": "\(shape.pods.count)"])
        } catch {
            // Remember the stamp so a broken file is reported once, not on every request.
            state.withLock { $0.stamp = now }
            logger.error("cannot read pod-eni file; keeping the last good content", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}
