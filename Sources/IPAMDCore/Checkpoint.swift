#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import NodeSetup
import Synchronization

public struct CheckpointError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) { self.path = path; self.reason = reason }

    public var description: String { "checkpoint \(path): \(reason)" }
}

/// The checkpoint file (AWS_VPC_K8S_CNI_BACKING_STORE) in the reference's shape,
/// `{"version":"vpc-cni-ipam/1","allocations":[...]}`, plus our own `branchPods` (the reference
/// does not record branch pods). Allocations written by another agent (the reference, before an
/// upgrade) are kept as they are. Written atomically: temp file, fsync, rename.
public final class FileCheckpoint: ServedPodStore {
    public static let version = "vpc-cni-ipam/1"

    struct Shape: Codable {
        var version: String
        var allocations: [JSONValue]
        var branchPods: [ServedPod]?
    }

    public let path: String
    /// The allocations found at load, written back unchanged.
    private let allocations = Mutex<[JSONValue]>([])

    public init(path: String) { self.path = path }

    public func load() throws(CheckpointError) -> [ServedPod] {
        let bytes: [UInt8]
        do { bytes = try AtomicFile.read(path) } catch {
            if error.errno == ENOENT { return [] }
            throw CheckpointError(path: path, reason: "\(error)")
        }
        let shape: Shape
        do { shape = try JSONDecoder().decode(Shape.self, from: Data(bytes)) } catch {
            throw CheckpointError(path: path, reason: "not a checkpoint (\(error))")
        }
        guard shape.version == Self.version else {
            throw CheckpointError(path: path, reason: "version \"\(shape.version)\"; this ipamd reads \"\(Self.version)\"")
        }
        allocations.withLock { $0 = shape.allocations }
        return shape.branchPods ?? []
    }

    public func save(_ pods: [ServedPod]) throws(CheckpointError) {
        let shape = Shape(version: Self.version, allocations: allocations.withLock { $0 },
                          branchPods: pods.sorted { ($0.key, $0.containerID) < ($1.key, $1.containerID) })
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        do {
            let data = try enc.encode(shape)
            try AtomicFile.replace(path, with: Array(data), mode: 0o644)
        } catch let e as FileError {
            throw CheckpointError(path: path, reason: "\(e)")
        } catch {
            throw CheckpointError(path: path, reason: "cannot encode: \(error)")
        }
    }
}

/// Any JSON value, kept as read (for allocations another agent wrote; tests read nft and conflist
/// JSON with it too).
public enum JSONValue: Codable, Sendable, Hashable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            // Integers (timestamps) stay integers.
            if n.rounded() == n, abs(n) < 9e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}
